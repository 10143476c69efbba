// Connection slot counters (exact at the edge, also under concurrency) and the
// per-connection message-rate token bucket.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "limits/counter.h"
#include "limits/token_bucket.h"

namespace sb::limits {
namespace {

TEST(SlotCounter, RefusesOnlyPastTheLimitAndGivesSlotsBack) {
    SlotCounter c;
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(c.try_acquire(3));
    EXPECT_FALSE(c.try_acquire(3));
    c.release();
    EXPECT_TRUE(c.try_acquire(3));
    EXPECT_EQ(c.count(), 3u);
}

TEST(SlotCounter, ZeroMeansNoLimit) {
    SlotCounter c;
    for (int i = 0; i < 1000; ++i)
        EXPECT_TRUE(c.try_acquire(0));
}

TEST(SlotCounter, ExactUnderConcurrency) {
    SlotCounter c;
    std::atomic<int> taken{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10'000; ++i) {
                if (c.try_acquire(100)) taken.fetch_add(1);
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(taken.load(), 100);
    EXPECT_EQ(c.count(), 100u);
}

TEST(PerKeyCounter, CountsEachKeyApart) {
    PerKeyCounter c;
    EXPECT_TRUE(c.try_acquire("10.0.0.1", 2));
    EXPECT_TRUE(c.try_acquire("10.0.0.1", 2));
    EXPECT_FALSE(c.try_acquire("10.0.0.1", 2));
    EXPECT_TRUE(c.try_acquire("10.0.0.2", 2));
    c.release("10.0.0.1");
    EXPECT_TRUE(c.try_acquire("10.0.0.1", 2));
    EXPECT_EQ(c.count("10.0.0.1"), 2u);
    c.release("10.0.0.2");
    EXPECT_EQ(c.count("10.0.0.2"), 0u);
}

TEST(TokenBucket, AllowsOneSecondBurstThenRefills) {
    TokenBucket b;
    b.reset(5, 1000);
    for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(b.take(5, 1000));
    EXPECT_FALSE(b.take(5, 1000));
    EXPECT_FALSE(b.take(5, 1100));  // 0.5 token after 100 ms at 5/s
    EXPECT_TRUE(b.take(5, 1200));   // 1 token after 200 ms
    EXPECT_FALSE(b.take(5, 1200));
}

TEST(TokenBucket, NeverHoldsMoreThanOneSecond) {
    TokenBucket b;
    b.reset(3, 0);
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(b.take(3, 0));
    // An hour of silence refills to 3, not to 10,800.
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(b.take(3, 3'600'000));
    EXPECT_FALSE(b.take(3, 3'600'000));
}

TEST(TokenBucket, SteadyRateAtTheLimitPasses) {
    TokenBucket b;
    b.reset(10, 0);
    for (uint64_t t = 0; t < 10'000; t += 100)
        EXPECT_TRUE(b.take(10, t)) << t;
}

}  // namespace
}  // namespace sb::limits
