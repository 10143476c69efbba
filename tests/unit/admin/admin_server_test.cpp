// AdminServer on its own uv loop with loopback clients (the one admin test with
// sockets: the deadline and the cap live in the listener, not in the pure request
// path). Regression tests for issue 13: admin connections never timed out and were
// unlimited, so half-sent requests held descriptors forever, and nothing closed the
// listener's connections (an /events subscriber) when the server closed.
#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "admin_test_util.h"

namespace sb::admin {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class AdminServerTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }

    void TearDown() override {
        for (int fd : clients_)
            ::close(fd);
        if (server_) server_->close();
        // Every handle closes: the loop ends on its own (bounded, in case it does not).
        for (int i = 0; i < 100 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
        }
        server_.reset();
        EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle was left open";
    }

    void start(AdminLimits limits) {
        server_ = std::make_unique<AdminServer>(&loop_, test::make_sources(state_), limits);
        std::string error;
        ASSERT_TRUE(server_->listen(*config::SocketAddress::parse("127.0.0.1:0"), error)) << error;
    }

    // A blocking loopback client; the kernel completes its handshake before the server
    // accepts, so connect() needs no loop turn.
    int connect_client() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(server_->bound().port());
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
        clients_.push_back(fd);
        return fd;
    }

    void send_text(int fd, std::string_view text) {
        ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(text.size()));
    }

    // Runs the loop until `fd` is closed by the server (true) or `limit` passes;
    // whatever the server wrote is appended to `received`.
    bool run_until_closed(int fd, milliseconds limit, std::string* received = nullptr) {
        auto deadline = Clock::now() + limit;
        char buf[4096];
        while (Clock::now() < deadline) {
            uv_run(&loop_, UV_RUN_NOWAIT);
            ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n == 0) return true;
            if (n > 0 && received != nullptr) received->append(buf, static_cast<size_t>(n));
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return true;  // reset
            if (n < 0) ::usleep(1000);
        }
        return false;
    }

    // Runs the loop for `span`, for things that must not happen within it.
    void run_for(milliseconds span) {
        auto deadline = Clock::now() + span;
        while (Clock::now() < deadline) {
            uv_run(&loop_, UV_RUN_NOWAIT);
            ::usleep(1000);
        }
    }

    uv_loop_t loop_{};
    std::shared_ptr<test::State> state_ = std::make_shared<test::State>();
    std::unique_ptr<AdminServer> server_;
    std::vector<int> clients_;
};

TEST_F(AdminServerTest, AHalfSentRequestIsClosedAtTheRequestTimeout) {
    start({milliseconds(300), 64});
    int fd = connect_client();
    send_text(fd, "GET /healthz HTTP/1.1\r\n");
    auto started = Clock::now();
    ASSERT_TRUE(run_until_closed(fd, milliseconds(5000)));
    auto waited = Clock::now() - started;
    EXPECT_GE(waited, milliseconds(250));
    EXPECT_LT(waited, milliseconds(2000));
    EXPECT_EQ(server_->connections_for_test(), 0u);
}

TEST_F(AdminServerTest, BytesDrippedInDoNotPushTheDeadlineBack) {
    start({milliseconds(300), 64});
    int fd = connect_client();
    auto started = Clock::now();
    send_text(fd, "GET /healthz HTTP/1.1\r\nX-Slow: ");
    // One byte of a header value every 50 ms: a valid request that never ends.
    std::string received;
    bool closed = false;
    for (int i = 0; i < 40 && !closed; ++i) {
        if (::send(fd, "a", 1, MSG_NOSIGNAL) != 1) break;
        closed = run_until_closed(fd, milliseconds(50), &received);
    }
    if (!closed) closed = run_until_closed(fd, milliseconds(1000), &received);
    EXPECT_TRUE(closed);
    EXPECT_EQ(received, "");  // closed without an answer
    EXPECT_GE(Clock::now() - started, milliseconds(250));
    EXPECT_LT(Clock::now() - started, milliseconds(1500));
}

TEST_F(AdminServerTest, ACompleteRequestIsAnsweredAndClosed) {
    start({milliseconds(2000), 64});
    int fd = connect_client();
    send_text(fd, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    std::string received;
    ASSERT_TRUE(run_until_closed(fd, milliseconds(2000), &received));
    EXPECT_EQ(received.substr(0, 15), "HTTP/1.1 200 OK");
    EXPECT_EQ(received.substr(received.size() - 3), "ok\n");
}

TEST_F(AdminServerTest, AnAnswerOutlivesTheClientsHalfClose) {
    start({milliseconds(2000), 64});
    int fd = connect_client();
    send_text(fd, "HEAD /healthz HTTP/1.0\r\n\r\n");
    ::shutdown(fd, SHUT_WR);
    std::string received;
    ASSERT_TRUE(run_until_closed(fd, milliseconds(2000), &received));
    EXPECT_EQ(received.substr(0, 15), "HTTP/1.1 200 OK");
}

TEST_F(AdminServerTest, ConnectionsOverTheCapAreClosedAtAccept) {
    start({milliseconds(5000), 3});
    std::vector<int> held;
    for (int i = 0; i < 3; ++i)
        held.push_back(connect_client());
    run_for(milliseconds(50));
    EXPECT_EQ(server_->connections_for_test(), 3u);
    int refused = connect_client();
    EXPECT_TRUE(run_until_closed(refused, milliseconds(2000)));
    EXPECT_EQ(server_->connections_for_test(), 3u);
    // The held ones still work, and once one is gone a new connection is served.
    send_text(held[0], "GET /healthz HTTP/1.1\r\n\r\n");
    std::string received;
    ASSERT_TRUE(run_until_closed(held[0], milliseconds(2000), &received));
    EXPECT_EQ(received.substr(0, 15), "HTTP/1.1 200 OK");
    int next = connect_client();
    send_text(next, "GET /healthz HTTP/1.1\r\n\r\n");
    received.clear();
    ASSERT_TRUE(run_until_closed(next, milliseconds(2000), &received));
    EXPECT_EQ(received.substr(0, 15), "HTTP/1.1 200 OK");
}

TEST_F(AdminServerTest, EventsSubscribersOutliveTheRequestTimeout) {
    start({milliseconds(200), 64});
    int fd = connect_client();
    send_text(fd, "GET /events HTTP/1.1\r\n\r\n");
    std::string received;
    EXPECT_FALSE(run_until_closed(fd, milliseconds(1500), &received));
    EXPECT_EQ(received.substr(0, 15), "HTTP/1.1 200 OK");
    // The first snapshot with the head, then one a second.
    size_t events = 0;
    for (size_t at = received.find("data: "); at != std::string::npos;
         at = received.find("data: ", at + 1))
        ++events;
    EXPECT_GE(events, 2u);
}

TEST_F(AdminServerTest, CloseEndsEventsSubscribersAndHalfSentRequestsSoTheLoopEnds) {
    start({milliseconds(10000), 64});
    int events = connect_client();
    send_text(events, "GET /events HTTP/1.1\r\n\r\n");
    int half = connect_client();
    send_text(half, "GET /heal");
    run_for(milliseconds(100));
    EXPECT_EQ(server_->connections_for_test(), 2u);
    server_->close();
    EXPECT_TRUE(run_until_closed(events, milliseconds(2000)));
    EXPECT_TRUE(run_until_closed(half, milliseconds(2000)));
    // Nothing of the admin server is left to keep the loop alive.
    EXPECT_EQ(uv_run(&loop_, UV_RUN_NOWAIT), 0);
}

}  // namespace
}  // namespace sb::admin
