// Ring: a worker's io_uring, through which relayed connections read and write.
//
// Why: on this project's machines a system call costs about a microsecond before it
// does anything (docs/benchmarks.md, "When the load's core is the bottleneck"), and a
// relay through libuv makes one per read, one per write and one per wakeup. Through
// the ring, every read and write a worker has to start goes in with one
// io_uring_enter, which also waits for the next completions: one system call per
// wakeup, however many connections it serves.
//
// What stays in libuv: listeners, connects, handshakes, timers, DNS, signals, every
// TLS connection OpenSSL keeps. The worker waits in the ring, with libuv's own epoll
// descriptor watched by a poll operation: when it is ready (or a timer is due) the
// worker runs libuv once without waiting (Worker::run_on_ring).
//
// Reads take their buffer from a ring of provided buffers (read blocks from the
// worker's BlockPool) only when data arrives, so a connection waiting to read holds
// no buffer, as with libuv. Writes hand the kernel iovecs that stay valid until their
// completion (session/endpoint.cpp, SendOp).
//
// One Ring per worker, created and used on the worker's thread only (SINGLE_ISSUER,
// DEFER_TASKRUN: completions are made only inside this thread's io_uring_enter).
// The raw system calls: liburing is not among the project's dependencies.
#pragma once

#include <linux/io_uring.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "uv/block_pool.h"

namespace sb::uv {

class Ring {
  public:
    // The low bits of an operation's user_data say what completed; the rest is the
    // owner's address (8-byte aligned).
    enum Tag : uint64_t { kPoll = 1, kRecv = 2, kSend = 3, kTagMask = 7 };
    // Read buffers provided to the kernel at any time. A completion takes one and it is
    // replaced at once from the pool; more completions than this in one wakeup get
    // ENOBUFS and their reads are started again (Endpoint::on_ring_recv).
    static constexpr unsigned kBuffers = 64;
    // Completion queue entries. Each side on the ring has at most four completions
    // coming (its read, its write, and two cancels that may find them done), so at
    // most kMaxSides sides use the ring and the queue never overflows; further sides
    // stay on libuv (Endpoint::use_ring).
    static constexpr unsigned kCqEntries = 16384;
    static constexpr unsigned kMaxSides = kCqEntries / 4 - 16;
    // Tests only (the hidden --debug-ring-sides=N, 1 to kMaxSides): at most N sides use
    // the ring, so that a few sessions reach the limit. Set before the workers start.
    static inline unsigned max_sides_for_test = 0;
    static unsigned max_sides() { return max_sides_for_test != 0 ? max_sides_for_test : kMaxSides; }
    // Lazy sends whose completions (and blocks) a wait may hold through a sleep; with
    // more, it does not sleep.
    static constexpr size_t kHeldSends = 64;
    // Tests only (the hidden --debug-ring-buffers=N, a power of two up to kBuffers):
    // provide N buffers, so that a few reads at once run out of them. Set before the
    // workers start.
    static inline unsigned buffers_for_test = 0;

    using Completion = void (*)(uint64_t user_data, int32_t res, uint32_t flags);
    // Whether someone waits for the completion of the lazy send `user_data` (see
    // sendmsg): then the next wait() does not sleep until it is given.
    using Awaited = bool (*)(uint64_t user_data);
    // Coalescing. While a worker is busy, a wait that could sleep sleeps until
    // kCoalesceBatch completions are there, or until coalesce_us() have passed and at
    // least one is (the kernel's min_wait_usec: IORING_FEAT_MIN_TIMEOUT, Linux 6.12), as
    // a network card moderates its interrupts: a wakeup then serves several connections,
    // where each completion would otherwise wake the worker (and cost the core it comes
    // from an interrupt to wake it). A completion waits about coalesce_us() longer at
    // most, and only while all three hold (counting receives and sends, the relay's
    // completions):
    //   - the last wakeup brought two of them or more (events were already coming
    //     faster than the worker slept; one connection's echo chain, which a hold only
    //     slows, brings one at a time);
    //   - none of its reads filled its block (more is waiting on that socket, and a
    //     hold would only delay reading it: bulk transfers are not held);
    //   - they come, over the last millisecond or more, at least once per
    //     coalesce_us() (so a hold is likely to gather another).
    // docs/benchmarks.md, "Coalescing wakeups", has the measurements.
    static constexpr unsigned kCoalesceUs = 20;
    static constexpr unsigned kCoalesceBatch = 64;
    // Tests and benchmarks only (the hidden --debug-ring-coalesce-us=N, 0 to 100,000):
    // N microseconds instead of kCoalesceUs; 0 turns coalescing off. Set before the
    // workers start.
    static inline int coalesce_us_for_test = -1;
    static unsigned coalesce_us() {
        return coalesce_us_for_test >= 0 ? static_cast<unsigned>(coalesce_us_for_test)
                                         : kCoalesceUs;
    }
    // Tests and benchmarks only (the hidden --debug-ring-prompt-sends): every send
    // completes as a completion of its own, as before lazy sends. Set before the
    // workers start.
    static inline bool prompt_sends_for_test = false;

