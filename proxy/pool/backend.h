// Backend: one backend server's live state, shared by every worker and kept across
// configuration generations while its address stays in the pool.
//
// Counters are atomics: workers update them once per connection (never per message).
//
// Health (SPEC §3 "Health"). Two sources mark a backend down:
//   - passive: `fall` consecutive connect failures (record_failure, from any worker);
//   - active: `fall` consecutive failed probes (record_probe, from the HealthChecker on
//     the main thread), when the pool has a [pools.X.health_check] table.
// What brings it back depends on whether active checks run (set_actively_checked):
//   - without them, the backend is tried again once `interval` has passed (is_up()
//     reads true again) and one successful connect brings it back (record_success);
//   - with them there is no time-based retry: it stays down until `rise` consecutive
//     successful probes; a successful connect alone never brings it back.
// Each source keeps its own consecutive count; either reaching `fall` marks it down.
//
// Slow start: the time the backend last came up (or was added by a reload), read by
// Pool placement with the pool's `slow_start` window. The health report (last probe's
// result, error, latency) is main-thread-only state: only the HealthChecker writes it
// and only the admin views (main loop) read it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "config/address.h"
#include "limits/shared_bucket.h"

namespace sb::pool {

// The active checks' view of one backend, for /status, /metrics and the status page.
// Written and read on the main thread only.
struct HealthReport {
    bool checked = false;        // at least one probe has finished
    bool last_ok = false;        // the last probe's result
    std::string last_error;      // why the last probe failed ("" after a success)
    double last_latency_ms = 0;  // how long the last probe took
    std::chrono::steady_clock::time_point checked_at{};  // when it finished
    uint64_t ok_total = 0;      // probes that succeeded, since the backend was created
    uint64_t failed_total = 0;  // probes that failed
    unsigned successes = 0;     // consecutive successful probes
    unsigned failures = 0;      // consecutive failed probes
};

class Backend {
  public:
    using Clock = std::chrono::steady_clock;

    // What an active probe's result did to the backend's state.
    enum class Transition { None, WentDown, CameUp };

    // `address` is the backend's identity ("ip:port"); `host` the DNS name it was
    // found under ("" for a literal address), the TLS server name by default.
    Backend(std::string address, config::SocketAddress resolved, std::string host = "")
        : address_(std::move(address)), resolved_(resolved), host_(std::move(host)) {}
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    const std::string& address() const { return address_; }
    const config::SocketAddress& resolved() const { return resolved_; }
    const std::string& host() const { return host_; }

    // False while marked down and its retry time has not come yet. Once the retry
    // time passes it reads as up again, so the next connection tries it. Under active
    // checks a backend marked down has no retry time: it reads down until they bring
    // it back.
    bool is_up(Clock::time_point now = Clock::now()) const {
        auto until = down_until_.load(std::memory_order_relaxed);
        return until == 0 || now.time_since_epoch().count() >= until;
    }
    // Marked down by failures and not yet brought back by a success.
    bool marked_down() const { return down_until_.load(std::memory_order_relaxed) != 0; }

    // A connect attempt failed; returns true when this failure marked it down.
    bool record_failure(unsigned fall, std::chrono::milliseconds interval,
                        Clock::time_point now = Clock::now());
    // A connect attempt succeeded; returns true if this brought it back up (only
    // without active checks: then it also begins slow start).
    bool record_success(Clock::time_point now = Clock::now());

    // Active checks (main thread). While checked, down means down until `rise`
    // consecutive successful probes. Starting them on a backend that is down for a
    // time turns that into "down until the probes say up"; stopping them turns a
    // down backend back into one that is retried by the next connection.
    void set_actively_checked(bool checked, Clock::time_point now = Clock::now());
    bool actively_checked() const { return actively_checked_.load(std::memory_order_relaxed); }
    // One probe's result: `fall` consecutive failures mark it down, `rise` consecutive
    // successes bring it back up (and begin slow start). Updates health_report()'s
    // counts; the caller fills in the rest of the report.
    Transition record_probe(bool ok, unsigned rise, unsigned fall,
                            Clock::time_point now = Clock::now());
    HealthReport& health_report() { return report_; }
    const HealthReport& health_report() const { return report_; }

    // Slow start (SPEC §3 Health): the window starts at `now`.
    void begin_slow_start(Clock::time_point now = Clock::now()) {
        slow_start_since_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    }
    // The fraction of a `window` long slow start elapsed at `now`, in [0, 1); 1 when
    // the backend is not in slow start (never began one, the window is 0, or it ended).
    double slow_start_fraction(std::chrono::milliseconds window,
                               Clock::time_point now = Clock::now()) const;

    // Connections placed on this backend and not yet ended (handshakes included).
    int64_t active() const { return active_.load(std::memory_order_relaxed); }
    // Takes a connection slot unless `limit` (> 0) slots are taken: exact under
    // concurrency, so max_connections_per_backend is never exceeded.
    bool try_acquire(uint64_t limit) {
        int64_t current = active_.load(std::memory_order_relaxed);
        do {
            if (limit > 0 && current >= static_cast<int64_t>(limit)) return false;
        } while (!active_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
        return true;
    }
    void release() { active_.fetch_sub(1, std::memory_order_relaxed); }
    uint64_t connect_failures() const { return connect_failures_.load(std::memory_order_relaxed); }
    uint64_t total() const { return total_.load(std::memory_order_relaxed); }
    void add_total() { total_.fetch_add(1, std::memory_order_relaxed); }

    // Admission (SPEC §3): the bucket of new connections into this backend, shared by
    // every worker (the pool's backend_new_connections_per_second), and the
    // connections shed because it was empty.
    limits::SharedBucket& admission_bucket() { return bucket_; }
    const limits::SharedBucket& admission_bucket() const { return bucket_; }
    void count_shed() { shed_.fetch_add(1, std::memory_order_relaxed); }
    uint64_t shed_total() const { return shed_.load(std::memory_order_relaxed); }

  private:
    // down_until_ while active checks hold the backend down: never reached by a clock.
    static constexpr Clock::rep kUntilChecksSayUp = std::numeric_limits<Clock::rep>::max();

    const std::string address_;
    const config::SocketAddress resolved_;
    const std::string host_;
    std::atomic<int64_t> active_{0};
    std::atomic<uint64_t> total_{0};
    std::atomic<uint64_t> connect_failures_{0};
    std::atomic<uint64_t> shed_{0};
    limits::SharedBucket bucket_;
    std::atomic<unsigned> consecutive_failures_{0};  // passive: connect failures in a row
    std::atomic<Clock::rep> down_until_{0};          // steady_clock ticks of the next retry; 0 = up
    std::atomic<bool> actively_checked_{false};
    // Consecutive successful probes; atomic because a passive mark-down (a worker)
    // resets it, so that `rise` successes are counted from the mark-down.
    std::atomic<unsigned> probe_successes_{0};
    std::atomic<Clock::rep> slow_start_since_{0};  // 0 = never began
    HealthReport report_;                          // main thread only
};

}  // namespace sb::pool
