// uv::Ring: reads land in the provided blocks at the offset asked for, a read started
// before its data waits for it, reads beyond the provided buffers fail with ENOBUFS
// (and the buffers come back), cancels and polls complete, a wait ends at its
// timeout, and lazy sends keep the kernel's rules they rely on (a whole send posts
// nothing and is given after its wait, without ending it; a short one posts its count,
// one without room -EAGAIN; an awaited one ends the wait). Skipped where the kernel offers no
// io_uring (the relay then uses libuv, which the integration suites' .libuv runs cover wherever the
// tests run).
#include "uv/ring.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace sb::uv {
namespace {

using milliseconds_t = std::chrono::milliseconds;

struct Seen {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};
std::vector<Seen> seen;

void record(uint64_t user_data, int32_t res, uint32_t flags) {
    seen.push_back({user_data, res, flags});
}

// What the ring's Awaited asks about lazy sends (Endpoint::send_awaited in the proxy).
bool awaited_answer = true;
bool awaited(uint64_t) {
    return awaited_answer;
}

constexpr uint32_t kOffset = 32;
constexpr uint32_t kLen = 1000;

class RingTest : public ::testing::Test {
  protected:
    void SetUp() override {
        seen.clear();
        awaited_answer = true;
        int rc = ring.open(pool, kOffset, kLen, &record, &awaited);
        if (rc != 0) GTEST_SKIP() << "no io_uring here: " << std::strerror(-rc);
    }
    void TearDown() override {
        ring.close();
        for (int fd : fds)
            ::close(fd);
        // Every block the ring provided went back to the pool.
        EXPECT_EQ(pool.in_use(), 0u);
    }
    std::pair<int, int> pair() {
        int sv[2];
        EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        fds.push_back(sv[0]);
        fds.push_back(sv[1]);
        return {sv[0], sv[1]};
    }
    // Runs the ring until `n` completions were seen (at most 50 waits of 100 ms).
    void run_until(size_t n) {
        for (int i = 0; i < 50 && seen.size() < n; ++i)
            ring.run_once(100);
        ASSERT_EQ(seen.size(), n);
    }
    // A read on a socket nobody writes to: something a wait could sleep on forever.
    void start_quiet_read(const void* owner) { ring.recv(pair().first, owner); }
    // Cancels it, and runs the ring until it and everything before it are seen (`n`).
    void end_quiet_read(const void* owner, size_t n) {
        ring.cancel(reinterpret_cast<uintptr_t>(owner) | Ring::kRecv);
        run_until(n);
    }
    // One wait of up to 2 s, and what it took.
    std::chrono::milliseconds timed_run_once() {
        auto start = std::chrono::steady_clock::now();
        ring.run_once(2000);
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
    }

