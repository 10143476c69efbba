// config::load_string / load_file: what a valid file decodes to (the SPEC §2 defaults
// and every implemented key), TOML syntax errors, unreadable files, the error format
// and the order errors come back in. Per-key errors are in loader_errors_test.cpp.
#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "config_test_util.h"

namespace sb::config {
namespace {

using namespace std::chrono_literals;
using test::dump;
using test::ErrorAt;
using test::load;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view kMinimal = R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
pool = "chat"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)";

// ---- a valid file and its defaults ----

TEST(LoaderTest, MinimalConfigLoads) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    ASSERT_NE(result.config, nullptr);
    EXPECT_EQ(result.config->path, "test.toml");
}

TEST(LoaderTest, ServerDefaults) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& server = result.config->server;
    EXPECT_EQ(server.workers, 0u);
    EXPECT_EQ(server.max_connections, 0u);
    EXPECT_EQ(server.drain_timeout, 30s);
    EXPECT_EQ(server.close_spread, 10s);
}

TEST(LoaderTest, LogDefaults) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& log = result.config->log;
    EXPECT_EQ(log.level, LogLevel::Info);
    EXPECT_EQ(log.format, LogFormat::Text);
    EXPECT_EQ(log.access_log, "stderr");
}

TEST(LoaderTest, AbsentAdminTableMeansNoAdminListener) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_FALSE(result.config->admin.has_value());
}

TEST(LoaderTest, ListenerDefaults) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    ASSERT_EQ(result.config->listeners.size(), 1u);
    const auto& l = result.config->listeners[0];
    EXPECT_EQ(l.name, "public");
    EXPECT_EQ(l.listen.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(l.pool, "chat");
    EXPECT_THAT(l.routes, IsEmpty());
    EXPECT_FALSE(l.proxy_protocol);
    EXPECT_THAT(l.proxy_protocol_from, IsEmpty());
    EXPECT_EQ(l.max_connections, 0u);
    EXPECT_EQ(l.max_connections_per_ip, 0u);
    EXPECT_EQ(l.handshake_timeout, 10s);
    EXPECT_EQ(l.max_header_bytes, 16u * 1024);
    EXPECT_THAT(l.allowed_origins, IsEmpty());
    EXPECT_FALSE(l.tls.has_value());
}

TEST(LoaderTest, ListenerProxyProtocol) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
proxy_protocol = true
proxy_protocol_from = ["10.0.0.0/8", "::1/128", "192.168.1.7", "fd00::/8", "0.0.0.0/0"]

[[listeners]]
name = "any"
listen = "127.0.0.1:8081"
proxy_protocol = true
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& l = result.config->listeners[0];
    EXPECT_TRUE(l.proxy_protocol);
    ASSERT_EQ(l.proxy_protocol_from.size(), 5u);
    EXPECT_EQ(l.proxy_protocol_from[0].to_string(), "10.0.0.0/8");
    EXPECT_EQ(l.proxy_protocol_from[1].to_string(), "::1/128");
    // A plain address is a host route.
    EXPECT_EQ(l.proxy_protocol_from[2].to_string(), "192.168.1.7/32");
    EXPECT_EQ(l.proxy_protocol_from[3].to_string(), "fd00::/8");
    EXPECT_EQ(l.proxy_protocol_from[4].to_string(), "0.0.0.0/0");
    EXPECT_TRUE(result.config->listeners[1].proxy_protocol);
    EXPECT_THAT(result.config->listeners[1].proxy_protocol_from, IsEmpty());
}

TEST(LoaderTest, PoolProxyProtocol) {
    for (auto [text, want] :
         {std::pair{"off", ProxyProtocol::Off}, std::pair{"v1", ProxyProtocol::V1},
          std::pair{"v2", ProxyProtocol::V2}}) {
        auto result = load(std::string(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
proxy_protocol = ")") + text +
                           "\"\n");
        ASSERT_TRUE(result.ok()) << dump(result);
        EXPECT_EQ(result.config->find_pool("chat")->proxy_protocol, want) << text;
    }
}

