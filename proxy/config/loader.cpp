#include "config/loader.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "config/prescan.h"
#include "config/validate.h"

namespace sb::config {

namespace {

using V = const toml::value&;

// ---- [server] ----
const Key<ServerConfig> kServerKeys[] = {
    {"workers", [](Decoder& d, V v, ServerConfig& s) { d.integer(v, 0, 256, s.workers); }},
    {"max_connections",
     [](Decoder& d, V v, ServerConfig& s) { d.integer(v, 0, 100'000'000, s.max_connections); }},
    {"drain_timeout",
     [](Decoder& d, V v, ServerConfig& s) { d.duration(v, Duration(0), s.drain_timeout); }},
    {"close_spread",
     [](Decoder& d, V v, ServerConfig& s) { d.duration(v, Duration(0), s.close_spread); }},
    {"resolvers",
     [](Decoder& d, V v, ServerConfig& s) {
         if (!d.expect_array(v, "resolvers")) return;
         for (const auto& item : v.as_array()) {
             SocketAddress a;
             if (!d.address(item, a)) continue;
             if (a.port() == 0 || a.is_wildcard()) {
                 d.error(item,
                         "a resolver needs an address and a port other than 0, e.g. "
                         "\"127.0.0.1:53\"");
                 continue;
             }
             s.resolvers.push_back(a);
         }
     }},
};

// ---- [log] ----
const Key<LogConfig> kLogKeys[] = {
    {"level",
     [](Decoder& d, V v, LogConfig& l) {
         d.choice<LogLevel>(v,
                            {{"error", LogLevel::Error},
                             {"warn", LogLevel::Warn},
                             {"info", LogLevel::Info},
                             {"debug", LogLevel::Debug}},
                            l.level);
     }},
    {"format",
     [](Decoder& d, V v, LogConfig& l) {
         d.choice<LogFormat>(v, {{"text", LogFormat::Text}, {"json", LogFormat::Json}}, l.format);
     }},
    {"access_log",
     [](Decoder& d, V v, LogConfig& l) {
         if (d.string(v, l.access_log, false)) {
             l.access_log_at = {v.location().line(), v.location().column()};
         }
     }},
};

// ---- [admin] ----
const Key<AdminConfig> kAdminKeys[] = {
    {"listen", [](Decoder& d, V v, AdminConfig& a) { d.address(v, a.listen); }, true},
};

// ---- routes = [{ host, path_prefix, pool }] ----
const Key<Route> kRouteKeys[] = {
    {"host", [](Decoder& d, V v, Route& r) { d.string(v, r.host, false); }},
    {"path_prefix", [](Decoder& d, V v, Route& r) { d.string(v, r.path_prefix, false); }},
    {"pool", [](Decoder& d, V v, Route& r) { d.string(v, r.pool, false); }, true},
};

// ---- [listeners.tls] ----
const Key<CertificateFiles> kCertificateKeys[] = {
    {"certificate", [](Decoder& d, V v, CertificateFiles& c) { d.string(v, c.certificate, false); },
     true},
    {"private_key", [](Decoder& d, V v, CertificateFiles& c) { d.string(v, c.private_key, false); },
     true},
};

const Key<ListenerTlsConfig> kListenerTlsKeys[] = {
    {"certificates",
     [](Decoder& d, V v, ListenerTlsConfig& t) {
         if (!d.expect_array(v, "certificates")) return;
         if (v.as_array().empty()) d.error(v, "at least one certificate is required");
         for (const auto& item : v.as_array()) {
             if (!d.expect_table(item, "each certificate")) continue;
             CertificateFiles files;
             decode_table<CertificateFiles>(d, item, kCertificateKeys, files, "a certificate");
             files.at = {item.location().line(), item.location().column()};
             t.certificates.push_back(std::move(files));
         }
     },
     true},
    {"min_version",
     [](Decoder& d, V v, ListenerTlsConfig& t) {
         d.choice<TlsVersion>(v, {{"1.2", TlsVersion::Tls12}, {"1.3", TlsVersion::Tls13}},
                              t.min_version);
     }},
};

// ---- [[listeners]] ----
const Key<ListenerConfig> kListenerKeys[] = {
    {"name", [](Decoder& d, V v, ListenerConfig& l) { d.string(v, l.name, false); }, true},
    {"listen", [](Decoder& d, V v, ListenerConfig& l) { d.address(v, l.listen); }, true},
    {"pool", [](Decoder& d, V v, ListenerConfig& l) { d.string(v, l.pool, false); }},
    {"routes",
     [](Decoder& d, V v, ListenerConfig& l) {
         if (!d.expect_array(v, "routes")) return;
         for (const auto& item : v.as_array()) {
             if (!d.expect_table(item, "each route")) continue;
             Route route;
             decode_table<Route>(d, item, kRouteKeys, route, "a route");
             check_route(d, item, route);
             l.routes.push_back(std::move(route));
         }
     }},
    {"proxy_protocol", [](Decoder& d, V v, ListenerConfig& l) { d.boolean(v, l.proxy_protocol); }},
    {"proxy_protocol_from",
     [](Decoder& d, V v, ListenerConfig& l) {
         std::vector<std::string> networks;
         if (!d.string_list(v, networks)) return;
         for (size_t i = 0; i < networks.size(); ++i) {
             auto parsed = Network::parse(networks[i]);
             if (parsed.network) {
                 l.proxy_protocol_from.push_back(*parsed.network);
             } else {
                 d.error(v.as_array()[i], parsed.error);
             }
         }
     }},
    {"keepalive_timeout",
     [](Decoder& d, V v, ListenerConfig& l) { d.duration(v, Duration(1), l.keepalive_timeout); }},
    {"max_connects_per_ip_per_second",
     [](Decoder& d, V v, ListenerConfig& l) {
         d.integer(v, 0, 1'000'000, l.max_connects_per_ip_per_second);
     }},
    {"max_connections",
     [](Decoder& d, V v, ListenerConfig& l) { d.integer(v, 0, 100'000'000, l.max_connections); }},
    {"max_connections_per_ip",
     [](Decoder& d, V v, ListenerConfig& l) {
         d.integer(v, 0, 100'000'000, l.max_connections_per_ip);
     }},
    {"handshake_timeout",
     [](Decoder& d, V v, ListenerConfig& l) { d.duration(v, Duration(1), l.handshake_timeout); }},
    {"max_header_bytes",
     [](Decoder& d, V v, ListenerConfig& l) { d.size(v, 1024, 1024 * 1024, l.max_header_bytes); }},
    {"allowed_origins",
     [](Decoder& d, V v, ListenerConfig& l) {
         std::vector<std::string> origins;
         if (!d.string_list(v, origins)) return;
         for (size_t i = 0; i < origins.size(); ++i) {
             auto normalized = normalize_origin(origins[i]);
             if (normalized.empty()) {
                 d.error(v.as_array()[i], "\"" + origins[i] +
                                              "\" is not an origin of the form "
                                              "\"https://host\" or \"http://host:port\"");
             } else {
                 l.allowed_origins.push_back(std::move(normalized));
             }
         }
     }},
    {"tls",
     [](Decoder& d, V v, ListenerConfig& l) {
         if (!d.expect_table(v, "[listeners.tls]")) return;
         ListenerTlsConfig tls;
         decode_table<ListenerTlsConfig>(d, v, kListenerTlsKeys, tls, "[listeners.tls]");
         l.tls = std::move(tls);
     }},
};

// ---- [pools.NAME] backends ----
// "host:port" with a DNS name, or null when `text` is no such thing; `problem` says why
// a name-like host is not a valid DNS name.
std::optional<std::pair<std::string, uint16_t>> parse_name_port(const std::string& text,
                                                                std::string& problem) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    std::string host = text.substr(0, colon);
    // IPv6 literals and dotted digits are addresses, never names.
    if (host.find_first_of(":[]") != std::string::npos) return std::nullopt;
    if (std::all_of(host.begin(), host.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
        })) {
        return std::nullopt;
    }
    auto port = SocketAddress::parse("127.0.0.1" + text.substr(colon));
    if (!port || port->port() == 0) return std::nullopt;
    problem = dns_name_problem(host);
    for (auto& c : host)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return std::pair{host, port->port()};
}

