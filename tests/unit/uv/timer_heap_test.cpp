// uv::TimerHeap on a real uv_loop_t (no sockets): deadlines fire in due order and
// never early, cancel and re-arm (earlier and later) work, a deadline's callback may
// arm, re-arm or cancel deadlines (itself included), a seeded stress run keeps the
// heap in order, and the loop closes cleanly: uv_loop_close() returns 0 after
// timers.close() and a final uv_run.
#include "uv/timer_heap.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sb::uv {
namespace {

class TimerHeapTest : public ::testing::Test {
  protected:
    // A deadline owner that logs its name (and the loop time) when it fires, then
    // runs `then`, so that a test can act from inside the callback.
    struct Probe {
        Probe(TimerHeapTest* owner, std::string probe_name)
            : test(owner), name(std::move(probe_name)) {
            deadline.probe = this;
        }
        // The heap finds a deadline's owner by its derived type.
        struct Slot : Deadline {
            Probe* probe = nullptr;
        };
        static void fire(Deadline& d) { on_fire(static_cast<Slot&>(d).probe); }

        static void on_fire(void* owner) {
            auto* p = static_cast<Probe*>(owner);
            p->fired_at.push_back(p->test->heap_->now());
            p->test->log_.push_back(p->name);
            if (p->then) p->then();
        }

        TimerHeapTest* test;
        std::string name;
        Slot deadline;
        std::vector<uint64_t> fired_at;
        std::function<void()> then;
    };

    void SetUp() override {
        ASSERT_EQ(uv_loop_init(&loop_), 0);
        heap_ = std::make_unique<TimerHeap>(&loop_, &Probe::fire);
        ASSERT_EQ(uv_timer_init(&loop_, &keepalive_), 0);
    }

