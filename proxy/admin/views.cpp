#include "admin/views.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "admin/json_text.h"
#include "config/units.h"
#include "config/validate.h"
#include "metrics/exposition.h"
#include "metrics/process_fds.h"
#include "version.h"

namespace sb::admin {

namespace {

using Json = nlohmann::ordered_json;

double uptime_seconds(const AdminSources& s) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count();
}

std::string algorithm_name(config::Algorithm a) {
    switch (a) {
        case config::Algorithm::Ring:
            return "ring";
        case config::Algorithm::Maglev:
            return "maglev";
        case config::Algorithm::LeastConnections:
            return "least_connections";
        case config::Algorithm::RoundRobin:
            return "round_robin";
    }
    return "ring";
}

std::string skip_name(pool::Skip s) {
    switch (s) {
        case pool::Skip::None:
            return "none";
        case pool::Skip::Down:
            return "down";
        case pool::Skip::Full:
            return "full";
        case pool::Skip::OverCap:
            return "over_cap";
        case pool::Skip::Tried:
            return "tried";
        case pool::Skip::SlowStart:
            return "slow_start";
        case pool::Skip::RateLimited:
            return "rate_limited";
    }
    return "none";
}

// Connections the pool shed (SPEC §3 Admission): for its own bucket, and for its
// backends' buckets.
uint64_t shed_total(const pool::Pool& pool) {
    uint64_t n = pool.admission()->shed.load(std::memory_order_relaxed);
    for (const auto& b : pool.backends())
        n += b->shed_total();
    return n;
}

Json admission_json(const pool::Pool& pool) {
    const auto& a = pool.config().admission;
    if (!a) return Json(nullptr);
    return {{"new_connections_per_second", a->new_connections_per_second},
            {"backend_new_connections_per_second", a->backend_new_connections_per_second},
            {"burst", a->burst},
            {"shed", a->shed == config::AdmissionConfig::Shed::Http503 ? "http_503" : "close_1013"},
            {"retry_after_seconds", std::chrono::duration<double>(a->retry_after).count()},
            {"shed_total", shed_total(pool)}};
}

std::string health_check_name(config::HealthCheckConfig::Kind k) {
    switch (k) {
        case config::HealthCheckConfig::Kind::Http:
            return "http";
        case config::HealthCheckConfig::Kind::Tcp:
            return "tcp";
        case config::HealthCheckConfig::Kind::WebSocket:
            return "websocket";
    }
    return "http";
}

std::string state_name(const pool::Backend& b) {
    if (!b.marked_down()) return "up";
    return b.is_up() ? "retrying" : "down";
}

// The active checks' view of a backend (SPEC §3 Health "Active"): state, whether active
// checks run on it, the last probe's result, error and latency, and how long ago.
Json health_json(const pool::Backend& b) {
    const auto& r = b.health_report();
    Json j;
    j["state"] = b.marked_down() ? "down" : "up";
    j["checked"] = b.actively_checked();
    j["last_result"] = r.checked ? Json(r.last_ok ? "ok" : "failed") : Json(nullptr);
    j["last_error"] = r.checked && !r.last_ok ? Json(r.last_error) : Json(nullptr);
    j["last_check_ms"] = r.checked ? Json(r.last_latency_ms) : Json(nullptr);
    j["checked_seconds_ago"] =
        r.checked
            ? Json(std::chrono::duration<double>(std::chrono::steady_clock::now() - r.checked_at)
                       .count())
            : Json(nullptr);
    j["consecutive_successes"] = r.successes;
    j["consecutive_failures"] = r.failures;
    return j;
}

// A backend's slow start: null outside it, else the elapsed fraction and what remains.
Json slow_start_json(const pool::Backend& b, const config::PoolConfig& c) {
    double fraction = b.slow_start_fraction(c.slow_start);
    if (fraction >= 1.0) return nullptr;
    auto remaining =
        static_cast<int64_t>((1.0 - fraction) * static_cast<double>(c.slow_start.count()));
    return Json{{"fraction", fraction}, {"remaining_ms", remaining}};
}

// Where rooms live, for the status page: the `limit` largest rooms of a table (most
// connections first, then by key) with their backend. One pass under each shard's lock,
// keeping the best `limit` in a heap, so a pool with many rooms costs O(rooms) compares
// and only `limit` copies.
constexpr size_t kListedRooms = 50;

Json largest_rooms(pool::RoomTable& table, size_t limit = kListedRooms) {
    struct Entry {
        uint32_t connections;
        std::string key;
        std::string backend;
    };
    auto better = [](uint32_t ca, std::string_view ka, uint32_t cb, std::string_view kb) {
        return ca != cb ? ca > cb : ka < kb;
    };
    auto heap_order = [&](const Entry& a, const Entry& b) {
        return better(a.connections, a.key, b.connections, b.key);
    };
    std::vector<Entry> heap;  // front: the worst of the best `limit` so far
    table.for_each([&](const std::string& key, const pool::Room& room) {
        if (limit == 0) return;
        if (heap.size() == limit) {
            if (!better(room.connections, key, heap.front().connections, heap.front().key)) return;
            std::pop_heap(heap.begin(), heap.end(), heap_order);
            heap.pop_back();
        }
        heap.push_back({room.connections, key, room.backend ? room.backend->address() : ""});
        std::push_heap(heap.begin(), heap.end(), heap_order);
    });
    std::sort_heap(heap.begin(), heap.end(), heap_order);
    Json rooms = Json::array();
    for (const auto& e : heap)
        rooms.push_back({{"key", e.key}, {"backend", e.backend}, {"connections", e.connections}});
    return rooms;
}

// Per-listener and per-pool sums over the workers' counters.
struct Totals {
    struct Listener {
        int64_t active = 0;
        uint64_t total = 0;
        std::array<uint64_t, metrics::kCloseReasonCount> rejections{};
    };
    struct Pool {
        uint64_t bytes[2] = {0, 0};
        uint64_t messages[2] = {0, 0};
        std::vector<uint64_t> buckets =
            std::vector<uint64_t>(metrics::Histogram::kBounds.size() + 1);
        double sum = 0;
        uint64_t requests[5] = {0, 0, 0, 0, 0};  // HTTP, by status class
        std::vector<uint64_t> request_buckets =
            std::vector<uint64_t>(metrics::Histogram::kBounds.size() + 1);
        double request_sum = 0;
        uint64_t backend_connections[2] = {0, 0};  // new, reused
        uint64_t total_requests() const {
            return requests[0] + requests[1] + requests[2] + requests[3] + requests[4];
        }
    };
    std::map<std::string, Listener> listeners;
    std::map<std::string, Pool> pools;
    std::map<metrics::CloseKey, uint64_t> closes;
    std::array<uint64_t, metrics::kCloseReasonCount> ends{};
    uint64_t pauses = 0;
    uint64_t resumes = 0;
};

Totals sum_workers(const AdminSources& sources) {
    Totals t;
    for (const metrics::WorkerStats* w : sources.workers()) {
        w->for_each_listener([&](const std::string& name, const metrics::ListenerStats& s) {
            auto& l = t.listeners[name];
            l.active += s.active.value();
            l.total += s.total.value();
            for (size_t i = 0; i < metrics::kCloseReasonCount; ++i)
                l.rejections[i] += s.rejections[i].value();
        });
        w->for_each_pool([&](const std::string& name, const metrics::PoolStats& s) {
            auto& p = t.pools[name];
            for (int d = 0; d < 2; ++d) {
                p.bytes[d] += s.bytes[static_cast<size_t>(d)].value();
                p.messages[d] += s.messages[static_cast<size_t>(d)].value();
            }
            for (size_t i = 0; i < p.buckets.size(); ++i)
                p.buckets[i] += s.handshake.bucket(i);
            p.sum += s.handshake.sum();
            for (size_t i = 0; i < 5; ++i)
                p.requests[i] += s.http_requests[i].value();
            for (size_t i = 0; i < p.request_buckets.size(); ++i)
                p.request_buckets[i] += s.http_duration.bucket(i);
            p.request_sum += s.http_duration.sum();
            for (size_t i = 0; i < 2; ++i)
                p.backend_connections[i] += s.http_backend[i].value();
        });
        w->for_each_close([&](const metrics::CloseKey& key, uint64_t n) { t.closes[key] += n; });
        for (size_t i = 0; i < metrics::kCloseReasonCount; ++i)
            t.ends[i] += w->ends[i].value();
        t.pauses += w->pauses.value();
        t.resumes += w->resumes.value();
    }
    return t;
}

const char* direction_name(int d) {
    return d == 0 ? "client_to_backend" : "backend_to_client";
}

}  // namespace