const Key<BackendConfig> kBackendKeys[] = {
    {"address",
     [](Decoder& d, V v, BackendConfig& b) {
         if (!d.string(v, b.address, false)) return;
         if (auto parsed = SocketAddress::parse(b.address)) {
             b.kind = BackendConfig::Kind::Literal;
             b.resolved = *parsed;
             return;
         }
         std::string problem;
         auto name = parse_name_port(b.address, problem);
         if (!name) {
             d.error(v, "\"" + b.address +
                            "\" is not an address of the form \"1.2.3.4:port\", \"[::1]:port\" or "
                            "\"name:port\"");
         } else if (!problem.empty()) {
             d.error(v,
                     "backend \"" + b.address + "\": the name \"" + name->first + "\" " + problem);
         } else {
             // Never resolved here: --check and reloads do not wait for DNS.
             b.kind = BackendConfig::Kind::Name;
             b.host = std::move(name->first);
             b.port = name->second;
         }
     }},
    {"srv",
     [](Decoder& d, V v, BackendConfig& b) {
         if (!d.string(v, b.srv, false)) return;
         if (auto problem = dns_name_problem(b.srv); !problem.empty()) {
             d.error(v, "SRV name \"" + b.srv + "\" " + problem +
                            " (write the name alone, e.g. \"_ws._tcp.chat.internal\": the "
                            "records give the ports)");
             return;
         }
         b.kind = BackendConfig::Kind::Srv;
         b.host = b.srv;
         for (auto& c : b.host)
             c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
     }},
    {"weight", [](Decoder& d, V v, BackendConfig& b) { d.integer(v, 1, 1000, b.weight); }},
};

