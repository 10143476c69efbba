// prescan(): bounds on the shape of a configuration file's text, checked before toml11
// parses it.
//
// Debian's toml11 3.7 parses arrays and inline tables by recursion (about 1,200 nested
// levels overflow an 8 MiB stack, fewer under a sanitizer), and spends time quadratic in
// the parts of a dotted key and in the length of a line holding many values (it looks
// for comments around every value by walking its whole line). A configuration never
// comes near these limits, so text that passes them is cheap to parse and anything else
// is rejected with one positioned error instead of a crash or a stall:
//
//   kMaxFileBytes   1 MiB      the whole file (a real one is a few KiB)
//   kMaxLineBytes   4 KiB      one line (a one-line list of a hundred backends fits)
//   kMaxNesting     32         arrays and inline tables inside each other (SPEC uses 2)
//   kMaxKeyParts    32         parts of one dotted key (SPEC's longest has 4)
//
// The text must also be well-formed UTF-8 (TOML requires it, and toml11 3.7 reads out
// of bounds reporting bad UTF-8 inside a multi-line string).
//
// The scan knows just enough TOML to skip comments and all four kinds of string, so
// brackets and dots inside them do not count; everything else is left to toml11. Pure
// function, no state; used by load_string() (and through it by --check, startup,
// reload and the config fuzzer).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace sb::config {

inline constexpr size_t kMaxFileBytes = 1024 * 1024;
inline constexpr size_t kMaxLineBytes = 4096;
inline constexpr size_t kMaxNesting = 32;
inline constexpr size_t kMaxKeyParts = 32;

struct PrescanError {
    unsigned line = 0;    // from 1, as toml11 counts
    unsigned column = 0;  // from 1, in bytes
    const char* message = "";
};

// The first place where `text` goes past one of the limits above, or nothing.
std::optional<PrescanError> prescan(std::string_view text);

}  // namespace sb::config
