// Backend health state (SPEC §3 Health): the rise/fall state machine of active checks,
// how passive connect failures combine with it, and the slow-start window, with time
// injected.
#include <gtest/gtest.h>

#include <chrono>

#include "pool/backend.h"

namespace sb::pool {
namespace {

using namespace std::chrono_literals;
using T = Backend::Transition;

Backend make() {
    return Backend("10.0.0.1:80", *config::SocketAddress::parse("10.0.0.1:80"));
}

TEST(BackendHealth, FallFailedProbesMarkItDownAndRiseSuccessesBringItBack) {
    auto b = make();
    auto t0 = Backend::Clock::now();
    b.set_actively_checked(true, t0);
    EXPECT_EQ(b.record_probe(false, 2, 3, t0), T::None);
    EXPECT_EQ(b.record_probe(false, 2, 3, t0), T::None);
    EXPECT_TRUE(b.is_up(t0));
    EXPECT_EQ(b.record_probe(false, 2, 3, t0), T::WentDown);
    EXPECT_FALSE(b.is_up(t0));
    EXPECT_EQ(b.record_probe(false, 2, 3, t0), T::None);  // already down
    // No time-based retry under active checks, however long it waits.
    EXPECT_FALSE(b.is_up(t0 + 24h));
    EXPECT_EQ(b.record_probe(true, 2, 3, t0), T::None);
    EXPECT_FALSE(b.is_up(t0));
    EXPECT_EQ(b.record_probe(true, 2, 3, t0 + 1s), T::CameUp);
    EXPECT_TRUE(b.is_up(t0 + 1s));
    EXPECT_EQ(b.health_report().ok_total, 2u);
    EXPECT_EQ(b.health_report().failed_total, 4u);
    EXPECT_EQ(b.health_report().successes, 2u);
}

TEST(BackendHealth, AFailureInTheMiddleRestartsTheCount) {
    auto b = make();
    b.set_actively_checked(true);
    b.record_probe(false, 2, 2);
    b.record_probe(true, 2, 2);  // resets the failures
    EXPECT_EQ(b.record_probe(false, 2, 2), T::None);
    EXPECT_EQ(b.record_probe(false, 2, 2), T::WentDown);
    b.record_probe(true, 2, 2);
    b.record_probe(false, 2, 2);  // resets the successes
    EXPECT_EQ(b.record_probe(true, 2, 2), T::None);
    EXPECT_EQ(b.record_probe(true, 2, 2), T::CameUp);
}

TEST(BackendHealth, PassiveFailuresMarkDownAndOnlyProbesBringBackUnderActiveChecks) {
    auto b = make();
    auto t0 = Backend::Clock::now();
    b.set_actively_checked(true, t0);
    b.record_probe(true, 2, 3, t0);
    b.record_probe(true, 2, 3, t0);  // two successes already counted while up
    EXPECT_FALSE(b.record_failure(3, 5s, t0));
    EXPECT_FALSE(b.record_failure(3, 5s, t0));
    EXPECT_TRUE(b.record_failure(3, 5s, t0));
    EXPECT_FALSE(b.is_up(t0 + 10s));  // no retry after `interval`
    // A connect that succeeds (placed before the mark-down) does not bring it back.
    EXPECT_FALSE(b.record_success(t0));
    EXPECT_FALSE(b.is_up(t0));
    // `rise` successes counted from the mark-down, not before it.
    EXPECT_EQ(b.record_probe(true, 2, 3, t0), T::None);
    EXPECT_EQ(b.record_probe(true, 2, 3, t0), T::CameUp);
}

TEST(BackendHealth, WithoutActiveChecksTheRetryIsTimeBased) {
    auto b = make();
    auto t0 = Backend::Clock::now();
    for (int i = 0; i < 3; ++i)
        b.record_failure(3, 5s, t0);
    EXPECT_FALSE(b.is_up(t0 + 4s));
    EXPECT_TRUE(b.is_up(t0 + 5s));  // tried again
    EXPECT_TRUE(b.record_success(t0 + 5s));
    EXPECT_FALSE(b.marked_down());
    // Coming back begins slow start.
    EXPECT_DOUBLE_EQ(b.slow_start_fraction(10s, t0 + 10s), 0.5);
}

TEST(BackendHealth, StoppingActiveChecksHandsADownBackendBackToPassiveRetry) {
    auto b = make();
    auto t0 = Backend::Clock::now();
    b.set_actively_checked(true, t0);
    b.record_probe(false, 2, 1, t0);
    ASSERT_FALSE(b.is_up(t0 + 1h));
    b.set_actively_checked(false, t0 + 1s);
    EXPECT_TRUE(b.is_up(t0 + 1s));  // the next connection tries it
    EXPECT_TRUE(b.marked_down());
    EXPECT_TRUE(b.record_success(t0 + 2s));
}

TEST(BackendHealth, StartingActiveChecksOnADownBackendWaitsForRise) {
    auto b = make();
    auto t0 = Backend::Clock::now();
    for (int i = 0; i < 3; ++i)
        b.record_failure(3, 5s, t0);
    b.set_actively_checked(true, t0);
    EXPECT_FALSE(b.is_up(t0 + 1h));
    EXPECT_EQ(b.record_probe(true, 1, 3, t0), T::CameUp);
}

TEST(BackendHealth, ComingUpBeginsSlowStart) {
    auto b = make();
    auto t0 = Backend::Clock::now();
    EXPECT_DOUBLE_EQ(b.slow_start_fraction(10s, t0), 1.0);  // never began
    b.set_actively_checked(true, t0);
    b.record_probe(false, 1, 1, t0);
    ASSERT_EQ(b.record_probe(true, 1, 1, t0), T::CameUp);
    EXPECT_DOUBLE_EQ(b.slow_start_fraction(10s, t0), 0.0);
    EXPECT_DOUBLE_EQ(b.slow_start_fraction(10s, t0 + 2500ms), 0.25);
    EXPECT_DOUBLE_EQ(b.slow_start_fraction(10s, t0 + 10s), 1.0);  // over
    EXPECT_DOUBLE_EQ(b.slow_start_fraction(0s, t0), 1.0);         // slow_start off
}

}  // namespace
}  // namespace sb::pool
