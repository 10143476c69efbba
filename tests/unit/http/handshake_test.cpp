// http::check_upgrade: one test per rule of SPEC §3 Handshake (RFC 6455 §4.2.1),
// each answered 400 or, for a wrong version, 426; the accepted request and what is
// extracted from it (path, query, host name, origin); valid_websocket_key, valid_host
// and host_without_port.
#include "http/handshake.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "http/message_parser.h"

namespace sb::http {
namespace {

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3's example

// A request head built from a request line and header lines; `parse()` runs the
// parser on it and `check()` runs check_upgrade.
class HandshakeTest : public ::testing::Test {
  protected:
    // The headers of a valid upgrade; tests change or drop them.
    std::vector<std::string> headers_ = {
        "Host: chat.example.com",    "Upgrade: websocket",
        "Connection: Upgrade",       std::string("Sec-WebSocket-Key: ") + std::string(kKey),
        "Sec-WebSocket-Version: 13",
    };
    std::string request_line_ = "GET /chat?room=42 HTTP/1.1";

    void drop(std::string_view prefix) {
        std::erase_if(headers_, [&](const std::string& h) { return h.rfind(prefix, 0) == 0; });
    }
    void replace(std::string_view prefix, std::string line) {
        drop(prefix);
        headers_.push_back(std::move(line));
    }

    HandshakeResult check(std::string_view body = {}) {
        buffer_ = request_line_ + "\r\n";
        for (const auto& h : headers_)
            buffer_ += h + "\r\n";
        buffer_ += "\r\n";
        buffer_ += body;
        parser_ = std::make_unique<MessageParser>(MessageParser::Kind::Request);
        auto status = parser_->parse(buffer_);
        EXPECT_EQ(status, MessageParser::Status::Complete) << parser_->error();
        return check_upgrade(buffer_, *parser_, request_);
    }

    // Whether the request is refused with 400, by the parser (its strict framing
    // rules) or by check_upgrade: the session answers 400 to either.
    bool refused_with_400() {
        buffer_ = request_line_ + "\r\n";
        for (const auto& h : headers_)
            buffer_ += h + "\r\n";
        buffer_ += "\r\n";
        parser_ = std::make_unique<MessageParser>(MessageParser::Kind::Request);
        if (parser_->parse(buffer_) == MessageParser::Status::Error) return true;
        return check_upgrade(buffer_, *parser_, request_).status == Status::BadRequest;
    }

    void expect_refused(Status status, std::string_view body = {}) {
        auto result = check(body);
        EXPECT_EQ(result.status, status) << result.reason;
        EXPECT_FALSE(result.reason.empty());
    }

    std::string buffer_;
    std::unique_ptr<MessageParser> parser_;
    UpgradeRequest request_;
};

// ---- the accepted request ----

TEST_F(HandshakeTest, AcceptsAValidUpgrade) {
    auto result = check();
    EXPECT_EQ(result.status, Status::Ok) << result.reason;
    EXPECT_EQ(result.reason, "");
}

TEST_F(HandshakeTest, ExtractsMethodTargetPathAndQuery) {
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.method, "GET");
    EXPECT_EQ(request_.target, "/chat?room=42");
    EXPECT_EQ(request_.path, "/chat");
    EXPECT_EQ(request_.query, "room=42");
}

TEST_F(HandshakeTest, TargetWithoutAQuery) {
    request_line_ = "GET /rooms/42/ws HTTP/1.1";
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.path, "/rooms/42/ws");
    EXPECT_EQ(request_.query, "");
}

TEST_F(HandshakeTest, QueryIsEverythingAfterTheFirstQuestionMark) {
    request_line_ = "GET /ws?a=1?b=2 HTTP/1.1";
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.path, "/ws");
    EXPECT_EQ(request_.query, "a=1?b=2");
}

TEST_F(HandshakeTest, EmptyQuery) {
    request_line_ = "GET /ws? HTTP/1.1";
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.path, "/ws");
    EXPECT_EQ(request_.query, "");
}

TEST_F(HandshakeTest, HostNameIsLowerCasedWithoutThePort) {
    replace("Host:", "Host: Chat.Example.COM:8080");
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.host, "Chat.Example.COM:8080");
    EXPECT_EQ(request_.host_name, "chat.example.com");
}

TEST_F(HandshakeTest, OriginIsEmptyWhenAbsent) {
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.origin, "");
}

TEST_F(HandshakeTest, OriginIsExtracted) {
    headers_.push_back("Origin: https://chat.example.com");
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.origin, "https://chat.example.com");
}

