// LoadRun: one sb-load run. It opens the connections (paced), drives the traffic of
// the chosen mode through its Clients, measures inside the window, closes
// everything politely and leaves the numbers in Stats.
//
// Phases:
//   Connecting  modes closed, rate, large, idle: open all connections; once every one
//               has opened or failed, Running starts (the "barrier"). Churn skips it.
//   Running     traffic. The window is [start + warmup, start + warmup + duration)
//               (idle: no warmup); samples outside it are discarded. Ends at the
//               window's end, at --max-messages, on SIGINT/SIGTERM, or (except in
//               churn, which reconnects) once no connection is left.
//   Closing     every client sends Close 1000 after its current frame and waits for
//               the answer (5 s at most each; a hard stop 6 s after Closing began).
//   Done        the timers and signal handlers are closed; uv_run() returns.
//
// Connection pacing: at most --max-handshakes connects + handshakes in progress, and
// at most --connect-rate new connections per second, so that thousands of connects
// do not overflow a listener's accept queue.
//
// One per process, owned by main(); single-threaded; owns every Client it creates
// (deleted in on_client_done, called from the client's close callback).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "load/client.h"
#include "load/client_context.h"
#include "load/options.h"
#include "load/rate_timer.h"
#include "load/report.h"

namespace sb::tools {

class LoadRun final : public Client::Events {
  public:
    LoadRun(const Options& options, ClientContext& context);
    LoadRun(const LoadRun&) = delete;
    LoadRun& operator=(const LoadRun&) = delete;

    // Runs the whole test on the context's loop. Returns 0, or the libuv error that
    // kept it from starting.
    [[nodiscard]] int run();
    const Stats& stats() const { return stats_; }

  private:
    enum class Phase { Connecting, Running, Closing, Done };

    // Client::Events
    void on_client_open(Client& c, uint64_t now_ns) override;
    void on_client_echo(Client& c, uint64_t now_ns) override;
    void on_client_writable(Client& c) override;
    void on_client_done(Client& c) override;

    static void on_tick(uv_timer_t* timer) noexcept;
    static void on_signal(uv_signal_t* handle, int signum) noexcept;
    static void on_rate_timer(void* owner);
    void tick();

    // Connection pacing.
    void pump_connects(uint64_t now);
    void open_slot(uint32_t slot, uint64_t now);
    // Bookkeeping once a slot's client is gone (closed, or never started).
    void slot_vacated(uint32_t slot, bool was_open, ClientError error, bool clean_cycle,
                      uint64_t now);
    void check_barrier(uint64_t now);
    // Ends the run once no client is left to measure (or to wait for while closing).
    void end_if_nothing_left(uint64_t now);

    void begin_running(uint64_t now);
    void begin_closing(uint64_t now);
    void finish();

    // Rate mode: global send k goes to slot k % connections at rate_t0_ + k / rate.
    uint64_t scheduled_time(uint64_t k) const;
    void dispatch_due();
    void send_owed(Client& c, uint64_t now);

    bool in_window(uint64_t t) const { return t >= window_start_ && t < window_end_; }
    bool max_reached(uint64_t count) const {
        return options_.max_messages != 0 && count >= options_.max_messages;
    }

    const Options& options_;
    ClientContext& context_;
    uv_loop_t* loop_;
    Phase phase_ = Phase::Connecting;
    Stats stats_;

    std::vector<Client*> slots_;          // one per connection (churn: per lane); null = empty
    uint32_t live_ = 0;                   // clients whose handle is not closed yet
    uint32_t next_id_ = 0;                // client ids, unique over the run (payload seeds)
    uint32_t resolved_ = 0;               // Connecting: connections opened or failed
    std::deque<uint32_t> connect_queue_;  // slots waiting to connect
    std::deque<std::pair<uint64_t, uint32_t>> retry_queue_;  // churn: (not before, slot)
    uint32_t outstanding_ = 0;                               // clients connecting or handshaking
    double tokens_ = 0;                                      // connect-rate token bucket
    uint64_t tokens_at_ns_ = 0;

    uint64_t window_start_ = UINT64_MAX;
    uint64_t window_end_ = UINT64_MAX;
    uint64_t closing_started_ = 0;
    uint64_t next_deadline_scan_ = 0;

    uint64_t rate_t0_ = 0;
    uint64_t rate_k_ = 0;
    size_t ring_capacity_ = 0;
    RateTimer rate_timer_;

    uv_timer_t tick_timer_{};
    uv_signal_t sigint_{};
    uv_signal_t sigterm_{};
    bool handles_open_ = false;
};

}  // namespace sb::tools