TEST(LoaderTest, ListenerWithoutPoolOrRoutesIsValid) {
    // No default pool means "404 for everything": odd but legal (SPEC §2 `pool`).
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->listeners[0].pool, "");
    EXPECT_THAT(result.config->pools, IsEmpty());
}

TEST(LoaderTest, PoolDefaults) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto* pool = result.config->find_pool("chat");
    ASSERT_NE(pool, nullptr);
    EXPECT_EQ(pool->name, "chat");
    ASSERT_EQ(pool->backends.size(), 1u);
    EXPECT_EQ(pool->backends[0].address, "10.0.0.1:8080");
    EXPECT_EQ(pool->backends[0].resolved.to_string(), "10.0.0.1:8080");
    EXPECT_EQ(pool->backends[0].weight, 1u);
    EXPECT_EQ(pool->algorithm, Algorithm::Ring);
    EXPECT_EQ(pool->hash_key.kind, HashKey::Kind::ClientIp);
    EXPECT_EQ(pool->load_factor, 0.0);
    EXPECT_FALSE(pool->rehome);
    EXPECT_EQ(pool->max_connections_per_backend, 0u);
    EXPECT_EQ(pool->connect_timeout, 5s);
    EXPECT_EQ(pool->retries, 2u);
    EXPECT_EQ(pool->resolve_interval, 30s);
    EXPECT_EQ(pool->proxy_protocol, ProxyProtocol::Off);
    EXPECT_TRUE(pool->forwarded_headers);
    EXPECT_FALSE(pool->tls.has_value());
    EXPECT_EQ(result.config->find_pool("nope"), nullptr);
}

TEST(LoaderTest, AbsentHealthCheckKeepsPassiveDefaults) {
    // SPEC §3 Health: without a health_check table its fall and interval defaults
    // serve the passive check.
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& pool = *result.config->find_pool("chat");
    EXPECT_FALSE(pool.active_health_check);
    EXPECT_EQ(pool.health_check.kind, HealthCheckConfig::Kind::Http);
    EXPECT_EQ(pool.health_check.path, "/healthz");
    EXPECT_EQ(pool.health_check.interval, 5s);
    EXPECT_EQ(pool.health_check.timeout, 2s);
    EXPECT_EQ(pool.health_check.rise, 2u);
    EXPECT_EQ(pool.health_check.fall, 3u);
}

