// http::reply: every proxy-generated answer is a complete HTTP/1.1 response with a
// status line, a text body whose Content-Length is exact, Connection: close, and
// Sec-WebSocket-Version: 13 on 426. Each is parsed back with MessageParser.
#include "http/replies.h"

#include <gtest/gtest.h>

#include <string>

#include "http/message_parser.h"

namespace sb::http {
namespace {

constexpr Status kAll[] = {
    Status::Ok,
    Status::BadRequest,
    Status::Forbidden,
    Status::NotFound,
    Status::MethodNotAllowed,
    Status::UpgradeRequired,
    Status::TooManyRequests,
    Status::HeadersTooLarge,
    Status::BadGateway,
    Status::ServiceUnavailable,
    Status::GatewayTimeout,
};

std::string header_value(std::string_view response, std::string_view name) {
    MessageParser p(MessageParser::Kind::Response);
    EXPECT_EQ(p.parse(response), MessageParser::Status::Complete) << p.error();
    std::string_view value;
    return find_header(response, p.headers(), name, value) ? std::string(value) : "(absent)";
}

TEST(RepliesTest, StatusCodesAndTexts) {
    EXPECT_EQ(status_code(Status::BadRequest), 400);
    EXPECT_EQ(status_code(Status::UpgradeRequired), 426);
    EXPECT_EQ(status_code(Status::HeadersTooLarge), 431);
    EXPECT_EQ(status_code(Status::GatewayTimeout), 504);
    EXPECT_EQ(status_text(Status::BadRequest), "Bad Request");
    EXPECT_EQ(status_text(Status::Forbidden), "Forbidden");
    EXPECT_EQ(status_text(Status::NotFound), "Not Found");
    EXPECT_EQ(status_text(Status::UpgradeRequired), "Upgrade Required");
    EXPECT_EQ(status_text(Status::TooManyRequests), "Too Many Requests");
    EXPECT_EQ(status_text(Status::HeadersTooLarge), "Request Header Fields Too Large");
    EXPECT_EQ(status_text(Status::BadGateway), "Bad Gateway");
    EXPECT_EQ(status_text(Status::ServiceUnavailable), "Service Unavailable");
    EXPECT_EQ(status_text(Status::GatewayTimeout), "Gateway Timeout");
}

TEST(RepliesTest, StartsWithTheStatusLine) {
    for (Status s : kAll) {
        std::string expected = "HTTP/1.1 " + std::to_string(status_code(s)) + " " +
                               std::string(status_text(s)) + "\r\n";
        EXPECT_EQ(reply(s).substr(0, expected.size()), expected);
    }
}

TEST(RepliesTest, EveryReplyParsesAndItsBodyMatchesContentLength) {
    for (Status s : kAll) {
        SCOPED_TRACE(status_code(s));
        std::string r = reply(s, "some detail");
        MessageParser p(MessageParser::Kind::Response);
        ASSERT_EQ(p.parse(r), MessageParser::Status::Complete) << p.error();
        EXPECT_EQ(p.status_code(), status_code(s));
        std::string_view length;
        ASSERT_TRUE(find_header(r, p.headers(), "content-length", length));
        EXPECT_EQ(std::to_string(r.size() - p.head_length()), length);
        bool ended = false;
        ASSERT_TRUE(p.consume_body(std::string_view(r).substr(p.head_length()), ended));
        EXPECT_TRUE(ended);
    }
}

TEST(RepliesTest, EveryReplyClosesTheConnection) {
    for (Status s : kAll)
        EXPECT_EQ(header_value(reply(s), "connection"), "close");
}

TEST(RepliesTest, BodyIsTheStatusAndTheDetail) {
    std::string r = reply(Status::NotFound, "no route for /x");
    EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "404 Not Found: no route for /x\n");
    std::string plain = reply(Status::BadGateway);
    EXPECT_EQ(plain.substr(plain.find("\r\n\r\n") + 4), "502 Bad Gateway\n");
    EXPECT_EQ(header_value(plain, "content-type"), "text/plain; charset=utf-8");
}

TEST(RepliesTest, UpgradeRequiredNamesVersion13) {
    EXPECT_EQ(header_value(reply(Status::UpgradeRequired), "sec-websocket-version"), "13");
}

TEST(RepliesTest, OnlyUpgradeRequiredNamesAVersion) {
    for (Status s : kAll) {
        if (s == Status::UpgradeRequired) continue;
        EXPECT_EQ(header_value(reply(s), "sec-websocket-version"), "(absent)") << status_code(s);
    }
}

TEST(RepliesTest, MethodNotAllowedListsGet) {
    EXPECT_EQ(header_value(reply(Status::MethodNotAllowed), "allow"), "GET");
}

TEST(RepliesTest, DetailCannotInjectHeadersOrBytes) {
    // A detail may quote request bytes: CR, LF and non-ASCII become '?'.
    std::string r = reply(Status::BadRequest, "bad\r\nSet-Cookie: x=1\x01\xff");
    EXPECT_EQ(header_value(r, "set-cookie"), "(absent)");
    EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4), "400 Bad Request: bad??Set-Cookie: x=1??\n");
}

TEST(RepliesTest, RetryAfterOnlyWhenGiven) {
    // Admission sheds and connection-rate refusals say when to come back.
    EXPECT_EQ(header_value(reply(Status::ServiceUnavailable, "shed", 7), "retry-after"), "7");
    EXPECT_EQ(header_value(reply(Status::TooManyRequests, "", 1), "retry-after"), "1");
    for (Status s : kAll)
        EXPECT_EQ(header_value(reply(s), "retry-after"), "(absent)") << status_code(s);
}

}  // namespace
}  // namespace sb::http
