#include "uv/ring.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
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
// Linux 6.12's IORING_FEAT_MIN_TIMEOUT: io_uring_getevents_arg's `pad` (Debian 12's
// header) is `min_wait_usec`.
constexpr uint32_t kFeatMinTimeout = 1U << 15;
// The shortest period over which the completion rate is measured.
constexpr uint64_t kRatePeriodNs = 1000000;

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

Ring::~Ring() {
    close();
}

int Ring::enter(unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg,
                size_t arg_size) {
    long rc = syscall(__NR_io_uring_enter, fd_, to_submit, min_complete, flags, arg, arg_size);
    return rc < 0 ? -errno : static_cast<int>(rc);
}

int Ring::open(BlockPool& pool, uint32_t offset, uint32_t len, Completion on_completion,
               Awaited awaited) {
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
    min_timeout_ok_ = (p.features & kFeatMinTimeout) != 0;
    last_batch_ = 0;
    rate_count_ = 0;
    rate_start_ns_ = monotonic_ns();
    busy_ = false;
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
    sq_flags_ = reinterpret_cast<unsigned*>(base + p.sq_off.flags);
    cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
    cq_overflow_ = reinterpret_cast<unsigned*>(base + p.cq_off.overflow);
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
    awaited_ = awaited;
    lazy_ok_ = !prompt_sends_for_test && check_lazy_sends();
    return 0;
}

namespace {

void prepare_send(io_uring_sqe* sqe, int fd, const msghdr* msg, uint64_t user_data, bool lazy) {
    sqe->opcode = IORING_OP_SENDMSG;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<uintptr_t>(msg);
    sqe->len = 1;
    sqe->msg_flags = MSG_NOSIGNAL;
    if (lazy) {
        // Never waits for room (MSG_DONTWAIT: a send that finds none fails at once with
        // -EAGAIN, or with the count it sent), and only a whole send is a success
        // (MSG_WAITALL), whose completion is not posted.
        sqe->msg_flags |= MSG_DONTWAIT | MSG_WAITALL;
        sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
    }
    sqe->user_data = user_data;
}

}  // namespace

