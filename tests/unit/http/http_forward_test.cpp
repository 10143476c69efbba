// http::backend_http_request and http::client_response: a plain HTTP request and its
// answer lose their hop-by-hop headers (RFC 9110 §7.6.1) on the way through, the
// request gains the forwarded headers, and the answer says whether the client
// connection stays open.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "http/forward.h"
#include "http/handshake.h"
#include "http/message_parser.h"

namespace sb::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string request_for_backend(std::string_view head, bool forwarded = true) {
    MessageParser parser(MessageParser::Kind::Request);
    EXPECT_EQ(parser.parse(head), MessageParser::Status::Complete) << parser.error();
    ForwardInfo info;
    info.add_forwarded_headers = forwarded;
    info.client_ip = "192.0.2.7";
    info.proto = "https";
    return backend_http_request(head, parser, info);
}

std::string response_for_client(std::string_view head, bool keep_alive, bool http10) {
    MessageParser parser(MessageParser::Kind::Response);
    EXPECT_EQ(parser.parse(head), MessageParser::Status::Complete) << parser.error();
    return client_response(head, parser, keep_alive, http10);
}

TEST(HttpForwardTest, RequestLosesEveryHopByHopHeader) {
    auto out = request_for_backend(
        "POST /api?x=1 HTTP/1.1\r\n"
        "Host: chat.example.com\r\n"
        "Connection: keep-alive, X-Private, Upgrade\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Trailer: X-Sum\r\n"
        "Upgrade: h2c\r\n"
        "X-Private: secret\r\n"
        "Content-Length: 3\r\n"
        "Accept: */*\r\n"
        "\r\n");
    EXPECT_EQ(out.rfind("POST /api?x=1 HTTP/1.1\r\nHost: chat.example.com\r\n", 0), 0u) << out;
    for (auto name : {"Connection", "Keep-Alive", "Proxy-Connection", "TE:", "Trailer", "Upgrade",
                      "X-Private"}) {
        EXPECT_THAT(out, Not(HasSubstr(name))) << out;
    }
    EXPECT_THAT(out, HasSubstr("Content-Length: 3\r\n"));
    EXPECT_THAT(out, HasSubstr("Accept: */*\r\n"));
    EXPECT_THAT(out, HasSubstr("X-Forwarded-For: 192.0.2.7\r\n"));
    EXPECT_THAT(out, HasSubstr("X-Forwarded-Proto: https\r\n"));
    EXPECT_THAT(out, HasSubstr("X-Forwarded-Host: chat.example.com\r\n"));
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(HttpForwardTest, FramingHeadersAreNeverDroppedWhateverConnectionSays) {
    // A client naming its own framing in Connection would have the backend read its body
    // as a next request (smuggling): check_http_request refuses it, and the rewrite never
    // drops them either.
    auto out = request_for_backend(
        "POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length, host\r\n"
        "Content-Length: 3\r\n\r\n");
    EXPECT_THAT(out, HasSubstr("Content-Length: 3\r\n"));
    EXPECT_THAT(out, HasSubstr("Host: a\r\n"));
    UpgradeRequest r;
    MessageParser p(MessageParser::Kind::Request);
    std::string_view head =
        "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\n"
        "Content-Length: 3\r\n\r\n";
    ASSERT_EQ(p.parse(head), MessageParser::Status::Complete);
    EXPECT_EQ(check_http_request(head, p, r).status, Status::BadRequest);
    EXPECT_EQ(connection_names_framing(head, p), "content-length");
}

TEST(HttpForwardTest, EmptyLinesBeforeTheRequestLineAreNotForwarded) {
    auto out = request_for_backend("\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", false);
    EXPECT_EQ(out, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
}

TEST(HttpForwardTest, ForwardedForIsAppendedAndProtoReplaced) {
    auto out = request_for_backend(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n"
        "X-Forwarded-Proto: gopher\r\n\r\n");
    EXPECT_THAT(out, HasSubstr("X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n"));
    EXPECT_THAT(out, Not(HasSubstr("gopher")));
}

TEST(HttpForwardTest, WithoutForwardedHeadersOnlyHopByHopGo) {
    auto out = request_for_backend(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
        false);
    EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n");
}

TEST(HttpForwardTest, AnswerSaysTheProxysVersionAndDropsHopByHop) {
    auto out = response_for_client(
        "HTTP/1.0 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=1\r\n"
        "Content-Length: 2\r\n\r\n",
        true, false);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
}

TEST(HttpForwardTest, AnswerSaysCloseWhenTheProxyCloses) {
    auto out =
        response_for_client("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, false);
    EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(HttpForwardTest, Http10ClientKeptAliveIsToldSo) {
    auto out = response_for_client("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true);
    EXPECT_THAT(out, HasSubstr("Connection: keep-alive\r\n"));
}

// ---- check_http_request ----

HandshakeResult check(std::string_view head, UpgradeRequest& out) {
    // `out` points into the head and the parser's spans: both outlive the check.
    static std::unique_ptr<MessageParser> parser;
    parser = std::make_unique<MessageParser>(MessageParser::Kind::Request);
    EXPECT_EQ(parser->parse(head), MessageParser::Status::Complete) << parser->error();
    return check_http_request(head, *parser, out);
}

TEST(HttpRequestCheckTest, AcceptsOriginFormWithHost) {
    UpgradeRequest r;
    auto result =
        check("DELETE /rooms/7?force=1 HTTP/1.1\r\nHost: Chat.Example.com:8080\r\n\r\n", r);
    ASSERT_EQ(result.status, Status::Ok) << result.reason;
    EXPECT_EQ(r.method, "DELETE");
    EXPECT_EQ(r.path, "/rooms/7");
    EXPECT_EQ(r.query, "force=1");
    EXPECT_EQ(r.host_name, "chat.example.com");
}

TEST(HttpRequestCheckTest, Http10MayOmitHost) {
    UpgradeRequest r;
    auto result = check("GET / HTTP/1.0\r\n\r\n", r);
    ASSERT_EQ(result.status, Status::Ok) << result.reason;
    EXPECT_EQ(r.host_name, "");
}

TEST(HttpRequestCheckTest, Refusals) {
    for (std::string_view head : {
             "GET / HTTP/1.1\r\n\r\n",                         // no Host
             "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",   // two Hosts
             "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",            // invalid Host
             "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",      // absolute-form
             "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",  // a tunnel
             "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",        // fragment
         }) {
        UpgradeRequest r;
        EXPECT_EQ(check(head, r).status, Status::BadRequest) << head;
    }
}

TEST(HttpRequestCheckTest, OptionsAsteriskIsAccepted) {
    UpgradeRequest r;
    EXPECT_EQ(check("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", r).status, Status::Ok);
}

TEST(HttpRequestCheckTest, OnlyUpgradeWebsocketIsAnUpgrade) {
    MessageParser p(MessageParser::Kind::Request);
    std::string_view head =
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    ASSERT_EQ(p.parse(head), MessageParser::Status::Complete);
    EXPECT_FALSE(wants_websocket(head, p));
    MessageParser q(MessageParser::Kind::Request);
    std::string_view ws = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\n\r\n";
    ASSERT_EQ(q.parse(ws), MessageParser::Status::Complete);
    EXPECT_TRUE(wants_websocket(ws, q));
}

}  // namespace
}  // namespace sb::http
