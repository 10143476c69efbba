// The PROXY protocol in a Session in process: a listener with proxy_protocol = true
// reads the header first, whatever the cut of the bytes (glued to the request and
// frames, one byte at a time), uses the carried address, closes on a bad header or an
// untrusted source with nothing read and every block given back; a pool with
// proxy_protocol sends the header before its request.
#include <string>

#include "net/proxy_header.h"
#include "session_fixture.h"

namespace sb::test {
namespace {

using SessionProxyProtocolTest = SessionTest;

// The 101 reached the client: nothing is left in flight when the test ends.
bool got_101(const Peer& client) {
    return client.received().rfind("HTTP/1.1 101", 0) == 0 && head_length(client.received()) > 0;
}

HarnessOptions proxy_listener(std::string extra = "") {
    HarnessOptions o;
    o.listener_toml = "proxy_protocol = true\n" + extra;
    return o;
}

TEST_F(SessionProxyProtocolTest, GluedHeaderRequestAndFrameGoThroughInOrder) {
    ASSERT_NO_FATAL_FAILURE(start(proxy_listener()));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write("PROXY TCP4 192.0.2.7 10.0.0.1 4242 443\r\n" + upgrade_request() +
                  client_frame(kText, "first"));
    ASSERT_TRUE(wait_backend_frames(1));
    const BackendConnection& b = h().backend().connection();
    EXPECT_NE(b.request_head.find("X-Forwarded-For: 192.0.2.7\r\n"), std::string::npos)
        << b.request_head;
    EXPECT_EQ(b.request_head.find("PROXY"), std::string::npos) << "no header to a plain pool";
    EXPECT_EQ(b.frames[0].payload, "first");
    ASSERT_TRUE(wait_client_frames(*client, 1));
    EXPECT_EQ(client_frames(*client)[0].payload, "first");
}

TEST_F(SessionProxyProtocolTest, HeaderOneByteAtATime) {
    ASSERT_NO_FATAL_FAILURE(start(proxy_listener()));
    Peer* client = h().connect_client(SessionHarness::Transport::Tcp);
    ASSERT_NE(client, nullptr);
    std::string header = net::proxy_header::encode(
        config::ProxyProtocol::V2, *config::SocketAddress::parse("[2001:db8::9]:1234"),
        *config::SocketAddress::parse("[::1]:443"));
    for (char c : header) {
        client->write(std::string(1, c));
        h().run_iterations(3);
        ASSERT_EQ(h().sessions(), 1u);
    }
    client->write(upgrade_request());
    ASSERT_TRUE(wait_backend_connection());
    ASSERT_TRUE(h().run_until([&] { return got_101(*client); })) << client->received();
    EXPECT_NE(h().backend().connection().request_head.find("X-Forwarded-For: 2001:db8::9\r\n"),
              std::string::npos)
        << h().backend().connection().request_head;
}

TEST_F(SessionProxyProtocolTest, LocalKeepsTheSocketAddress) {
    ASSERT_NO_FATAL_FAILURE(start(proxy_listener()));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(net::proxy_header::encode_local(config::ProxyProtocol::V2) + upgrade_request());
    ASSERT_TRUE(wait_backend_connection());
    ASSERT_TRUE(h().run_until([&] { return got_101(*client); })) << client->received();
    // The harness's socketpair stands for a client at 127.0.0.1.
    EXPECT_NE(h().backend().connection().request_head.find("X-Forwarded-For: 127.0.0.1\r\n"),
              std::string::npos);
}

TEST_F(SessionProxyProtocolTest, BadHeaderClosesWithoutAnAnswer) {
    ASSERT_NO_FATAL_FAILURE(start(proxy_listener()));
    for (std::string bad : {upgrade_request(), std::string("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
                            std::string("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 31) + "x"}) {
        Peer* client = h().connect_client();
        ASSERT_NE(client, nullptr);
        client->write(bad);
        ASSERT_TRUE(h().run_until([&] { return client->ended(); })) << bad;
        EXPECT_EQ(client->received(), "") << bad;
        EXPECT_TRUE(wait_no_session());
    }
    EXPECT_EQ(h().backend().connections(), 0u);
    auto& rejections = h().stats().listener("public").rejections;
    EXPECT_EQ(rejections[static_cast<size_t>(metrics::CloseReason::ProxyProtocol)].value(), 3u);
}

TEST_F(SessionProxyProtocolTest, UntrustedSourceIsClosedAtAccept) {
    ASSERT_NO_FATAL_FAILURE(start(proxy_listener("proxy_protocol_from = [\"10.0.0.0/8\"]\n")));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    // Closed at accept: nothing needs to be sent (and a write could meet EPIPE).
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(client->received(), "");
    EXPECT_TRUE(wait_no_session());
    auto& rejections = h().stats().listener("public").rejections;
    EXPECT_EQ(rejections[static_cast<size_t>(metrics::CloseReason::ProxyUntrusted)].value(), 1u);
}

TEST_F(SessionProxyProtocolTest, TrustedSourceIsRead) {
    ASSERT_NO_FATAL_FAILURE(start(proxy_listener("proxy_protocol_from = [\"127.0.0.0/8\"]\n")));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write("PROXY TCP4 192.0.2.8 10.0.0.1 1 2\r\n" + upgrade_request());
    ASSERT_TRUE(wait_backend_connection());
    ASSERT_TRUE(h().run_until([&] { return got_101(*client); })) << client->received();
    EXPECT_NE(h().backend().connection().request_head.find("X-Forwarded-For: 192.0.2.8\r\n"),
              std::string::npos);
}

TEST_F(SessionProxyProtocolTest, PoolSendsTheHeaderBeforeTheRequest) {
    HarnessOptions o = proxy_listener();
    o.pool_toml = "proxy_protocol = \"v1\"\n";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write("PROXY TCP4 192.0.2.7 10.0.0.1 4242 443\r\n" + upgrade_request());
    ASSERT_TRUE(wait_backend_connection());
    ASSERT_TRUE(h().run_until([&] { return got_101(*client); })) << client->received();
    const std::string& head = h().backend().connection().request_head;
    EXPECT_EQ(head.rfind("PROXY TCP4 192.0.2.7 10.0.0.1 4242 443\r\nGET /chat HTTP/1.1\r\n", 0), 0u)
        << head;
}

TEST_F(SessionProxyProtocolTest, PoolSendsTheListenersAddressAsDestination) {
    HarnessOptions o;
    o.pool_toml = "proxy_protocol = \"v1\"\n";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client(SessionHarness::Transport::Tcp);
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(wait_backend_connection());
    ASSERT_TRUE(h().run_until([&] { return got_101(*client); })) << client->received();
    const std::string& head = h().backend().connection().request_head;
    // "PROXY TCP4 127.0.0.1 127.0.0.1 <client port> <listening port>\r\n"
    EXPECT_EQ(head.rfind("PROXY TCP4 127.0.0.1 127.0.0.1 ", 0), 0u) << head;
    EXPECT_NE(head.find("\r\nGET /chat HTTP/1.1\r\n"), std::string::npos) << head;
}

}  // namespace
}  // namespace sb::test