TEST(LoaderTest, HealthCheckTableTurnsActiveChecksOn) {
    auto result = load(std::string(kMinimal) + R"(
slow_start = "20s"

[pools.chat.health_check]
kind = "websocket"
path = "/ws/health?probe=1"
interval = "1s"
timeout = "500ms"
rise = 1
fall = 5
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& pool = *result.config->find_pool("chat");
    EXPECT_TRUE(pool.active_health_check);
    EXPECT_EQ(pool.health_check.kind, HealthCheckConfig::Kind::WebSocket);
    EXPECT_EQ(pool.health_check.path, "/ws/health?probe=1");
    EXPECT_EQ(pool.health_check.interval, 1s);
    EXPECT_EQ(pool.health_check.timeout, 500ms);
    EXPECT_EQ(pool.health_check.rise, 1u);
    EXPECT_EQ(pool.health_check.fall, 5u);
    EXPECT_EQ(pool.slow_start, 20s);
}

TEST(LoaderTest, HealthCheckTimeoutDefaultsToAtMostTheInterval) {
    // The 2s default would be longer than a 1s interval: it shrinks to the interval.
    auto result = load(std::string(kMinimal) + R"(
[pools.chat.health_check]
kind = "tcp"
interval = "1s"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& pool = *result.config->find_pool("chat");
    EXPECT_EQ(pool.health_check.kind, HealthCheckConfig::Kind::Tcp);
    EXPECT_EQ(pool.health_check.timeout, 1s);
    EXPECT_EQ(pool.slow_start, 0s);
}

TEST(LoaderTest, WebSocketDefaults) {
    auto result = load(kMinimal);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& ws = result.config->find_pool("chat")->websocket;
    EXPECT_EQ(ws.max_message_bytes, 0u);
    EXPECT_EQ(ws.max_messages_per_second, 0u);
    EXPECT_EQ(ws.ping_interval, 0s);
    EXPECT_EQ(ws.ping_timeout, 10s);
    EXPECT_EQ(ws.idle_timeout, 0s);
    EXPECT_EQ(ws.max_lifetime, 0s);
}

// ---- every implemented key decodes ----

constexpr std::string_view kFull = R"(
[server]
workers = 4
drain_timeout = "1m"

[log]
level = "debug"
format = "json"
access_log = "/var/log/switchboard/access.log"

[[listeners]]
name = "public"
listen = "[::]:8443"
pool = "chat"
routes = [
  { host = "Chat.Example.com", path_prefix = "/ws", pool = "chat" },
  { host = "*.games.example.com", pool = "game" },
]
handshake_timeout = "250ms"
max_header_bytes = "32KiB"

[[listeners]]
name = "internal"
listen = "10.1.2.3:0"

[pools.chat]
backends = [
  { address = "10.0.0.11:8080" },
  { address = "[fd00::1]:8080" },
]
connect_timeout = "2s"
retries = 0
forwarded_headers = false

[pools.game]
backends = [{ address = "10.0.1.1:9000" }]
)";

TEST(LoaderTest, FullConfigDecodesServerAndLog) {
    auto result = load(kFull);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& c = *result.config;
    EXPECT_EQ(c.server.workers, 4u);
    EXPECT_EQ(c.server.drain_timeout, 1min);
    EXPECT_EQ(c.log.level, LogLevel::Debug);
    EXPECT_EQ(c.log.format, LogFormat::Json);
    EXPECT_EQ(c.log.access_log, "/var/log/switchboard/access.log");
}

TEST(LoaderTest, FullConfigDecodesListeners) {
    auto result = load(kFull);
    ASSERT_TRUE(result.ok()) << dump(result);
    ASSERT_EQ(result.config->listeners.size(), 2u);
    const auto& l = result.config->listeners[0];
    EXPECT_EQ(l.name, "public");
    EXPECT_EQ(l.listen.to_string(), "[::]:8443");
    EXPECT_EQ(l.pool, "chat");
    EXPECT_EQ(l.handshake_timeout, 250ms);
    EXPECT_EQ(l.max_header_bytes, 32u * 1024);
    EXPECT_EQ(result.config->listeners[1].name, "internal");
    EXPECT_EQ(result.config->listeners[1].listen.port(), 0);
    EXPECT_EQ(result.config->listeners[1].pool, "");
}

TEST(LoaderTest, FullConfigDecodesRoutesInOrderWithLowerCasedHosts) {
    auto result = load(kFull);
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& routes = result.config->listeners[0].routes;
    ASSERT_EQ(routes.size(), 2u);
    EXPECT_EQ(routes[0].host, "chat.example.com");
    EXPECT_EQ(routes[0].path_prefix, "/ws");
    EXPECT_EQ(routes[0].pool, "chat");
    EXPECT_EQ(routes[1].host, "*.games.example.com");
    EXPECT_EQ(routes[1].path_prefix, "/");  // absent path_prefix matches every path
    EXPECT_EQ(routes[1].pool, "game");
}

TEST(LoaderTest, FullConfigDecodesPools) {
    auto result = load(kFull);
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->pools.size(), 2u);
    const auto& chat = *result.config->find_pool("chat");
    ASSERT_EQ(chat.backends.size(), 2u);
    EXPECT_EQ(chat.backends[0].address, "10.0.0.11:8080");
    EXPECT_EQ(chat.backends[0].resolved.to_string(), "10.0.0.11:8080");
    EXPECT_EQ(chat.backends[1].address, "[fd00::1]:8080");
    EXPECT_EQ(chat.backends[1].resolved.family(), AF_INET6);
    EXPECT_EQ(chat.connect_timeout, 2s);
    EXPECT_EQ(chat.retries, 0u);
    EXPECT_FALSE(chat.forwarded_headers);
    const auto& game = *result.config->find_pool("game");
    EXPECT_EQ(game.name, "game");
    EXPECT_EQ(game.backends.size(), 1u);
}

TEST(LoaderTest, SizeAcceptsPlainIntegerBytes) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_header_bytes = 16384
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->listeners[0].max_header_bytes, 16384u);
}

// ---- keys of features that land one at a time (each test skips until it does) ----

