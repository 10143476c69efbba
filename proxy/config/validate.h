// Validation rules that go beyond one value's type and range: value syntaxes
// (hash keys, origins, host patterns) and rules across sections (unique names,
// routes naming pools that exist). Each rule reports through the Decoder with the
// position of the value it concerns.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "config/config.h"
#include "config/decoder.h"

namespace sb::config {

// "client_ip", "header:NAME", "cookie:NAME", "query:NAME", "path", "path_segment:N".
std::variant<HashKey, std::string> parse_hash_key(std::string_view text);
std::string hash_key_to_string(const HashKey& key);

// RFC 6454 origin "scheme://host[:port]" → lower-case scheme and host, default port
// (80 for http, 443 for https) dropped. Returns "" when `text` is not an origin.
std::string normalize_origin(std::string_view text);

// Listener and pool names: letters, digits, '-', '_' (they become metric labels).
bool valid_name(std::string_view name);

// "*.example.com" or an exact host name; lower-cased by the caller.
bool valid_host_pattern(std::string_view pattern);

// Why `name` is not a DNS name switchboard will look up, or "" when it is: at most 253
// characters (a final '.' aside), labels of 1 to 63 letters, digits, '-' and '_' (SRV
// names and Kubernetes services use '_'), not starting or ending with '-', and not all
// digits in the last label (so a mistyped IPv4 address is not taken for a name).
std::string dns_name_problem(std::string_view name);

void check_route(Decoder& d, const toml::value& table, Route& route);
void check_websocket(Decoder& d, const toml::value& table, const WebSocketConfig& ws);
// [pools.NAME.health_check]: a timeout not given is min(2s, interval); one given must
// not be longer than interval (so one probe per backend is in flight at a time).
void check_health_check(Decoder& d, const toml::value& table, HealthCheckConfig& health);

// Cross-section rules, run once every section decoded without errors.
void validate(Decoder& d, const toml::value& root, const Config& config);

}  // namespace sb::config
