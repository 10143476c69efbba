// SharedBucket and AddressRates: the admission buckets (SPEC §3 Admission). Time is
// passed in, so every figure here is exact.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "limits/address_rates.h"
#include "limits/shared_bucket.h"

namespace sb::limits {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

int takes(SharedBucket& b, uint64_t rate, uint64_t capacity, int64_t now, int tries) {
    int n = 0;
    for (int i = 0; i < tries; ++i)
        n += b.take(rate, capacity, now) ? 1 : 0;
    return n;
}

TEST(SharedBucketTest, StartsFullWithCapacityTokens) {
    SharedBucket b;
    EXPECT_TRUE(b.has_token(10, 4, 0));
    EXPECT_EQ(takes(b, 10, 4, 0, 10), 4);
    EXPECT_FALSE(b.has_token(10, 4, 0));
}

TEST(SharedBucketTest, RefillsAtTheRate) {
    SharedBucket b;
    const int64_t t0 = 50 * kS;
    EXPECT_EQ(takes(b, 10, 4, t0, 10), 4);
    // One token per 100 ms.
    EXPECT_EQ(takes(b, 10, 4, t0 + 99 * kMs, 5), 0);
    EXPECT_EQ(b.wait_ns(10, 4, t0 + 99 * kMs), 1 * kMs);
    EXPECT_EQ(takes(b, 10, 4, t0 + 100 * kMs, 5), 1);
    EXPECT_EQ(takes(b, 10, 4, t0 + 350 * kMs, 5), 2);
    // Never more than the capacity, however long it rested.
    EXPECT_EQ(takes(b, 10, 4, t0 + 60 * kS, 10), 4);
}

TEST(SharedBucketTest, AnySecondTakesAtMostRatePlusCapacity) {
    // The SPEC's promise, checked over every 1 s window of a saturating client that
    // tries every millisecond for 10 s.
    SharedBucket b;
    const uint64_t rate = 25, capacity = 7;
    std::vector<int64_t> admitted;
    for (int64_t ms = 0; ms < 10'000; ++ms) {
        if (b.take(rate, capacity, 1000 * kS + ms * kMs)) admitted.push_back(ms);
    }
    size_t lo = 0;
    size_t most = 0;
    for (size_t hi = 0; hi < admitted.size(); ++hi) {
        while (admitted[hi] - admitted[lo] >= 1000)
            ++lo;
        most = std::max(most, hi - lo + 1);
    }
    EXPECT_LE(most, rate + capacity);
    // And it does admit at the rate over the long run (10 s: 250 + the first 7).
    EXPECT_GE(admitted.size(), 10 * rate + capacity - 1);
    EXPECT_LE(admitted.size(), 10 * rate + capacity);
}

TEST(SharedBucketTest, GiveBackReturnsATokenButNeverOverfills) {
    SharedBucket b;
    const int64_t now = 7 * kS;
    EXPECT_EQ(takes(b, 1, 2, now, 5), 2);
    b.give_back(1, now);
    EXPECT_EQ(takes(b, 1, 2, now, 5), 1);
    // A full bucket stays at its capacity.
    SharedBucket full;
    full.give_back(1, now);
    full.give_back(1, now);
    EXPECT_EQ(takes(full, 1, 2, now, 5), 2);
}

TEST(SharedBucketTest, ExactUnderConcurrentWorkers) {
    // Four threads race for one bucket at a fixed instant: exactly `capacity` win.
    for (int round = 0; round < 20; ++round) {
        SharedBucket b;
        std::atomic<int> won{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i) {
            threads.emplace_back([&] {
                for (int j = 0; j < 500; ++j)
                    if (b.take(1000, 300, 3 * kS)) won.fetch_add(1);
            });
        }
        for (auto& t : threads)
            t.join();
        EXPECT_EQ(won.load(), 300);
    }
}

TEST(SharedBucketTest, AReloadThatRaisesTheRateAppliesAtOnce) {
    // 50 taken at 1 per second is 50 s of debt at that rate; at 100 per second the
    // same bucket is empty, and the first take at the new rate cuts the debt to one
    // empty bucket: a token comes 10 ms after it, not 50 s.
    SharedBucket b;
    const int64_t now = 10 * kS;
    EXPECT_EQ(takes(b, 1, 50, now, 60), 50);
    EXPECT_FALSE(b.has_token(100, 50, now));
    EXPECT_EQ(b.wait_ns(100, 50, now), 10 * kMs);
    EXPECT_FALSE(b.take(100, 50, now));
    EXPECT_EQ(takes(b, 100, 50, now + 10 * kMs, 5), 1);
    EXPECT_EQ(takes(b, 100, 50, now + 20 * kMs, 5), 1);
}

TEST(SharedBucketTest, AReloadThatLowersTheBurstAppliesAtOnce) {
    SharedBucket b;
    const int64_t now = 10 * kS;
    EXPECT_EQ(takes(b, 100, 1000, now, 1000), 1000);
    // Burst 10 at 100 per second: empty, and a token every 10 ms from now on.
    EXPECT_EQ(takes(b, 100, 10, now, 5), 0);
    EXPECT_EQ(takes(b, 100, 10, now + 10 * kMs, 5), 1);
}

TEST(SharedBucketTest, IntervalRoundsUpSoTheRateIsNeverExceeded) {
    EXPECT_EQ(SharedBucket::interval_ns(3), 333'333'334);
    EXPECT_EQ(SharedBucket::interval_ns(1), kS);
    EXPECT_EQ(SharedBucket::interval_ns(1'000'000), 1000);
}

TEST(AddressRatesTest, EachAddressHasItsOwnSecondOfTokens) {
    AddressRates rates;
    int64_t wait = 0;
    const int64_t now = 100 * kS;
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(rates.try_take("10.0.0.1", 3, now, wait));
    EXPECT_FALSE(rates.try_take("10.0.0.1", 3, now, wait));
    EXPECT_EQ(wait, SharedBucket::interval_ns(3));
    EXPECT_TRUE(rates.try_take("10.0.0.2", 3, now, wait));
    EXPECT_TRUE(rates.try_take("10.0.0.1", 3, now + SharedBucket::interval_ns(3), wait));
    EXPECT_FALSE(rates.try_take("10.0.0.1", 3, now + SharedBucket::interval_ns(3), wait));
}

TEST(AddressRatesTest, MemoryStaysBoundedUnderAFloodOfAddresses) {
    AddressRates rates;
    int64_t wait = 0;
    const int64_t now = 100 * kS;
    // 200,000 distinct addresses within one millisecond: every entry is live.
    for (int i = 0; i < 200'000; ++i) {
        EXPECT_TRUE(rates.try_take("fd00::" + std::to_string(i), 5, now + i, wait));
    }
    EXPECT_LE(rates.size(), AddressRates::kShards * AddressRates::kShardCapacity);
    // A second later every entry has expired: the next inserts sweep them away.
    for (int i = 0; i < 200'000; ++i)
        rates.try_take("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256), 5,
                       now + 2 * kS, wait);
    EXPECT_LE(rates.size(), AddressRates::kShards * AddressRates::kShardCapacity);
}

TEST(AddressRatesTest, AnAddressStillLimitedIsKeptWhileOthersCome) {
    // The entry evicted for room is the one closest to expiry, never the address
    // that is hammering now.
    AddressRates rates;
    int64_t wait = 0;
    const int64_t now = 100 * kS;
    EXPECT_TRUE(rates.try_take("192.0.2.7", 1, now, wait));
    for (int i = 0; i < 100'000; ++i)
        rates.try_take("fd01::" + std::to_string(i), 1'000'000, now, wait);
    EXPECT_FALSE(rates.try_take("192.0.2.7", 1, now + 500 * kMs, wait));
    EXPECT_EQ(wait, 500 * kMs);
}

TEST(AddressRatesTest, ARaisedRateAppliesAtOnce) {
    AddressRates rates;
    int64_t wait = 0;
    const int64_t now = 100 * kS;
    EXPECT_TRUE(rates.try_take("10.0.0.9", 1, now, wait));
    EXPECT_FALSE(rates.try_take("10.0.0.9", 1, now, wait));
    EXPECT_EQ(wait, kS);
    // Reloaded to 1,000 per second: a token is there after 1 ms.
    EXPECT_TRUE(rates.try_take("10.0.0.9", 1000, now + kMs, wait));
}

TEST(AddressRatesTest, ExactUnderConcurrentWorkers) {
    AddressRates rates;
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            int64_t wait = 0;
            for (int j = 0; j < 100; ++j)
                if (rates.try_take("198.51.100.1", 37, 5 * kS, wait)) won.fetch_add(1);
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(won.load(), 37);
}

}  // namespace
}  // namespace sb::limits
