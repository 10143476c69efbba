#include "config/decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "config/units.h"

namespace sb::config {

std::string ConfigError::to_string() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::string type_name(const toml::value& v) {
    switch (v.type()) {
        case toml::value_t::boolean:
            return "a boolean";
        case toml::value_t::integer:
            return "an integer";
        case toml::value_t::floating:
            return "a float";
        case toml::value_t::string:
            return "a string";
        case toml::value_t::array:
            return "an array";
        case toml::value_t::table:
            return "a table";
        case toml::value_t::empty:
            return "nothing";
        default:
            return "a date or time";
    }
}

void Decoder::error_at(unsigned line, unsigned column, std::string message) {
    errors_.push_back({file_, line, column, std::move(message)});
}

void Decoder::error(const toml::value& at, std::string message) {
    auto loc = at.location();
    error_at(loc.line(), loc.column(), std::move(message));
}

void Decoder::error_at_key(const toml::value& value, std::string_view key, std::string message) {
    // toml11 keeps positions for values only; the key sits on the same line before
    // its value (or inside the [table] header), so look for it there.
    auto loc = value.location();
    const std::string& line = loc.line_str();
    // A [table] header starts at column 1 and holds its key; any other value follows
    // its key on the same line.
    size_t limit = loc.column() > 1 ? std::min<size_t>(line.size(), loc.column() - 1) : line.size();
    size_t pos = std::string::npos;
    for (size_t at = line.find(key); at != std::string::npos && at < limit;
         at = line.find(key, at + 1)) {
        pos = at;
    }
    unsigned column = pos == std::string::npos ? loc.column() : static_cast<unsigned>(pos + 1);
    error_at(loc.line(), column, std::move(message));
}

bool Decoder::expect_table(const toml::value& v, std::string_view what) {
    if (v.is_table()) return true;
    error(v, "expected " + std::string(what) + " to be a table, got " + type_name(v));
    return false;
}

bool Decoder::expect_array(const toml::value& v, std::string_view what) {
    if (v.is_array()) return true;
    error(v, "expected " + std::string(what) + " to be an array, got " + type_name(v));
    return false;
}

bool Decoder::boolean(const toml::value& v, bool& out) {
    if (!v.is_boolean()) {
        error(v, "expected a boolean (true or false), got " + type_name(v));
        return false;
    }
    out = v.as_boolean();
    return true;
}

bool Decoder::string(const toml::value& v, std::string& out, bool allow_empty) {
    if (!v.is_string()) {
        error(v, "expected a string, got " + type_name(v));
        return false;
    }
    const std::string& s = v.as_string().str;
    if (!allow_empty && s.empty()) {
        error(v, "must not be empty");
        return false;
    }
    out = s;
    return true;
}

bool Decoder::integer(const toml::value& v, int64_t min, int64_t max, uint64_t& out) {
    if (!v.is_integer()) {
        error(v, "expected an integer, got " + type_name(v));
        return false;
    }
    int64_t n = v.as_integer();
    if (n < min || n > max) {
        error(v, std::to_string(n) + " is out of range (" + std::to_string(min) + " to " +
                     std::to_string(max) + ")");
        return false;
    }
    out = static_cast<uint64_t>(n);
    return true;
}

bool Decoder::integer(const toml::value& v, int64_t min, int64_t max, unsigned& out) {
    uint64_t wide = 0;
    if (!integer(v, min, std::min<int64_t>(max, std::numeric_limits<unsigned>::max()), wide)) {
        return false;
    }
    out = static_cast<unsigned>(wide);
    return true;
}

bool Decoder::number(const toml::value& v, double& out) {
    if (v.is_integer()) {
        out = static_cast<double>(v.as_integer());
        return true;
    }
    if (v.is_floating() && std::isfinite(v.as_floating())) {
        out = v.as_floating();
        return true;
    }
    error(v, "expected a number, got " + type_name(v));
    return false;
}

bool Decoder::duration(const toml::value& v, Duration min, Duration& out) {
    if (!v.is_string()) {
        error(v, "expected a duration string such as \"10s\", got " + type_name(v));
        return false;
    }
    auto parsed = parse_duration(v.as_string().str);
    if (auto* message = std::get_if<std::string>(&parsed)) {
        error(v, *message);
        return false;
    }
    auto d = std::get<Duration>(parsed);
    if (d < min) {
        error(v, "must be at least " + format_duration(min));
        return false;
    }
    out = d;
    return true;
}

bool Decoder::size(const toml::value& v, uint64_t min, uint64_t max, uint64_t& out) {
    uint64_t n = 0;
    if (v.is_integer()) {
        if (v.as_integer() < 0) {
            error(v, "a size must not be negative");
            return false;
        }
        n = static_cast<uint64_t>(v.as_integer());
    } else if (v.is_string()) {
        auto parsed = parse_size(v.as_string().str);
        if (auto* message = std::get_if<std::string>(&parsed)) {
            error(v, *message);
            return false;
        }
        n = std::get<uint64_t>(parsed);
    } else {
        error(v, "expected a size (bytes, or a string such as \"16KiB\"), got " + type_name(v));
        return false;
    }
    if (n < min || n > max) {
        error(v, "size " + std::to_string(n) + " is out of range (" + std::to_string(min) + " to " +
                     std::to_string(max) + " bytes)");
        return false;
    }
    out = n;
    return true;
}

bool Decoder::address(const toml::value& v, SocketAddress& out) {
    std::string text;
    if (!string(v, text)) return false;
    auto parsed = SocketAddress::parse(text);
    if (!parsed) {
        error(v,
              "\"" + text + "\" is not an address of the form \"1.2.3.4:port\" or \"[::]:port\"");
        return false;
    }
    out = *parsed;
    return true;
}

bool Decoder::string_list(const toml::value& v, std::vector<std::string>& out) {
    if (!expect_array(v, "the value")) return false;
    std::vector<std::string> items;
    bool ok = true;
    for (const auto& item : v.as_array()) {
        std::string s;
        if (string(item, s, false)) {
            items.push_back(std::move(s));
        } else {
            ok = false;
        }
    }
    if (ok) out = std::move(items);
    return ok;
}

std::string suggest_key(std::string_view unknown, std::span<const std::string_view> known) {
    // Levenshtein distance; configuration keys are short, so O(n*m) is nothing.
    auto distance = [](std::string_view a, std::string_view b) {
        std::vector<size_t> row(b.size() + 1);
        for (size_t j = 0; j <= b.size(); ++j)
            row[j] = j;
        for (size_t i = 1; i <= a.size(); ++i) {
            size_t diagonal = row[0];
            row[0] = i;
            for (size_t j = 1; j <= b.size(); ++j) {
                size_t above = row[j];
                row[j] = std::min(
                    {row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
                diagonal = above;
            }
        }
        return row[b.size()];
    };
    std::string best;
    size_t best_distance = std::max<size_t>(2, unknown.size() / 3) + 1;
    for (auto name : known) {
        size_t d = distance(unknown, name);
        if (d < best_distance) {
            best_distance = d;
            best = name;
        }
    }
    return best;
}

}  // namespace sb::config