    BlockPool pool;
    Ring ring;
    std::vector<int> fds;
    alignas(8) char owners[Ring::kBuffers + 2][8] = {};
};

uint64_t tagged(const void* owner, Ring::Tag tag) {
    return reinterpret_cast<uintptr_t>(owner) | tag;
}

TEST_F(RingTest, AReadLandsInAProvidedBlockAtTheOffset) {
    auto [a, b] = pair();
    ASSERT_EQ(write(b, "hello", 5), 5);
    ring.recv(a, owners[0]);
    run_until(1);
    EXPECT_EQ(seen[0].user_data, tagged(owners[0], Ring::kRecv));
    ASSERT_EQ(seen[0].res, 5);
    ASSERT_NE(seen[0].flags & IORING_CQE_F_BUFFER, 0u);
    EXPECT_EQ(ring.in_flight(), 0u);
    Block* block =
        ring.take_buffer(static_cast<uint16_t>(seen[0].flags >> IORING_CQE_BUFFER_SHIFT));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(std::string(block->data() + kOffset, 5), "hello");
    // Its place was refilled at once.
    EXPECT_EQ(ring.buffers(), Ring::kBuffers);
    pool.give(block);
}

TEST_F(RingTest, AReadStartedBeforeItsDataWaitsForIt) {
    auto [a, b] = pair();
    ring.recv(a, owners[0]);
    ring.run_once(0);
    EXPECT_TRUE(seen.empty());
    EXPECT_EQ(ring.in_flight(), 1u);
    ASSERT_EQ(write(b, "later", 5), 5);
    run_until(1);
    ASSERT_EQ(seen[0].res, 5);
    Block* block =
        ring.take_buffer(static_cast<uint16_t>(seen[0].flags >> IORING_CQE_BUFFER_SHIFT));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(std::string(block->data() + kOffset, 5), "later");
    pool.give(block);
}

TEST_F(RingTest, ReadsBeyondTheProvidedBuffersFailWithEnobufs) {
    // Completions whose blocks are not taken leave their places empty: one read more
    // than there are buffers finds none.
    for (unsigned i = 0; i <= Ring::kBuffers; ++i) {
        auto [a, b] = pair();
        ASSERT_EQ(write(b, "x", 1), 1);
        ring.recv(a, owners[i]);
    }
    run_until(Ring::kBuffers + 1);
    unsigned enobufs = 0;
    for (const Seen& s : seen) {
        if (s.res == -ENOBUFS) {
            ++enobufs;
            EXPECT_EQ(s.flags & IORING_CQE_F_BUFFER, 0u);
        } else {
            EXPECT_EQ(s.res, 1);
        }
    }
    EXPECT_EQ(enobufs, 1u);
    // The blocks were never taken: close() gives them back (TearDown checks).
}

TEST_F(RingTest, ACancelledReadCompletesWithEcanceled) {
    auto [a, b] = pair();
    ring.recv(a, owners[0]);
    ring.run_once(0);
    ring.cancel(tagged(owners[0], Ring::kRecv));
    run_until(1);
    EXPECT_EQ(seen[0].res, -ECANCELED);
    EXPECT_EQ(ring.in_flight(), 0u);
}

TEST_F(RingTest, AReadQueuedForAClosingSocketBecomesANoOp) {
    // What Endpoint::close() does when the kernel would not take its queued read: the
    // descriptor's number must never reach the kernel once the socket is closed.
    auto [a, b] = pair();
    ASSERT_EQ(write(b, "mine", 4), 4);
    auto [c, d] = pair();
    ring.recv(a, owners[0]);
    ring.recv(c, owners[1]);
    ring.forget_queued(a);
    run_until(1);
    EXPECT_EQ(seen[0].user_data, tagged(owners[0], Ring::kRecv));
    EXPECT_EQ(seen[0].res, 0);
    EXPECT_EQ(seen[0].flags & IORING_CQE_F_BUFFER, 0u);
    EXPECT_EQ(ring.in_flight(), 1u);  // c's read still waits
    // The bytes are still in a's socket: the read never ran.
    char got[8] = {};
    ASSERT_EQ(read(a, got, sizeof(got)), 4);
    EXPECT_EQ(std::string(got, 4), "mine");
}

TEST_F(RingTest, AReadThatPollsFirstTakesNoBufferWhileItWaits) {
    // Every buffer is taken by reads that found data and whose blocks are kept; a read
    // on a quiet socket that polls first waits instead of failing with ENOBUFS.
    for (unsigned i = 0; i < Ring::kBuffers; ++i) {
        auto [a, b] = pair();
        ASSERT_EQ(write(b, "x", 1), 1);
        ring.recv(a, owners[i]);
    }
    auto [quiet, writer] = pair();
    ring.recv(quiet, owners[Ring::kBuffers], true);
    run_until(Ring::kBuffers);
    for (const Seen& s : seen)
        EXPECT_EQ(s.res, 1);
    EXPECT_EQ(ring.in_flight(), 1u);
    ASSERT_EQ(write(writer, "y", 1), 1);
    run_until(Ring::kBuffers + 1);
    // No buffer to take: the read that waited for data fails only now, with data there.
    EXPECT_EQ(seen.back().res, -ENOBUFS);
}

TEST_F(RingTest, ASendmsgWritesEveryIovec) {
    auto [a, b] = pair();
    char one[] = "one ";
    char two[] = "two";
    iovec iov[2] = {{one, 4}, {two, 3}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ring.sendmsg(a, &msg, owners[0]);
    run_until(1);
    EXPECT_EQ(seen[0].user_data, tagged(owners[0], Ring::kSend));
    EXPECT_EQ(seen[0].res, 7);
    char got[16] = {};
    ASSERT_EQ(read(b, got, sizeof(got)), 7);
    EXPECT_EQ(std::string(got, 7), "one two");
}

struct Message {
    explicit Message(std::string text) : bytes(std::move(text)) {
        iov = {bytes.data(), bytes.size()};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
    }
    std::string bytes;
    iovec iov{};
    msghdr msg{};
};

milliseconds_t elapsed_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<milliseconds_t>(std::chrono::steady_clock::now() - start);
}

TEST_F(RingTest, LazySendsAreOnWhereTheKernelKeepsTheirRules) {
    // open() tried the three rules on a pair of local sockets (Ring::check_lazy_sends).
    EXPECT_TRUE(ring.lazy_sends());
}

TEST_F(RingTest, AWholeLazySendDoesNotEndTheWaitAndIsGivenAfterIt) {
    ASSERT_TRUE(ring.lazy_sends());
    awaited_answer = false;
    auto [a, b] = pair();
    start_quiet_read(owners[1]);
    Message m("hello, lazy");
    ring.sendmsg(a, &m.msg, owners[0], true);
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(ring.wait(150), 2);  // both submitted; the send went, and posted nothing
    EXPECT_GE(elapsed_since(start), milliseconds_t(100));
    char got[32] = {};
    ASSERT_EQ(read(b, got, sizeof(got)), 11);
    EXPECT_EQ(std::string(got, 11), "hello, lazy");
    EXPECT_TRUE(seen.empty());
    EXPECT_EQ(ring.in_flight(), 2u);
    ring.dispatch();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].user_data, tagged(owners[0], Ring::kSend));
    EXPECT_EQ(seen[0].res, 11);
    EXPECT_EQ(ring.in_flight(), 1u);  // the quiet read
    end_quiet_read(owners[1], 2);
}