// Exactly one of `address` and `srv`; an SRV entry takes its weights from its records.
void check_backend(Decoder& d, const toml::value& item, BackendConfig& b) {
    const auto& t = item.as_table();
    bool has_address = t.count("address") > 0;
    bool has_srv = t.count("srv") > 0;
    if (has_address && has_srv) {
        d.error(t.at("srv"), "a backend has either \"address\" or \"srv\", not both");
    } else if (!has_address && !has_srv) {
        d.error(item, "missing required key \"address\" in a backend (or \"srv\" for an SRV name)");
    }
    if (has_srv && t.count("weight")) {
        d.error_at_key(t.at("weight"), "weight",
                       "\"weight\" does not apply to an SRV backend: each record carries its "
                       "own weight");
    }
    b.at = {item.location().line(), item.location().column()};
}

// ---- [pools.NAME.tls] ----
const Key<PoolTlsConfig> kPoolTlsKeys[] = {
    {"verify", [](Decoder& d, V v, PoolTlsConfig& t) { d.boolean(v, t.verify); }},
    {"ca_file", [](Decoder& d, V v, PoolTlsConfig& t) { d.string(v, t.ca_file); }},
    {"server_name", [](Decoder& d, V v, PoolTlsConfig& t) { d.string(v, t.server_name); }},
};

