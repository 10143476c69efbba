#include "config/validate.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <vector>

namespace sb::config {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool is_token_char(char c) {
    // RFC 9110 tchar: header names, cookie names and query parameter names are tokens.
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A value found at a dotted path in the document, for positioning errors.
const toml::value* find(const toml::value& root, std::initializer_list<std::string_view> path) {
    const toml::value* at = &root;
    for (auto key : path) {
        if (!at->is_table()) return nullptr;
        auto it = at->as_table().find(std::string(key));
        if (it == at->as_table().end()) return nullptr;
        at = &it->second;
    }
    return at;
}

}  // namespace

std::variant<HashKey, std::string> parse_hash_key(std::string_view text) {
    HashKey key;
    auto colon = text.find(':');
    auto kind = text.substr(0, colon);
    auto arg = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    const std::string usage =
        "hash_key must be client_ip, header:NAME, cookie:NAME, query:NAME, path or "
        "path_segment:N";
    if (kind == "client_ip" || kind == "path") {
        if (colon != std::string_view::npos)
            return "\"" + std::string(kind) + "\" takes no argument";
        key.kind = kind == "path" ? HashKey::Kind::Path : HashKey::Kind::ClientIp;
        return key;
    }
    if (kind == "header" || kind == "cookie" || kind == "query") {
        if (arg.empty())
            return "\"" + std::string(kind) + ":\" needs a name, e.g. \"" + std::string(kind) +
                   ":room\"";
        if (!std::all_of(arg.begin(), arg.end(), is_token_char)) {
            return "\"" + std::string(arg) + "\" is not a valid " + std::string(kind) + " name";
        }
        key.kind = kind == "header"   ? HashKey::Kind::Header
                   : kind == "cookie" ? HashKey::Kind::Cookie
                                      : HashKey::Kind::Query;
        // Header names compare case-insensitively; cookies and query names do not.
        key.name = kind == "header" ? lower(arg) : std::string(arg);
        return key;
    }
    if (kind == "path_segment") {
        unsigned n = 0;
        auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
        if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size() || n < 1 || n > 64) {
            return "path_segment:N needs N between 1 and 64 (segments count from 1)";
        }
        key.kind = HashKey::Kind::PathSegment;
        key.segment = n;
        return key;
    }
    return usage;
}

std::string hash_key_to_string(const HashKey& key) {
    switch (key.kind) {
        case HashKey::Kind::ClientIp:
            return "client_ip";
        case HashKey::Kind::Header:
            return "header:" + key.name;
        case HashKey::Kind::Cookie:
            return "cookie:" + key.name;
        case HashKey::Kind::Query:
            return "query:" + key.name;
        case HashKey::Kind::Path:
            return "path";
        case HashKey::Kind::PathSegment:
            return "path_segment:" + std::to_string(key.segment);
    }
    return "client_ip";
}

std::string normalize_origin(std::string_view text) {
    auto sep = text.find("://");
    if (sep == std::string_view::npos || sep == 0) return "";
    std::string scheme = lower(text.substr(0, sep));
    if (!std::all_of(scheme.begin(), scheme.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        })) {
        return "";
    }
    std::string_view rest = text.substr(sep + 3);
    if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) return "";
    std::string_view host = rest;
    std::string_view port;
    if (rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) return "";
        host = rest.substr(0, close + 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':') return "";
            port = rest.substr(close + 2);
        }
    } else if (auto colon = rest.find(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
    }
    if (host.empty()) return "";
    std::string out = scheme + "://" + lower(host);
    if (!port.empty() || (rest.back() == ':')) {
        unsigned n = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
        if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n > 65535) {
            return "";
        }
        bool is_default = (scheme == "http" && n == 80) || (scheme == "https" && n == 443);
        if (!is_default) out += ":" + std::to_string(n);
    }
    return out;
}

bool valid_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
}

bool valid_host_pattern(std::string_view pattern) {
    if (pattern.rfind("*.", 0) == 0) pattern.remove_prefix(2);
    if (pattern.empty() || pattern.size() > 253) return false;
    return std::all_of(pattern.begin(), pattern.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
    });
}

std::string dns_name_problem(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // fully qualified
    if (name.empty()) return "is empty";
    if (name.size() > 253) return "is longer than 253 characters";
    std::string_view last;
    size_t start = 0;
    while (start <= name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        std::string_view label = name.substr(start, dot - start);
        if (label.empty()) return "has an empty label";
        if (label.size() > 63) return "has a label longer than 63 characters";
        for (char c : label) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
                return "may use only letters, digits, '-', '_' and '.'";
            }
        }
        if (label.front() == '-' || label.back() == '-') {
            return "has a label that starts or ends with '-'";
        }
        last = label;
        start = dot + 1;
    }
    if (std::all_of(last.begin(), last.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        return "is not a DNS name (its last label is all digits)";
    }
    return "";
}

void check_route(Decoder& d, const toml::value& table, Route& route) {
    if (!route.host.empty()) {
        route.host = lower(route.host);
        if (!valid_host_pattern(route.host)) {
            d.error(table.as_table().at("host"),
                    "\"" + route.host +
                        "\" is not a host name or a wildcard such as \"*.example.com\"");
        }
    }
    if (route.path_prefix.empty() || route.path_prefix.front() != '/') {
        if (table.as_table().count("path_prefix")) {
            d.error(table.as_table().at("path_prefix"), "path_prefix must start with \"/\"");
        }
    }
}

void check_websocket(Decoder& d, const toml::value& table, const WebSocketConfig& ws) {
    if (ws.ping_interval.count() > 0 && ws.max_lifetime.count() > 0 &&
        ws.max_lifetime < ws.ping_interval) {
        d.error(table.as_table().at("max_lifetime"),
                "max_lifetime is shorter than ping_interval: pings would never be sent");
    }
}

