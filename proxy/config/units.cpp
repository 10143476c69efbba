#include "config/units.h"

#include <cctype>
#include <charconv>
#include <limits>

namespace sb::config {

namespace {

// Splits "123abc" into 123 and "abc"; returns false when no digits lead.
bool split_number(std::string_view& text, uint64_t& number) {
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
        ++digits;
    }
    if (digits == 0) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
    if (ec != std::errc() || end != text.data() + digits) return false;
    text.remove_prefix(digits);
    return true;
}

std::string_view take_unit(std::string_view& text) {
    size_t n = 0;
    while (n < text.size() && std::isalpha(static_cast<unsigned char>(text[n])))
        ++n;
    auto unit = text.substr(0, n);
    text.remove_prefix(n);
    return unit;
}

}  // namespace

std::variant<Duration, std::string> parse_duration(std::string_view text) {
    const std::string hint = "expected a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\"";
    if (text.empty()) return hint;
    uint64_t total_ms = 0;
    std::string_view rest = text;
    while (!rest.empty()) {
        uint64_t number = 0;
        if (!split_number(rest, number)) return hint;
        auto unit = take_unit(rest);
        uint64_t scale = 0;
        if (unit == "ms") {
            scale = 1;
        } else if (unit == "s") {
            scale = 1000;
        } else if (unit == "m") {
            scale = 60 * 1000;
        } else if (unit == "h") {
            scale = 3600 * 1000;
        } else if (unit.empty()) {
            return "duration \"" + std::string(text) + "\" needs a unit (ms, s, m or h)";
        } else {
            return "unknown duration unit \"" + std::string(unit) + "\" (use ms, s, m or h)";
        }
        // A day-scale cap keeps every later arithmetic on durations far from overflow.
        constexpr uint64_t kMaxMs = 365ull * 24 * 3600 * 1000;
        if (number > kMaxMs / scale || total_ms + number * scale > kMaxMs) {
            return "duration \"" + std::string(text) + "\" is longer than a year";
        }
        total_ms += number * scale;
    }
    return Duration(static_cast<Duration::rep>(total_ms));
}

std::variant<uint64_t, std::string> parse_size(std::string_view text) {
    const std::string hint = "expected a size in bytes or a string such as \"16KiB\" or \"1MiB\"";
    std::string_view rest = text;
    uint64_t number = 0;
    if (!split_number(rest, number)) return hint;
    auto unit = take_unit(rest);
    if (!rest.empty()) return hint;
    uint64_t scale = 0;
    if (unit == "B" || unit.empty()) {
        scale = 1;
    } else if (unit == "KiB") {
        scale = 1024;
    } else if (unit == "MiB") {
        scale = 1024 * 1024;
    } else if (unit == "GiB") {
        scale = 1024ull * 1024 * 1024;
    } else if (unit == "KB" || unit == "kB" || unit == "MB" || unit == "GB" || unit == "k" ||
               unit == "K" || unit == "M" || unit == "G") {
        return "size unit \"" + std::string(unit) + "\" is ambiguous: use KiB, MiB or GiB";
    } else {
        return "unknown size unit \"" + std::string(unit) + "\" (use B, KiB, MiB or GiB)";
    }
    if (number > std::numeric_limits<uint64_t>::max() / scale) {
        return "size \"" + std::string(text) + "\" is too large";
    }
    return number * scale;
}

std::string format_duration(Duration d) {
    auto ms = d.count();
    if (ms == 0) return "0s";
    if (ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
    if (ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace sb::config