// ---- [pools.NAME.health_check] ----
const Key<HealthCheckConfig> kHealthCheckKeys[] = {
    {"kind",
     [](Decoder& d, V v, HealthCheckConfig& h) {
         d.choice<HealthCheckConfig::Kind>(v,
                                           {{"http", HealthCheckConfig::Kind::Http},
                                            {"tcp", HealthCheckConfig::Kind::Tcp},
                                            {"websocket", HealthCheckConfig::Kind::WebSocket}},
                                           h.kind);
     }},
    {"path",
     [](Decoder& d, V v, HealthCheckConfig& h) {
         std::string path;
         if (!d.string(v, path, false)) return;
         // It goes into a request line as written: visible ASCII only, no spaces.
         bool visible = std::all_of(path.begin(), path.end(), [](char c) {
             return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
         });
         if (path[0] != '/' || !visible || path.size() > 1024) {
             d.error(v,
                     "health check path must start with '/' and hold only visible ASCII "
                     "characters (at most 1024)");
             return;
         }
         h.path = std::move(path);
     }},
    {"interval",
     [](Decoder& d, V v, HealthCheckConfig& h) { d.duration(v, Duration(100), h.interval); }},
    {"timeout",
     [](Decoder& d, V v, HealthCheckConfig& h) { d.duration(v, Duration(1), h.timeout); }},
    {"rise", [](Decoder& d, V v, HealthCheckConfig& h) { d.integer(v, 1, 100, h.rise); }},
    {"fall", [](Decoder& d, V v, HealthCheckConfig& h) { d.integer(v, 1, 100, h.fall); }},
};

// ---- [pools.NAME.websocket] ----
const Key<WebSocketConfig> kWebSocketKeys[] = {
    {"max_message_bytes",
     [](Decoder& d, V v, WebSocketConfig& w) {
         d.size(v, 0, uint64_t{1} << 62, w.max_message_bytes);
     }},
    {"max_messages_per_second",
     [](Decoder& d, V v, WebSocketConfig& w) {
         d.integer(v, 0, 10'000'000, w.max_messages_per_second);
     }},
    {"ping_interval",
     [](Decoder& d, V v, WebSocketConfig& w) { d.duration(v, Duration(0), w.ping_interval); }},
    {"ping_timeout",
     [](Decoder& d, V v, WebSocketConfig& w) { d.duration(v, Duration(1), w.ping_timeout); }},
    {"idle_timeout",
     [](Decoder& d, V v, WebSocketConfig& w) { d.duration(v, Duration(0), w.idle_timeout); }},
    {"max_lifetime",
     [](Decoder& d, V v, WebSocketConfig& w) { d.duration(v, Duration(0), w.max_lifetime); }},
};