void check_health_check(Decoder& d, const toml::value& table, HealthCheckConfig& health) {
    const auto& keys = table.as_table();
    if (!keys.count("timeout")) {
        health.timeout = std::min(health.timeout, health.interval);
    } else if (health.timeout > health.interval) {
        d.error(keys.at("timeout"), "health check timeout is longer than its interval");
    }
}

void validate(Decoder& d, const toml::value& root, const Config& config) {
    const auto& listeners = find(root, {"listeners"})->as_array();
    if (config.listeners.empty()) {
        d.error(*find(root, {"listeners"}), "at least one [[listeners]] is required");
    }
    std::map<std::string, size_t> names;
    // Every socket bound so far, to find two that would fight over a port (the later one
    // gets the error). Listeners bind IPv6 as IPv6-only (net/listen_socket.cpp); the admin
    // listener binds through libuv, dual-stack (admin/admin_server.cpp).
    struct Bound {
        SocketAddress address;
        bool dual_stack;
        std::string owner;
    };
    std::vector<Bound> bound;
    if (config.admin) bound.push_back({config.admin->listen, true, "the admin listener"});
    for (size_t i = 0; i < config.listeners.size(); ++i) {
        const auto& l = config.listeners[i];
        const auto& table = listeners[i];
        if (!valid_name(l.name)) {
            d.error(table.as_table().at("name"),
                    "listener name \"" + l.name + "\" may use only letters, digits, '-' and '_'");
        } else if (l.name == "admin") {
            d.error(table.as_table().at("name"),
                    "listener name \"admin\" is reserved for the admin listener");
        }
        if (!names.emplace(l.name, i).second) {
            d.error(table.as_table().at("name"), "duplicate listener name \"" + l.name + "\"");
        }
        const auto& listen_value = table.as_table().at("listen");
        if (l.listen.is_v4_mapped()) {
            // bind(2) refuses an IPv4-mapped address on an IPv6-only socket (EINVAL).
            d.error(listen_value, "an IPv4-mapped IPv6 address cannot be listened on; write \"" +
                                      l.listen.to_string() + "\" instead");
        }
        for (const auto& other : bound) {
            if (!listen_overlap(l.listen, false, other.address, other.dual_stack)) continue;
            if (l.listen == other.address) {
                d.error(listen_value, l.listen.to_string() + " is already used by " + other.owner);
            } else {
                bool wildcard = l.listen.is_wildcard() || other.address.is_wildcard();
                d.error(listen_value, l.listen.to_string() + " overlaps " +
                                          other.address.to_string() + " of " + other.owner +
                                          (wildcard ? " (a wildcard address takes its port on "
                                                      "every address of its family)"
                                                    : ""));
            }
            break;
        }
        bound.push_back({l.listen, false, "listener \"" + l.name + "\""});
        if (!l.proxy_protocol && table.as_table().count("proxy_protocol_from")) {
            d.error_at_key(table.as_table().at("proxy_protocol_from"), "proxy_protocol_from",
                           "proxy_protocol_from is only used with proxy_protocol = true (listener "
                           "\"" +
                               l.name + "\" reads no PROXY header)");
        }
        if (!l.pool.empty() && !config.find_pool(l.pool)) {
            d.error(table.as_table().at("pool"), "no pool named \"" + l.pool + "\"");
        }
        if (table.as_table().count("routes")) {
            const auto& routes = table.as_table().at("routes").as_array();
            for (size_t r = 0; r < l.routes.size() && r < routes.size(); ++r) {
                if (!config.find_pool(l.routes[r].pool)) {
                    d.error(routes[r].as_table().at("pool"),
                            "no pool named \"" + l.routes[r].pool + "\"");
                }
            }
        }
    }
    for (const auto& [name, pool] : config.pools) {
        const auto* backends = find(root, {"pools", name, "backends"});
        // A name has at least one record and an SRV record at least weight 1 once
        // scaled: what can be checked without resolving. Resolved sets over the limit
        // are scaled down at run time (pool/generation.cpp).
        unsigned total_weight = 0;
        for (const auto& b : pool.backends)
            total_weight += b.kind == BackendConfig::Kind::Srv ? 1 : b.weight;
        // Each unit of weight is 1,280 points on a ring (balance/ring.h).
        constexpr unsigned kMaxRingWeight = 5000;
        if (pool.algorithm == Algorithm::Ring && total_weight > kMaxRingWeight && backends) {
            d.error(*backends, "the weights of a ring pool add up to " +
                                   std::to_string(total_weight) + "; at most " +
                                   std::to_string(kMaxRingWeight) +
                                   " (use smaller weights in the same proportions, or maglev)");
        }
        // Literal addresses compare as "ip:port" ("[::1]:80" and "[0::1]:80" are one),
        // names and SRV names as written (lower case): a record two entries both resolve
        // to is merged at run time instead (discovery/).
        std::map<std::string, size_t> seen;
        for (size_t b = 0; b < pool.backends.size(); ++b) {
            const auto& entry = pool.backends[b];
            std::string identity = entry.kind == BackendConfig::Kind::Literal
                                       ? entry.resolved.to_string()
                                   : entry.kind == BackendConfig::Kind::Name
                                       ? entry.host + ":" + std::to_string(entry.port)
                                       : "srv " + entry.host;
            if (!seen.emplace(identity, b).second && backends) {
                const auto& table = backends->as_array()[b].as_table();
                const char* key = entry.kind == BackendConfig::Kind::Srv ? "srv" : "address";
                d.error(table.at(key),
                        "backend " + entry.source() + " is listed twice in pool \"" + name + "\"");
            }
        }
    }
}

}  // namespace sb::config
