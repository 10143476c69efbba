// WorkerStats: one worker's counters, by listener, by pool, and by close code.
//
// The worker thread is the only writer of every counter. Entries are created by the
// worker (on a new generation or a first close code) under `mutex`, and never
// removed, so a session may keep pointers to its listener's and pool's entries; the
// admin thread takes `mutex` only to walk the maps at scrape time.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "metrics/close_reason.h"
#include "metrics/counters.h"

namespace sb::metrics {

enum Direction : uint8_t { kClientToBackend = 0, kBackendToClient = 1 };

struct ListenerStats {
    Gauge active;
    Counter total;
    std::array<Counter, kCloseReasonCount> rejections;  // only refusal reasons are used
};

struct PoolStats {
    std::array<Counter, 2> bytes;     // by Direction
    std::array<Counter, 2> messages;  // by Direction
    Histogram handshake;              // connect + backend answer, seconds
    // Plain HTTP requests (SPEC §3 HTTP requests).
    std::array<Counter, 5> http_requests;  // answered, by status class (1xx..5xx)
    Histogram http_duration;               // request head read to answer's end, seconds
    std::array<Counter, 2> http_backend;   // backend connections used: new, reused
};

struct CloseKey {
    uint16_t code;  // WebSocket close code; 0 when the connection ended without one
    Side side;      // who sent it (or who ended the connection)
    bool operator<(const CloseKey& o) const {
        return code != o.code ? code < o.code : side < o.side;
    }
};

class WorkerStats {
  public:
    ListenerStats& listener(const std::string& name);
    PoolStats& pool(const std::string& name);
    void count_close(uint16_t code, Side side);
    void count_end(CloseReason reason) { ends[static_cast<size_t>(reason)].add(); }

    // Connections ended, by reason (all reasons, refusals included).
    std::array<Counter, kCloseReasonCount> ends;
    // Read/write buffer pauses and resumes from backpressure (Pipe).
    Counter pauses;
    Counter resumes;

    // For the admin thread: calls f(name, stats) under the lock.
    template <class F>
    void for_each_listener(F f) const {
        std::lock_guard lock(mutex_);
        for (const auto& [name, s] : listeners_)
            f(name, *s);
    }
    template <class F>
    void for_each_pool(F f) const {
        std::lock_guard lock(mutex_);
        for (const auto& [name, s] : pools_)
            f(name, *s);
    }
    template <class F>
    void for_each_close(F f) const {
        std::lock_guard lock(mutex_);
        for (const auto& [key, c] : closes_)
            f(key, c->value());
    }

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<ListenerStats>> listeners_;
    std::map<std::string, std::unique_ptr<PoolStats>> pools_;
    std::map<CloseKey, std::unique_ptr<Counter>> closes_;
};

}  // namespace sb::metrics
