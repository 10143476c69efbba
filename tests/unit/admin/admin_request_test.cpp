// The admin request path without sockets: request bytes in, a complete answer out.
// Regression tests for issue 13: a /route key that is not UTF-8 killed the process
// (nlohmann threw through a noexcept libuv callback), HEAD got 405, and a failing
// source could throw out of the answer.
#include "admin/admin_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>

#include "admin_test_util.h"

namespace sb::admin {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Parsed {
    std::string status_line;
    std::map<std::string, std::string> headers;
    std::string body;
};

Parsed parse(const std::string& bytes) {
    Parsed p;
    auto end = bytes.find("\r\n\r\n");
    EXPECT_NE(end, std::string::npos) << bytes;
    if (end == std::string::npos) return p;
    std::string head = bytes.substr(0, end + 2);
    p.body = bytes.substr(end + 4);
    size_t at = head.find("\r\n");
    p.status_line = head.substr(0, at);
    at += 2;
    while (at < head.size()) {
        size_t eol = head.find("\r\n", at);
        std::string line = head.substr(at, eol - at);
        auto colon = line.find(": ");
        EXPECT_NE(colon, std::string::npos) << line;
        p.headers[line.substr(0, colon)] = line.substr(colon + 2);
        at = eol + 2;
    }
    return p;
}

class AdminRequestTest : public ::testing::Test {
  protected:
    std::shared_ptr<test::State> state_ = std::make_shared<test::State>();
    AdminSources sources_ = test::make_sources(state_);

    AdminAnswer ask(std::string_view request) {
        auto a = answer_request(sources_, request);
        EXPECT_TRUE(a.has_value()) << request;
        return a.value_or(AdminAnswer{});
    }
    AdminAnswer get(const std::string& target, const std::string& method = "GET") {
        return ask(method + " " + target + " HTTP/1.1\r\nHost: admin\r\n\r\n");
    }
};

TEST_F(AdminRequestTest, RouteKeyPercentFfThatKilledTheProcessAnswers200WithTheByteEscaped) {
    auto a = get("/route?pool=chat&key=%FF");
    EXPECT_EQ(a.status, 200);
    auto p = parse(a.bytes);
    EXPECT_EQ(p.status_line, "HTTP/1.1 200 OK");
    EXPECT_THAT(p.body, HasSubstr(R"("key": "\udcff")"));
    EXPECT_EQ(p.headers["Content-Length"], std::to_string(p.body.size()));
}

TEST_F(AdminRequestTest, RouteKeyIsPercentDecodedOnce) {
    auto p = parse(get("/route?pool=chat&key=room%2542").bytes);
    EXPECT_THAT(p.body, HasSubstr(R"("key": "room%42")"));
    p = parse(get("/route?pool=chat&key=%C3%BC+x").bytes);
    EXPECT_THAT(p.body, HasSubstr("\"key\": \"\xc3\xbc x\""));
}

TEST_F(AdminRequestTest, UnknownPoolNameThatIsNotUtf8Is404WithTheByteEscaped) {
    auto a = get("/route?pool=%FE%80&key=x");
    EXPECT_EQ(a.status, 404);
    EXPECT_THAT(parse(a.bytes).body, HasSubstr(R"(no pool named \"\udcfe\udc80\")"));
}

TEST_F(AdminRequestTest, RouteWithoutPoolOrKeyIs400) {
    EXPECT_EQ(get("/route?pool=chat").status, 400);
    EXPECT_EQ(get("/route").status, 400);
}

TEST_F(AdminRequestTest, HeadIsAnsweredLikeGetWithTheSameHeadersAndNoBody) {
    for (const char* target : {"/healthz", "/", "/nope", "/route?pool=chat&key=r1",
                               "/route?pool=none&key=r1", "/route"}) {
        auto got = get(target);
        auto head = get(target, "HEAD");
        EXPECT_EQ(head.status, got.status) << target;
        auto g = parse(got.bytes);
        auto h = parse(head.bytes);
        EXPECT_EQ(h.status_line, g.status_line) << target;
        EXPECT_EQ(h.headers, g.headers) << target;
        EXPECT_EQ(h.headers["Content-Length"], std::to_string(g.body.size())) << target;
        EXPECT_EQ(h.body, "") << target;
        EXPECT_FALSE(head.stream);
    }
}

TEST_F(AdminRequestTest, HeadOfEventsIsTheStreamHeadAndThenTheEnd) {
    auto got = get("/events");
    auto head = get("/events", "HEAD");
    EXPECT_TRUE(got.stream);
    EXPECT_FALSE(head.stream);
    EXPECT_EQ(parse(head.bytes).headers, parse(got.bytes).headers);
    EXPECT_EQ(parse(head.bytes).body, "");
    EXPECT_EQ(parse(got.bytes).headers.count("Content-Length"), 0u);
    EXPECT_THAT(parse(got.bytes).body, StartsWith("retry: 2000\n\ndata: {"));
}

TEST_F(AdminRequestTest, OtherMethodsGet405WithAllowGetAndHead) {
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
        auto a = get("/metrics", method);
        EXPECT_EQ(a.status, 405) << method;
        auto p = parse(a.bytes);
        EXPECT_EQ(p.headers["Allow"], "GET, HEAD") << method;
        EXPECT_EQ(p.headers["Connection"], "close");
    }
}