std::string metrics_text(const AdminSources& sources) {
    auto generation = sources.generation();
    Totals t = sum_workers(sources);
    metrics::Exposition e;

    e.family("switchboard_build_info", "gauge", "Version of the running switchboard.");
    e.sample("switchboard_build_info", {{"version", SB_VERSION}}, uint64_t{1});
    e.family("switchboard_uptime_seconds", "gauge", "Seconds since the process started.");
    e.sample("switchboard_uptime_seconds", {}, uptime_seconds(sources));
    e.family("switchboard_config_generation", "gauge",
             "Number of the configuration in use (1 at start, +1 per reload).");
    e.sample("switchboard_config_generation", {}, generation->number());
    e.family("switchboard_draining", "gauge", "1 while draining after SIGTERM/SIGINT.");
    e.sample("switchboard_draining", {}, uint64_t{sources.draining() ? 1u : 0u});
    e.family("switchboard_config_reloads_total", "counter", "Configuration reloads by result.");
    e.sample("switchboard_config_reloads_total", {{"result", "ok"}}, sources.reloads_ok());
    e.sample("switchboard_config_reloads_total", {{"result", "failed"}}, sources.reloads_failed());

    e.family("switchboard_connections_active", "gauge",
             "Client connections open now, by listener.");
    for (const auto& [name, l] : t.listeners)
        e.sample("switchboard_connections_active", {{"listener", name}}, l.active);
    e.family("switchboard_connections_total", "counter",
             "Client connections accepted, by listener.");
    for (const auto& [name, l] : t.listeners)
        e.sample("switchboard_connections_total", {{"listener", name}}, l.total);
    // The configured limits (0 = none), so that alerts can compare connections with them.
    e.family("switchboard_server_max_connections", "gauge",
             "Configured server.max_connections over all listeners (0 = no limit).");
    e.sample("switchboard_server_max_connections", {}, generation->config().server.max_connections);
    e.family("switchboard_listener_max_connections", "gauge",
             "Configured max_connections of the listener (0 = no limit).");
    for (const auto& l : generation->listeners()) {
        e.sample("switchboard_listener_max_connections", {{"listener", l->config.name}},
                 l->config.max_connections);
    }
    const metrics::FdUsage fds = metrics::process_fds();
    e.family("switchboard_open_fds", "gauge", "File descriptors open now.");
    e.sample("switchboard_open_fds", {}, fds.open);
    e.family("switchboard_max_fds", "gauge", "File descriptor limit (soft RLIMIT_NOFILE).");
    e.sample("switchboard_max_fds", {}, fds.max);
    e.family("switchboard_rejections_total", "counter",
             "Connections refused before relaying, by listener and reason.");
    for (const auto& [name, l] : t.listeners) {
        for (size_t i = 0; i < metrics::kCloseReasonCount; ++i) {
            const auto& info = metrics::info(static_cast<metrics::CloseReason>(i));
            if (!info.refusal) continue;
            e.sample("switchboard_rejections_total",
                     {{"listener", name}, {"reason", std::string(info.label)}}, l.rejections[i]);
        }
    }
    e.family("switchboard_connections_ended_total", "counter",
             "Client connections ended, by reason.");
    for (size_t i = 0; i < metrics::kCloseReasonCount; ++i) {
        const auto& info = metrics::info(static_cast<metrics::CloseReason>(i));
        e.sample("switchboard_connections_ended_total", {{"reason", std::string(info.label)}},
                 t.ends[i]);
    }
    e.family("switchboard_closes_total", "counter",
             "WebSocket connections ended, by close code (0 = none) and the side that closed.");
    for (const auto& [key, n] : t.closes) {
        e.sample("switchboard_closes_total",
                 {{"code", std::to_string(key.code)},
                  {"side", std::string(metrics::side_name(key.side))}},
                 n);
    }

    e.family("switchboard_handshake_duration_seconds", "histogram",
             "Time from the first backend connect attempt to the backend's answer, by pool.");
    std::vector<double> bounds(metrics::Histogram::kBounds.begin(),
                               metrics::Histogram::kBounds.end());
    for (const auto& [name, p] : t.pools) {
        e.histogram("switchboard_handshake_duration_seconds", {{"pool", name}}, bounds, p.buckets,
                    p.sum);
    }
    e.family("switchboard_http_requests_total", "counter",
             "Plain HTTP requests answered, by pool and status class.");
    for (const auto& [name, p] : t.pools) {
        for (size_t i = 0; i < 5; ++i) {
            e.sample("switchboard_http_requests_total",
                     {{"pool", name}, {"class", std::to_string(i + 1) + "xx"}}, p.requests[i]);
        }
    }
    e.family("switchboard_http_request_duration_seconds", "histogram",
             "Plain HTTP requests: from the complete request head to the answer's end, by pool.");
    for (const auto& [name, p] : t.pools) {
        e.histogram("switchboard_http_request_duration_seconds", {{"pool", name}}, bounds,
                    p.request_buckets, p.request_sum);
    }
    e.family("switchboard_http_backend_connections_total", "counter",
             "Backend connections plain HTTP requests went out on, by pool: opened for the "
             "request (new) or taken from the idle set (reused).");
    for (const auto& [name, p] : t.pools) {
        e.sample("switchboard_http_backend_connections_total", {{"pool", name}, {"reuse", "new"}},
                 p.backend_connections[0]);
        e.sample("switchboard_http_backend_connections_total",
                 {{"pool", name}, {"reuse", "reused"}}, p.backend_connections[1]);
    }
    e.family("switchboard_bytes_total", "counter", "Bytes relayed, by pool and direction.");
    for (const auto& [name, p] : t.pools) {
        for (int d = 0; d < 2; ++d) {
            e.sample("switchboard_bytes_total", {{"pool", name}, {"direction", direction_name(d)}},
                     p.bytes[d]);
        }
    }
    e.family("switchboard_messages_total", "counter",
             "WebSocket data messages relayed, by pool and direction.");
    for (const auto& [name, p] : t.pools) {
        for (int d = 0; d < 2; ++d) {
            e.sample("switchboard_messages_total",
                     {{"pool", name}, {"direction", direction_name(d)}}, p.messages[d]);
        }
    }
    e.family("switchboard_backpressure_pauses_total", "counter",
             "Times a relay stopped reading because its destination was slow.");
    e.sample("switchboard_backpressure_pauses_total", {}, t.pauses);
    e.family("switchboard_backpressure_resumes_total", "counter",
             "Times a paused relay resumed reading.");
    e.sample("switchboard_backpressure_resumes_total", {}, t.resumes);

    e.family("switchboard_rooms", "gauge", "Keys with live connections (rooms), by pool.");
    for (const auto& [name, pool] : generation->pools()) {
        e.sample("switchboard_rooms", {{"pool", name}},
                 static_cast<uint64_t>(pool->rooms()->size()));
    }
    e.family("switchboard_pool_backends", "gauge",
             "Backends in the pool now (literal addresses and resolved records), by pool.");
    for (const auto& [name, pool] : generation->pools()) {
        e.sample("switchboard_pool_backends", {{"pool", name}},
                 static_cast<uint64_t>(pool->backends().size()));
    }
    auto names = sources.discovery ? sources.discovery() : std::vector<discovery::NameStatus>{};
    e.family("switchboard_dns_lookups_total", "counter",
             "DNS lookups of backend names and SRV names, by pool, name and result "
             "(ok, error, nxdomain, empty).");
    for (const auto& n : names) {
        for (size_t i = 0; i < discovery::kOutcomeCount; ++i) {
            e.sample("switchboard_dns_lookups_total",
                     {{"pool", n.pool},
                      {"name", n.name},
                      {"result", discovery::outcome_name(static_cast<discovery::Outcome>(i))}},
                     n.lookups[i]);
        }
    }
    e.family("switchboard_backend_up", "gauge",
             "1 if the backend is up, 0 if marked down, by pool and backend.");
    for (const auto& [name, pool] : generation->pools()) {
        for (const auto& b : pool->backends()) {
            e.sample("switchboard_backend_up", {{"pool", name}, {"backend", b->address()}},
                     uint64_t{b->marked_down() ? 0u : 1u});
        }
    }
    e.family("switchboard_backend_health_checks_total", "counter",
             "Active health check probes, by pool, backend and result (ok, failed).");
    for (const auto& [name, pool] : generation->pools()) {
        if (!pool->config().active_health_check) continue;
        for (const auto& b : pool->backends()) {
            const auto& r = b->health_report();
            e.sample("switchboard_backend_health_checks_total",
                     {{"pool", name}, {"backend", b->address()}, {"result", "ok"}}, r.ok_total);
            e.sample("switchboard_backend_health_checks_total",
                     {{"pool", name}, {"backend", b->address()}, {"result", "failed"}},
                     r.failed_total);
        }
    }
    e.family("switchboard_backend_health_check_seconds", "gauge",
             "How long the backend's last active health check took.");
    for (const auto& [name, pool] : generation->pools()) {
        if (!pool->config().active_health_check) continue;
        for (const auto& b : pool->backends()) {
            const auto& r = b->health_report();
            if (!r.checked) continue;
            e.sample("switchboard_backend_health_check_seconds",
                     {{"pool", name}, {"backend", b->address()}}, r.last_latency_ms / 1000.0);
        }
    }
    e.family("switchboard_backend_slow_start", "gauge",
             "Fraction of the backend's slow-start window elapsed (1 when not in slow start).");
    for (const auto& [name, pool] : generation->pools()) {
        for (const auto& b : pool->backends()) {
            e.sample("switchboard_backend_slow_start", {{"pool", name}, {"backend", b->address()}},
                     b->slow_start_fraction(pool->config().slow_start));
        }
    }
    e.family("switchboard_backend_active_connections", "gauge",
             "Connections placed on the backend now (handshakes included).");
    for (const auto& [name, pool] : generation->pools()) {
        for (const auto& b : pool->backends()) {
            e.sample("switchboard_backend_active_connections",
                     {{"pool", name}, {"backend", b->address()}}, b->active());
        }
    }
    e.family("switchboard_backend_max_connections", "gauge",
             "Configured max_connections_per_backend of the pool (0 = no limit).");
    for (const auto& [name, pool] : generation->pools()) {
        e.sample("switchboard_backend_max_connections", {{"pool", name}},
                 pool->config().max_connections_per_backend);
    }
    e.family("switchboard_backend_connections_total", "counter",
             "WebSocket connections relayed to the backend.");
    for (const auto& [name, pool] : generation->pools()) {
        for (const auto& b : pool->backends()) {
            e.sample("switchboard_backend_connections_total",
                     {{"pool", name}, {"backend", b->address()}}, b->total());
        }
    }
    e.family("switchboard_backend_connect_failures_total", "counter",
             "Failed connect attempts to the backend.");
    for (const auto& [name, pool] : generation->pools()) {
        for (const auto& b : pool->backends()) {
            e.sample("switchboard_backend_connect_failures_total",
                     {{"pool", name}, {"backend", b->address()}}, b->connect_failures());
        }
    }
    e.family("switchboard_admission_shed_total", "counter",
             "New connections shed by admission control, by the bucket that was empty: the "
             "pool's (pool_rate) or the backend's (backend_rate).");
    for (const auto& [name, pool] : generation->pools()) {
        if (!pool->config().admission) continue;
        e.sample("switchboard_admission_shed_total",
                 {{"pool", name}, {"backend", ""}, {"reason", "pool_rate"}},
                 pool->admission()->shed.load(std::memory_order_relaxed));
        for (const auto& b : pool->backends()) {
            e.sample("switchboard_admission_shed_total",
                     {{"pool", name}, {"backend", b->address()}, {"reason", "backend_rate"}},
                     b->shed_total());
        }
    }
    return e.text();
}

