// HealthChecker: the active health checks of the whole process (SPEC §3 Health
// "Active"): one place per process, on the main loop, however many workers there are.
//
// For every pool of the current generation that has a [pools.X.health_check] table,
// every backend is probed every `interval` ±10% (uniform jitter), each probe bounded by
// `timeout`. The first probe of a backend comes at a random point of its first
// interval, so a pool of 100 backends is not probed in one burst. `fall` failed probes
// in a row mark a backend down and `rise` successful ones bring it back (Backend::
// record_probe); a backend that comes back begins slow start and `on_up` is called
// with its pool's name (the server then looks for rooms to rehome).
//
// It follows generations (use_generation): backends that remain keep their state and
// their schedule, backends that appear are probed from then on, backends that go (or
// whose pool no longer has a health_check table) are no longer probed and go back to
// passive checks. A backend is identified by its Backend object, which a generation
// reuses for every (pool, address) that remains.
//
// Owned by the Server, main thread only. close() stops everything; the handles are
// freed by their close callbacks, so the checker must outlive one more loop run.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "health/probe.h"
#include "pool/generation.h"
#include "uv/block_pool.h"

namespace sb::health {

class HealthChecker {
  public:
    using OnUp = std::function<void(const std::string& pool)>;

    HealthChecker(uv_loop_t* loop, OnUp on_up);
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // Checks what `generation` asks for from now on.
    void use_generation(const pool::GenerationPtr& generation);
    // Stops every probe and timer (drain, shutdown). use_generation does nothing after.
    void close();

    // Backends being checked (for tests).
    size_t targets() const { return targets_.size(); }
    // Probes started since the checker was created (for tests and the cost figure).
    uint64_t probes_started() const { return probes_started_; }

  private:
    struct Target {
        HealthChecker* owner = nullptr;
        std::shared_ptr<pool::Backend> backend;
        const pool::Pool* pool = nullptr;  // of generation_
        uv_timer_t timer{};
        Probe* probe = nullptr;  // the probe in flight, if any
        bool due = false;        // the timer fired while a probe was in flight
        std::chrono::milliseconds interval{0};
    };

    void add(const std::shared_ptr<pool::Backend>& backend, const pool::Pool& pool);
    void remove(Target* t);
    void on_timer(Target& t);
    void start_probe(Target& t);
    void arm(Target& t, uint64_t delay_ms);
    uint64_t jittered(std::chrono::milliseconds interval);
    void on_result(Target& t, bool ok, const std::string& error, double latency_ms);

    static void on_timer_cb(uv_timer_t* timer) noexcept;
    static void on_target_closed(uv_handle_t* handle) noexcept;

    uv_loop_t* loop_;
    OnUp on_up_;
    pool::GenerationPtr generation_;
    // Targets by backend; a removed target is freed by its timer's close callback.
    std::map<const pool::Backend*, Target*> targets_;
    uv::BlockPool blocks_{16};
    std::mt19937_64 rng_;
    uint64_t probes_started_ = 0;
    bool closed_ = false;
};

}  // namespace sb::health