TEST_F(RingTest, AnAwaitedLazySendEndsTheWaitThatSubmitsIt) {
    awaited_answer = true;
    auto [a, b] = pair();
    start_quiet_read(owners[1]);
    Message m("now");
    ring.sendmsg(a, &m.msg, owners[0], true);
    EXPECT_LT(timed_run_once(), milliseconds_t(1000));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].res, 3);
    end_quiet_read(owners[1], 2);
}

TEST_F(RingTest, ALazySendTakenBySubmitIsGivenByTheNextWaitWithoutSleeping) {
    // What Endpoint::close() does: queued sends go in at once; the next wait must not
    // sleep on a send that is done.
    awaited_answer = false;
    auto [a, b] = pair();
    start_quiet_read(owners[1]);
    ring.run_once(0);
    Message m("bye");
    ring.sendmsg(a, &m.msg, owners[0], true);
    ring.submit();
    EXPECT_LT(timed_run_once(), milliseconds_t(1000));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].res, 3);
    end_quiet_read(owners[1], 2);
}

TEST_F(RingTest, AWaitDoesNotSleepHoldingTheBlocksOfManyLazySends) {
    awaited_answer = false;
    auto [a, b] = pair();
    start_quiet_read(owners[Ring::kHeldSends + 1]);
    Message m("x");
    for (size_t i = 0; i <= Ring::kHeldSends; ++i)
        ring.sendmsg(a, &m.msg, owners[i], true);
    EXPECT_LT(timed_run_once(), milliseconds_t(1000));
    EXPECT_EQ(seen.size(), Ring::kHeldSends + 1);
    end_quiet_read(owners[Ring::kHeldSends + 1], Ring::kHeldSends + 2);
}

