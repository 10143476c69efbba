#include "load/load_run.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>

namespace sb::tools {

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;
constexpr uint64_t kTickMs = 5;
constexpr uint64_t kDeadlineScanNs = 100'000'000;  // client timeouts are seconds long
constexpr uint64_t kLateNs = 1'000'000;            // rate mode: a send this late is `late`
constexpr uint64_t kChurnRetryNs = 10'000'000;     // churn: pause a lane after a failure
// Closing: each client gives up after the context's close timeout (5 s); this is the
// backstop in case one never reports.
constexpr uint64_t kHardStopNs = 6 * kNsPerSecond;

uint64_t seconds_to_ns(double s) {
    return static_cast<uint64_t>(std::llround(s * 1e9));
}

size_t next_power_of_two(size_t n) {
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

}  // namespace

LoadRun::LoadRun(const Options& options, ClientContext& context)
    : options_(options),
      context_(context),
      loop_(context.loop),
      slots_(options.connections, nullptr) {
    if (options_.mode == Mode::Rate) {
        // Room for one second of this connection's schedule: a connection further
        // behind than that drops sends (reported as `dropped`) rather than grow.
        double per_connection = options_.rate / options_.connections;
        auto wanted = static_cast<size_t>(std::ceil(per_connection));
        ring_capacity_ = next_power_of_two(std::clamp<size_t>(wanted, 16, 4096));
    }
}

int LoadRun::run() {
    int rc = uv_timer_init(loop_, &tick_timer_);
    if (rc != 0) return rc;
    tick_timer_.data = this;
    uv_signal_init(loop_, &sigint_);
    uv_signal_init(loop_, &sigterm_);
    sigint_.data = sigterm_.data = this;
    handles_open_ = true;
    uv_timer_start(&tick_timer_, &LoadRun::on_tick, kTickMs, kTickMs);
    uv_signal_start(&sigint_, &LoadRun::on_signal, SIGINT);
    uv_signal_start(&sigterm_, &LoadRun::on_signal, SIGTERM);
    if (options_.mode == Mode::Rate) {
        rc = rate_timer_.init(loop_, &LoadRun::on_rate_timer, this);
        if (rc != 0) {
            finish();
            uv_run(loop_, UV_RUN_DEFAULT);
            return rc;
        }
    }

    uint64_t now = uv_hrtime();
    tokens_at_ns_ = now;
    tokens_ = 1;
    for (uint32_t slot = 0; slot < options_.connections; ++slot)
        connect_queue_.push_back(slot);
    if (options_.mode == Mode::Churn) begin_running(now);
    pump_connects(now);
    uv_run(loop_, UV_RUN_DEFAULT);
    return 0;
}

// ---- timers and signals ----

void LoadRun::on_tick(uv_timer_t* timer) noexcept {
    static_cast<LoadRun*>(timer->data)->tick();
}

void LoadRun::on_signal(uv_signal_t* handle, int) noexcept {
    // Stop early but still report what was measured.
    static_cast<LoadRun*>(handle->data)->begin_closing(uv_hrtime());
}

void LoadRun::on_rate_timer(void* owner) {
    static_cast<LoadRun*>(owner)->dispatch_due();
}

void LoadRun::tick() {
    uint64_t now = uv_hrtime();
    if (phase_ == Phase::Running && now >= window_end_) begin_closing(now);
    if (phase_ == Phase::Closing && now >= closing_started_ + kHardStopNs) {
        for (Client* c : slots_) {
            if (c != nullptr) c->abort(ClientError::CloseTimeout);
        }
    }
    while (!retry_queue_.empty() && retry_queue_.front().first <= now) {
        connect_queue_.push_back(retry_queue_.front().second);
        retry_queue_.pop_front();
    }
    pump_connects(now);
    if (now >= next_deadline_scan_) {
        next_deadline_scan_ = now + kDeadlineScanNs;
        for (Client* c : slots_) {
            if (c != nullptr) c->check_deadline(now);
        }
    }
}

// ---- connection pacing ----

void LoadRun::pump_connects(uint64_t now) {
    if (phase_ == Phase::Closing || phase_ == Phase::Done) return;
    double rate = options_.connect_rate;
    if (rate > 0) {
        // Refill the bucket; a burst of 20 ms worth (at least one) covers the 5 ms tick.
        double burst = std::max(1.0, rate * 0.02);
        double elapsed = static_cast<double>(now - tokens_at_ns_) / 1e9;
        tokens_ = std::min(burst, tokens_ + elapsed * rate);
        tokens_at_ns_ = now;
    }
    while (!connect_queue_.empty() && outstanding_ < options_.max_handshakes &&
           (rate <= 0 || tokens_ >= 1.0)) {
        uint32_t slot = connect_queue_.front();
        connect_queue_.pop_front();
        if (rate > 0) tokens_ -= 1.0;
        open_slot(slot, now);
    }
}

void LoadRun::open_slot(uint32_t slot, uint64_t now) {
    auto* c = new Client(context_, *this, slot, next_id_++);
    if (ring_capacity_ != 0) c->schedule.reset(ring_capacity_);
    if (!c->connect(now)) {
        delete c;
        ++stats_.errors[static_cast<size_t>(ClientError::Connect)];
        slot_vacated(slot, false, ClientError::Connect, false, now);
        return;
    }
    slots_[slot] = c;
    ++live_;
    ++outstanding_;
}

void LoadRun::check_barrier(uint64_t now) {
    if (phase_ == Phase::Connecting && resolved_ == options_.connections) begin_running(now);
}

// ---- client events ----

void LoadRun::on_client_open(Client& c, uint64_t now) {
    --outstanding_;
    ++stats_.established;
    if (options_.mode != Mode::Churn || in_window(now)) {
        stats_.handshake_ns.record(now - c.connect_started_ns());
        if (const TlsStream* tls = c.tls(); tls != nullptr) {
            ++stats_.tls_handshakes;
            if (tls->resumed()) ++stats_.tls_resumed;
        }
    }
    if (const TlsStream* tls = c.tls(); tls != nullptr && stats_.tls_version.empty()) {
        stats_.tls_version = tls->version();
        stats_.tls_cipher = tls->cipher();
    }
    switch (phase_) {
        case Phase::Connecting:
            ++resolved_;
            check_barrier(now);  // may start the traffic, this client's included
            break;
        case Phase::Running:
            if (options_.mode == Mode::Churn && c.can_send()) c.send_message(now);
            break;
        case Phase::Closing:
        case Phase::Done:
            c.close_gracefully(now);
            break;
    }
    pump_connects(now);
}

void LoadRun::on_client_echo(Client& c, uint64_t now) {
    switch (options_.mode) {
        case Mode::Closed:
        case Mode::Large:
            if (phase_ != Phase::Running) return;
            if (in_window(now)) {
                ++stats_.messages;
                stats_.rtt_ns.record(now - c.last_send_ns());
                if (max_reached(stats_.messages)) {
                    begin_closing(now);
                    return;
                }
            }
            if (c.can_send()) c.send_message(now);  // else on_client_writable
            return;
        case Mode::Rate: {
            // Echoes come back in order, so this one answers the oldest send.
            uint64_t scheduled = c.schedule.pop_sent();
            if (in_window(scheduled)) {
                ++stats_.received;
                ++stats_.messages;
                stats_.rtt_ns.record(now - scheduled);  // coordinated omission included
                if (max_reached(stats_.received)) begin_closing(now);
            }
            return;
        }
        case Mode::Churn:
            if (phase_ == Phase::Running && in_window(now)) {
                ++stats_.messages;
                stats_.rtt_ns.record(now - c.last_send_ns());
            }
            c.close_gracefully(now);
            return;
        case Mode::Idle:
            return;  // we send nothing, so the client reports a mismatch
    }
}

void LoadRun::on_client_writable(Client& c) {
    if (phase_ != Phase::Running) return;
    uint64_t now = uv_hrtime();
    if (options_.mode == Mode::Rate) {
        send_owed(c, now);
    } else if ((options_.mode == Mode::Closed || options_.mode == Mode::Large) &&
               c.in_flight() == 0) {
        c.send_message(now);
    }
}

void LoadRun::on_client_done(Client& c) {
    uint64_t now = uv_hrtime();
    uint32_t slot = c.slot();
    bool was_open = c.was_open();
    ClientError error = c.error();
    bool clean_cycle = options_.mode == Mode::Churn && error == ClientError::None &&
                       c.echoed() >= 1 && c.closed_cleanly();
    // Scheduled sends that never left are lost with the connection.
    while (c.schedule.has_unsent()) {
        if (in_window(c.schedule.take_unsent())) ++stats_.dropped;
    }
    slots_[slot] = nullptr;
    --live_;
    delete &c;
    if (error != ClientError::None) ++stats_.errors[static_cast<size_t>(error)];
    if (!was_open) --outstanding_;
    slot_vacated(slot, was_open, error, clean_cycle, now);
}

void LoadRun::slot_vacated(uint32_t slot, bool was_open, ClientError error, bool clean_cycle,
                           uint64_t now) {
    if (!was_open) {
        // A connect we cancelled ourselves (the run ended) is not a failure.
        if (error != ClientError::None) ++stats_.failed;
        if (phase_ == Phase::Connecting) ++resolved_;
    }
    if (options_.mode == Mode::Churn && phase_ == Phase::Running) {
        if (clean_cycle && in_window(now)) {
            ++stats_.handshakes;
            if (max_reached(stats_.handshakes)) begin_closing(now);
        }
        if (phase_ == Phase::Running) {
            // The lane starts its next cycle; after a failure, a little later, so that
            // a refused port does not turn into a busy loop.
            if (error == ClientError::None) {
                connect_queue_.push_back(slot);
            } else {
                retry_queue_.emplace_back(now + kChurnRetryNs, slot);
            }
        }
    }
    check_barrier(now);
    pump_connects(now);
    end_if_nothing_left(now);
}

void LoadRun::end_if_nothing_left(uint64_t now) {
    // Outside churn, connections are never replaced: once all are gone, the rest of
    // the window could only measure nothing.
    if (phase_ == Phase::Running && options_.mode != Mode::Churn && live_ == 0) {
        begin_closing(now);
    }
    if (phase_ == Phase::Closing && live_ == 0) finish();
}

// ---- phases ----

void LoadRun::begin_running(uint64_t now) {
    phase_ = Phase::Running;
    uint64_t warmup = options_.mode == Mode::Idle ? 0 : seconds_to_ns(options_.warmup);
    window_start_ = now + warmup;
    window_end_ = window_start_ + seconds_to_ns(options_.duration);
    switch (options_.mode) {
        case Mode::Closed:
        case Mode::Large:
            for (Client* c : slots_) {
                if (c != nullptr && c->can_send()) c->send_message(now);
            }
            break;
        case Mode::Rate:
            rate_t0_ = now;
            rate_k_ = 0;
            dispatch_due();
            break;
        case Mode::Idle:
            // A caller measuring memory waits for this line.
            std::fprintf(stderr, "idle %llu\n", static_cast<unsigned long long>(live_));
            std::fflush(stderr);
            break;
        case Mode::Churn:
            break;  // the lanes are already queued to connect
    }
    end_if_nothing_left(now);
}

void LoadRun::begin_closing(uint64_t now) {
    if (phase_ == Phase::Closing || phase_ == Phase::Done) return;
    bool was_running = phase_ == Phase::Running;
    phase_ = Phase::Closing;
    closing_started_ = now;
    uint64_t end = std::min(now, window_end_);
    stats_.duration_s =
        was_running && end > window_start_ ? static_cast<double>(end - window_start_) / 1e9 : 0.0;
    rate_timer_.stop();
    connect_queue_.clear();
    retry_queue_.clear();
    // close_gracefully never frees a client on the spot (closing is asynchronous),
    // so the slots stay valid during this loop.
    for (Client* c : slots_) {
        if (c != nullptr) c->close_gracefully(now);
    }
    if (live_ == 0) finish();
}

void LoadRun::finish() {
    if (phase_ == Phase::Done || !handles_open_) return;
    phase_ = Phase::Done;
    handles_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
    rate_timer_.close();
}

// ---- rate mode ----

uint64_t LoadRun::scheduled_time(uint64_t k) const {
    return rate_t0_ + static_cast<uint64_t>(static_cast<double>(k) * 1e9 / options_.rate);
}

void LoadRun::dispatch_due() {
    if (phase_ != Phase::Running) return;
    uint64_t now = uv_hrtime();
    for (;;) {
        uint64_t t = scheduled_time(rate_k_);
        if (t >= window_end_ || max_reached(stats_.sent)) return;  // the schedule is over
        if (t > now) break;
        Client* c = slots_[rate_k_ % options_.connections];
        ++rate_k_;
        if (c == nullptr || c->state() != Client::State::Open || c->schedule.full()) {
            if (in_window(t)) ++stats_.dropped;
            continue;
        }
        c->schedule.push(t);
        send_owed(*c, now);
        if (phase_ != Phase::Running) return;
    }
    rate_timer_.arm(scheduled_time(rate_k_));
}

void LoadRun::send_owed(Client& c, uint64_t now) {
    // Sends wait here only while the connection's write queue is full; they keep their
    // scheduled time, so the wait shows up in their RTT.
    while (c.schedule.has_unsent() && c.can_send()) {
        uint64_t scheduled = c.schedule.take_unsent();
        if (in_window(scheduled)) {
            ++stats_.sent;
            if (now - scheduled > kLateNs) ++stats_.late;
        }
        c.send_message(now);
    }
}

}  // namespace sb::tools
