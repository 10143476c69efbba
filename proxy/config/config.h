// Config: one loaded configuration file, decoded and validated.
//
// Plain structs with the defaults of SPEC.md §2 as member initializers. A Config is
// built once by config::load() and then shared, immutable, as
// std::shared_ptr<const Config>: every session keeps the generation it started on.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/network.h"

namespace sb::config {

using Duration = std::chrono::milliseconds;

enum class LogLevel { Error, Warn, Info, Debug };
enum class LogFormat { Text, Json };

struct ServerConfig {
    unsigned workers = 0;  // 0 = one per CPU core (resolved by app/, not here)
    uint64_t max_connections = 0;
    Duration drain_timeout = std::chrono::seconds(30);
    Duration close_spread = std::chrono::seconds(10);
    // DNS servers for backend names and SRV records ([] = the system's /etc/resolv.conf).
    std::vector<SocketAddress> resolvers;
};

// Where a value sits in the file, for errors found after decoding (certificates
// that do not load, an access log directory that does not exist).
struct Position {
    unsigned line = 0;
    unsigned column = 0;
};

struct LogConfig {
    LogLevel level = LogLevel::Info;
    LogFormat format = LogFormat::Text;
    // "stderr", "stdout", "off" or a file path.
    std::string access_log = "stderr";
    Position access_log_at;  // for errors found when the file's directory is checked
};

struct AdminConfig {
    SocketAddress listen;
};

struct Route {
    // Empty host matches any host; "*.example.com" matches one or more labels
    // in front of ".example.com".
    std::string host;
    std::string path_prefix = "/";
    std::string pool;
};

enum class TlsVersion { Tls12, Tls13 };

struct CertificateFiles {
    std::string certificate;
    std::string private_key;
    Position at;
};

struct ListenerTlsConfig {
    std::vector<CertificateFiles> certificates;  // the first is the default
    TlsVersion min_version = TlsVersion::Tls12;
};

struct ListenerConfig {
    std::string name;
    SocketAddress listen;
    std::string pool;  // empty = requests no route matches get 404
    std::vector<Route> routes;
    bool proxy_protocol = false;
    // With proxy_protocol: the only sources allowed to send the header; empty = any.
    std::vector<Network> proxy_protocol_from;
    uint64_t max_connections = 0;
    uint64_t max_connections_per_ip = 0;
    // New connections one client address may open per second (SPEC §3 Admission): a
    // bucket of that many tokens per address, refilled at that rate; 0 = no limit.
    uint64_t max_connects_per_ip_per_second = 0;
    Duration handshake_timeout = std::chrono::seconds(10);
    uint64_t max_header_bytes = 16 * 1024;
    // HTTP: how long an idle keep-alive client connection stays open between requests.
    Duration keepalive_timeout = std::chrono::seconds(60);
    std::vector<std::string> allowed_origins;  // normalized "scheme://host[:port]"
    std::optional<ListenerTlsConfig> tls;
};

enum class Algorithm { Ring, Maglev, LeastConnections, RoundRobin };

struct HashKey {
    enum class Kind { ClientIp, Header, Cookie, Query, Path, PathSegment };
    Kind kind = Kind::ClientIp;
    std::string name;      // header (lower-cased), cookie or query parameter name
    unsigned segment = 0;  // path_segment:N, counting from 1
};

// One `backends` entry: exactly one of `address` and `srv` (SPEC §3 Health, Discovery).
// A literal "ip:port" is one backend; a "name:port" is one backend per A/AAAA record
// and an SRV name one per target of its lowest priority, found at run time
// (discovery/). Every backend, literal or resolved, is placed by its "ip:port".
struct BackendConfig {
    enum class Kind { Literal, Name, Srv };
    Kind kind = Kind::Literal;
    std::string address;     // as written ("10.0.0.1:80", "chat.internal:80"); "" for srv
    SocketAddress resolved;  // Literal: the address; unset for Name and Srv
    std::string host;        // Name: the DNS name (lower case); Srv: the SRV name
    uint16_t port = 0;       // Name: the port every record gets
    std::string srv;         // Srv: the SRV name as written
    unsigned weight = 1;     // Literal and Name (each record); Srv records carry theirs
    Position at;             // the entry, for errors found after decoding

