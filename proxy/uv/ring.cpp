#include "uv/ring.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace sb::uv {

namespace {

constexpr unsigned kEntries = 256;
// Completions outnumber submissions: every connection's read waits in the ring. The
// kernel keeps what does not fit (IORING_FEAT_NODROP) and posts it when room is made.
constexpr unsigned kCqEntries = Ring::kCqEntries;
constexpr uint16_t kBufferGroup = 0;

}  // namespace

Ring::~Ring() {
    close();
}

int Ring::enter(unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg,
                size_t arg_size) {
    long rc = syscall(__NR_io_uring_enter, fd_, to_submit, min_complete, flags, arg, arg_size);
    return rc < 0 ? -errno : static_cast<int>(rc);
}

int Ring::open(BlockPool& pool, uint32_t offset, uint32_t len, Completion on_completion) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, kEntries, &p));
    if (fd_ < 0) {
        fd_ = -1;
        return -errno;
    }
    const uint32_t needed =
        IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL;
    if ((p.features & needed) != needed) {
        close();
        return -EINVAL;
    }
    rings_bytes_ = std::max<size_t>(p.sq_off.array + p.sq_entries * sizeof(unsigned),
                                    p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
    void* rings = mmap(nullptr, rings_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                       fd_, IORING_OFF_SQ_RING);
    if (rings == MAP_FAILED) {
        const int error = errno;
        close();
        return -error;
    }
    rings_ = rings;
    sqes_bytes_ = p.sq_entries * sizeof(io_uring_sqe);
    void* sqes = mmap(nullptr, sqes_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
                      IORING_OFF_SQES);
    if (sqes == MAP_FAILED) {
        const int error = errno;
        close();
        return -error;
    }
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    auto* base = static_cast<char*>(rings_);
    sq_head_ = reinterpret_cast<unsigned*>(base + p.sq_off.head);
    sq_tail_ = reinterpret_cast<unsigned*>(base + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_mask);
    sq_entries_ = p.sq_entries;
    sq_array_ = reinterpret_cast<unsigned*>(base + p.sq_off.array);
    cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(base + p.cq_off.cqes);

    // The provided buffers: a page-aligned ring of count_ descriptors, registered as
    // buffer group 0.
    count_ = buffers_for_test != 0 ? buffers_for_test : kBuffers;
    const size_t ring_bytes = kBuffers * sizeof(io_uring_buf);
    void* br =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED) {
        const int error = errno;
        close();
        return -error;
    }
    buf_ring_ = static_cast<io_uring_buf_ring*>(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring_);
    reg.ring_entries = count_;
    reg.bgid = kBufferGroup;
    if (syscall(__NR_io_uring_register, fd_, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) {
        const int error = errno;
        close();
        return -error;
    }
    buf_registered_ = true;
    pool_ = &pool;
    buffer_offset_ = offset;
    buffer_len_ = len;
    on_completion_ = on_completion;
    refill();
    if (provided_ == 0) {
        close();
        return -ENOMEM;
    }
    // A seccomp profile may allow setting a ring up and not entering it: one no-op,
    // submitted and waited for, says the ring really works.
    io_uring_sqe* nop = next_sqe();
    nop->opcode = IORING_OP_NOP;
    nop->user_data = 0;
    const int rc = enter(queued_, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
    if (rc != 1) {
        close();
        return rc < 0 ? rc : -EIO;
    }
    queued_ = 0;
    __atomic_store_n(cq_head_, __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    return 0;
}

void Ring::close() {
    if (fd_ < 0) return;
    // Closing the ring cancels whatever is left; the buffers are ours again.
    ::close(fd_);
    fd_ = -1;
    for (Block*& b : buffers_) {
        if (b != nullptr && pool_ != nullptr) pool_->give(b);
        b = nullptr;
    }
    provided_ = 0;
    in_flight_ = 0;
    cancels_.clear();
    buf_registered_ = false;
    if (buf_ring_ != nullptr) munmap(buf_ring_, kBuffers * sizeof(io_uring_buf));
    buf_ring_ = nullptr;
    if (sqes_ != nullptr) munmap(sqes_, sqes_bytes_);
    sqes_ = nullptr;
    if (rings_ != nullptr) munmap(rings_, rings_bytes_);
    rings_ = nullptr;
    queued_ = 0;
}

// ---- provided buffers ----

void Ring::provide(uint16_t bid, Block* block) {
    // Not buf_ring_->bufs: in C++ the empty struct in front of that flexible array
    // takes a byte, which moves the array 8 bytes from where the kernel reads it. The
    // descriptors start at the ring's first byte (the tail overlays the first one's
    // reserved field).
    io_uring_buf& b = reinterpret_cast<io_uring_buf*>(buf_ring_)[buf_tail_ & (count_ - 1)];
    b.addr = reinterpret_cast<uintptr_t>(block->data() + buffer_offset_);
    b.len = buffer_len_;
    b.bid = bid;
    ++buf_tail_;
    // The kernel reads the descriptor once it sees the tail move past it.
    __atomic_store_n(&buf_ring_->tail, buf_tail_, __ATOMIC_RELEASE);
    buffers_[bid] = block;
    ++provided_;
}

void Ring::refill() {
    for (uint16_t bid = 0; bid < count_ && provided_ < count_; ++bid) {
        if (buffers_[bid] != nullptr) continue;
        Block* block = pool_->take();
        if (block == nullptr) return;  // the pool's limit: reads wait for blocks back
        provide(bid, block);
    }
}

Block* Ring::take_buffer(uint16_t bid) {
    if (bid >= count_ || buffers_[bid] == nullptr) return nullptr;
    Block* block = buffers_[bid];
    buffers_[bid] = nullptr;
    --provided_;
    if (Block* fresh = pool_->take(); fresh != nullptr) provide(bid, fresh);
    return block;
}

// ---- operations ----

void Ring::submit() {
    if (queued_ == 0) return;
    int rc = enter(queued_, 0, 0, nullptr, 0);
    if (rc > 0) queued_ -= std::min<unsigned>(queued_, static_cast<unsigned>(rc));
}

io_uring_sqe* Ring::next_sqe() {
    if (fd_ < 0) return nullptr;
    if (*sq_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) {
        submit();  // full: what is queued goes in now
        if (*sq_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) >= sq_entries_) return nullptr;
    }
    const unsigned tail = *sq_tail_;
    const unsigned i = tail & sq_mask_;
    io_uring_sqe* sqe = &sqes_[i];
    std::memset(sqe, 0, sizeof(*sqe));
    sq_array_[i] = i;
    __atomic_store_n(sq_tail_, tail + 1, __ATOMIC_RELEASE);
    ++queued_;
    return sqe;
}

bool Ring::recv(int fd, const void* owner, bool poll_first) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->len = buffer_len_;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    if (poll_first) sqe->ioprio = IORING_RECVSEND_POLL_FIRST;
    sqe->user_data = reinterpret_cast<uintptr_t>(owner) | kRecv;
    ++in_flight_;
    return true;
}

