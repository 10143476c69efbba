// Parsers for the configuration's unit-bearing values: durations ("250ms", "1m30s")
// and sizes (16384, "16KiB", "1MiB"). Pure functions; errors are returned as text
// for the loader to attach a file position to.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.h"

namespace sb::config {

// Accepts one or more <integer><unit> groups, units ms, s, m, h (e.g. "90s", "1h30m",
// "0s"). Rejects a bare number, unknown units, signs and overflow.
std::variant<Duration, std::string> parse_duration(std::string_view text);

// Accepts <integer><unit> with unit B, KiB, MiB or GiB (binary multiples).
std::variant<uint64_t, std::string> parse_size(std::string_view text);

// "250ms", "10s", "5m", "1h": the shortest exact spelling, for logs and /status.
std::string format_duration(Duration d);

}  // namespace sb::config