// kMinimal's listener and pool with `pool_lines` added to [pools.chat].
LoadResult load_pool_with(std::string_view pool_lines) {
    return load(std::string(kMinimal) + std::string(pool_lines));
}

TEST(LoaderFeatureTest, ServerMaxConnections) {
    SB_SKIP_UNLESS_SUPPORTED("server.max_connections");
    auto result = load("[server]\nmax_connections = 1000\n" + std::string(kMinimal));
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->server.max_connections, 1000u);
}

TEST(LoaderFeatureTest, ServerCloseSpread) {
    SB_SKIP_UNLESS_SUPPORTED("server.close_spread");
    auto result = load("[server]\nclose_spread = \"1h30m\"\n" + std::string(kMinimal));
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->server.close_spread, 90min);
}

TEST(LoaderFeatureTest, AdminListener) {
    SB_SKIP_UNLESS_SUPPORTED("admin");
    auto result = load("[admin]\nlisten = \"127.0.0.1:9901\"\n" + std::string(kMinimal));
    ASSERT_TRUE(result.ok()) << dump(result);
    ASSERT_TRUE(result.config->admin.has_value());
    EXPECT_EQ(result.config->admin->listen.to_string(), "127.0.0.1:9901");
}

TEST(LoaderFeatureTest, ListenerConnectionLimits) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.max_connections");
    SB_SKIP_UNLESS_SUPPORTED("listeners.max_connections_per_ip");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_connections = 500
max_connections_per_ip = 10
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->listeners[0].max_connections, 500u);
    EXPECT_EQ(result.config->listeners[0].max_connections_per_ip, 10u);
}

TEST(LoaderFeatureTest, AllowedOriginsAreNormalized) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.allowed_origins");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
allowed_origins = ["HTTPS://Chat.Example.com:443", "http://localhost:3000"]
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_THAT(result.config->listeners[0].allowed_origins,
                ElementsAre("https://chat.example.com", "http://localhost:3000"));
}

TEST(LoaderFeatureTest, ListenerTls) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.tls");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8443"

[listeners.tls]
certificates = [
  { certificate = "/etc/a.pem", private_key = "/etc/a.key" },
  { certificate = "/etc/b.pem", private_key = "/etc/b.key" },
]
min_version = "1.3"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& tls = result.config->listeners[0].tls;
    ASSERT_TRUE(tls.has_value());
    ASSERT_EQ(tls->certificates.size(), 2u);
    EXPECT_EQ(tls->certificates[0].certificate, "/etc/a.pem");  // the first is the default
    EXPECT_EQ(tls->certificates[0].private_key, "/etc/a.key");
    EXPECT_EQ(tls->min_version, TlsVersion::Tls13);
}

TEST(LoaderFeatureTest, PoolAlgorithm) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.algorithm");
    for (auto [text, algorithm] :
         {std::pair{"ring", Algorithm::Ring}, std::pair{"maglev", Algorithm::Maglev},
          std::pair{"least_connections", Algorithm::LeastConnections},
          std::pair{"round_robin", Algorithm::RoundRobin}}) {
        auto result = load_pool_with("algorithm = \"" + std::string(text) + "\"\n");
        ASSERT_TRUE(result.ok()) << dump(result);
        EXPECT_EQ(result.config->find_pool("chat")->algorithm, algorithm) << text;
    }
}

TEST(LoaderFeatureTest, PoolHashKey) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.hash_key");
    auto result = load_pool_with("hash_key = \"header:X-Room\"\n");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& key = result.config->find_pool("chat")->hash_key;
    EXPECT_EQ(key.kind, HashKey::Kind::Header);
    EXPECT_EQ(key.name, "x-room");
}

TEST(LoaderFeatureTest, PoolLoadFactorAndRehome) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.load_factor");
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.rehome");
    auto result = load_pool_with("load_factor = 1.25\nrehome = true\n");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_DOUBLE_EQ(result.config->find_pool("chat")->load_factor, 1.25);
    EXPECT_TRUE(result.config->find_pool("chat")->rehome);
}