// ---- [pools.NAME.http] ----
const Key<HttpConfig> kHttpKeys[] = {
    {"max_idle_connections",
     [](Decoder& d, V v, HttpConfig& h) { d.integer(v, 0, 100'000, h.max_idle_connections); }},
    {"idle_timeout",
     [](Decoder& d, V v, HttpConfig& h) { d.duration(v, Duration(1), h.idle_timeout); }},
    {"response_timeout",
     [](Decoder& d, V v, HttpConfig& h) { d.duration(v, Duration(1), h.response_timeout); }},
    {"max_request_body",
     [](Decoder& d, V v, HttpConfig& h) { d.size(v, 0, uint64_t{1} << 62, h.max_request_body); }},
};

// ---- [pools.NAME.admission] ----
const Key<AdmissionConfig> kAdmissionKeys[] = {
    {"new_connections_per_second",
     [](Decoder& d, V v, AdmissionConfig& a) {
         d.integer(v, 0, 1'000'000, a.new_connections_per_second);
     }},
    {"backend_new_connections_per_second",
     [](Decoder& d, V v, AdmissionConfig& a) {
         d.integer(v, 0, 1'000'000, a.backend_new_connections_per_second);
     }},
    {"burst", [](Decoder& d, V v, AdmissionConfig& a) { d.integer(v, 0, 1'000'000, a.burst); }},
    {"shed",
     [](Decoder& d, V v, AdmissionConfig& a) {
         d.choice<AdmissionConfig::Shed>(v,
                                         {{"close_1013", AdmissionConfig::Shed::Close1013},
                                          {"http_503", AdmissionConfig::Shed::Http503}},
                                         a.shed);
     }},
    {"retry_after",
     [](Decoder& d, V v, AdmissionConfig& a) {
         d.duration(v, Duration(0), a.retry_after);
         if (a.retry_after > std::chrono::hours(1)) {
             d.error(v, "retry_after must be at most 1h");
         }
     }},
};

// ---- [pools.NAME] ----
const Key<PoolConfig> kPoolKeys[] = {
    {"backends",
     [](Decoder& d, V v, PoolConfig& p) {
         if (!d.expect_array(v, "backends")) return;
         if (v.as_array().empty()) d.error(v, "a pool needs at least one backend");
         for (const auto& item : v.as_array()) {
             if (!d.expect_table(item, "each backend")) continue;
             BackendConfig backend;
             decode_table<BackendConfig>(d, item, kBackendKeys, backend, "a backend");
             check_backend(d, item, backend);
             p.backends.push_back(std::move(backend));
         }
     },
     true},
    {"algorithm",
     [](Decoder& d, V v, PoolConfig& p) {
         d.choice<Algorithm>(v,
                             {{"ring", Algorithm::Ring},
                              {"maglev", Algorithm::Maglev},
                              {"least_connections", Algorithm::LeastConnections},
                              {"round_robin", Algorithm::RoundRobin}},
                             p.algorithm);
     }},
    {"hash_key",
     [](Decoder& d, V v, PoolConfig& p) {
         std::string text;
         if (!d.string(v, text)) return;
         auto parsed = parse_hash_key(text);
         if (auto* message = std::get_if<std::string>(&parsed)) {
             d.error(v, *message);
         } else {
             p.hash_key = std::get<HashKey>(parsed);
         }
     }},
    {"load_factor",
     [](Decoder& d, V v, PoolConfig& p) {
         double c = 0;
         if (!d.number(v, c)) return;
         if (c != 0.0 && (c < 1.0 || c > 100.0)) {
             d.error(v, "load_factor must be 0 (off) or between 1.0 and 100.0");
             return;
         }
         p.load_factor = c;
     }},
    {"rehome", [](Decoder& d, V v, PoolConfig& p) { d.boolean(v, p.rehome); }},
    {"max_connections_per_backend",
     [](Decoder& d, V v, PoolConfig& p) {
         d.integer(v, 0, 100'000'000, p.max_connections_per_backend);
     }},
    {"connect_timeout",
     [](Decoder& d, V v, PoolConfig& p) { d.duration(v, Duration(1), p.connect_timeout); }},
    {"retries", [](Decoder& d, V v, PoolConfig& p) { d.integer(v, 0, 100, p.retries); }},
    {"resolve_interval",
     [](Decoder& d, V v, PoolConfig& p) { d.duration(v, Duration(1000), p.resolve_interval); }},
    {"proxy_protocol",
     [](Decoder& d, V v, PoolConfig& p) {
         d.choice<ProxyProtocol>(
             v, {{"off", ProxyProtocol::Off}, {"v1", ProxyProtocol::V1}, {"v2", ProxyProtocol::V2}},
             p.proxy_protocol);
     }},
    {"forwarded_headers",
     [](Decoder& d, V v, PoolConfig& p) { d.boolean(v, p.forwarded_headers); }},
    {"tls",
     [](Decoder& d, V v, PoolConfig& p) {
         if (!d.expect_table(v, "[pools.NAME.tls]")) return;
         PoolTlsConfig tls;
         decode_table<PoolTlsConfig>(d, v, kPoolTlsKeys, tls, "[pools." + p.name + ".tls]");
         tls.at = {v.location().line(), v.location().column()};
         p.tls = std::move(tls);
     }},
    {"health_check",
     [](Decoder& d, V v, PoolConfig& p) {
         if (!d.expect_table(v, "[pools.NAME.health_check]")) return;
         decode_table<HealthCheckConfig>(d, v, kHealthCheckKeys, p.health_check,
                                         "[pools." + p.name + ".health_check]");
         check_health_check(d, v, p.health_check);
         p.active_health_check = true;
     }},
    {"slow_start",
     [](Decoder& d, V v, PoolConfig& p) { d.duration(v, Duration(0), p.slow_start); }},
    {"websocket",
     [](Decoder& d, V v, PoolConfig& p) {
         if (!d.expect_table(v, "[pools.NAME.websocket]")) return;
         decode_table<WebSocketConfig>(d, v, kWebSocketKeys, p.websocket,
                                       "[pools." + p.name + ".websocket]");
         check_websocket(d, v, p.websocket);
     }},
    {"http",
     [](Decoder& d, V v, PoolConfig& p) {
         if (!d.expect_table(v, "[pools.NAME.http]")) return;
         decode_table<HttpConfig>(d, v, kHttpKeys, p.http, "[pools." + p.name + ".http]");
     }},
    {"admission",
     [](Decoder& d, V v, PoolConfig& p) {
         if (!d.expect_table(v, "[pools.NAME.admission]")) return;
         AdmissionConfig admission;
         decode_table<AdmissionConfig>(d, v, kAdmissionKeys, admission,
                                       "[pools." + p.name + ".admission]");
         p.admission = admission;
     }},
};

// ---- top level ----
const Key<Config> kTopKeys[] = {
    {"server",
     [](Decoder& d, V v, Config& c) {
         if (d.expect_table(v, "[server]")) {
             decode_table<ServerConfig>(d, v, kServerKeys, c.server, "[server]");
         }
     }},
    {"log",
     [](Decoder& d, V v, Config& c) {
         if (d.expect_table(v, "[log]")) decode_table<LogConfig>(d, v, kLogKeys, c.log, "[log]");
     }},
    {"admin",
     [](Decoder& d, V v, Config& c) {
         if (!d.expect_table(v, "[admin]")) return;
         AdminConfig admin;
         decode_table<AdminConfig>(d, v, kAdminKeys, admin, "[admin]");
         c.admin = admin;
     }},
    {"listeners",
     [](Decoder& d, V v, Config& c) {
         if (!d.expect_array(v, "[[listeners]]")) return;
         for (const auto& item : v.as_array()) {
             if (!d.expect_table(item, "[[listeners]]")) continue;
             ListenerConfig listener;
             decode_table<ListenerConfig>(d, item, kListenerKeys, listener, "[[listeners]]");
             c.listeners.push_back(std::move(listener));
         }
     },
     true},
    {"pools",
     [](Decoder& d, V v, Config& c) {
         if (!d.expect_table(v, "[pools]")) return;
         for (const auto& [name, table] : v.as_table()) {
             if (!valid_name(name)) {
                 d.error_at_key(
                     table, name,
                     "pool name \"" + name + "\" may use only letters, digits, '-' and '_'");
             }
             if (!d.expect_table(table, "[pools." + name + "]")) continue;
             PoolConfig pool;
             pool.name = name;
             decode_table<PoolConfig>(d, table, kPoolKeys, pool, "[pools." + name + "]");
             c.pools.emplace(name, std::move(pool));
         }
     }},
};

std::string location_from_syntax_error(const toml::syntax_error& e, unsigned& line,
                                       unsigned& column) {
    // toml11 formats syntax errors over several lines: a headline, the offending
    // source line and a caret under the error. Fold them into one message and take the
    // column from the caret, which is more precise than the exception's location.
    line = e.location().line();
    column = e.location().column();
    std::istringstream in(e.what());
    std::string text, headline, hint;
    while (std::getline(in, text)) {
        if (headline.empty() && text.rfind("[error]", 0) == 0) {
            headline = text.substr(7);
            auto colon = headline.find(": ");
            if (colon != std::string::npos) headline = headline.substr(colon + 2);
        }
        auto bar = text.find(" | ");
        auto caret = text.find('^');
        if (bar != std::string::npos && caret != std::string::npos && caret > bar) {
            column = static_cast<unsigned>(caret - (bar + 3) + 1);
            auto dashes = text.find("--- ", caret);
            if (dashes != std::string::npos) hint = text.substr(dashes + 4);
        }
    }
    if (headline.empty()) headline = "syntax error";
    if (!hint.empty()) headline += " (" + hint + ")";
    return headline;
}

LoadResult finish(Decoder& d, std::shared_ptr<Config> config) {
    LoadResult result;
    result.errors = std::move(d.errors());
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                         return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    if (result.errors.empty()) result.config = std::move(config);
    return result;
}

LoadResult decode_document(const toml::value& root, const std::string& name) {
    Decoder d(name);
    auto config = std::make_shared<Config>();
    config->path = name;
    decode_table<Config>(d, root, kTopKeys, *config, "the top level");
    if (d.errors().empty()) validate(d, root, *config);
    return finish(d, std::move(config));
}

template <class T>
void collect(std::vector<SchemaKey>& out, const std::string& prefix, std::span<const Key<T>> keys) {
    for (const auto& key : keys)
        out.push_back({prefix + std::string(key.name), key.later.empty()});
}

}  // namespace

LoadResult load_string(std::string_view text, const std::string& name) {
    // toml11 is trusted only with text whose shape it handles in bounded stack and time.
    if (auto bad = prescan(text)) {
        Decoder d(name);
        d.error_at(bad->line, bad->column, bad->message);
        return finish(d, nullptr);
    }
    try {
        std::istringstream in{std::string(text)};
        auto root = toml::parse(in, name);
        return decode_document(root, name);
    } catch (const toml::syntax_error& e) {
        Decoder d(name);
        unsigned line = 0, column = 0;
        auto message = location_from_syntax_error(e, line, column);
        d.error_at(line, column, message);
        return finish(d, nullptr);
    } catch (const std::exception& e) {
        // toml11 reports a few malformed documents with other exception types.
        Decoder d(name);
        d.error_at(1, 1, e.what());
        return finish(d, nullptr);
    }
}

LoadResult load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        Decoder d(path);
        d.error_at(0, 0,
                   std::string("cannot read the configuration file: ") + std::strerror(errno));
        return finish(d, nullptr);
    }
    // One byte more than the limit is enough for load_string to say the file is too large.
    std::string text(kMaxFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    return load_string(text, path);
}

std::vector<SchemaKey> schema_keys() {
    std::vector<SchemaKey> out;
    collect<ServerConfig>(out, "server.", kServerKeys);
    collect<LogConfig>(out, "log.", kLogKeys);
    collect<AdminConfig>(out, "admin.", kAdminKeys);
    collect<ListenerConfig>(out, "listeners.", kListenerKeys);
    collect<Route>(out, "listeners.routes.", kRouteKeys);
    collect<ListenerTlsConfig>(out, "listeners.tls.", kListenerTlsKeys);
    collect<CertificateFiles>(out, "listeners.tls.certificates.", kCertificateKeys);
    collect<PoolConfig>(out, "pools.NAME.", kPoolKeys);
    collect<BackendConfig>(out, "pools.NAME.backends.", kBackendKeys);
    collect<PoolTlsConfig>(out, "pools.NAME.tls.", kPoolTlsKeys);
    collect<HealthCheckConfig>(out, "pools.NAME.health_check.", kHealthCheckKeys);
    collect<WebSocketConfig>(out, "pools.NAME.websocket.", kWebSocketKeys);
    collect<HttpConfig>(out, "pools.NAME.http.", kHttpKeys);
    collect<AdmissionConfig>(out, "pools.NAME.admission.", kAdmissionKeys);
    return out;
}

}  // namespace sb::config
