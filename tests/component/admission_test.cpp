// Admission control through a real Session (SPEC §3 Admission): a shed upgrade gets
// switchboard's own 101 and a Close 1013 saying when to come back, touches no backend,
// and ends on the client's Close, or after a second whatever the client sends; the
// 503 and 429 answers carry Retry-After; requests on a kept-alive connection take no
// token. Every test ends with the fixture's checks: no handle, session or block left.
#include <string>

#include "http/upgrade_response.h"
#include "session_fixture.h"

namespace sb::test {
namespace {

// Well before the second a shed client is given to answer: a session that ends within
// it ended on the client's Close, not on the deadline.
constexpr std::chrono::milliseconds kBeforeTheLinger{500};

class AdmissionTest : public SessionTest {
  protected:
    // Sheds one client: a first connection takes the only token and stays open; the
    // second sends `request` and is answered with a 101 and a Close.
    Peer* shed_client(std::string_view request) {
        if (h().open_websocket() == nullptr) return nullptr;
        Peer* client = h().connect_client();
        if (client == nullptr) return nullptr;
        client->write(request);
        if (!h().run_until([&] { return !client_frames(*client).empty(); })) return nullptr;
        return client;
    }
};

// One token in the pool's bucket, refilled once a second: the first connection takes
// it, the next is shed.
HarnessOptions one_token(std::string_view shed = "close_1013") {
    HarnessOptions o;
    o.pool_toml =
        "\n[pools.chat.admission]\nnew_connections_per_second = 1\nburst = 1\n"
        "retry_after = \"2s\"\nshed = \"" +
        std::string(shed) + "\"\n";
    return o;
}

// An upgrade request offering subprotocols, in the client's order of preference.
std::string upgrade_offering(std::string_view protocols) {
    std::string r = upgrade_request();
    r.insert(r.size() - 2, "Sec-WebSocket-Protocol: " + std::string(protocols) + "\r\n");
    return r;
}

// The N of "retry after N s" in a Close frame's reason, or -1.
int retry_hint(const Frame& close) {
    std::string reason = close.payload.substr(2);
    if (reason.rfind("retry after ", 0) != 0 || reason.size() < 15) return -1;
    if (reason.substr(reason.size() - 2) != " s") return -1;
    return std::stoi(reason.substr(12, reason.size() - 14));
}

TEST_F(AdmissionTest, AShedUpgradeGetsItsOwn101AndClose1013AndTouchesNoBackend) {
    ASSERT_NO_FATAL_FAILURE(start(one_token()));
    Peer* client = shed_client(upgrade_offering("chat.v2, chat.v1"));
    ASSERT_NE(client, nullptr);
    const std::string& got = client->received();
    size_t head = head_length(got);
    ASSERT_GT(head, 0u);
    std::string_view head_text(got.data(), head);
    EXPECT_EQ(head_text.substr(0, 13), "HTTP/1.1 101 ");
    EXPECT_NE(head_text.find("Sec-WebSocket-Accept: " + http::websocket_accept(kClientKey)),
              std::string_view::npos)
        << head_text;
    // The first subprotocol offered, so a browser accepts the 101; no extension.
    EXPECT_NE(head_text.find("Sec-WebSocket-Protocol: chat.v2\r\n"), std::string_view::npos);
    EXPECT_EQ(head_text.find("Extensions"), std::string_view::npos);
    auto frames = client_frames(*client);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].opcode, kClose);
    EXPECT_FALSE(frames[0].masked);
    EXPECT_EQ(frames[0].close_code(), 1013);
    int n = retry_hint(frames[0]);
    EXPECT_GE(n, 1);  // 2 s ± 50%, whole seconds rounded up
    EXPECT_LE(n, 3);
    EXPECT_EQ(h().backend().connections(), 1u) << "only the first client reached a backend";

