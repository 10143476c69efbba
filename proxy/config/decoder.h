// Decoder: turns toml11 values into typed struct members and collects every error
// with its FILE:LINE:COLUMN, so that `--check` can print all of them at once.
//
// Key<T> and decode_table() implement the schema tables: each configuration section
// is one table of keys (name, availability, required, decoder function), and any key
// in the file that its table does not list is an error naming the key's position.
//
// Used only while loading; single-threaded; holds no state beyond the error list.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <toml.hpp>
#include <utility>
#include <vector>

#include "config/config.h"

namespace sb::config {

struct ConfigError {
    std::string file;
    unsigned line = 0;
    unsigned column = 0;
    std::string message;

    // "FILE:LINE:COLUMN: message", the one format every error is printed in.
    std::string to_string() const;
};

class Decoder {
  public:
    explicit Decoder(std::string file) : file_(std::move(file)) {}

    void error_at(unsigned line, unsigned column, std::string message);
    void error(const toml::value& at, std::string message);
    // Positions an error on the key itself rather than on its value.
    void error_at_key(const toml::value& value, std::string_view key, std::string message);

    // Each typed reader checks the TOML type and the range, writes `out` only when the
    // value is valid, and returns whether it did.
    bool boolean(const toml::value& v, bool& out);
    bool string(const toml::value& v, std::string& out, bool allow_empty = true);
    bool integer(const toml::value& v, int64_t min, int64_t max, uint64_t& out);
    bool integer(const toml::value& v, int64_t min, int64_t max, unsigned& out);
    bool number(const toml::value& v, double& out);
    bool duration(const toml::value& v, Duration min, Duration& out);
    bool size(const toml::value& v, uint64_t min, uint64_t max, uint64_t& out);
    bool address(const toml::value& v, SocketAddress& out);
    bool string_list(const toml::value& v, std::vector<std::string>& out);
    template <class E>
    bool choice(const toml::value& v, std::initializer_list<std::pair<std::string_view, E>> options,
                E& out);

    bool expect_table(const toml::value& v, std::string_view what);
    bool expect_array(const toml::value& v, std::string_view what);

    const std::string& file() const { return file_; }
    std::vector<ConfigError>& errors() { return errors_; }

  private:
    std::string file_;
    std::vector<ConfigError> errors_;
};

// A key's availability: empty = implemented; otherwise the feature that will bring it,
// quoted in the "not supported yet" error so a key is never accepted and ignored.
template <class T>
struct Key {
    std::string_view name;
    void (*decode)(Decoder&, const toml::value&, T&);
    bool required = false;
    std::string_view later = {};
};

// Decodes every key of `table` through `keys` into `out`. Unknown keys, keys that are
// not supported yet and missing required keys are errors; `section` names the table
// in messages ("[server]", "[[listeners]] \"public\"").
template <class T>
void decode_table(Decoder& d, const toml::value& table, std::span<const Key<T>> keys, T& out,
                  std::string_view section);

// The closest key name by edit distance, for "did you mean" hints ("" if none is close).
std::string suggest_key(std::string_view unknown, std::span<const std::string_view> known);

// --- template definitions ---

std::string type_name(const toml::value& v);

template <class E>
bool Decoder::choice(const toml::value& v,
                     std::initializer_list<std::pair<std::string_view, E>> options, E& out) {
    std::string text;
    if (!string(v, text)) return false;
    std::string allowed;
    for (const auto& [name, value] : options) {
        if (name == text) {
            out = value;
            return true;
        }
        allowed += allowed.empty() ? "" : ", ";
        allowed += "\"" + std::string(name) + "\"";
    }
    error(v, "\"" + text + "\" is not one of " + allowed);
    return false;
}

template <class T>
void decode_table(Decoder& d, const toml::value& table, std::span<const Key<T>> keys, T& out,
                  std::string_view section) {
    std::vector<std::string_view> names;
    for (const auto& key : keys)
        names.push_back(key.name);
    for (const auto& [name, value] : table.as_table()) {
        const Key<T>* spec = nullptr;
        for (const auto& key : keys) {
            if (key.name == name) spec = &key;
        }
        if (spec == nullptr) {
            std::string message = "unknown key \"" + name + "\" in " + std::string(section);
            auto hint = suggest_key(name, names);
            if (!hint.empty()) message += " (did you mean \"" + hint + "\"?)";
            d.error_at_key(value, name, std::move(message));
            continue;
        }
        if (!spec->later.empty()) {
            d.error_at_key(value, name,
                           "\"" + name + "\" is not supported yet (" + std::string(spec->later) +
                               " comes in a later release)");
            continue;
        }
        spec->decode(d, value, out);
    }
    for (const auto& key : keys) {
        if (key.required && !table.as_table().count(std::string(key.name))) {
            d.error(table, "missing required key \"" + std::string(key.name) + "\" in " +
                               std::string(section));
        }
    }
}

}  // namespace sb::config