TEST(LoaderFeatureTest, LoadFactorAcceptsAnInteger) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.load_factor");
    auto result = load_pool_with("load_factor = 2\n");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_DOUBLE_EQ(result.config->find_pool("chat")->load_factor, 2.0);
}

TEST(LoaderFeatureTest, MaxConnectionsPerBackend) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.max_connections_per_backend");
    auto result = load_pool_with("max_connections_per_backend = 100\n");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->find_pool("chat")->max_connections_per_backend, 100u);
}

TEST(LoaderFeatureTest, BackendWeight) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.backends.weight");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080", weight = 3 }, { address = "10.0.0.2:8080" }]
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->find_pool("chat")->backends[0].weight, 3u);
    EXPECT_EQ(result.config->find_pool("chat")->backends[1].weight, 1u);
}

TEST(LoaderFeatureTest, PoolTls) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.tls");
    auto result = load_pool_with(R"(
[pools.chat.tls]
verify = false
ca_file = "/etc/ca.pem"
server_name = "chat.internal"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& tls = result.config->find_pool("chat")->tls;
    ASSERT_TRUE(tls.has_value());
    EXPECT_FALSE(tls->verify);
    EXPECT_EQ(tls->ca_file, "/etc/ca.pem");
    EXPECT_EQ(tls->server_name, "chat.internal");
}

TEST(LoaderFeatureTest, WebSocketLimits) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.websocket");
    auto result = load_pool_with(R"(
[pools.chat.websocket]
max_message_bytes = "1MiB"
max_messages_per_second = 50
ping_interval = "30s"
ping_timeout = "5s"
idle_timeout = "5m"
max_lifetime = "1h"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& ws = result.config->find_pool("chat")->websocket;
    EXPECT_EQ(ws.max_message_bytes, 1024u * 1024);
    EXPECT_EQ(ws.max_messages_per_second, 50u);
    EXPECT_EQ(ws.ping_interval, 30s);
    EXPECT_EQ(ws.ping_timeout, 5s);
    EXPECT_EQ(ws.idle_timeout, 5min);
    EXPECT_EQ(ws.max_lifetime, 1h);
}

TEST(LoaderFeatureTest, HttpTable) {
    auto result = load_pool_with(R"(
[pools.chat.http]
max_idle_connections = 4
idle_timeout = "2s"
response_timeout = "500ms"
max_request_body = "1MiB"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& http = result.config->find_pool("chat")->http;
    EXPECT_EQ(http.max_idle_connections, 4u);
    EXPECT_EQ(http.idle_timeout, 2s);
    EXPECT_EQ(http.response_timeout, 500ms);
    EXPECT_EQ(http.max_request_body, 1024u * 1024);
}

TEST(LoaderFeatureTest, HttpDefaults) {
    auto result = load_pool_with("");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& http = result.config->find_pool("chat")->http;
    EXPECT_EQ(http.max_idle_connections, 32u);
    EXPECT_EQ(http.idle_timeout, 60s);
    EXPECT_EQ(http.response_timeout, 60s);
    EXPECT_EQ(http.max_request_body, 10u * 1024 * 1024);
    EXPECT_EQ(result.config->listeners[0].keepalive_timeout, 60s);
}

TEST(LoaderFeatureTest, AdmissionTable) {
    auto result = load_pool_with(R"(
[pools.chat.admission]
new_connections_per_second = 200
backend_new_connections_per_second = 50
burst = 25
shed = "http_503"
retry_after = "4s"
)");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& a = result.config->find_pool("chat")->admission;
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->new_connections_per_second, 200u);
    EXPECT_EQ(a->backend_new_connections_per_second, 50u);
    EXPECT_EQ(a->burst, 25u);
    EXPECT_EQ(a->shed, AdmissionConfig::Shed::Http503);
    EXPECT_EQ(a->retry_after, 4s);
    EXPECT_EQ(a->capacity(50), 25u);
}