std::string status_json(const AdminSources& sources) {
    auto generation = sources.generation();
    Totals t = sum_workers(sources);
    Json j;
    j["version"] = SB_VERSION;
    j["uptime_seconds"] = uptime_seconds(sources);
    j["generation"] = generation->number();
    j["draining"] = sources.draining();
    j["workers"] = sources.workers().size();
    Json listeners = Json::array();
    auto addresses = sources.listeners();
    for (const auto& l : generation->listeners()) {
        const auto& c = l->config;
        std::string address = c.listen.to_string();
        for (const auto& a : addresses) {
            if (a.name == c.name) address = a.address;
        }
        const auto& totals = t.listeners[c.name];
        listeners.push_back({{"name", c.name},
                             {"address", address},
                             {"tls", c.tls.has_value()},
                             {"default_pool", c.pool.empty() ? Json(nullptr) : Json(c.pool)},
                             {"active_connections", totals.active},
                             {"total_connections", totals.total}});
    }
    j["listeners"] = listeners;
    auto names = sources.discovery ? sources.discovery() : std::vector<discovery::NameStatus>{};
    Json pools = Json::array();
    for (const auto& [name, pool] : generation->pools()) {
        const auto& c = pool->config();
        auto shares = pool->table()->shares();
        Json backends = Json::array();
        for (size_t i = 0; i < pool->backends().size(); ++i) {
            const auto& b = pool->backends()[i];
            backends.push_back({{"address", b->address()},
                                {"state", state_name(*b)},
                                {"weight", pool->weight(i)},
                                {"active_connections", b->active()},
                                {"total_connections", b->total()},
                                {"connect_failures", b->connect_failures()},
                                {"shed_total", b->shed_total()},
                                {"share", shares.empty() ? Json(nullptr) : Json(shares[i])},
                                {"source", pool->source(i)},
                                {"health", health_json(*b)},
                                {"slow_start", slow_start_json(*b, c)}});
        }
        // DNS discovery: one object per discovered name of this pool.
        Json discovery = Json::array();
        for (const auto& n : names) {
            if (n.pool != name) continue;
            Json records = Json::array();
            for (const auto& r : n.records) {
                records.push_back(
                    {{"address", r.address.to_string()}, {"weight", r.weight}, {"host", r.host}});
            }
            Json lookups = Json::object();
            for (size_t k = 0; k < discovery::kOutcomeCount; ++k) {
                lookups[discovery::outcome_name(static_cast<discovery::Outcome>(k))] = n.lookups[k];
            }
            discovery.push_back(
                {{"name", n.name},
                 {"kind", n.srv ? "srv" : "name"},
                 {"last_result",
                  n.looked_up ? Json(discovery::outcome_name(n.last)) : Json(nullptr)},
                 {"last_error", n.last_error.empty() ? Json(nullptr) : Json(n.last_error)},
                 {"empty_in_a_row", n.empty_streak},
                 {"seconds_since_lookup",
                  n.seconds_since_lookup < 0 ? Json(nullptr) : Json(n.seconds_since_lookup)},
                 {"lookups", lookups},
                 {"records", records}});
        }
        const auto& totals = t.pools[name];
        pools.push_back(
            {{"name", name},
             {"algorithm", algorithm_name(c.algorithm)},
             {"hash_key", config::hash_key_to_string(c.hash_key)},
             {"load_factor", c.load_factor},
             {"rehome", c.rehome},
             {"tls", c.tls.has_value()},
             {"health_check",
              c.active_health_check ? Json(health_check_name(c.health_check.kind)) : Json(nullptr)},
             {"slow_start_ms", c.slow_start.count()},
             {"rooms", pool->rooms()->size()},
             {"largest_rooms", largest_rooms(*pool->rooms())},
             {"bytes",
              {{"client_to_backend", totals.bytes[0]}, {"backend_to_client", totals.bytes[1]}}},
             {"messages",
              {{"client_to_backend", totals.messages[0]},
               {"backend_to_client", totals.messages[1]}}},
             {"http_requests", totals.total_requests()},
             {"admission", admission_json(*pool)},
             {"backends", backends},
             {"discovery", discovery}});
    }
    j["pools"] = pools;
    return json_text(j, 2);
}