TEST_F(RingTest, AShortLazySendPostsItsCountAndOneWithoutRoomPostsEagain) {
    auto [a, b] = pair();
    const int small = 1;
    ASSERT_EQ(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    Message big(std::string(size_t{1} << 18, 'x'));
    ring.sendmsg(a, &big.msg, owners[0], true);
    run_until(1);
    EXPECT_GT(seen[0].res, 0);
    EXPECT_LT(seen[0].res, 1 << 18);
    Message more("y");
    ring.sendmsg(a, &more.msg, owners[1], true);
    run_until(2);
    EXPECT_EQ(seen[1].user_data, tagged(owners[1], Ring::kSend));
    EXPECT_EQ(seen[1].res, -EAGAIN);
    EXPECT_EQ(ring.in_flight(), 0u);
    // A prompt send waits for room instead, and completes once the reader reads.
    ring.sendmsg(a, &more.msg, owners[1]);
    ring.run_once(0);
    EXPECT_EQ(seen.size(), 2u);
    std::vector<char> sink(size_t{1} << 18);
    ASSERT_GT(read(b, sink.data(), sink.size()), 0);
    run_until(3);
    EXPECT_EQ(seen[2].res, 1);
}

TEST_F(RingTest, ALazySendQueuedForAClosingSocketBecomesANoOpGivenOnce) {
    awaited_answer = false;
    auto [a, b] = pair();
    Message m("never");
    ring.sendmsg(a, &m.msg, owners[0], true);
    ring.forget_queued(a);
    run_until(1);
    EXPECT_EQ(seen[0].user_data, tagged(owners[0], Ring::kSend));
    EXPECT_EQ(seen[0].res, 0);
    ring.run_once(0);
    EXPECT_EQ(seen.size(), 1u);
    EXPECT_EQ(ring.in_flight(), 0u);
    char got[8];
    EXPECT_EQ(read(b, got, sizeof(got)), -1);  // nothing was sent
}

TEST_F(RingTest, APollCompletesWhenItsDescriptorIsReady) {
    int efd = eventfd(0, EFD_NONBLOCK);
    ASSERT_GE(efd, 0);
    fds.push_back(efd);
    ring.poll(efd);
    ring.run_once(0);
    EXPECT_TRUE(seen.empty());
    uint64_t one = 1;
    ASSERT_EQ(write(efd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    run_until(1);
    EXPECT_EQ(seen[0].user_data & Ring::kTagMask, Ring::kPoll);
}

TEST_F(RingTest, AWaitEndsAtItsTimeout) {
    auto start = std::chrono::steady_clock::now();
    ring.run_once(30);
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(seen.empty());
    EXPECT_GE(waited, std::chrono::milliseconds(25));
}

// Coalescing, with a hold of 200 ms so that a hold and its absence tell apart on a busy
// machine. Skipped where the kernel cannot hold a wait (before Linux 6.12).
class CoalescingRingTest : public RingTest {
  protected:
    static constexpr int kHoldMs = 200;
    void SetUp() override {
        Ring::coalesce_us_for_test = kHoldMs * 1000;
        RingTest::SetUp();
        if (!IsSkipped() && !ring.can_coalesce()) GTEST_SKIP() << "no min_wait_usec here";
    }
    void TearDown() override {
        RingTest::TearDown();
        Ring::coalesce_us_for_test = -1;
    }
    // One read of `text` on `pair`, ready before the wait that submits it.
    void ready_read(std::pair<int, int> p, const void* owner, const char* text = "x") {
        ASSERT_EQ(write(p.second, text, strlen(text)), ssize_t(strlen(text)));
        ring.recv(p.first, owner);
    }
    // Gives back the blocks of the reads seen from `from` on.
    void give_blocks(size_t from) {
        for (size_t i = from; i < seen.size(); ++i) {
            if ((seen[i].user_data & Ring::kTagMask) != Ring::kRecv || seen[i].res <= 0) continue;
            Block* b =
                ring.take_buffer(static_cast<uint16_t>(seen[i].flags >> IORING_CQE_BUFFER_SHIFT));
            if (b != nullptr) pool.give(b);
        }
    }
    // Two completions in one wakeup, `after` the rate's period began (at open).
    void batch_of_two(std::pair<int, int> p, std::pair<int, int> q, milliseconds_t after) {
        std::this_thread::sleep_for(after);
        ready_read(p, owners[0]);
        ready_read(q, owners[1]);
        ring.run_once(0);
        ASSERT_EQ(seen.size(), 2u);
        give_blocks(0);
    }
    // A read on `p` that is ready (with `text`, or with what is left there if null),
    // beside a quiet read, and a wait that is not held: it gives `res` at once.
    void expect_not_held(std::pair<int, int> p, const char* text, int32_t res) {
        const size_t before = seen.size();
        start_quiet_read(owners[3]);
        if (text != nullptr) {
            ready_read(p, owners[0], text);
        } else {
            ring.recv(p.first, owners[0]);
        }
        EXPECT_LT(timed_run_once(), milliseconds_t(kHoldMs / 2));
        ASSERT_EQ(seen.size(), before + 1);
        EXPECT_EQ(seen[before].res, res);
        give_blocks(before);
        end_quiet_read(owners[3], before + 2);
    }
};

TEST_F(CoalescingRingTest, AfterTwoCompletionsInOneWakeupAtABusyRateAWaitIsHeld) {
    auto p = pair(), q = pair();
    EXPECT_FALSE(ring.coalescing());
    batch_of_two(p, q, milliseconds_t(2));
    EXPECT_TRUE(ring.coalescing());
    start_quiet_read(owners[3]);
    ready_read(p, owners[0]);
    // The read completes as it is submitted; the wait holds it for more, up to the bound.
    const auto waited = timed_run_once();
    EXPECT_GE(waited, milliseconds_t(kHoldMs - 20));
    EXPECT_LT(waited, milliseconds_t(1500));
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[2].res, 1);
    give_blocks(2);
    end_quiet_read(owners[3], 4);
}

TEST_F(CoalescingRingTest, AfterALoneCompletionAWaitIsNotHeld) {
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(2));
    // A wakeup that brings one completion (a wait that does not sleep), at the same
    // busy rate.
    ready_read(p, owners[0]);
    ring.run_once(0);
    ASSERT_EQ(seen.size(), 3u);
    give_blocks(2);
    EXPECT_FALSE(ring.coalescing());
    expect_not_held(q, "x", 1);
}

TEST_F(CoalescingRingTest, AfterAReadThatFilledItsBlockAWaitIsNotHeld) {
    // More is waiting on that socket: a hold would only delay reading it.
    auto p = pair(), q = pair();
    std::this_thread::sleep_for(milliseconds_t(2));
    const std::string bulk(kLen + 100, 'b');
    ready_read(p, owners[0], bulk.c_str());
    ready_read(q, owners[1]);
    ring.run_once(0);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].res, int32_t(kLen));
    give_blocks(0);
    EXPECT_FALSE(ring.coalescing());
    expect_not_held(p, nullptr, 100);  // the 100 bytes left
}