bool Ring::check_lazy_sends() {
    // Lazy sends rely on three rules of the kernel's: a send that fits posts no
    // completion; one that fits in part posts its count; one that finds no room posts
    // -EAGAIN. Each is tried in turn, on a pair of local sockets with the smallest send
    // buffer; a kernel that keeps them otherwise gets ordinary sends.
    //
    // The probe's sends have user_data 0, which dispatch() passes over and which counts
    // in nothing, and their bytes are static: a send that a rule-breaking kernel keeps
    // waiting completes (with EPIPE, the pair being closed) after this returns.
    static char bytes[size_t{1} << 16];
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return false;
    const int small = 1;
    setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    // The completions one lazy send of `n` bytes posts: how many (-1: not submitted),
    // and the last one's result.
    auto try_send = [&](size_t n, int32_t& res) {
        iovec v{bytes, n};
        msghdr msg{};  // the kernel copies it as it takes the send
        msg.msg_iov = &v;
        msg.msg_iovlen = 1;
        io_uring_sqe* sqe = next_sqe();
        if (sqe == nullptr) return -1;
        prepare_send(sqe, pair[0], &msg, 0, true);
        if (enter(queued_, 0, IORING_ENTER_GETEVENTS, nullptr, 0) != 1) return -1;
        queued_ = 0;
        int count = 0;
        while (*cq_head_ != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) {
            res = cqes_[*cq_head_ & cq_mask_].res;
            ++count;
            __atomic_store_n(cq_head_, *cq_head_ + 1, __ATOMIC_RELEASE);
        }
        return count;
    };
    int32_t res = 0;
    char in[64];
    bool kept = try_send(sizeof(in), res) == 0 && ::recv(pair[1], in, sizeof(in), 0) == 64;
    kept = kept && try_send(sizeof(bytes), res) == 1 && res > 0 && res < int32_t(sizeof(bytes));
    kept = kept && try_send(sizeof(in), res) == 1 && res == -EAGAIN;
    // A send the kernel would not take must not go in later, under a number that may
    // name another socket by then.
    forget_queued(pair[0]);
    ::close(pair[0]);
    ::close(pair[1]);
    return kept;
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
    min_timeout_ok_ = false;
    cancels_.clear();
    lazy_.clear();
    lazy_ok_ = false;
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

bool Ring::sendmsg(int fd, const msghdr* msg, const void* owner, bool lazy) {
    size_t len = 0;
    if (lazy && lazy_ok_) {
        for (size_t i = 0; i < msg->msg_iovlen; ++i)
            len += msg->msg_iov[i].iov_len;
    }
    // Its length is its result: one that a completion's result cannot say goes prompt.
    lazy = lazy && lazy_ok_ && len > 0 && len <= INT32_MAX;
    io_uring_sqe* sqe = next_sqe();
    if (sqe == nullptr) return false;
    const uint64_t user_data = reinterpret_cast<uintptr_t>(owner) | kSend;
    prepare_send(sqe, fd, msg, user_data, lazy);
    if (lazy) lazy_.push_back(Lazy{user_data, *sq_tail_ - 1, static_cast<int32_t>(len)});
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

void Ring::measure_rate() {
    if (!can_coalesce()) return;
    const uint64_t now = monotonic_ns();
    const uint64_t elapsed = now - rate_start_ns_;
    if (elapsed < kRatePeriodNs) return;
    busy_ = rate_count_ * coalesce_us() * 1000 >= elapsed;
    rate_count_ = 0;
    rate_start_ns_ = now;
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
    const bool ready = *cq_head_ != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE) || lazy_due();
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
        if (coalescing()) {
            // The hold never outlasts the caller's timeout (a due timer). Without one,
            // a timeout is still needed: the kernel ends a hold that has none with no
            // completions, rather than wait on for the first.
            const uint64_t limit_us = timeout_ms > 0 ? uint64_t(timeout_ms) * 1000 : UINT64_MAX;
            min_complete = kCoalesceBatch;
            arg.pad = static_cast<uint32_t>(std::min<uint64_t>(coalesce_us(), limit_us));
            if (timeout_ms < 0) {
                ts.tv_sec = 3600;
                arg.ts = reinterpret_cast<uintptr_t>(&ts);
            }
            flags |= IORING_ENTER_EXT_ARG;
        }
    }
    const void* argp = (flags & IORING_ENTER_EXT_ARG) != 0 ? &arg : nullptr;
    int rc = enter(queued_, min_complete, flags, argp, argp != nullptr ? sizeof(arg) : 0);
    // A refusal (EAGAIN, EBUSY) or an interrupted or timed-out wait leaves what was not
    // taken queued for the next call.
    if (rc > 0) queued_ -= std::min<unsigned>(queued_, static_cast<unsigned>(rc));
    // A completion the kernel dropped may have been a lazy send's short count: from
    // here on every send posts its own (the worker logs the loss).
    if (rc == -EBADR) lazy_ok_ = false;
    return rc;
}

