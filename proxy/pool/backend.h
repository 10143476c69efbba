// Backend: one backend server's live state, shared by every worker and kept across
// configuration generations while its address stays in the pool.
//
// Counters are atomics: workers update them once per connection (never per message).
// Health follows SPEC §3 "Health" (passive): `fall` consecutive connect failures mark
// the backend down until `interval` has passed; then it is tried again, and one
// success brings it back.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "config/address.h"

namespace sb::pool {

class Backend {
  public:
    using Clock = std::chrono::steady_clock;

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
    // time passes it reads as up again, so the next connection tries it.
    bool is_up(Clock::time_point now = Clock::now()) const {
        auto until = down_until_.load(std::memory_order_relaxed);
        return until == 0 || now.time_since_epoch().count() >= until;
    }
    // Marked down by failures and not yet brought back by a success.
    bool marked_down() const { return down_until_.load(std::memory_order_relaxed) != 0; }

    // A connect attempt failed; returns true when this failure marked it down.
    bool record_failure(unsigned fall, std::chrono::milliseconds interval,
                        Clock::time_point now = Clock::now());
    // A connect attempt succeeded: the backend is up; returns true if it was down.
    bool record_success();

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

  private:
    const std::string address_;
    const config::SocketAddress resolved_;
    const std::string host_;
    std::atomic<int64_t> active_{0};
    std::atomic<uint64_t> total_{0};
    std::atomic<uint64_t> connect_failures_{0};
    std::atomic<unsigned> consecutive_failures_{0};
    std::atomic<Clock::rep> down_until_{0};  // steady_clock ticks of the next retry; 0 = up
};

}  // namespace sb::pool
