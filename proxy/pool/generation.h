// Generation: everything one loaded configuration file turns into at run time:
// the Config itself, each listener's router, and each pool with its backends.
//
// Built on the main thread, then immutable and shared (shared_ptr<const Generation>)
// by every worker; each session holds the generation it started on, so a reload
// never changes the rules under an established connection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/decoder.h"
#include "discovery/record.h"
#include "http/router.h"
#include "limits/address_rates.h"
#include "limits/counter.h"
#include "pool/pool.h"
#include "tls/context.h"

namespace sb::pool {

// A listener's connection counters: kept across generations by listener name, so a
// reload that changes a limit applies it to the connections already counted.
struct ListenerCounters {
    limits::SlotCounter connections;
    limits::PerKeyCounter per_ip;
    limits::AddressRates connect_rates;  // max_connects_per_ip_per_second
};

struct ListenerRuntime {
    ListenerRuntime(const config::ListenerConfig& c, std::shared_ptr<ListenerCounters> shared)
        : config(c), router(c), counters(std::move(shared)) {}
    const config::ListenerConfig& config;  // owned by the generation's Config
    http::Router router;
    std::shared_ptr<ListenerCounters> counters;
    std::shared_ptr<tls::ServerContext> tls;  // null for plain TCP
};

class Generation {
  public:
    // Builds generation `number` from `config`, reusing live backend state from
    // `previous` (may be null) for every (pool, "ip:port") pair that remains, and loading
    // every certificate. Returns null with `errors` (positioned in the file) when a
    // certificate or CA file does not load, or when the access log could not be opened
    // (its directory is missing or not a directory; nothing is created here).
    //
    // `discovered` holds the current records of the entries given by DNS name or SRV
    // (null or a missing entry = no records yet: that entry adds no backend). Every
    // backend, literal or resolved, is identified and placed by its "ip:port"; an
    // address two entries share is one backend (the first entry's weight). A pool with
    // a discovered entry orders its backends by address, so the table does not depend
    // on which names found them.
    //
    // A build from the same Config as `previous` (a DNS change, not a reload) reuses
    // its certificates instead of loading them again.
    static std::shared_ptr<const Generation> build(
        config::ConfigPtr config, uint64_t number, const Generation* previous,
        std::vector<config::ConfigError>& errors,
        const discovery::Discovered* discovered = nullptr);

    const config::Config& config() const { return *config_; }
    const config::ConfigPtr& config_ptr() const { return config_; }
    uint64_t number() const { return number_; }

    const std::vector<std::unique_ptr<ListenerRuntime>>& listeners() const { return listeners_; }
    const ListenerRuntime* listener(const std::string& name) const;
    const Pool* pool(const std::string& name) const;
    const std::map<std::string, std::unique_ptr<Pool>>& pools() const { return pools_; }
    // Client connections over all listeners (server.max_connections), shared by every
    // generation.
    limits::SlotCounter& server_connections() const { return *server_connections_; }

  private:
    Generation() = default;

    config::ConfigPtr config_;
    uint64_t number_ = 0;
    std::vector<std::unique_ptr<ListenerRuntime>> listeners_;
    std::map<std::string, std::unique_ptr<Pool>> pools_;
    std::shared_ptr<limits::SlotCounter> server_connections_;
};

using GenerationPtr = std::shared_ptr<const Generation>;

}  // namespace sb::pool