    Ring() = default;
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    // Sets the ring up on the calling thread, with read buffers from `pool` whose data
    // start `offset` bytes into a block and span `len` bytes. Returns 0, or why the
    // kernel refused (a negative errno; the ring stays closed): no io_uring (ENOSYS),
    // not allowed (EPERM: seccomp, kernel.io_uring_disabled), too old for what the ring
    // needs (EINVAL: DEFER_TASKRUN is 6.1, provided buffer rings 5.19).
    int open(BlockPool& pool, uint32_t offset, uint32_t len, Completion on_completion,
             Awaited awaited = nullptr);
    bool is_open() const { return fd_ >= 0; }
    // Gives the provided buffers back to the pool and closes the ring. Every operation
    // must have completed (the worker waits for them).
    void close();

    // ---- operations (submitted with the next wait) ----
    // Each returns false, queueing nothing, if the submission queue is full and the
    // kernel takes none of it (it refuses io_uring_enter: out of memory, say).

    // A receive into a provided buffer; completes with `owner` | kRecv. The kernel
    // picks the buffer as it issues the receive, even on a socket with nothing to
    // read; `poll_first` makes it wait for data first (a receive that met an empty
    // ring goes in again so).
    bool recv(int fd, const void* owner, bool poll_first = false);
    // A sendmsg of `msg`, valid until it completes with `owner` | kSend.
    //
    // `lazy` (honoured when lazy_sends()): the send either goes whole at once, as it is
    // submitted, or completes with what it could send (a short count, or -EAGAIN when
    // the socket had no room), as its own completion. A whole send makes no completion
    // in the kernel (MSG_DONTWAIT | MSG_WAITALL, IOSQE_CQE_SKIP_SUCCESS): the ring
    // gives it, with the full length, after the wait that submitted it. So a wakeup
    // that writes what its reads brought makes one io_uring_enter, which submits the
    // writes and sleeps until the next reads, instead of two (the first returning at
    // once with the writes' completions). While nobody waits for it (Awaited says
    // no), such a completion waits for the next wakeup.
    bool sendmsg(int fd, const msghdr* msg, const void* owner, bool lazy = false);
    // Whether the kernel can hold a wait for more completions (min_wait_usec) and
    // coalesce_us() is not 0.
    bool can_coalesce() const { return min_timeout_ok_ && coalesce_us() != 0; }
    // Whether the next wait that sleeps would be held (see kCoalesceUs).
    bool coalescing() const { return can_coalesce() && last_batch_ >= 2 && !full_read_ && busy_; }
    // Whether lazy sends are on: the kernel passed open()'s check of their rules, and
    // prompt_sends_for_test is off.
    bool lazy_sends() const { return lazy_ok_; }
    // Asks the kernel to cancel the operation whose user_data is `user_data`. Its
    // completion (-ECANCELED, or its result if it was done first) still comes. Never
    // refused: with the submission queue full, the cancel waits in a list of its own
    // and goes in with the next wait().
    void cancel(uint64_t user_data);
    // One readiness poll of `fd` (POLLIN); completes with kPoll.
    bool poll(int fd);

    // The read block of provided buffer `bid` (a kRecv completion's
    // flags >> IORING_CQE_BUFFER_SHIFT); its place is refilled from the pool.
    Block* take_buffer(uint16_t bid);
    // Provided buffers the kernel can use now.
    unsigned buffers() const { return provided_; }
    // Receives and sends submitted (or queued) whose completion has not come yet.
    size_t in_flight() const { return in_flight_; }