void Ring::dispatch() {
    // Lazy sends the kernel took are given first: a write that is done lets the next
    // one go straight in, rather than queue behind it and pause its source. Those that
    // posted a completion did not go whole; they are given with it, below.
    if (!lazy_.empty()) {
        posted_.clear();
        const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
        for (unsigned i = *cq_head_; i != tail; ++i) {
            const uint64_t user_data = cqes_[i & cq_mask_].user_data;
            if ((user_data & kTagMask) == kSend) posted_.push_back(user_data);
        }
        if (!posted_.empty()) {
            std::sort(posted_.begin(), posted_.end());
            for (Lazy& l : lazy_) {
                if (!taken(l.position)) break;
                if (std::binary_search(posted_.begin(), posted_.end(), l.user_data))
                    l.user_data = 0;
            }
        }
        complete_lazy();
    }
    // Completions are consumed as they are read, so that a handler queueing new work
    // (and submitting it when the submission queue is full) never meets a full
    // completion queue of its own making.
    unsigned head = *cq_head_;
    unsigned batch = 0;
    bool full = false;
    while (head != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) {
        const io_uring_cqe cqe = cqes_[head & cq_mask_];
        ++head;
        __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
        if (cqe.user_data == 0) continue;
        const uint64_t tag = cqe.user_data & kTagMask;
        // A cancel still waiting for room is moot once its target completed: its
        // address may be reused by the next operation, which it must not cancel.
        if (!cancels_.empty()) std::erase(cancels_, cqe.user_data);
        if (tag == kRecv || tag == kSend) {
            ++batch;
            if (in_flight_ > 0) --in_flight_;
            if (tag == kRecv && cqe.res > 0 && uint32_t(cqe.res) >= buffer_len_) full = true;
        }
        // A lazy send that posts a completion did not go whole: it is given as posted.
        // (Those taken before this dispatch were looked for above; a handler's
        // submit() may have taken more since.)
        if (tag == kSend && !lazy_.empty() && taken(lazy_.front().position))
            forget_lazy(cqe.user_data);
        on_completion_(cqe.user_data, cqe.res, cqe.flags);
    }
    last_batch_ = batch;
    full_read_ = full;
    rate_count_ += batch;
    measure_rate();
    // And those taken by handlers' submit() calls meanwhile.
    complete_lazy();
}

void Ring::forget_lazy(uint64_t user_data) {
    for (Lazy& l : lazy_) {
        if (!taken(l.position)) return;
        if (l.user_data == user_data) {
            l.user_data = 0;  // given with its completion; complete_lazy() drops it
            return;
        }
    }
}

bool Ring::lazy_due() const {
    if (lazy_.empty()) return false;
    // Taken by a submit() since the last wait: done, to be given now.
    if (taken(lazy_.front().position)) return true;
    // The blocks of so many writes are not held through a sleep.
    if (awaited_ == nullptr || lazy_.size() > kHeldSends) return true;
    for (const Lazy& l : lazy_) {
        if (l.user_data != 0 && awaited_(l.user_data)) return true;
    }
    return false;
}

void Ring::complete_lazy() {
    if (lazy_.empty()) return;
    // A completion the kernel holds back (the queue was full) may be a lazy send's
    // failure: none is given as whole until the kernel has posted what it holds (the
    // next wait does not sleep: lazy_due()).
    if ((__atomic_load_n(sq_flags_, __ATOMIC_ACQUIRE) & IORING_SQ_CQ_OVERFLOW) != 0) return;
    // The kernel takes submissions in order: the ones taken are a prefix, and each
    // went whole (a failure would have posted its completion, handled above).
    size_t n = 0;
    while (n < lazy_.size() && taken(lazy_[n].position))
        ++n;
    if (n == 0) return;
    // The kernel counts the completions it dropped (no memory to keep them). One of
    // them may have been a short count of a send given here: rather than relay a
    // stream with a hole in it, each of these ends in an error, and sends stop being
    // lazy.
    const unsigned dropped = __atomic_load_n(cq_overflow_, __ATOMIC_ACQUIRE);
    const bool trusted = dropped == dropped_seen_;
    if (!trusted) {
        dropped_seen_ = dropped;
        lazy_ok_ = false;
    }
    // Handlers queue sends of their own (into lazy_) while these are given.
    lazy_done_.assign(lazy_.begin(), lazy_.begin() + static_cast<ptrdiff_t>(n));
    lazy_.erase(lazy_.begin(), lazy_.begin() + static_cast<ptrdiff_t>(n));
    for (const Lazy& l : lazy_done_) {
        if (l.user_data == 0) continue;  // it posted a completion: given with it
        if (!cancels_.empty()) std::erase(cancels_, l.user_data);
        if (in_flight_ > 0) --in_flight_;
        on_completion_(l.user_data, trusted ? l.len : -EIO, 0);
    }
    lazy_done_.clear();
}

}  // namespace sb::uv
