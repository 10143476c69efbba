#include "health/health_checker.h"

#include <algorithm>
#include <set>

#include "log/logger.h"

namespace sb::health {

HealthChecker::HealthChecker(uv_loop_t* loop, OnUp on_up)
    : loop_(loop), on_up_(std::move(on_up)), rng_(std::random_device{}()) {}

HealthChecker::~HealthChecker() {
    // close() must have run and the loop turned since; a target still here would be
    // freed twice otherwise, so only targets whose handle never opened are dropped.
    for (auto& [backend, t] : targets_) {
        if (t->timer.loop == nullptr) delete t;
    }
}

void HealthChecker::close() {
    closed_ = true;
    while (!targets_.empty())
        remove(targets_.begin()->second);
    generation_.reset();
}

void HealthChecker::use_generation(const pool::GenerationPtr& generation) {
    if (closed_) return;
    generation_ = generation;
    std::set<const pool::Backend*> wanted;
    for (const auto& [name, pool] : generation->pools()) {
        if (!pool->config().active_health_check) continue;
        for (const auto& backend : pool->backends()) {
            wanted.insert(backend.get());
            auto it = targets_.find(backend.get());
            if (it == targets_.end()) {
                add(backend, *pool);
                continue;
            }
            Target& t = *it->second;
            t.pool = pool.get();
            auto interval = pool->config().health_check.interval;
            if (interval < t.interval && t.probe == nullptr) {
                // A shorter interval applies now, not after the old, longer wait.
                arm(t, std::uniform_int_distribution<uint64_t>(
                           0, static_cast<uint64_t>(interval.count()))(rng_));
            }
            t.interval = interval;
        }
    }
    std::vector<Target*> gone;
    for (const auto& [backend, t] : targets_) {
        if (!wanted.count(backend)) gone.push_back(t);
    }
    for (Target* t : gone)
        remove(t);
}

void HealthChecker::add(const std::shared_ptr<pool::Backend>& backend, const pool::Pool& pool) {
    auto* t = new Target();
    t->owner = this;
    t->backend = backend;
    t->pool = &pool;
    t->interval = pool.config().health_check.interval;
    uv_timer_init(loop_, &t->timer);
    t->timer.data = t;
    targets_[backend.get()] = t;
    backend->set_actively_checked(true);
    // The first probe at a random point of the first interval: spread, not a burst.
    arm(*t, std::uniform_int_distribution<uint64_t>(
                0, static_cast<uint64_t>(t->interval.count()))(rng_));
}

void HealthChecker::remove(Target* t) {
    targets_.erase(t->backend.get());
    if (t->probe != nullptr) {
        t->probe->abort();
        t->probe = nullptr;
    }
    // Back to passive checks, unless the process is stopping (nothing places then).
    if (!closed_) t->backend->set_actively_checked(false);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->timer), &HealthChecker::on_target_closed);
}

void HealthChecker::on_target_closed(uv_handle_t* handle) noexcept {
    delete static_cast<Target*>(handle->data);
}

uint64_t HealthChecker::jittered(std::chrono::milliseconds interval) {
    // interval ±10%, uniform.
    double factor = std::uniform_real_distribution<double>(0.9, 1.1)(rng_);
    return static_cast<uint64_t>(static_cast<double>(interval.count()) * factor);
}

void HealthChecker::arm(Target& t, uint64_t delay_ms) {
    uv_timer_stop(&t.timer);
    uv_timer_start(&t.timer, &HealthChecker::on_timer_cb, delay_ms, 0);
}

void HealthChecker::on_timer_cb(uv_timer_t* timer) noexcept {
    auto* t = static_cast<Target*>(timer->data);
    t->owner->on_timer(*t);
}

void HealthChecker::on_timer(Target& t) {
    if (t.probe != nullptr) {
        // timeout <= interval, but jitter can bring the next turn before the last
        // probe's timeout: start it as soon as that one ends.
        t.due = true;
        return;
    }
    start_probe(t);
}

void HealthChecker::start_probe(Target& t) {
    const pool::Pool& pool = *t.pool;
    const auto& c = pool.config();
    ProbeTarget target;
    target.check = c.health_check;
    target.proxy_protocol = c.proxy_protocol;
    target.host = t.backend->address();
    target.address = t.backend->resolved();
    if (const tls::ClientContext* tls = pool.tls()) {
        target.tls = tls->context();
        const auto& tc = tls->config();
        // The name a relayed connection checks (session_handshake.cpp): server_name,
        // else the DNS name the backend was found under, else its IP. With the IP
        // alone, every backend found by name would fail its probes under verify.
        target.tls_name = !tc.server_name.empty()      ? tc.server_name
                          : !t.backend->host().empty() ? t.backend->host()
                                                       : t.backend->resolved().ip_string();
        target.tls_verify = tc.verify;
    }
    target.keep = generation_;
    ++probes_started_;
    arm(t, jittered(t.interval));
    Target* tp = &t;
    t.probe = Probe::start(loop_, blocks_, rng_, std::move(target),
                           [tp](bool ok, const std::string& error, double latency_ms) {
                               tp->owner->on_result(*tp, ok, error, latency_ms);
                           });
}

void HealthChecker::on_result(Target& t, bool ok, const std::string& error, double latency_ms) {
    t.probe = nullptr;
    const auto& c = t.pool->config();
    pool::Backend& b = *t.backend;
    auto transition = b.record_probe(ok, c.health_check.rise, c.health_check.fall);
    auto& report = b.health_report();
    report.checked = true;
    report.last_ok = ok;
    report.last_error = ok ? "" : error;
    report.last_latency_ms = latency_ms;
    report.checked_at = std::chrono::steady_clock::now();
    if (!ok) {
        log::debug("health check failed",
                   {{"pool", c.name}, {"backend", b.address()}, {"cause", error}});
    }
    if (transition == pool::Backend::Transition::WentDown) {
        log::warn(
            "backend marked down",
            {{"pool", c.name}, {"backend", b.address()}, {"cause", "health check: " + error}});
    } else if (transition == pool::Backend::Transition::CameUp) {
        log::info("backend up again",
                  {{"pool", c.name},
                   {"backend", b.address()},
                   {"cause",
                    "health check passed " + std::to_string(c.health_check.rise) + "x in a row"}});
        if (on_up_) on_up_(c.name);
    }
    if (t.due && !closed_) {
        t.due = false;
        start_probe(t);
    }
}

}  // namespace sb::health