    void TearDown() override {
        // Every Deadline must be cancelled or fired before its owner goes away.
        for (auto& p : probes_)
            heap_->cancel(p.deadline);
        EXPECT_EQ(heap_->size(), 0u);
        heap_->close();
        uv_close(reinterpret_cast<uv_handle_t*>(&keepalive_), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        EXPECT_EQ(uv_loop_close(&loop_), 0);
    }

    Probe& probe(std::string name) { return probes_.emplace_back(this, std::move(name)); }

    // The heap's own timer does not keep the loop alive, so a referenced timer does:
    // it polls `done` every millisecond and lets the loop end once it holds (or after
    // `limit_ms`, so that a broken heap fails the test instead of hanging it). Tests
    // wait for a later "sentinel" deadline to show that an earlier one did not fire.
    void run_until(std::function<bool()> done, uint64_t limit_ms = 5000) {
        done_ = std::move(done);
        give_up_at_ = uv_now(&loop_) + limit_ms;
        keepalive_.data = this;
        uv_timer_start(
            &keepalive_,
            [](uv_timer_t* t) {
                auto* self = static_cast<TimerHeapTest*>(t->data);
                if (self->done_() || uv_now(t->loop) >= self->give_up_at_) uv_timer_stop(t);
            },
            1, 1);
        uv_run(&loop_, UV_RUN_DEFAULT);
        EXPECT_TRUE(done_()) << "gave up after " << limit_ms << " ms";
    }
    void run_until_fired(size_t n) {
        run_until([this, n] { return log_.size() >= n; });
    }
    void run_until_fired(const Probe& p) {
        run_until([&p] { return !p.fired_at.empty(); });
    }

    uv_loop_t loop_{};
    uv_timer_t keepalive_{};
    std::unique_ptr<TimerHeap> heap_;
    std::deque<Probe> probes_;  // a deque: probes never move once made
    std::vector<std::string> log_;
    std::function<bool()> done_;
    uint64_t give_up_at_ = 0;
};

TEST_F(TimerHeapTest, ArmingRecordsTheDueTime) {
    auto& a = probe("a");
    EXPECT_FALSE(a.deadline.armed());
    uint64_t now = heap_->now();
    EXPECT_EQ(now, uv_now(&loop_));
    heap_->arm(a.deadline, 25);
    EXPECT_TRUE(a.deadline.armed());
    EXPECT_EQ(a.deadline.due(), now + 25);
    EXPECT_EQ(heap_->size(), 1u);
    heap_->arm_at(a.deadline, now + 3);
    EXPECT_EQ(a.deadline.due(), now + 3);
    EXPECT_EQ(heap_->size(), 1u);  // re-arming does not add a second entry
}

TEST_F(TimerHeapTest, FiresInDueOrder) {
    uint64_t now = heap_->now();
    for (auto [name, delay] : {std::pair{"d30", 30}, std::pair{"d10", 10}, std::pair{"d20", 20},
                               std::pair{"d0", 0}, std::pair{"d15", 15}, std::pair{"d5", 5}}) {
        heap_->arm_at(probe(name).deadline, now + static_cast<uint64_t>(delay));
    }
    EXPECT_EQ(heap_->size(), 6u);
    run_until_fired(6);
    EXPECT_EQ(log_, (std::vector<std::string>{"d0", "d5", "d10", "d15", "d20", "d30"}));
    EXPECT_EQ(heap_->size(), 0u);
    for (const auto& p : probes_)
        EXPECT_FALSE(p.deadline.armed()) << p.name;
}

TEST_F(TimerHeapTest, NeverFiresEarlyAndFiresOnce) {
    for (uint64_t delay : {1u, 4u, 9u, 16u})
        heap_->arm(probe("p").deadline, delay);
    auto& sentinel = probe("sentinel");
    heap_->arm(sentinel.deadline, 25);
    run_until_fired(sentinel);
    for (const auto& p : probes_) {
        ASSERT_EQ(p.fired_at.size(), 1u) << p.name;
        EXPECT_GE(p.fired_at[0], p.deadline.due()) << p.name;
    }
}

TEST_F(TimerHeapTest, DeadlineInThePastFiresOnTheNextRun) {
    auto& a = probe("a");
    uint64_t now = heap_->now();
    heap_->arm_at(a.deadline, now > 100 ? now - 100 : 0);
    run_until_fired(a);
    EXPECT_EQ(log_, std::vector<std::string>{"a"});
}

TEST_F(TimerHeapTest, CancelledDeadlineDoesNotFire) {
    auto& a = probe("a");
    auto& b = probe("b");
    auto& c = probe("c");
    heap_->arm(a.deadline, 5);
    heap_->arm(b.deadline, 10);
    heap_->arm(c.deadline, 15);
    heap_->cancel(b.deadline);
    EXPECT_FALSE(b.deadline.armed());
    EXPECT_EQ(heap_->size(), 2u);
    run_until_fired(c);
    EXPECT_EQ(log_, (std::vector<std::string>{"a", "c"}));
}

TEST_F(TimerHeapTest, CancellingTheEarliestLetsTheNextFire) {
    auto& a = probe("a");
    auto& b = probe("b");
    heap_->arm(a.deadline, 2);
    heap_->arm(b.deadline, 8);
    heap_->cancel(a.deadline);
    run_until_fired(b);
    EXPECT_EQ(log_, std::vector<std::string>{"b"});
}

TEST_F(TimerHeapTest, CancelIsIdempotent) {
    auto& a = probe("a");
    auto& sentinel = probe("sentinel");
    heap_->cancel(a.deadline);  // never armed
    heap_->arm(a.deadline, 5);
    heap_->cancel(a.deadline);
    heap_->cancel(a.deadline);
    EXPECT_EQ(heap_->size(), 0u);
    heap_->arm(sentinel.deadline, 10);
    run_until_fired(sentinel);
    EXPECT_EQ(log_, std::vector<std::string>{"sentinel"});
}

TEST_F(TimerHeapTest, CancelledDeadlineCanBeArmedAgain) {
    auto& a = probe("a");
    heap_->arm(a.deadline, 5);
    heap_->cancel(a.deadline);
    heap_->arm(a.deadline, 3);
    run_until_fired(a);
    EXPECT_EQ(a.fired_at.size(), 1u);
}

TEST_F(TimerHeapTest, ReArmingEarlierFiresAtTheNewTime) {
    // Re-armed from 100 s to 5 ms: the uv timer must move earlier with it.
    auto& a = probe("a");
    uint64_t now = heap_->now();
    heap_->arm_at(a.deadline, now + 100'000);
    heap_->arm_at(a.deadline, now + 5);
    run_until_fired(a);
    ASSERT_EQ(a.fired_at.size(), 1u);
    EXPECT_GE(a.fired_at[0], now + 5);
}

TEST_F(TimerHeapTest, ReArmingEarlierReordersTheHeap) {
    auto& a = probe("a");
    auto& b = probe("b");
    uint64_t now = heap_->now();
    heap_->arm_at(a.deadline, now + 40);
    heap_->arm_at(b.deadline, now + 20);
    heap_->arm_at(a.deadline, now + 5);
    run_until_fired(2);
    EXPECT_EQ(log_, (std::vector<std::string>{"a", "b"}));
}

TEST_F(TimerHeapTest, ReArmingLaterWaitsForTheNewTime) {
    auto& a = probe("a");
    auto& b = probe("b");
    uint64_t now = heap_->now();
    heap_->arm_at(a.deadline, now + 5);
    heap_->arm_at(b.deadline, now + 15);
    heap_->arm_at(a.deadline, now + 30);
    run_until_fired(2);
    EXPECT_EQ(log_, (std::vector<std::string>{"b", "a"}));
    ASSERT_EQ(a.fired_at.size(), 1u);
    EXPECT_GE(a.fired_at[0], now + 30);
}

TEST_F(TimerHeapTest, ReArmingTheOnlyDeadlineLater) {
    // The uv timer still set for the old time fires, finds nothing due and re-arms.
    auto& a = probe("a");
    uint64_t now = heap_->now();
    heap_->arm_at(a.deadline, now + 2);
    heap_->arm_at(a.deadline, now + 12);
    run_until_fired(a);
    ASSERT_EQ(a.fired_at.size(), 1u);
    EXPECT_GE(a.fired_at[0], now + 12);
}

TEST_F(TimerHeapTest, CallbackMayArmAnotherDeadline) {
    auto& a = probe("a");
    auto& b = probe("b");
    auto& c = probe("c");
    uint64_t now = heap_->now();
    a.then = [&] { heap_->arm_at(c.deadline, now + 5); };
    heap_->arm_at(a.deadline, now + 2);
    heap_->arm_at(b.deadline, now + 25);
    run_until_fired(b);
    EXPECT_EQ(log_, (std::vector<std::string>{"a", "c", "b"}));
}

TEST_F(TimerHeapTest, CallbackMayArmADeadlineDueAtOnce) {
    auto& a = probe("a");
    auto& b = probe("b");
    a.then = [&] { heap_->arm(b.deadline, 0); };
    heap_->arm(a.deadline, 2);
    run_until_fired(b);
    EXPECT_EQ(log_, (std::vector<std::string>{"a", "b"}));
}

TEST_F(TimerHeapTest, CallbackMayCancelAnotherDeadline) {
    auto& a = probe("a");
    auto& b = probe("b");
    auto& c = probe("c");
    a.then = [&] { heap_->cancel(b.deadline); };
    heap_->arm(a.deadline, 2);
    heap_->arm(b.deadline, 8);
    heap_->arm(c.deadline, 12);
    run_until_fired(c);
    EXPECT_EQ(log_, (std::vector<std::string>{"a", "c"}));
}

TEST_F(TimerHeapTest, CallbackMayCancelADeadlineDueAtTheSameTime) {
    // Both are due in the same run; whichever fires first cancels the other.
    auto& a = probe("a");
    auto& b = probe("b");
    auto& sentinel = probe("sentinel");
    a.then = [&] { heap_->cancel(b.deadline); };
    b.then = [&] { heap_->cancel(a.deadline); };
    uint64_t due = heap_->now() + 3;
    heap_->arm_at(a.deadline, due);
    heap_->arm_at(b.deadline, due);
    heap_->arm_at(sentinel.deadline, due + 5);
    run_until_fired(sentinel);
    EXPECT_EQ(log_.size(), 2u);
    EXPECT_EQ(a.fired_at.size() + b.fired_at.size(), 1u);
}

TEST_F(TimerHeapTest, CallbackMayReArmItsOwnDeadline) {
    auto& a = probe("a");
    a.then = [&] {
        if (a.fired_at.size() < 4) heap_->arm(a.deadline, 2);
    };
    heap_->arm(a.deadline, 2);
    run_until_fired(4);
    EXPECT_EQ(a.fired_at.size(), 4u);
    EXPECT_FALSE(a.deadline.armed());
    for (size_t i = 1; i < a.fired_at.size(); ++i)
        EXPECT_GE(a.fired_at[i], a.fired_at[i - 1] + 2);
}

TEST_F(TimerHeapTest, CallbackMayReArmAnotherDeadlineEarlier) {
    auto& a = probe("a");
    auto& b = probe("b");
    auto& c = probe("c");
    uint64_t now = heap_->now();
    a.then = [&] { heap_->arm_at(c.deadline, now + 5); };
    heap_->arm_at(a.deadline, now + 2);
    heap_->arm_at(b.deadline, now + 15);
    heap_->arm_at(c.deadline, now + 100'000);
    run_until_fired(b);
    EXPECT_EQ(log_, (std::vector<std::string>{"a", "c", "b"}));
}

TEST_F(TimerHeapTest, ManyDeadlinesStayInOrder) {
    // A seeded mix of arms, re-arms and cancels over one heap: whatever fires comes
    // out in due order, exactly the armed ones, each once.
    uint64_t now = heap_->now();
    uint32_t seed = 12345;
    auto next = [&seed](uint32_t n) {
        seed = seed * 1103515245u + 12345u;
        return (seed >> 16) % n;
    };
    std::vector<Probe*> all;
    for (int i = 0; i < 300; ++i) {
        auto& p = probe(std::to_string(i));
        heap_->arm_at(p.deadline, now + next(25));
        all.push_back(&p);
    }
    for (int i = 0; i < 300; ++i) {
        Probe& p = *all[next(300)];
        if (next(3) == 0) {
            heap_->cancel(p.deadline);
        } else {
            heap_->arm_at(p.deadline, now + next(25));
        }
    }
    std::vector<uint64_t> expected_dues;
    std::vector<uint64_t> fired_dues;
    for (auto* p : all) {
        if (!p->deadline.armed()) continue;
        uint64_t due = p->deadline.due();
        expected_dues.push_back(due);
        p->then = [&fired_dues, due] { fired_dues.push_back(due); };
    }
    ASSERT_GT(expected_dues.size(), 100u);
    EXPECT_EQ(heap_->size(), expected_dues.size());
    auto& sentinel = probe("sentinel");
    heap_->arm_at(sentinel.deadline, now + 30);
    run_until_fired(sentinel);
    EXPECT_TRUE(std::is_sorted(fired_dues.begin(), fired_dues.end()));
    std::sort(expected_dues.begin(), expected_dues.end());
    EXPECT_EQ(fired_dues, expected_dues);
    for (auto* p : all)
        EXPECT_LE(p->fired_at.size(), 1u) << p->name;
}

TEST_F(TimerHeapTest, DoesNotKeepTheLoopAlive) {
    // Once everything else has closed, an armed deadline must not hold the loop open.
    auto& a = probe("a");
    heap_->arm(a.deadline, 10'000);
    EXPECT_EQ(uv_run(&loop_, UV_RUN_DEFAULT), 0);
    EXPECT_TRUE(log_.empty());
    heap_->cancel(a.deadline);
}

TEST_F(TimerHeapTest, ClosesCleanlyAfterUse) {
    // TearDown asserts uv_loop_close() == 0; this test leaves the uv timer scheduled
    // (a cancel does not stop it) when close() is called.
    auto& a = probe("a");
    heap_->arm(a.deadline, 1000);
    heap_->cancel(a.deadline);
    EXPECT_EQ(heap_->size(), 0u);
}

TEST(TimerHeapLifecycleTest, LoopClosesAfterCloseAndAFinalRun) {
    uv_loop_t loop;
    ASSERT_EQ(uv_loop_init(&loop), 0);
    {
        TimerHeap timers(&loop, [](Deadline&) {});
        timers.close();
        EXPECT_EQ(uv_loop_close(&loop), UV_EBUSY);  // the close callback has not run yet
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace sb::uv
