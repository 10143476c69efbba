// The admin listener's answers, built from a snapshot of the running process: the
// Prometheus metrics text, the /status and /route JSON documents, and the live
// snapshot pushed to the status page. Pure functions of AdminSources; the admin
// server (main thread) calls them at request time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "discovery/name_state.h"
#include "metrics/worker_stats.h"
#include "pool/generation.h"

namespace sb::admin {

struct ListenerAddress {
    std::string name;
    std::string address;  // as bound
};

// What the admin listener reads. Every function is called on the main thread.
struct AdminSources {
    std::function<pool::GenerationPtr()> generation;
    std::function<std::vector<ListenerAddress>()> listeners;
    std::function<std::vector<const metrics::WorkerStats*>()> workers;
    std::function<bool()> draining;
    std::function<uint64_t()> reloads_ok;
    std::function<uint64_t()> reloads_failed;
    // Each discovered name's state (DNS discovery); unset = none.
    std::function<std::vector<discovery::NameStatus>()> discovery;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

std::string metrics_text(const AdminSources& sources);
std::string status_json(const AdminSources& sources);
// `pool` and `key` as decoded from the query string. Sets `found` false (and returns
// an error document) when the pool does not exist.
std::string route_json(const AdminSources& sources, const std::string& pool, const std::string& key,
                       bool& found);
// The compact snapshot the status page receives every second (server-sent events).
std::string live_json(const AdminSources& sources);

}  // namespace sb::admin
