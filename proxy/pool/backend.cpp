#include "pool/backend.h"

namespace sb::pool {

bool Backend::record_failure(unsigned fall, std::chrono::milliseconds interval,
                             Clock::time_point now) {
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    unsigned failures = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (failures < fall) return false;
    if (actively_checked()) {
        // Down until the probes count `rise` successes from now on.
        probe_successes_.store(0, std::memory_order_relaxed);
        return down_until_.exchange(kUntilChecksSayUp, std::memory_order_relaxed) == 0;
    }
    auto retry_at = (now + interval).time_since_epoch().count();
    // Each failure past `fall` (a retry that failed too) pushes the retry time out.
    return down_until_.exchange(retry_at, std::memory_order_relaxed) == 0;
}

bool Backend::record_success(Clock::time_point now) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    // Under active checks only the probes bring a backend back (a connect placed
    // before it was marked down may still succeed afterwards).
    if (actively_checked()) return false;
    auto until = down_until_.load(std::memory_order_relaxed);
    if (until == 0 || until == kUntilChecksSayUp) return false;
    if (!down_until_.compare_exchange_strong(until, 0, std::memory_order_relaxed)) return false;
    begin_slow_start(now);
    return true;
}

void Backend::set_actively_checked(bool checked, Clock::time_point now) {
    actively_checked_.store(checked, std::memory_order_relaxed);
    auto until = down_until_.load(std::memory_order_relaxed);
    if (checked) {
        report_.successes = 0;
        report_.failures = 0;
        probe_successes_.store(0, std::memory_order_relaxed);
        if (until != 0) down_until_.store(kUntilChecksSayUp, std::memory_order_relaxed);
    } else if (until == kUntilChecksSayUp) {
        // Back to passive checks: the next connection tries it.
        down_until_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    }
}

Backend::Transition Backend::record_probe(bool ok, unsigned rise, unsigned fall,
                                          Clock::time_point now) {
    if (ok) {
        ++report_.ok_total;
        report_.failures = 0;
        unsigned successes = probe_successes_.fetch_add(1, std::memory_order_relaxed) + 1;
        report_.successes = successes;
        if (successes < rise) return Transition::None;
        auto until = down_until_.load(std::memory_order_relaxed);
        if (until == 0) return Transition::None;
        if (!down_until_.compare_exchange_strong(until, 0, std::memory_order_relaxed)) {
            return Transition::None;
        }
        consecutive_failures_.store(0, std::memory_order_relaxed);
        begin_slow_start(now);
        return Transition::CameUp;
    }
    ++report_.failed_total;
    probe_successes_.store(0, std::memory_order_relaxed);
    report_.successes = 0;
    ++report_.failures;
    if (report_.failures < fall) return Transition::None;
    return down_until_.exchange(kUntilChecksSayUp, std::memory_order_relaxed) == 0
               ? Transition::WentDown
               : Transition::None;
}

double Backend::slow_start_fraction(std::chrono::milliseconds window, Clock::time_point now) const {
    auto since = slow_start_since_.load(std::memory_order_relaxed);
    if (since == 0 || window.count() <= 0) return 1.0;
    auto elapsed = now - Clock::time_point(Clock::duration(since));
    if (elapsed >= window) return 1.0;
    if (elapsed.count() <= 0) return 0.0;
    return std::chrono::duration<double>(elapsed) / std::chrono::duration<double>(window);
}

}  // namespace sb::pool
