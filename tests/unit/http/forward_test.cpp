// http::backend_request: the client's head rewritten for its backend. X-Forwarded-For
// is appended to, X-Forwarded-Proto and X-Forwarded-Host are replaced, Sec-WebSocket-*
// and every other header pass unchanged and in order; X-Forwarded-Host only ever
// carries a valid host[:port]; with add_forwarded_headers off the head goes out byte
// for byte.
#include "http/forward.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/message_parser.h"

namespace sb::http {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

constexpr std::string_view kHead =
    "GET /chat?room=42 HTTP/1.1\r\n"
    "Host: chat.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

// Parses `head` and rewrites it; the parser must outlive nothing, so the result
// is a plain string.
std::string rewrite(std::string_view head, const ForwardInfo& info) {
    MessageParser parser(MessageParser::Kind::Request);
    EXPECT_EQ(parser.parse(head), MessageParser::Status::Complete) << parser.error();
    return backend_request(head, parser, info);
}

// The rewritten head parsed back: (name, value) pairs in order.
std::vector<std::pair<std::string, std::string>> headers_of(std::string_view head) {
    MessageParser parser(MessageParser::Kind::Request);
    EXPECT_EQ(parser.parse(head), MessageParser::Status::Complete) << parser.error() << head;
    EXPECT_EQ(parser.head_length(), head.size());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& h : parser.headers()) {
        out.emplace_back(std::string(h.name.in(head)), std::string(h.value.in(head)));
    }
    return out;
}

std::string with_headers(std::string_view extra) {
    std::string head(kHead.substr(0, kHead.size() - 2));
    head += extra;
    head += "\r\n";
    return head;
}

const ForwardInfo kInfo{true, "203.0.113.7", "https"};

TEST(ForwardTest, AddsForwardedHeadersAfterTheClientsOwn) {
    auto out = rewrite(kHead, kInfo);
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /chat?room=42 HTTP/1.1");
    EXPECT_THAT(
        headers_of(out),
        ElementsAre(
            Pair("Host", "chat.example.com"), Pair("Upgrade", "websocket"),
            Pair("Connection", "Upgrade"), Pair("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            Pair("Sec-WebSocket-Version", "13"), Pair("Sec-WebSocket-Protocol", "chat, superchat"),
            Pair("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
            Pair("X-Forwarded-For", "203.0.113.7"), Pair("X-Forwarded-Proto", "https"),
            Pair("X-Forwarded-Host", "chat.example.com")));
}

TEST(ForwardTest, SecWebSocketHeadersPassByteForByte) {
    auto out = rewrite(kHead, kInfo);
    for (auto line :
         {"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Sec-WebSocket-Version: 13\r\n",
          "Sec-WebSocket-Protocol: chat, superchat\r\n",
          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"}) {
        EXPECT_NE(out.find(line), std::string::npos) << line;
    }
}

TEST(ForwardTest, AppendsToAnExistingXForwardedFor) {
    auto out = rewrite(with_headers("X-Forwarded-For: 198.51.100.1\r\n"), kInfo);
    auto headers = headers_of(out);
    EXPECT_EQ(std::count_if(headers.begin(), headers.end(),
                            [](const auto& h) { return iequals(h.first, "x-forwarded-for"); }),
              1);
    EXPECT_NE(out.find("X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n"), std::string::npos) << out;
}

TEST(ForwardTest, MergesSeveralXForwardedForHeadersInOrder) {
    auto out = rewrite(
        with_headers("x-forwarded-for: 198.51.100.1\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"),
        kInfo);
    EXPECT_NE(out.find("X-Forwarded-For: 198.51.100.1, 10.0.0.1, 10.0.0.2, 203.0.113.7\r\n"),
              std::string::npos)
        << out;
}

TEST(ForwardTest, ReplacesAForgedXForwardedProto) {
    ForwardInfo info{true, "203.0.113.7", "http"};
    auto out = rewrite(with_headers("X-Forwarded-Proto: https\r\n"), info);
    EXPECT_EQ(out.find("https"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << out;
}

TEST(ForwardTest, ReplacesAForgedXForwardedHost) {
    auto out = rewrite(with_headers("X-Forwarded-Host: evil.example\r\n"), kInfo);
    EXPECT_EQ(out.find("evil.example"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Forwarded-Host: chat.example.com\r\n"), std::string::npos) << out;
}

TEST(ForwardTest, ForwardedHostKeepsThePortAsSent) {
    std::string head(kHead);
    head.replace(head.find("Host: chat.example.com"), 22, "Host: chat.example.com:8443");
    auto out = rewrite(head, kInfo);
    EXPECT_NE(out.find("X-Forwarded-Host: chat.example.com:8443\r\n"), std::string::npos) << out;
}

// Regression: "Host: a b" went into X-Forwarded-Host. check_upgrade refuses such a
// request, and backend_request itself never copies a Host that is not host[:port].
TEST(ForwardTest, NeverCopiesAnInvalidHostIntoXForwardedHost) {
    for (std::string_view bad : {"Host: a b", "Host: a\tb", "Host: a:99999", "Host: a@b"}) {
        std::string head(kHead);
        head.replace(head.find("Host: chat.example.com"), 22, bad);
        auto out = rewrite(head, kInfo);
        EXPECT_EQ(out.find("X-Forwarded-Host"), std::string::npos) << out;
    }
}

TEST(ForwardTest, NoXForwardedHostFromTwoHostHeaders) {
    auto out = rewrite(with_headers("Host: other.example\r\n"), kInfo);
    EXPECT_EQ(out.find("X-Forwarded-Host"), std::string::npos) << out;
}

TEST(ForwardTest, ForwardedHostLeavesOutTrailingWhitespace) {
    std::string head(kHead);
    head.replace(head.find("Host: chat.example.com"), 22, "Host: chat.example.com \t");
    auto out = rewrite(head, kInfo);
    EXPECT_NE(out.find("X-Forwarded-Host: chat.example.com\r\n"), std::string::npos) << out;
}

TEST(ForwardTest, Ipv6ClientAddress) {
    ForwardInfo info{true, "2001:db8::7", "http"};
    auto out = rewrite(kHead, info);
    EXPECT_NE(out.find("X-Forwarded-For: 2001:db8::7\r\n"), std::string::npos) << out;
}

TEST(ForwardTest, StopsAtTheEndOfTheHead) {
    std::string buffer = std::string(kHead) +
                         "\x81\x80"
                         "early";
    auto out = rewrite(buffer, kInfo);
    EXPECT_EQ(out.find("early"), std::string::npos);
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(ForwardTest, DisabledPassesTheHeadUnchanged) {
    ForwardInfo info{false, "203.0.113.7", "https"};
    std::string head = with_headers("X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: ftp\r\n");
    EXPECT_EQ(rewrite(head, info), head);
}

TEST(ForwardTest, DisabledStopsAtTheEndOfTheHead) {
    ForwardInfo info{false, "203.0.113.7", "https"};
    std::string buffer = std::string(kHead) +
                         "\x81\x80"
                         "early";
    EXPECT_EQ(rewrite(buffer, info), kHead);
}

}  // namespace
}  // namespace sb::http