    // Hands what was queued to the kernel now, without waiting: an operation names its
    // descriptor by number, looked up when it is submitted, so whatever was queued for a
    // socket must go in before the socket is closed.
    void submit();
    // Turns every receive or send still queued (not yet taken by the kernel) for `fd`
    // into a no-op that completes with its user_data and result 0: when submit() could
    // not hand them in, the descriptor's number must not reach the kernel after the
    // socket is closed (a new connection may get the number).
    void forget_queued(int fd);

    // Submits what was queued and waits until at least one completion is there, or
    // `timeout_ms` passed (-1: no limit; 0: no wait). Returns io_uring_enter's result:
    // -ETIME, -EINTR, -EAGAIN and -EBUSY are the usual ones; -EBADR says the kernel
    // dropped a completion it had no memory for.
    int wait(int timeout_ms);
    // Calls on_completion for each lazy send the kernel took whole, then for each
    // completion there (the caller updates its clock between wait() and this: handlers
    // stamp activity and arm deadlines).
    void dispatch();
    void run_once(int timeout_ms) {
        wait(timeout_ms);
        dispatch();
    }
    // Sides on the ring now (Endpoint::use_ring counts them).
    unsigned sides = 0;

  private:
    io_uring_sqe* next_sqe();
    int enter(unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg,
              size_t arg_size);
    bool check_lazy_sends();
    bool taken(unsigned position) const {
        return static_cast<int>(position - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE)) < 0;
    }
    bool lazy_due() const;
    void complete_lazy();
    void forget_lazy(uint64_t user_data);
    void provide(uint16_t bid, Block* block);
    void refill();

    int fd_ = -1;
    Completion on_completion_ = nullptr;
    void* rings_ = nullptr;
    size_t rings_bytes_ = 0;
    io_uring_sqe* sqes_ = nullptr;
    size_t sqes_bytes_ = 0;
    unsigned* sq_head_ = nullptr;
    unsigned* sq_tail_ = nullptr;
    unsigned sq_mask_ = 0;
    unsigned sq_entries_ = 0;
    unsigned* sq_array_ = nullptr;
    unsigned* cq_head_ = nullptr;
    unsigned* cq_tail_ = nullptr;
    unsigned cq_mask_ = 0;
    io_uring_cqe* cqes_ = nullptr;
    unsigned* cq_overflow_ = nullptr;  // completions the kernel dropped, counted
    unsigned dropped_seen_ = 0;
    unsigned queued_ = 0;  // SQEs written since the last enter
    size_t in_flight_ = 0;
    std::vector<uint64_t> cancels_;  // cancels the submission queue had no room for
    unsigned* sq_flags_ = nullptr;
    // Lazy sends submitted or queued whose completion has not been given, in
    // submission order: `position` is the submission queue tail that took it;
    // user_data 0 once it posted a completion of its own.
    struct Lazy {
        uint64_t user_data;
        unsigned position;
        int32_t len;
    };
    std::vector<Lazy> lazy_;
    std::vector<Lazy> lazy_done_;   // complete_lazy()'s, kept for its capacity
    std::vector<uint64_t> posted_;  // dispatch()'s, kept for its capacity
    bool lazy_ok_ = false;
    Awaited awaited_ = nullptr;
    // Coalescing: whether the kernel offers min_wait_usec; receives and sends the last
    // dispatch() gave; those given since rate_start_ns_, and whether they came at
    // least once per coalesce_us() in the last period measured.
    bool min_timeout_ok_ = false;
    unsigned last_batch_ = 0;
    bool full_read_ = false;  // the last dispatch() gave a read that filled its block
    uint64_t rate_count_ = 0;
    uint64_t rate_start_ns_ = 0;
    bool busy_ = false;
    void measure_rate();

    BlockPool* pool_ = nullptr;
    uint32_t buffer_offset_ = 0;
    uint32_t buffer_len_ = 0;
    io_uring_buf_ring* buf_ring_ = nullptr;
    uint16_t buf_tail_ = 0;
    unsigned provided_ = 0;
    unsigned count_ = kBuffers;  // buffers provided when all are in place
    bool buf_registered_ = false;
    Block* buffers_[kBuffers] = {};  // by buffer id; null while its place is empty
};

}  // namespace sb::uv