bool Ring::sendmsg(int fd, const msghdr* msg, const void* owner) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_SENDMSG;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<uintptr_t>(msg);
    sqe->len = 1;
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = reinterpret_cast<uintptr_t>(owner) | kSend;
    ++in_flight_;
    return true;
}

void Ring::cancel(uint64_t user_data) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) {
        cancels_.push_back(user_data);
        return;
    }
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = user_data;
    // Its own completion says nothing anyone waits for.
    sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
    sqe->user_data = 0;
}

bool Ring::poll(int fd) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return false;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->poll32_events = POLLIN;
    sqe->user_data = kPoll;
    return true;
}

void Ring::forget_queued(int fd) {
    if (fd_ < 0) return;
    const unsigned head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
    for (unsigned i = head; i != *sq_tail_; ++i) {
        io_uring_sqe& sqe = sqes_[sq_array_[i & sq_mask_]];
        if (sqe.fd != fd || (sqe.opcode != IORING_OP_RECV && sqe.opcode != IORING_OP_SENDMSG))
            continue;
        const uint64_t user_data = sqe.user_data;
        std::memset(&sqe, 0, sizeof(sqe));
        sqe.opcode = IORING_OP_NOP;
        sqe.fd = -1;
        sqe.user_data = user_data;
    }
}

int Ring::wait(int timeout_ms) {
    // Cancels that found no room go in first (each one that still finds none comes
    // back to the list).
    if (!cancels_.empty()) {
        std::vector<uint64_t> pending;
        pending.swap(cancels_);
        for (uint64_t user_data : pending)
            cancel(user_data);
    }
    const bool ready = *cq_head_ != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
    if (provided_ < count_) refill();
    unsigned min_complete = 0;
    io_uring_getevents_arg arg{};
    __kernel_timespec ts{};
    // DEFER_TASKRUN: completions are made in this call only when it gets events.
    unsigned flags = IORING_ENTER_GETEVENTS;
    if (!ready && timeout_ms != 0) {
        min_complete = 1;
        if (timeout_ms > 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000;
            arg.ts = reinterpret_cast<uintptr_t>(&ts);
            flags |= IORING_ENTER_EXT_ARG;
        }
    }
    const void* argp = (flags & IORING_ENTER_EXT_ARG) != 0 ? &arg : nullptr;
    int rc = enter(queued_, min_complete, flags, argp, argp != nullptr ? sizeof(arg) : 0);
    // A refusal (EAGAIN, EBUSY) or an interrupted or timed-out wait leaves what was not
    // taken queued for the next call.
    if (rc > 0) queued_ -= std::min<unsigned>(queued_, static_cast<unsigned>(rc));
    return rc;
}

void Ring::dispatch() {
    // Completions are consumed as they are read, so that a handler queueing new work
    // (and submitting it when the submission queue is full) never meets a full
    // completion queue of its own making.
    unsigned head = *cq_head_;
    while (head != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) {
        const io_uring_cqe cqe = cqes_[head & cq_mask_];
        ++head;
        __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
        if (cqe.user_data == 0) continue;
        const uint64_t tag = cqe.user_data & kTagMask;
        // A cancel still waiting for room is moot once its target completed: its
        // address may be reused by the next operation, which it must not cancel.
        if (!cancels_.empty()) std::erase(cancels_, cqe.user_data);
        if ((tag == kRecv || tag == kSend) && in_flight_ > 0) --in_flight_;
        on_completion_(cqe.user_data, cqe.res, cqe.flags);
    }
}

}  // namespace sb::uv