    bool discovered() const { return kind != Kind::Literal; }
    // What /status and the metrics call the entry: the address or the SRV name.
    const std::string& source() const { return kind == Kind::Srv ? srv : address; }
};

struct PoolTlsConfig {
    bool verify = true;
    std::string ca_file;      // "" = system store
    std::string server_name;  // "" = backend host name
    Position at;
};

struct HealthCheckConfig {
    enum class Kind { Http, Tcp, WebSocket };
    Kind kind = Kind::Http;
    std::string path = "/healthz";
    Duration interval = std::chrono::seconds(5);
    // Not longer than interval; when not given, min(2s, interval).
    Duration timeout = std::chrono::seconds(2);
    unsigned rise = 2;
    unsigned fall = 3;
};

struct WebSocketConfig {
    uint64_t max_message_bytes = 0;
    uint64_t max_messages_per_second = 0;
    Duration ping_interval{0};
    Duration ping_timeout = std::chrono::seconds(10);
    Duration idle_timeout{0};
    Duration max_lifetime{0};
};

// [pools.NAME.http]: plain HTTP/1.1 requests routed to the pool (SPEC §3 HTTP requests).
struct HttpConfig {
    uint64_t max_idle_connections = 32;  // idle backend connections per backend and worker
    Duration idle_timeout = std::chrono::seconds(60);
    Duration response_timeout = std::chrono::seconds(60);
    uint64_t max_request_body = 10 * 1024 * 1024;  // 0 = no limit
};

// [pools.NAME.admission]: token buckets for new client connections into the pool and
// into each backend, shared by every worker (SPEC §3 Admission).
struct AdmissionConfig {
    enum class Shed { Close1013, Http503 };
    uint64_t new_connections_per_second = 0;          // the pool's bucket; 0 = no limit
    uint64_t backend_new_connections_per_second = 0;  // each backend's; 0 = no limit
    uint64_t burst = 0;  // each bucket's capacity; 0 = its own rate (one second's worth)
    Shed shed = Shed::Close1013;
    Duration retry_after = std::chrono::seconds(5);  // jittered by ±50% per client

    // A bucket's capacity for `rate` (burst, or one second's worth).
    uint64_t capacity(uint64_t rate) const { return burst > 0 ? burst : rate; }
};

enum class ProxyProtocol { Off, V1, V2 };

struct PoolConfig {
    std::string name;
    std::vector<BackendConfig> backends;
    Algorithm algorithm = Algorithm::Ring;
    HashKey hash_key;
    double load_factor = 0.0;
    bool rehome = false;
    uint64_t max_connections_per_backend = 0;
    Duration connect_timeout = std::chrono::seconds(5);
    unsigned retries = 2;
    Duration resolve_interval = std::chrono::seconds(30);
    ProxyProtocol proxy_protocol = ProxyProtocol::Off;
    bool forwarded_headers = true;
    std::optional<PoolTlsConfig> tls;
    // Absent table = passive checks only, tuned by these defaults (SPEC §3 Health).
    HealthCheckConfig health_check;
    bool active_health_check = false;
    // > 0: a backend that comes up or is added by a reload takes new rooms under a cap
    // that grows from 0 to its full share over this window (SPEC §3 Health).
    Duration slow_start{0};
    WebSocketConfig websocket;
    HttpConfig http;
    std::optional<AdmissionConfig> admission;  // absent: nothing is shed
};

struct Config {
    std::string path;  // the file it was loaded from
    ServerConfig server;
    LogConfig log;
    std::optional<AdminConfig> admin;
    std::vector<ListenerConfig> listeners;
    std::map<std::string, PoolConfig> pools;

    const PoolConfig* find_pool(const std::string& name) const {
        auto it = pools.find(name);
        return it == pools.end() ? nullptr : &it->second;
    }
};

using ConfigPtr = std::shared_ptr<const Config>;

}  // namespace sb::config
