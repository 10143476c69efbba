// Helpers shared by the admin tests: AdminSources over a generation built from inline
// TOML, as the Server builds them, with no workers and no sockets.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "admin/views.h"
#include "config/loader.h"
#include "pool/generation.h"

namespace sb::admin::test {

// One listener and one pool "chat" of three backends: enough for every admin path.
inline constexpr std::string_view kConfig = R"(
[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [ { address = "127.0.0.1:7001" }, { address = "127.0.0.1:7002" },
             { address = "127.0.0.1:7003" } ]
hash_key = "query:room"
)";

// What the sources read; tests change `draining` as they go.
struct State {
    pool::GenerationPtr generation;
    bool draining = false;
};

// Builds sources over `toml`; fails the current test (and returns sources over a null
// generation) when it does not load.
inline AdminSources make_sources(const std::shared_ptr<State>& state,
                                 std::string_view toml = kConfig) {
    auto loaded = config::load_string(toml, "admin-test.toml");
    EXPECT_TRUE(loaded.ok());
    if (loaded.ok()) {
        std::vector<config::ConfigError> errors;
        state->generation = pool::Generation::build(loaded.config, 1, nullptr, errors);
        EXPECT_TRUE(state->generation != nullptr);
    }
    AdminSources s;
    s.generation = [state] { return state->generation; };
    s.listeners = [] { return std::vector<ListenerAddress>{{"public", "127.0.0.1:8080"}}; };
    s.workers = [] { return std::vector<const metrics::WorkerStats*>{}; };
    s.draining = [state] { return state->draining; };
    s.reloads_ok = [] { return uint64_t{0}; };
    s.reloads_failed = [] { return uint64_t{0}; };
    return s;
}

}  // namespace sb::admin::test