TEST_F(HandshakeTest, HeaderNamesAndTokensAreCaseInsensitive) {
    replace("Upgrade:", "upgrade: WebSocket");
    replace("Connection:", "CONNECTION: keep-alive, UPGRADE");
    replace("Sec-WebSocket-Key:", "sec-websocket-key: " + std::string(kKey));
    replace("Sec-WebSocket-Version:", "SEC-WEBSOCKET-VERSION: 13");
    auto result = check();
    EXPECT_EQ(result.status, Status::Ok) << result.reason;
}

TEST_F(HandshakeTest, ConnectionMayListOtherTokens) {
    replace("Connection:", "Connection: keep-alive, Upgrade");
    EXPECT_EQ(check().status, Status::Ok);
}

TEST_F(HandshakeTest, SubprotocolsAndExtensionsDoNotMatter) {
    headers_.push_back("Sec-WebSocket-Protocol: chat, superchat");
    headers_.push_back("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits");
    EXPECT_EQ(check().status, Status::Ok);
}

// ---- 400: malformed ----

TEST_F(HandshakeTest, PlainHttpRequestIsNotAnUpgrade) {
    drop("Upgrade:");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, UpgradeToSomethingElse) {
    replace("Upgrade:", "Upgrade: h2c");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, MethodMustBeGet) {
    request_line_ = "POST /chat HTTP/1.1";
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, HeadIsNotGet) {
    request_line_ = "HEAD /chat HTTP/1.1";
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, VersionMustBeHttp11) {
    request_line_ = "GET /chat HTTP/1.0";
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, TargetMustBeAPath) {
    request_line_ = "GET http://chat.example.com/chat HTTP/1.1";
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, AsteriskTargetIsRefused) {
    request_line_ = "GET * HTTP/1.1";
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, MissingHost) {
    drop("Host:");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, EmptyHost) {
    replace("Host:", "Host:");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, TwoHostHeaders) {
    headers_.push_back("Host: other.example.com");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, MissingConnection) {
    drop("Connection:");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, ConnectionWithoutTheUpgradeToken) {
    replace("Connection:", "Connection: keep-alive");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, ConnectionWithUpgradeOnlyAsASubstring) {
    replace("Connection:", "Connection: upgraded");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, MissingKey) {
    drop("Sec-WebSocket-Key:");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, RepeatedKey) {
    headers_.push_back("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, KeyThatIsNotBase64Of16Bytes) {
    replace("Sec-WebSocket-Key:", "Sec-WebSocket-Key: not-a-key");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, MissingVersionIsMalformed) {
    drop("Sec-WebSocket-Version:");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, UpgradeWithABody) {
    headers_.push_back("Content-Length: 5");
    expect_refused(Status::BadRequest, "hello");
}

TEST_F(HandshakeTest, UpgradeWithAChunkedBody) {
    headers_.push_back("Transfer-Encoding: chunked");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, EmptyBodyIsFine) {
    headers_.push_back("Content-Length: 0");
    EXPECT_EQ(check().status, Status::Ok);
}

// Regression: RFC 9112 §6.3 and SPEC §3: any Transfer-Encoding, or a Content-Length
// that is not zero, on an upgrade request gets 400, whatever the coding.
TEST_F(HandshakeTest, TransferEncodingGzipOnAnUpgradeIsRefused) {
    headers_.push_back("Transfer-Encoding: gzip");
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, EmptyTransferEncodingOnAnUpgradeIsRefused) {
    headers_.push_back("Transfer-Encoding:");
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, TransferEncodingEndingInChunkedOnAnUpgradeIsRefused) {
    headers_.push_back("Transfer-Encoding: gzip, chunked");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, TransferEncodingIsRefusedEvenWithContentLengthZero) {
    headers_.push_back("Content-Length: 0");
    headers_.push_back("Transfer-Encoding: identity");
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, AbsurdContentLengthIsRefused) {
    headers_.push_back("Content-Length: 99999999999999999999999999");
    EXPECT_TRUE(refused_with_400());
    replace("Content-Length:", "Content-Length: 1000000000");
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, ContentLengthZeroWrittenLongIsFine) {
    headers_.push_back("Content-Length: 000");
    EXPECT_EQ(check().status, Status::Ok);
}

// Regression: "Host: a b" was accepted and copied into X-Forwarded-Host. A Host that
// is not host[:port] (RFC 9112 §3.2, RFC 3986 §3.2.2) gets 400.
TEST_F(HandshakeTest, HostWithASpaceIsRefused) {
    replace("Host:", "Host: a b");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, HostWithATabIsRefused) {
    replace("Host:", "Host: a\tb");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, HostWithControlCharactersIsRefused) {
    replace("Host:", "Host: a\x01");
    EXPECT_TRUE(refused_with_400());
    replace("Host:", "Host: a\x7f");
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, HostWithABadPortIsRefused) {
    for (const char* host : {"a:65536", "a:", "a:x", "a:-1", "a:80:80", ":80"}) {
        replace("Host:", std::string("Host: ") + host);
        EXPECT_TRUE(refused_with_400()) << host;
    }
}

TEST_F(HandshakeTest, HostWithUserinfoOrPathIsRefused) {
    for (const char* host : {"user@a.example", "a.example/x", "a.example?x", "a.example#x"}) {
        replace("Host:", std::string("Host: ") + host);
        EXPECT_TRUE(refused_with_400()) << host;
    }
}

TEST_F(HandshakeTest, WhitespaceAroundHostIsNotPartOfIt) {
    replace("Host:", "Host:   chat.example.com:8080  ");
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.host, "chat.example.com:8080");
}

