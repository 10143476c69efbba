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
#include "http/router.h"
#include "pool/pool.h"

namespace sb::pool {

struct ListenerRuntime {
    explicit ListenerRuntime(const config::ListenerConfig& c) : config(c), router(c) {}
    const config::ListenerConfig& config;  // owned by the generation's Config
    http::Router router;
};

class Generation {
  public:
    // Builds generation `number` from `config`, reusing live backend state from
    // `previous` (may be null) for every (pool, address) pair that remains.
    static std::shared_ptr<const Generation> build(config::ConfigPtr config, uint64_t number,
                                                   const Generation* previous);

    const config::Config& config() const { return *config_; }
    const config::ConfigPtr& config_ptr() const { return config_; }
    uint64_t number() const { return number_; }

    const std::vector<std::unique_ptr<ListenerRuntime>>& listeners() const { return listeners_; }
    const ListenerRuntime* listener(const std::string& name) const;
    const Pool* pool(const std::string& name) const;
    const std::map<std::string, std::unique_ptr<Pool>>& pools() const { return pools_; }

  private:
    Generation() = default;

    config::ConfigPtr config_;
    uint64_t number_ = 0;
    std::vector<std::unique_ptr<ListenerRuntime>> listeners_;
    std::map<std::string, std::unique_ptr<Pool>> pools_;
};

using GenerationPtr = std::shared_ptr<const Generation>;

}  // namespace sb::pool