TEST(LoaderFeatureTest, AdmissionDefaults) {
    // An empty table turns admission on with every limit off: SPEC §2's defaults.
    auto result = load_pool_with("[pools.chat.admission]\n");
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& a = result.config->find_pool("chat")->admission;
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->new_connections_per_second, 0u);
    EXPECT_EQ(a->backend_new_connections_per_second, 0u);
    EXPECT_EQ(a->burst, 0u);
    EXPECT_EQ(a->shed, AdmissionConfig::Shed::Close1013);
    EXPECT_EQ(a->retry_after, 5s);
    // burst = 0: one second's worth.
    EXPECT_EQ(a->capacity(40), 40u);
    EXPECT_FALSE(load_pool_with("").config->find_pool("chat")->admission.has_value());
    EXPECT_EQ(load_pool_with("").config->listeners[0].max_connects_per_ip_per_second, 0u);
}

TEST(LoaderFeatureTest, AdmissionValuesAreChecked) {
    auto result = load_pool_with(R"(
[pools.chat.admission]
new_connections_per_second = -1
shed = "drop"
retry_after = "2h"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(10, 30, ::testing::_), ErrorAt(11, 8, HasSubstr("close_1013")),
                            ErrorAt(12, 15, HasSubstr("at most 1h"))))
        << dump(result);
}

// ---- error format and order ----

TEST(LoaderTest, ConfigErrorToStringIsFileLineColumnMessage) {
    ConfigError e{"/etc/switchboard/switchboard.toml", 12, 7, "something is wrong"};
    EXPECT_EQ(e.to_string(), "/etc/switchboard/switchboard.toml:12:7: something is wrong");
}

TEST(LoaderTest, ErrorsNameTheFileGivenToLoadString) {
    auto result = load_string(
        "[server]\nworkers = \"x\"\n\n[[listeners]]\nname = \"a\"\nlisten = \"0.0.0.0:1\"\n",
        "/tmp/my.toml");
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_EQ(result.errors[0].file, "/tmp/my.toml");
    EXPECT_EQ(result.errors[0].to_string(), "/tmp/my.toml:2:11: expected an integer, got a string");
}

TEST(LoaderTest, AnyErrorMeansNoConfig) {
    auto result = load("[server]\nworkers = -1\n");
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.config, nullptr);
}

TEST(LoaderTest, ReportsEveryErrorAtOnceSortedByPosition) {
    // toml11 tables are unordered maps, so decoding visits keys in no particular order;
    // the loader sorts by line, then column.
    auto result = load(R"(
[server]
workers = -1
drain_timeout = 5

[log]
level = "loud"
format = "xml"

[[listeners]]
name = "public"
listen = "127.0.0.1"
handshake_timeout = "ten"

[pools.chat]
backends = [{ adress = "10.0.0.1:8080", wieght = 0 }]
)");
    EXPECT_THAT(
        result.errors,
        ElementsAre(ErrorAt(2, 11, HasSubstr("-1 is out of range (0 to 256)")),
                    ErrorAt(3, 17, HasSubstr("expected a duration string")),
                    ErrorAt(6, 9, HasSubstr("\"loud\" is not one of")),
                    ErrorAt(7, 10, HasSubstr("\"xml\" is not one of \"text\", \"json\"")),
                    ErrorAt(11, 10, HasSubstr("\"127.0.0.1\" is not an address")),
                    ErrorAt(12, 21, HasSubstr("expected a duration")),
                    ErrorAt(15, 13, HasSubstr("missing required key \"address\" in a backend")),
                    ErrorAt(15, 15, HasSubstr("unknown key \"adress\" in a backend")),
                    ErrorAt(15, 41, HasSubstr("unknown key \"wieght\" in a backend"))))
        << dump(result);
}

// ---- TOML syntax errors ----

TEST(LoaderTest, SyntaxErrorHasPosition) {
    auto result = load(R"(
[server]
workers = 4
drain_timeout = = "30s"
)");
    EXPECT_EQ(result.config, nullptr);
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_EQ(result.errors[0].file, "test.toml");
    EXPECT_EQ(result.errors[0].line, 3u);
    EXPECT_EQ(result.errors[0].column, 17u);
    // toml11's multi-line report is folded into one line.
    EXPECT_THAT(result.errors[0].message, Not(HasSubstr("\n")));
    EXPECT_THAT(result.errors[0].message, Not(IsEmpty()));
}