TEST_F(HandshakeTest, Ipv6HostIsAccepted) {
    replace("Host:", "Host: [2001:db8::1]:8443");
    ASSERT_EQ(check().status, Status::Ok);
    EXPECT_EQ(request_.host_name, "[2001:db8::1]");
}

TEST_F(HandshakeTest, TwoHostHeadersEvenIfEqual) {
    headers_.push_back("Host: chat.example.com");
    expect_refused(Status::BadRequest);
}

TEST_F(HandshakeTest, FragmentInTheTargetIsRefused) {
    // A fragment is never sent in a request (RFC 9112 §3.2.1 origin-form).
    request_line_ = "GET /chat#x HTTP/1.1";
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, AuthorityFormTargetIsRefused) {
    request_line_ = "GET chat.example.com:80 HTTP/1.1";
    EXPECT_TRUE(refused_with_400());
}

TEST_F(HandshakeTest, TwoOriginHeaders) {
    headers_.push_back("Origin: https://a.example");
    headers_.push_back("Origin: https://b.example");
    expect_refused(Status::BadRequest);
}

// ---- 426: wrong version ----

TEST_F(HandshakeTest, OldVersionGets426) {
    replace("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8");
    expect_refused(Status::UpgradeRequired);
}

TEST_F(HandshakeTest, FutureVersionGets426) {
    replace("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 14");
    expect_refused(Status::UpgradeRequired);
}

TEST_F(HandshakeTest, VersionListGets426) {
    replace("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 13, 8");
    expect_refused(Status::UpgradeRequired);
}

TEST_F(HandshakeTest, RepeatedVersionGets426) {
    headers_.push_back("Sec-WebSocket-Version: 13");
    expect_refused(Status::UpgradeRequired);
}

// ---- valid_websocket_key ----

TEST(ValidWebSocketKeyTest, AcceptsBase64Of16Bytes) {
    EXPECT_TRUE(valid_websocket_key(kKey));
    EXPECT_TRUE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));  // 16 zero bytes
    EXPECT_TRUE(valid_websocket_key("/////////////////////w=="));  // 16 0xFF bytes
    EXPECT_TRUE(valid_websocket_key("x3JJHMbDL1EzLkh9GBhXDw=="));  // RFC 6455 §4.1 example
    EXPECT_TRUE(valid_websocket_key("+/+/+/+/+/+/+/+/+/+/+g=="));
}

TEST(ValidWebSocketKeyTest, RejectsOtherLengths) {
    EXPECT_FALSE(valid_websocket_key(""));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAA"));          // 12 bytes
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAA="));  // 17 bytes
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAA"));   // 23 characters
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA==="));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAAAAAA="));  // 20 bytes
}

TEST(ValidWebSocketKeyTest, RejectsMissingOrMisplacedPadding) {
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAAAA"));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAA=A="));
    EXPECT_FALSE(valid_websocket_key("=AAAAAAAAAAAAAAAAAAAAA=="));
}

TEST(ValidWebSocketKeyTest, RejectsCharactersOutsideBase64) {
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAA-A=="));  // base64url
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAA_A=="));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAA AAAAAAAAAAA=="));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAA\xc3\xa9=="));
}

TEST(ValidWebSocketKeyTest, RejectsNonZeroTrailingBits) {
    // The 22nd character carries two bits of the 16th byte and four of padding.
    EXPECT_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZR=="));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAB=="));
    EXPECT_FALSE(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAA/=="));
}

// ---- valid_host ----

TEST(ValidHostTest, AcceptsRegisteredNames) {
    EXPECT_TRUE(valid_host("chat.example.com"));
    EXPECT_TRUE(valid_host("Chat.Example.COM"));
    EXPECT_TRUE(valid_host("localhost"));
    EXPECT_TRUE(valid_host("a-b_c~d.e"));
    EXPECT_TRUE(valid_host("xn--bcher-kva.example"));
    EXPECT_TRUE(valid_host("example.com."));
    EXPECT_TRUE(valid_host("%41b"));           // pct-encoded
    EXPECT_TRUE(valid_host("a!$&'()*+,;=b"));  // sub-delims are reg-name characters
}