TEST_F(CoalescingRingTest, AtALowRateAWaitIsNotHeld) {
    // Two completions in 500 ms: fewer than one per 200 ms hold.
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(500));
    EXPECT_FALSE(ring.coalescing());
    expect_not_held(p, "x", 1);
}

TEST_F(CoalescingRingTest, AHoldEndsWhenAFullBatchIsThere) {
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(2));
    ASSERT_TRUE(ring.coalescing());
    start_quiet_read(owners[3]);
    Message m("y");
    for (unsigned i = 0; i < Ring::kCoalesceBatch; ++i)
        ring.sendmsg(p.second, &m.msg, owners[4]);
    EXPECT_LT(timed_run_once(), milliseconds_t(kHoldMs / 2));
    EXPECT_EQ(seen.size(), 2u + Ring::kCoalesceBatch);
    end_quiet_read(owners[3], 3 + Ring::kCoalesceBatch);
}

TEST_F(CoalescingRingTest, AHoldNeverOutlastsTheWaitsTimeout) {
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(2));
    ASSERT_TRUE(ring.coalescing());
    start_quiet_read(owners[3]);
    auto start = std::chrono::steady_clock::now();
    ring.run_once(20);  // a timer due in 20 ms, and nothing comes
    EXPECT_LT(elapsed_since(start), milliseconds_t(kHoldMs / 2));
    EXPECT_EQ(seen.size(), 2u);
    end_quiet_read(owners[3], 3);
}

TEST_F(CoalescingRingTest, AHeldWaitWithoutATimeoutWaitsPastTheHoldForTheFirstCompletion) {
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(2));
    ASSERT_TRUE(ring.coalescing());
    ring.recv(p.first, owners[0]);
    std::thread late([fd = p.second] {
        std::this_thread::sleep_for(milliseconds_t(2 * kHoldMs));
        EXPECT_EQ(write(fd, "z", 1), 1);
    });
    // A kernel that held the wait for a full batch would keep it for an hour: fail
    // instead.
    std::atomic<bool> done{false};
    std::thread watchdog([&done] {
        for (int i = 0; i < 100 && !done; ++i)
            std::this_thread::sleep_for(milliseconds_t(100));
        if (!done) {
            std::fprintf(stderr, "a held wait without a timeout did not end in 10 s\n");
            std::_Exit(1);
        }
    });
    auto start = std::chrono::steady_clock::now();
    ring.run_once(-1);
    done = true;
    watchdog.join();
    late.join();
    EXPECT_GE(elapsed_since(start), milliseconds_t(2 * kHoldMs - 20));
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[2].res, 1);
    give_blocks(2);
}

TEST_F(CoalescingRingTest, ZeroTurnsCoalescingOff) {
    Ring::coalesce_us_for_test = 0;
    EXPECT_FALSE(ring.can_coalesce());
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(2));
    EXPECT_FALSE(ring.coalescing());
    expect_not_held(p, "x", 1);
}

TEST_F(CoalescingRingTest, ACompletionThatComesDuringAHoldWaitsForItsEnd) {
    auto p = pair(), q = pair();
    batch_of_two(p, q, milliseconds_t(2));
    ASSERT_TRUE(ring.coalescing());
    start_quiet_read(owners[3]);
    ring.recv(p.first, owners[0]);
    std::thread early([fd = p.second] {
        std::this_thread::sleep_for(milliseconds_t(kHoldMs / 4));
        EXPECT_EQ(write(fd, "w", 1), 1);
    });
    const auto waited = timed_run_once();
    early.join();
    EXPECT_GE(waited, milliseconds_t(kHoldMs - 20));
    EXPECT_LT(waited, milliseconds_t(1500));
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[2].res, 1);
    give_blocks(2);
    end_quiet_read(owners[3], 4);
}

}  // namespace
}  // namespace sb::uv