std::string route_json(const AdminSources& sources, const std::string& pool_name,
                       const std::string& key, bool& found) {
    auto generation = sources.generation();
    const pool::Pool* pool = generation->pool(pool_name);
    found = pool != nullptr;
    if (pool == nullptr)
        return json_text(Json{{"error", "no pool named \"" + pool_name + "\""}}, 2);
    auto r = pool->describe(key);
    auto address = [](const pool::Backend* b) { return b ? Json(b->address()) : Json(nullptr); };
    Json preference = Json::array();
    for (const auto& c : r.preference) {
        preference.push_back(
            {{"backend", c.backend->address()},
             {"state", state_name(*c.backend)},
             {"active_connections", c.backend->active()},
             {"skipped", c.skip == pool::Skip::None ? Json(nullptr) : Json(skip_name(c.skip))}});
    }
    Json j;
    j["pool"] = pool_name;
    j["key"] = key;
    char hash[20];
    std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(r.hash));
    j["hash"] = hash;
    j["backend"] = address(r.chosen);
    // least_connections and round_robin give a key no home: no room to report.
    j["keyed"] = r.keyed;
    j["room"] = r.keyed ? Json{{"active", r.room_active},
                               {"connections", r.room_connections},
                               {"backend", address(r.room_backend)}}
                        : Json(nullptr);
    j["load_cap"] = pool->load_cap();
    // Admission: whether a connection with this key would be shed now, or placed
    // past its first choice, for want of a token.
    j["rate_limited"] = r.rate_limited;
    j["pool_rate_limited"] = r.pool_rate_limited;
    j["preference"] = preference;
    return json_text(j, 2);
}

