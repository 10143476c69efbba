// The bytes a health check sends and the verdict on what comes back (SPEC §3 Health
// "Active", §3 PROXY protocol: health checks send PROXY UNKNOWN or a v2 LOCAL header).
#include "health/probe_request.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "http/handshake.h"
#include "http/upgrade_response.h"

namespace sb::health {
namespace {

using Kind = config::HealthCheckConfig::Kind;

config::HealthCheckConfig check(Kind kind, std::string path = "/healthz") {
    config::HealthCheckConfig c;
    c.kind = kind;
    c.path = std::move(path);
    return c;
}

Verdict feed(const config::HealthCheckConfig& c, const std::string& answer,
             std::string_view key = "", size_t max_head = 16 * 1024) {
    http::MessageParser parser(http::MessageParser::Kind::Response);
    return check_answer(c, answer, parser, key, max_head);
}

TEST(ProbeRequest, HttpIsAGetWithHostAndConnectionClose) {
    EXPECT_EQ(probe_request(check(Kind::Http, "/up?x=1"), "10.0.0.1:8080", ""),
              "GET /up?x=1 HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"
              "User-Agent: switchboard-health-check\r\nConnection: close\r\n\r\n");
}

TEST(ProbeRequest, TcpSendsNothing) {
    EXPECT_EQ(probe_request(check(Kind::Tcp), "10.0.0.1:8080", ""), "");
}

TEST(ProbeRequest, WebSocketIsAValidUpgrade) {
    std::mt19937_64 rng(7);
    std::string key = random_websocket_key(rng);
    EXPECT_TRUE(http::valid_websocket_key(key)) << key;
    std::string request = probe_request(check(Kind::WebSocket, "/ws"), "[::1]:9000", key);
    // The proxy's own handshake checks accept it.
    http::MessageParser parser(http::MessageParser::Kind::Request);
    ASSERT_EQ(parser.parse(request), http::MessageParser::Status::Complete) << parser.error();
    http::UpgradeRequest upgrade;
    auto result = http::check_upgrade(request, parser, upgrade);
    EXPECT_EQ(result.status, http::Status::Ok) << result.reason;
    EXPECT_NE(request.find("Sec-WebSocket-Key: " + key + "\r\n"), std::string::npos);
    EXPECT_EQ(upgrade.path, "/ws");
}

TEST(ProbeRequest, KeysDiffer) {
    std::mt19937_64 rng(1);
    EXPECT_NE(random_websocket_key(rng), random_websocket_key(rng));
}

TEST(CloseFrame, IsAMaskedClose1000) {
    std::string f = close_frame_1000(0x11223344);
    ASSERT_EQ(f.size(), 8u);
    EXPECT_EQ(static_cast<unsigned char>(f[0]), 0x88);
    EXPECT_EQ(static_cast<unsigned char>(f[1]), 0x82);
    EXPECT_EQ(static_cast<unsigned char>(f[6] ^ f[2]), 0x03);
    EXPECT_EQ(static_cast<unsigned char>(f[7] ^ f[3]), 0xe8);
}

TEST(CheckAnswer, Http2xxIsOk) {
    auto v = feed(check(Kind::Http), "HTTP/1.1 204 No Content\r\n\r\n");
    EXPECT_EQ(v.state, Verdict::State::Ok);
    v = feed(check(Kind::Http), "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_EQ(v.state, Verdict::State::Ok);
}

TEST(CheckAnswer, HttpOtherStatusFailsNamingIt) {
    auto v = feed(check(Kind::Http), "HTTP/1.1 503 Service Unavailable\r\n\r\n");
    EXPECT_EQ(v.state, Verdict::State::Failed);
    EXPECT_EQ(v.error, "status 503");
    v = feed(check(Kind::Http), "HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n");
    EXPECT_EQ(v.error, "status 301");
}

TEST(CheckAnswer, IncompleteHeadNeedsMore) {
    EXPECT_EQ(feed(check(Kind::Http), "HTTP/1.1 200 OK\r\nX: y\r\n").state,
              Verdict::State::NeedMore);
}

TEST(CheckAnswer, InterimAnswersAreSkipped) {
    auto v = feed(check(Kind::Http), "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    EXPECT_EQ(v.state, Verdict::State::Ok);
}

TEST(CheckAnswer, GarbageFails) {
    auto v = feed(check(Kind::Http), "SSH-2.0-OpenSSH_9.2\r\n");
    EXPECT_EQ(v.state, Verdict::State::Failed);
    EXPECT_EQ(v.error.rfind("bad response: ", 0), 0u) << v.error;
}

TEST(CheckAnswer, HeadOverTheBoundFails) {
    std::string endless = "HTTP/1.1 200 OK\r\n";
    while (endless.size() < 3000)
        endless += "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    auto v = feed(check(Kind::Http), endless, "", 2048);
    EXPECT_EQ(v.state, Verdict::State::Failed);
    EXPECT_EQ(v.error, "response head too large");
}

TEST(CheckAnswer, WebSocket101WithTheRightAcceptIsOk) {
    std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    std::string answer =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        http::websocket_accept(key) + "\r\n\r\n";
    EXPECT_EQ(feed(check(Kind::WebSocket), answer, key).state, Verdict::State::Ok);
}

TEST(CheckAnswer, WebSocketWrongAcceptFails) {
    std::string answer =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    auto v = feed(check(Kind::WebSocket), answer, "AAAAAAAAAAAAAAAAAAAAAA==");
    EXPECT_EQ(v.state, Verdict::State::Failed);
    EXPECT_NE(v.error.find("Sec-WebSocket-Accept"), std::string::npos) << v.error;
}

TEST(CheckAnswer, WebSocketAnythingBut101Fails) {
    auto v = feed(check(Kind::WebSocket), "HTTP/1.1 200 OK\r\n\r\n", "AAAAAAAAAAAAAAAAAAAAAA==");
    EXPECT_EQ(v.state, Verdict::State::Failed);
    EXPECT_EQ(v.error, "status 200 (expected 101)");
}

}  // namespace
}  // namespace sb::health