TEST_F(AdminRequestTest, HealthzIs503WhileDraining) {
    EXPECT_EQ(parse(get("/healthz").bytes).body, "ok\n");
    state_->draining = true;
    auto a = get("/healthz");
    EXPECT_EQ(a.status, 503);
    EXPECT_EQ(parse(a.bytes).body, "draining\n");
}

TEST_F(AdminRequestTest, AFailingSourceGives500InsteadOfAnException) {
    sources_.generation = []() -> pool::GenerationPtr { throw std::runtime_error("boom"); };
    for (const char* target : {"/status", "/metrics", "/route?pool=chat&key=x", "/events"}) {
        AdminAnswer a;
        EXPECT_NO_THROW(a = get(target)) << target;
        EXPECT_EQ(a.status, 500) << target;
        EXPECT_FALSE(a.stream);
        EXPECT_THAT(a.bytes, StartsWith("HTTP/1.1 500 Internal Server Error\r\n"));
    }
}

TEST_F(AdminRequestTest, AnIncompleteRequestWaitsForMore) {
    EXPECT_FALSE(answer_request(sources_, "").has_value());
    EXPECT_FALSE(answer_request(sources_, "GET /healthz HTTP/1.1\r\nHost: a\r\n").has_value());
}

// Found by the admin fuzzer: an empty input reached llhttp as a null buffer (UBSan:
// applying zero offset to a null pointer in llhttp_execute).
TEST_F(AdminRequestTest, AnEmptyInputWithANullBufferIsNotParsed) {
    EXPECT_FALSE(answer_request(sources_, std::string_view()).has_value());
    RequestReader reader;
    EXPECT_FALSE(reader.read(sources_, std::string_view()).has_value());
    EXPECT_EQ(reader.read(sources_, "GET / HTTP/1.1\r\n\r\n")->status, 200);
}

TEST_F(AdminRequestTest, TheReaderAnswersOnceTheHeadIsCompleteWhateverTheSplit) {
    std::string request = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    RequestReader reader;
    std::string received;
    for (size_t i = 0; i < request.size(); ++i) {
        received.push_back(request[i]);
        auto a = reader.read(sources_, received);
        ASSERT_EQ(a.has_value(), i + 1 == request.size()) << i;
        if (a) {
            EXPECT_EQ(a->status, 200);
        }
    }
}

TEST_F(AdminRequestTest, AMalformedRequestIs400AndAnOversizedOne431) {
    EXPECT_EQ(ask("GET /healthz HTTP/1.1\nHost: a\n\n").status, 400);  // bare LF
    EXPECT_EQ(ask("\x01\x02\x03 / HTTP/1.1\r\n\r\n").status, 400);
    std::string big = "GET /healthz HTTP/1.1\r\nX: " + std::string(9000, 'a');
    EXPECT_EQ(ask(big).status, 431);
    // The same head complete, as it would arrive in one read: the cap is on the head.
    EXPECT_EQ(ask(big + "\r\n\r\n").status, 431);
}

TEST(DecodeQueryValue, EveryByteValueDecodes) {
    EXPECT_EQ(decode_query_value("%FF%00%fe"), std::string("\xff\x00\xfe", 3));
    EXPECT_EQ(decode_query_value("%"), "%");
    EXPECT_EQ(decode_query_value("%F"), "%F");
    EXPECT_EQ(decode_query_value("a%2"), "a%2");
}

}  // namespace
}  // namespace sb::admin