    // The client answers with its Close: the proxy closes the TCP connection first.
    client->write(client_frame(kClose, close_payload(1013)));
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }, kBeforeTheLinger));
    EXPECT_EQ(h().sessions(), 1u);  // the first client's
}

TEST_F(AdmissionTest, AShedClientThatNeverAnswersIsClosedAfterASecond) {
    ASSERT_NO_FATAL_FAILURE(start(one_token()));
    Peer* client = shed_client(upgrade_request());
    ASSERT_NE(client, nullptr);
    // Data frames, a frame header cut in two, an unmasked frame: read and dropped.
    client->write(client_frame(kText, "still here") + encode_frame(kBinary, "x", false) +
                  client_frame(kText, std::string(200, 'y')).substr(0, 3));
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }, std::chrono::seconds(5)));
    EXPECT_EQ(h().sessions(), 1u);
}

TEST_F(AdmissionTest, AShedClientThatHangsUpEndsAtOnce) {
    ASSERT_NO_FATAL_FAILURE(start(one_token()));
    Peer* client = shed_client(upgrade_request());
    ASSERT_NE(client, nullptr);
    client->close();
    ASSERT_TRUE(h().run_until([&] { return h().sessions() == 1; }));
}

TEST_F(AdmissionTest, AFrameGluedToTheRequestIsReadAsTheClientsAnswer) {
    ASSERT_NO_FATAL_FAILURE(start(one_token()));
    // A client that sends its Close behind its request (before it saw ours): it counts.
    Peer* client = shed_client(upgrade_request() + client_frame(kClose, close_payload(1000)));
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }, kBeforeTheLinger));
}

TEST_F(AdmissionTest, Http503ShedSaysRetryAfter) {
    ASSERT_NO_FATAL_FAILURE(start(one_token("http_503")));
    ASSERT_NE(h().open_websocket(), nullptr);
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 503) << client->received();
    const std::string& got = client->received();
    size_t at = got.find("Retry-After: ");
    ASSERT_NE(at, std::string::npos) << got;
    int n = std::stoi(got.substr(at + 13));
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 3);
    EXPECT_EQ(h().backend().connections(), 1u);
    client->close();
}

TEST_F(AdmissionTest, RequestsOnAKeptAliveConnectionTakeNoToken) {
    HarnessOptions o = one_token();
    o.pool_toml += "[pools.chat.http]\nmax_idle_connections = 0\n";  // a backend each
    o.script.answer = BackendScript::Answer::Raw;
    o.script.echo = false;
    o.script.raw_answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    const std::string get = "GET /api HTTP/1.1\r\nHost: chat.example\r\n\r\n";
    client->write(get + get + get);
    auto answers = [&] {
        size_t n = 0;
        for (size_t at = 0; (at = client->received().find("HTTP/1.1 200", at)) != std::string::npos;
             ++at)
            ++n;
        return n;
    };
    ASSERT_TRUE(h().run_until([&] { return answers() == 3; })) << client->received();
    // A new connection is a new client: the bucket is empty.
    Peer* second = h().connect_client();
    ASSERT_NE(second, nullptr);
    second->write(get);
    ASSERT_TRUE(h().run_until([&] { return status_of(second->received()) != 0; }));
    EXPECT_EQ(status_of(second->received()), 503) << second->received();
    EXPECT_NE(second->received().find("Retry-After: "), std::string::npos);
    client->close();
    second->close();
}

TEST_F(AdmissionTest, ConnectsPerAddressOverTheRateGet429WithRetryAfter) {
    HarnessOptions o;
    o.listener_toml = "max_connects_per_ip_per_second = 1\n";
    ASSERT_NO_FATAL_FAILURE(start(o));
    ASSERT_NE(h().open_websocket(), nullptr);
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 429) << client->received();
    EXPECT_NE(client->received().find("Retry-After: 1\r\n"), std::string::npos);
    EXPECT_EQ(h().backend().connections(), 1u);
    client->close();
}

}  // namespace
}  // namespace sb::test