TEST(ValidHostTest, AcceptsAPortThatFits) {
    EXPECT_TRUE(valid_host("chat.example.com:8080"));
    EXPECT_TRUE(valid_host("a:0"));
    EXPECT_TRUE(valid_host("a:65535"));
    EXPECT_TRUE(valid_host("a:00080"));
}

TEST(ValidHostTest, AcceptsIpAddresses) {
    EXPECT_TRUE(valid_host("127.0.0.1"));
    EXPECT_TRUE(valid_host("127.0.0.1:80"));
    EXPECT_TRUE(valid_host("[::1]"));
    EXPECT_TRUE(valid_host("[::1]:443"));
    EXPECT_TRUE(valid_host("[2001:DB8::1]"));
    EXPECT_TRUE(valid_host("[::ffff:192.0.2.1]:80"));
}

TEST(ValidHostTest, RejectsEmptyAndWhitespace) {
    EXPECT_FALSE(valid_host(""));
    EXPECT_FALSE(valid_host(" "));
    EXPECT_FALSE(valid_host("a b"));
    EXPECT_FALSE(valid_host(" a"));
    EXPECT_FALSE(valid_host("a\tb"));
}

TEST(ValidHostTest, RejectsCharactersOutsideRegName) {
    for (std::string_view host : {"a@b", "a/b", "a\\b", "a?b", "a#b", "a\"b", "a<b", "a>b", "a[b",
                                  "a]b", "a{b", "a|b", "a^b", "a`b"}) {
        EXPECT_FALSE(valid_host(host)) << host;
    }
    EXPECT_FALSE(valid_host(std::string_view("a\0b", 3)));
    EXPECT_FALSE(valid_host("a\x01"));
    EXPECT_FALSE(valid_host("a\x7f"));
    EXPECT_FALSE(valid_host("\xc3\xa9.example"));  // raw UTF-8: IDNs travel as xn--
}

TEST(ValidHostTest, RejectsBrokenPercentEncoding) {
    EXPECT_FALSE(valid_host("%"));
    EXPECT_FALSE(valid_host("%4"));
    EXPECT_FALSE(valid_host("%zz"));
    EXPECT_FALSE(valid_host("a%4:80"));
}

TEST(ValidHostTest, RejectsBadPorts) {
    EXPECT_FALSE(valid_host("a:"));
    EXPECT_FALSE(valid_host(":80"));
    EXPECT_FALSE(valid_host("a:65536"));
    EXPECT_FALSE(valid_host("a:99999999999999999999999"));
    EXPECT_FALSE(valid_host("a:-1"));
    EXPECT_FALSE(valid_host("a:+1"));
    EXPECT_FALSE(valid_host("a:8x"));
    EXPECT_FALSE(valid_host("a:80:80"));
    EXPECT_FALSE(valid_host("a: 80"));
}

TEST(ValidHostTest, RejectsBrokenIpLiterals) {
    EXPECT_FALSE(valid_host("::1"));
    EXPECT_FALSE(valid_host("[::1"));
    EXPECT_FALSE(valid_host("::1]"));
    EXPECT_FALSE(valid_host("[]"));
    EXPECT_FALSE(valid_host("[::1]x"));
    EXPECT_FALSE(valid_host("[::1]:"));
    EXPECT_FALSE(valid_host("[::1]:65536"));
    EXPECT_FALSE(valid_host("[zz::1]"));
    EXPECT_FALSE(valid_host("[127.0.0.1]"));
    EXPECT_FALSE(valid_host("[::1%25eth0]"));  // no zone in a Host (RFC 9110 §4.2.3)
    EXPECT_FALSE(valid_host("[v1.x]"));        // IPvFuture: nothing could route it
    EXPECT_FALSE(valid_host("[[::1]]"));
}

// ---- host_without_port ----

TEST(HostWithoutPortTest, DropsThePortAndLowerCases) {
    EXPECT_EQ(host_without_port("Chat.Example.com:8080"), "chat.example.com");
    EXPECT_EQ(host_without_port("chat.example.com"), "chat.example.com");
    EXPECT_EQ(host_without_port("10.0.0.1:80"), "10.0.0.1");
}

TEST(HostWithoutPortTest, KeepsIpv6Brackets) {
    EXPECT_EQ(host_without_port("[::1]:80"), "[::1]");
    EXPECT_EQ(host_without_port("[::1]"), "[::1]");
    EXPECT_EQ(host_without_port("[FD00::1]:443"), "[fd00::1]");
}

TEST(HostWithoutPortTest, DropsATrailingDot) {
    EXPECT_EQ(host_without_port("example.com."), "example.com");
    EXPECT_EQ(host_without_port("Example.COM.:443"), "example.com");
}

TEST(HostWithoutPortTest, EmptyStaysEmpty) {
    EXPECT_EQ(host_without_port(""), "");
}

}  // namespace
}  // namespace sb::http