TEST(LoaderTest, UnterminatedStringIsASyntaxErrorOnItsLine) {
    auto result = load(R"(
[[listeners]]
name = "public
listen = "127.0.0.1:8080"
)");
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_EQ(result.errors[0].line, 2u);
    EXPECT_THAT(result.errors[0].message, Not(HasSubstr("\n")));
}

TEST(LoaderTest, DuplicateTomlKeyIsAnError) {
    auto result = load(R"(
[server]
workers = 4
workers = 8
)");
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_EQ(result.errors[0].line, 3u);
    EXPECT_EQ(result.config, nullptr);
}

// ---- files ----

TEST(LoaderTest, MissingFileIsOneErrorAtZeroZero) {
    const std::string path = "/nonexistent-dir/switchboard.toml";
    auto result = load_file(path);
    EXPECT_EQ(result.config, nullptr);
    ASSERT_EQ(result.errors.size(), 1u);
    const auto& e = result.errors[0];
    EXPECT_EQ(e.file, path);
    EXPECT_EQ(e.line, 0u);
    EXPECT_EQ(e.column, 0u);
    EXPECT_THAT(e.message, AllOf(HasSubstr("cannot read the configuration file"),
                                 HasSubstr("No such file or directory")));
    EXPECT_THAT(e.to_string(), StartsWith(path + ":0:0: cannot read"));
}

class LoadFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = ::testing::TempDir() + "sb_loader_" + info->name() + ".toml";
    }
    void TearDown() override { std::remove(path_.c_str()); }
    void write(std::string_view text) {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out << text;
    }
    std::string path_;
};

TEST_F(LoadFileTest, ReadsAValidFile) {
    write(kMinimal);
    auto result = load_file(path_);
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_EQ(result.config->path, path_);
    EXPECT_EQ(result.config->listeners[0].name, "public");
}

TEST_F(LoadFileTest, ErrorsNameTheFile) {
    write("[server]\nworkers = true\n\n[[listeners]]\nname = \"a\"\nlisten = \"0.0.0.0:1\"\n");
    auto result = load_file(path_);
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_EQ(result.errors[0].to_string(), path_ + ":2:11: expected an integer, got a boolean");
}

// ---- schema ----

TEST(LoaderTest, SchemaKeysListCoreAndLaterKeys) {
    auto keys = schema_keys();
    auto find = [&](std::string_view path) -> const SchemaKey* {
        auto it = std::find_if(keys.begin(), keys.end(),
                               [&](const SchemaKey& k) { return k.path == path; });
        return it == keys.end() ? nullptr : &*it;
    };
    // What every minimal file uses is implemented.
    for (auto path : {"server.workers",
                      "server.drain_timeout",
                      "log.level",
                      "log.format",
                      "log.access_log",
                      "listeners.name",
                      "listeners.listen",
                      "listeners.pool",
                      "listeners.routes",
                      "listeners.routes.host",
                      "listeners.routes.path_prefix",
                      "listeners.routes.pool",
                      "listeners.handshake_timeout",
                      "listeners.max_header_bytes",
                      "pools.NAME.backends",
                      "pools.NAME.backends.address",
                      "pools.NAME.connect_timeout",
                      "pools.NAME.retries",
                      "pools.NAME.forwarded_headers",
                      "listeners.keepalive_timeout",
                      "pools.NAME.http",
                      "pools.NAME.http.max_idle_connections",
                      "pools.NAME.http.idle_timeout",
                      "pools.NAME.http.response_timeout",
                      "pools.NAME.http.max_request_body",
                      "listeners.max_connects_per_ip_per_second",
                      "pools.NAME.admission",
                      "pools.NAME.admission.new_connections_per_second",
                      "pools.NAME.admission.backend_new_connections_per_second",
                      "pools.NAME.admission.burst",
                      "pools.NAME.admission.shed",
                      "pools.NAME.admission.retry_after"}) {
        const auto* key = find(path);
        ASSERT_NE(key, nullptr) << path;
        EXPECT_TRUE(key->supported) << path;
    }
}

TEST(LoaderTest, SchemaKeysAreUnique) {
    std::set<std::string> seen;
    for (const auto& key : schema_keys())
        EXPECT_TRUE(seen.insert(key.path).second) << key.path;
}

}  // namespace
}  // namespace sb::config
