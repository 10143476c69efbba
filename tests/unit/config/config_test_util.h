// Helpers shared by the config tests: load inline TOML and match errors by position.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>

#include "config/loader.h"

namespace sb::config {

// GoogleTest prints errors in the one format users see.
inline void PrintTo(const ConfigError& e, std::ostream* os) {
    *os << e.to_string();
}

namespace test {

// Loads inline TOML as "test.toml". One leading newline is dropped, so that a raw
// string literal may start on its own line and still have its first line be line 1.
inline LoadResult load(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    return load_string(text, "test.toml");
}

// All errors, one per line, for failure messages.
inline std::string dump(const LoadResult& result) {
    std::string out;
    for (const auto& e : result.errors)
        out += e.to_string() + "\n";
    return out;
}

// Matches a ConfigError at LINE:COLUMN whose message matches `message`.
inline ::testing::Matcher<const ConfigError&> ErrorAt(
    unsigned line, unsigned column, ::testing::Matcher<const std::string&> message) {
    return ::testing::AllOf(::testing::Field("line", &ConfigError::line, line),
                            ::testing::Field("column", &ConfigError::column, column),
                            ::testing::Field("message", &ConfigError::message, message));
}

// Matches a ConfigError anywhere whose message matches `message`.
inline ::testing::Matcher<const ConfigError&> ErrorSays(
    ::testing::Matcher<const std::string&> message) {
    return ::testing::Field("message", &ConfigError::message, message);
}

// Whether the schema implements `path` ("pools.NAME.websocket.ping_interval") and
// every table above it that schema_keys() lists. The tree implements the SPEC one
// feature at a time; until then a feature's keys are rejected as "not supported yet"
// (LoaderErrorsTest.EveryKeyNotSupportedYetIsRejectedByName checks that), and the
// tests of their values skip themselves until the feature lands.
inline bool supported(std::string_view path) {
    bool found = false;
    for (const auto& key : schema_keys()) {
        std::string_view p = key.path;
        bool is_path_or_above =
            p == path ||
            (path.size() > p.size() && path.substr(0, p.size()) == p && path[p.size()] == '.');
        if (is_path_or_above) {
            if (!key.supported) return false;
            found = found || p == path;
        }
    }
    // Top-level tables are not in the schema list; [admin] is the one that can be
    // missing, so ask the loader itself.
    if (path == "admin" || path.substr(0, 6) == "admin.") {
        auto probe = load_string(
            "[admin]\nlisten = \"127.0.0.1:1\"\n[[listeners]]\nname = \"a\"\nlisten = "
            "\"127.0.0.1:2\"\n",
            "probe.toml");
        if (!probe.ok()) return false;
        found = found || path == "admin";
    }
    EXPECT_TRUE(found) << "no configuration key " << path;
    return found;
}

}  // namespace test
}  // namespace sb::config

// Skips the current test while `path` is not supported yet (see test::supported).
#define SB_SKIP_UNLESS_SUPPORTED(path)                                      \
    do {                                                                    \
        if (!::sb::config::test::supported(path)) {                         \
            GTEST_SKIP() << (path) << " is not supported yet in this tree"; \
        }                                                                   \
    } while (false)
