// http::websocket_accept against RFC 6455's vectors, and http::check_upgrade_response:
// a backend's 101 is accepted only as HTTP/1.1 101 with Upgrade: websocket, the
// upgrade token in Connection and exactly one matching Sec-WebSocket-Accept; every
// other 101 is a backend error (502) whose reason says what was wrong.
#include "http/upgrade_response.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "http/message_parser.h"

namespace sb::http {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 §1.3
constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

TEST(WebsocketAcceptTest, MatchesRfc6455Example) {
    EXPECT_EQ(websocket_accept(kKey), kAccept);
}

TEST(WebsocketAcceptTest, MatchesASecondKnownVector) {
    // The example most WebSocket libraries test against.
    EXPECT_EQ(websocket_accept("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(WebsocketAcceptTest, IsAlways28Characters) {
    EXPECT_EQ(websocket_accept("").size(), 28u);
    EXPECT_EQ(websocket_accept(std::string(1000, 'k')).size(), 28u);
    EXPECT_NE(websocket_accept("AAAAAAAAAAAAAAAAAAAAAA=="), kAccept);
}

// A 101 head built from header lines; `check()` parses it and checks it against kKey.
class UpgradeResponseTest : public ::testing::Test {
  protected:
    std::string status_line_ = "HTTP/1.1 101 Switching Protocols";
    std::vector<std::string> headers_ = {
        "Upgrade: websocket",
        "Connection: Upgrade",
        std::string("Sec-WebSocket-Accept: ") + std::string(kAccept),
    };

    void drop(std::string_view prefix) {
        std::erase_if(headers_, [&](const std::string& h) { return h.rfind(prefix, 0) == 0; });
    }
    void replace(std::string_view prefix, std::string line) {
        drop(prefix);
        headers_.push_back(std::move(line));
    }

    HandshakeResult check(std::string_view before = {}) {
        buffer_ = std::string(before) + status_line_ + "\r\n";
        for (const auto& h : headers_)
            buffer_ += h + "\r\n";
        buffer_ += "\r\n";
        parser_ = std::make_unique<MessageParser>(MessageParser::Kind::Response);
        auto status = parser_->parse(buffer_);
        while (status == MessageParser::Status::Complete && parser_->is_interim()) {
            parser_->start_next();
            status = parser_->parse(buffer_);
        }
        EXPECT_EQ(status, MessageParser::Status::Complete) << parser_->error();
        return check_upgrade_response(buffer_, *parser_, kKey);
    }

    std::string expect_bad_gateway() {
        auto result = check();
        EXPECT_EQ(result.status, Status::BadGateway) << buffer_;
        EXPECT_THAT(result.reason, HasSubstr("backend's"));
        return result.reason;
    }

    std::string buffer_;
    std::unique_ptr<MessageParser> parser_;
};

TEST_F(UpgradeResponseTest, AcceptsAValid101) {
    auto result = check();
    EXPECT_EQ(result.status, Status::Ok) << result.reason;
    EXPECT_EQ(result.reason, "");
}

TEST_F(UpgradeResponseTest, NamesAndTokensAreCaseInsensitive) {
    replace("Upgrade:", "upgrade: WebSocket");
    replace("Connection:", "CONNECTION: keep-alive, UPGRADE");
    replace("Sec-WebSocket-Accept:", "sec-websocket-accept: " + std::string(kAccept));
    EXPECT_EQ(check().status, Status::Ok);
}

TEST_F(UpgradeResponseTest, ConnectionTokenMayBeInASecondConnectionHeader) {
    replace("Connection:", "Connection: keep-alive");
    headers_.push_back("Connection: upgrade");
    EXPECT_EQ(check().status, Status::Ok);
}

TEST_F(UpgradeResponseTest, SubprotocolAndExtensionsPass) {
    // Negotiated end to end between client and backend; not the proxy's business.
    headers_.push_back("Sec-WebSocket-Protocol: chat");
    headers_.push_back("Sec-WebSocket-Extensions: permessage-deflate");
    EXPECT_EQ(check().status, Status::Ok);
}

TEST_F(UpgradeResponseTest, AcceptsA101AfterInterimAnswers) {
    // Header spans are offsets into the whole buffer, past the interim heads.
    auto result =
        check("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
    EXPECT_EQ(result.status, Status::Ok) << result.reason;
}

TEST_F(UpgradeResponseTest, Http10101IsRefused) {
    status_line_ = "HTTP/1.0 101 Switching Protocols";
    EXPECT_THAT(expect_bad_gateway(), HasSubstr("HTTP/1.1"));
}

TEST_F(UpgradeResponseTest, AnswerOtherThan101IsNotAnUpgrade) {
    status_line_ = "HTTP/1.1 200 OK";
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, MissingUpgradeIsRefused) {
    drop("Upgrade:");
    EXPECT_THAT(expect_bad_gateway(), HasSubstr("Upgrade"));
}

TEST_F(UpgradeResponseTest, UpgradeToAnotherProtocolIsRefused) {
    replace("Upgrade:", "Upgrade: h2c");
    expect_bad_gateway();
    replace("Upgrade:", "Upgrade: websocketx");
    expect_bad_gateway();
    replace("Upgrade:", "Upgrade: websocket, h2c");
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, TwoUpgradeHeadersAreRefused) {
    headers_.push_back("Upgrade: websocket");
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, MissingConnectionIsRefused) {
    drop("Connection:");
    EXPECT_THAT(expect_bad_gateway(), HasSubstr("Connection"));
}

TEST_F(UpgradeResponseTest, ConnectionWithoutUpgradeTokenIsRefused) {
    replace("Connection:", "Connection: keep-alive");
    expect_bad_gateway();
    replace("Connection:", "Connection: upgraded");
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, MissingAcceptIsRefused) {
    drop("Sec-WebSocket-Accept:");
    EXPECT_EQ(expect_bad_gateway(), "backend's 101 has no matching Sec-WebSocket-Accept");
}

TEST_F(UpgradeResponseTest, WrongAcceptIsRefused) {
    replace("Sec-WebSocket-Accept:", "Sec-WebSocket-Accept: " + websocket_accept("other"));
    EXPECT_EQ(expect_bad_gateway(), "backend's 101 has no matching Sec-WebSocket-Accept");
}

TEST_F(UpgradeResponseTest, AcceptIsCaseSensitive) {
    // base64 is: a lower-cased accept value is another value.
    std::string lower(kAccept);
    for (auto& c : lower)
        c = ascii_lower(c);
    replace("Sec-WebSocket-Accept:", "Sec-WebSocket-Accept: " + lower);
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, EmptyAcceptIsRefused) {
    replace("Sec-WebSocket-Accept:", "Sec-WebSocket-Accept:");
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, TwoAcceptHeadersAreRefusedEvenIfBothMatch) {
    headers_.push_back(std::string("Sec-WebSocket-Accept: ") + std::string(kAccept));
    EXPECT_THAT(expect_bad_gateway(), HasSubstr("Sec-WebSocket-Accept"));
}

TEST_F(UpgradeResponseTest, A101WithABodyIsRefused) {
    // RFC 9110 §8.6, RFC 9112 §6.1: a 1xx carries neither; after a 101 come frames.
    headers_.push_back("Content-Length: 5");
    expect_bad_gateway();
    drop("Content-Length:");
    headers_.push_back("Transfer-Encoding: chunked");
    expect_bad_gateway();
}

TEST_F(UpgradeResponseTest, ContentLengthZeroIsFine) {
    headers_.push_back("Content-Length: 0");
    EXPECT_EQ(check().status, Status::Ok);
}

// ---- the 101 switchboard sends itself (admission's close_1013 shed) ----

// The first subprotocol of a request whose header lines are `lines`.
std::string first_offered(const std::vector<std::string>& lines) {
    std::string request = "GET /ws HTTP/1.1\r\nHost: a\r\n";
    for (const auto& l : lines)
        request += l + "\r\n";
    request += "\r\n";
    MessageParser parser(MessageParser::Kind::Request);
    EXPECT_EQ(parser.parse(request), MessageParser::Status::Complete) << parser.error();
    return std::string(first_subprotocol(request, parser));
}

TEST(OwnUpgradeResponseTest, EchoesTheFirstOfferedSubprotocolOnly) {
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol: chat.v2, chat.v1"}), "chat.v2");
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol:   mqtt  "}), "mqtt");
    // Several fields are one list: the first field's first token comes first.
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b"}), "a");
    EXPECT_EQ(first_offered({}), "");
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol: "}), "");
    // Not a token: never written back into a header.
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol: a b, c"}), "");
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol: \"quoted\""}), "");
    EXPECT_EQ(first_offered({"Sec-WebSocket-Protocol: " + std::string(300, 'x')}), "");
}

TEST(OwnUpgradeResponseTest, IsAValid101ForTheClientsKey) {
    // Checked by the same rules a backend's 101 is held to.
    std::string head = own_upgrade_response(kKey, "chat.v2");
    MessageParser parser(MessageParser::Kind::Response);
    ASSERT_EQ(parser.parse(head), MessageParser::Status::Complete) << parser.error();
    EXPECT_EQ(parser.head_end(), head.size());
    EXPECT_EQ(check_upgrade_response(head, parser, kKey).status, Status::Ok);
    std::string_view value;
    ASSERT_TRUE(find_header(head, parser.headers(), "sec-websocket-protocol", value));
    EXPECT_EQ(value, "chat.v2");
    EXPECT_FALSE(find_header(head, parser.headers(), "sec-websocket-extensions", value));
    std::string bare = own_upgrade_response(kKey, "");
    EXPECT_EQ(bare.find("Sec-WebSocket-Protocol"), std::string::npos);
}

}  // namespace
}  // namespace sb::http
