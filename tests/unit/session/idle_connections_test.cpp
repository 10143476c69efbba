// IdleConnections: kept backend sockets come back most recent first, never once the
// backend has closed or spoken, at most max_per_key per key, and not after idle_timeout.
#include "session/idle_connections.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace sb::session {
namespace {

struct Loop {
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
    }
    uv_loop_t loop;
};

// A connected pair: first is "ours" (kept), second plays the backend.
std::pair<int, int> socket_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    return {fds[0], fds[1]};
}

TEST(IdleConnections, GivesBackTheMostRecentOpenConnection) {
    Loop l;
    IdleConnections idle(&l.loop);
    auto [a, peer_a] = socket_pair();
    auto [b, peer_b] = socket_pair();
    idle.put("k", a, 8, 60'000);
    idle.put("k", b, 8, 60'000);
    EXPECT_EQ(idle.size(), 2u);
    EXPECT_EQ(idle.take("other"), -1);
    EXPECT_EQ(idle.take("k"), b);
    EXPECT_EQ(idle.take("k"), a);
    EXPECT_EQ(idle.take("k"), -1);
    for (int fd : {a, b, peer_a, peer_b})
        ::close(fd);
    idle.close_all();
}

TEST(IdleConnections, ConnectionTheBackendClosedOrSpokeOnIsNeverGiven) {
    Loop l;
    IdleConnections idle(&l.loop);
    auto [a, peer_a] = socket_pair();
    auto [b, peer_b] = socket_pair();
    idle.put("k", a, 8, 60'000);
    idle.put("k", b, 8, 60'000);
    ::close(peer_a);                        // closed while idle
    ASSERT_EQ(::write(peer_b, "x", 1), 1);  // a stray byte: a broken backend
    // Even before the loop runs (the poll has not reported yet), take() checks.
    EXPECT_EQ(idle.take("k"), -1);
    EXPECT_EQ(idle.size(), 0u);
    ::close(peer_b);
    idle.close_all();
}

TEST(IdleConnections, PollDropsAClosedConnectionWhileIdle) {
    Loop l;
    IdleConnections idle(&l.loop);
    auto [a, peer_a] = socket_pair();
    idle.put("k", a, 8, 60'000);
    ::close(peer_a);
    uv_run(&l.loop, UV_RUN_NOWAIT);
    EXPECT_EQ(idle.size(), 0u);
    idle.close_all();
}

TEST(IdleConnections, AtMostMaxPerKeyTheOldestGoesFirst) {
    Loop l;
    IdleConnections idle(&l.loop);
    auto [a, peer_a] = socket_pair();
    auto [b, peer_b] = socket_pair();
    auto [c, peer_c] = socket_pair();
    idle.put("k", a, 2, 60'000);
    idle.put("k", b, 2, 60'000);
    idle.put("k", c, 2, 60'000);
    EXPECT_EQ(idle.size(), 2u);
    EXPECT_EQ(idle.take("k"), c);
    EXPECT_EQ(idle.take("k"), b);
    EXPECT_EQ(idle.take("k"), -1);
    for (int fd : {b, c, peer_a, peer_b, peer_c})
        ::close(fd);
    idle.close_all();
}

TEST(IdleConnections, IdleTimeoutClosesThem) {
    Loop l;
    IdleConnections idle(&l.loop);
    auto [a, peer_a] = socket_pair();
    idle.put("k", a, 8, 1);
    for (int i = 0; i < 200 && idle.size() > 0; ++i) {
        uv_run(&l.loop, UV_RUN_ONCE);
    }
    EXPECT_EQ(idle.size(), 0u);
    uv_run(&l.loop, UV_RUN_NOWAIT);  // the close callbacks, which close the descriptors
    char c;
    EXPECT_EQ(::recv(peer_a, &c, 1, MSG_DONTWAIT), 0);  // our side was closed
    ::close(peer_a);
    idle.close_all();
}

TEST(IdleConnections, AfterCloseAllNothingIsKept) {
    Loop l;
    IdleConnections idle(&l.loop);
    idle.close_all();
    auto [a, peer_a] = socket_pair();
    idle.put("k", a, 8, 60'000);
    EXPECT_EQ(idle.size(), 0u);
    char c;
    EXPECT_EQ(::recv(peer_a, &c, 1, MSG_DONTWAIT), 0);
    ::close(peer_a);
}

}  // namespace
}  // namespace sb::session