std::string live_json(const AdminSources& sources) {
    auto generation = sources.generation();
    Totals t = sum_workers(sources);
    Json j;
    j["uptime_seconds"] = uptime_seconds(sources);
    j["generation"] = generation->number();
    j["draining"] = sources.draining();
    Json listeners = Json::object();
    for (const auto& [name, l] : t.listeners) {
        uint64_t rejected = 0;
        for (auto n : l.rejections)
            rejected += n;
        listeners[name] = {{"active", l.active}, {"total", l.total}, {"rejected", rejected}};
    }
    j["listeners"] = listeners;
    Json pools = Json::object();
    for (const auto& [name, pool] : generation->pools()) {
        const auto& p = t.pools[name];
        Json backends = Json::object();
        for (const auto& b : pool->backends()) {
            const auto& r = b->health_report();
            double slow = b->slow_start_fraction(pool->config().slow_start);
            backends[b->address()] = {
                {"state", state_name(*b)},
                {"active", b->active()},
                {"last_error", r.checked && !r.last_ok ? Json(r.last_error) : Json(nullptr)},
                {"health", health_json(*b)},
                {"slow_start", slow >= 1.0 ? Json(nullptr) : Json(slow)}};
        }
        pools[name] = {{"messages", p.messages[0] + p.messages[1]},
                       {"requests", p.total_requests()},
                       {"bytes", p.bytes[0] + p.bytes[1]},
                       {"rooms", pool->rooms()->size()},
                       {"largest_rooms", largest_rooms(*pool->rooms())},
                       {"shed", shed_total(*pool)},
                       {"backends", backends}};
    }
    j["pools"] = pools;
    return json_text(j);
}

}  // namespace sb::admin
