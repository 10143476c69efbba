// The relay of a Session in process: the client's limits (1009, 1008, 1002), flow
// control against a slow reader (reads pause and resume, memory stays bounded), a
// drain (Close 1001 to both peers), and the ends a peer can choose (a backend gone
// without a Close frame: 1012 to the client; a client that drops TCP).
#include <string>

#include "session_fixture.h"

namespace sb::test {
namespace {

using SessionRelayTest = SessionTest;

HarnessOptions with_websocket(std::string toml, bool echo = true) {
    HarnessOptions o;
    o.websocket_toml = std::move(toml);
    o.script.echo = echo;
    return o;
}

// `total` bytes of frames of `payload` bytes each, masked or not, payloads numbered so
// that a byte out of place shows.
std::string frames_totalling(size_t total, size_t payload, bool masked) {
    std::string out;
    for (size_t i = 0; out.size() < total; ++i) {
        std::string p(payload, static_cast<char>('a' + i % 26));
        out += encode_frame(kBinary, p, masked);
    }
    return out;
}

TEST_F(SessionRelayTest, MessageOverMaxMessageBytesClosesTheClientWith1009) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("max_message_bytes = 1000")));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    client->write(client_frame(kText, std::string(1000, 's')));  // at the limit: passes
    ASSERT_TRUE(wait_client_frames(*client, 1));
    client->write(client_frame(kBinary, std::string(5000, 'b')));
    ASSERT_TRUE(wait_client_frames(*client, 2));
    auto frames = client_frames(*client);
    EXPECT_EQ(frames[0].payload.size(), 1000u);
    ASSERT_EQ(frames[1].opcode, kClose);
    EXPECT_EQ(frames[1].close_code(), 1009);
    // The backend heard its client is going away, and none of the big message.
    const auto& to_backend = h().backend().connection().frames;
    ASSERT_EQ(to_backend.size(), 2u);
    EXPECT_EQ(to_backend[1].opcode, kClose);
    EXPECT_EQ(to_backend[1].close_code(), 1001);
    client->write(client_frame(kClose, close_payload(1009)));
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionRelayTest, MessagesOverTheRateCloseTheClientWith1008) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("max_messages_per_second = 5")));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    std::string burst;
    for (int i = 0; i < 20; ++i)
        burst += client_frame(kText, "m" + std::to_string(i));
    client->write(burst);
    ASSERT_TRUE(h().run_until([&] { return close_of(client_frames(*client)).has_value(); }));
    EXPECT_EQ(close_of(client_frames(*client))->close_code(), 1008);
    size_t data_frames = 0;
    for (const auto& f : h().backend().connection().frames) {
        if (f.opcode == kText) ++data_frames;
    }
    EXPECT_GE(data_frames, 1u);
    EXPECT_LE(data_frames, 5u) << "messages over the rate reached the backend";
    client->write(client_frame(kClose, close_payload(1008)));
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionRelayTest, UnmaskedClientFrameGets1002AndTheClientSocketClosesAtOnce) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    client->write(server_frame(kText, "not masked"));
    // RFC 6455 §7.1.7: the proxy does not wait for the client's Close.
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    auto frames = client_frames(*client);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].opcode, kClose);
    EXPECT_EQ(frames[0].close_code(), 1002);
    EXPECT_TRUE(wait_no_session());
    for (const auto& f : h().backend().connection().frames)
        EXPECT_EQ(f.opcode, kClose) << "the unmasked frame reached the backend";
}

TEST_F(SessionRelayTest, LargeTransferToASlowClientPausesResumesAndStaysBounded) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    client->pause();
    // Small frames: every byte goes through read blocks (none is spliced).
    const std::string data = frames_totalling(2 << 20, 1000, false);
    h().reset_max_blocks_in_use();
    h().backend().connection().peer->write(data);
    ASSERT_TRUE(h().run_until([&] { return h().stats().pauses.value() > 0; }));
    // Stuck on the client: the proxy holds what it is writing, nothing more.
    EXPECT_LE(h().context().blocks.in_use(), 2u);
    client->resume();
    size_t start_at = after_101(*client);
    ASSERT_TRUE(
        h().run_until([&] { return client->received_after(start_at).size() >= data.size(); },
                      std::chrono::seconds(30)));
    EXPECT_TRUE(client->received_after(start_at) == data) << "the stream differs";
    EXPECT_LE(h().max_blocks_in_use(), 4u) << "memory grew with the backlog";
    EXPECT_GT(h().stats().pauses.value(), 0u);
    EXPECT_EQ(h().stats().pauses.value(), h().stats().resumes.value());
}

TEST_F(SessionRelayTest, LargeFramesToASlowClientPauseResumeAndStayBounded) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    client->pause();
    // Large payloads: most of each is spliced; what the client refuses is parked.
    const std::string data = frames_totalling(2 << 20, 256 * 1024, false);
    h().reset_max_blocks_in_use();
    h().backend().connection().peer->write(data);
    ASSERT_TRUE(h().run_until([&] { return h().stats().pauses.value() > 0; }));
    client->resume();
    size_t start_at = after_101(*client);
    ASSERT_TRUE(
        h().run_until([&] { return client->received_after(start_at).size() >= data.size(); },
                      std::chrono::seconds(30)));
    EXPECT_TRUE(client->received_after(start_at) == data) << "the stream differs";
    // A splice round parks at most kSpliceRound bytes: eight blocks, and one more.
    EXPECT_LE(h().max_blocks_in_use(), 10u) << "memory grew with the backlog";
    EXPECT_EQ(h().stats().pauses.value(), h().stats().resumes.value());
}

TEST_F(SessionRelayTest, LargeTransferToASlowBackendPausesResumesAndStaysBounded) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    BackendConnection& b = h().backend().connection();
    b.peer->pause();
    h().reset_max_blocks_in_use();
    // Loopback TCP send buffers grow to megabytes (tcp_wmem): the client writes a
    // megabyte at a time until the proxy has to stop reading it (64 MiB at most).
    const std::string chunk = frames_totalling(1 << 20, 1000, true);
    std::string data;
    while (h().stats().pauses.value() == 0 && data.size() < (64u << 20)) {
        client->write(chunk);
        data += chunk;
        h().run_until(
            [&] { return client->writes_pending() == 0 || h().stats().pauses.value() > 0; });
    }
    ASSERT_GT(h().stats().pauses.value(), 0u) << "the proxy never stopped reading the client";
    EXPECT_LE(h().context().blocks.in_use(), 2u);
    b.peer->resume();
    ASSERT_TRUE(
        h().run_until([&] { return b.stream().size() >= data.size(); }, std::chrono::seconds(60)));
    EXPECT_TRUE(b.stream() == data) << "the stream differs";
    EXPECT_LE(h().max_blocks_in_use(), 4u) << "memory grew with the backlog";
    EXPECT_EQ(h().stats().pauses.value(), h().stats().resumes.value());
}

TEST_F(SessionRelayTest, DrainSendsClose1001ToBothPeersAndWaitsForTheirAnswers) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    BackendConnection& b = h().backend().connection();
    h().session()->close_gracefully(metrics::CloseReason::Shutdown, 1001,
                                    uv_now(h().loop()) + 5000);
    ASSERT_TRUE(wait_client_frames(*client, 1));
    ASSERT_TRUE(wait_backend_frames(1));
    std::optional<Frame> to_client = close_of(client_frames(*client));
    ASSERT_TRUE(to_client.has_value());
    EXPECT_EQ(to_client->close_code(), 1001);
    EXPECT_FALSE(to_client->masked);
    std::optional<Frame> to_backend = close_of(b.frames);
    ASSERT_TRUE(to_backend.has_value());
    EXPECT_EQ(to_backend->close_code(), 1001);
    EXPECT_TRUE(to_backend->masked) << "frames to a backend are masked (RFC 6455 §5.3)";
    ASSERT_NE(h().session(), nullptr);
    EXPECT_EQ(h().session()->state(), session::SessionState::Closing);

    // Both peers answer; the session ends without waiting for its linger deadline.
    client->write(client_frame(kClose, close_payload(1001)));
    b.peer->write(server_frame(kClose, close_payload(1001)));
    b.peer->shutdown();
    EXPECT_TRUE(h().run_until([&] { return h().sessions() == 0; }, std::chrono::seconds(2)));
    EXPECT_TRUE(h().run_until([&] { return client->ended() && b.peer->ended(); }));
}

TEST_F(SessionRelayTest, BackendClosingWithoutACloseFrameGivesTheClient1012) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    h().backend().connection().peer->shutdown();
    ASSERT_TRUE(wait_client_frames(*client, 1));
    std::optional<Frame> close = close_of(client_frames(*client));
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->close_code(), 1012);
    client->write(client_frame(kClose, close_payload(1012)));
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionRelayTest, BackendResetMidRelayGivesTheClient1012) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    h().backend().connection().peer->reset();
    ASSERT_TRUE(wait_client_frames(*client, 1));
    std::optional<Frame> close = close_of(client_frames(*client));
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->close_code(), 1012);
    client->write(client_frame(kClose, close_payload(1012)));
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionRelayTest, ClientDroppingTcpEndsTheBackendConnection) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    BackendConnection& b = h().backend().connection();
    client->close();
    ASSERT_TRUE(h().run_until([&] { return b.peer->ended(); }));
    b.peer->close();
    EXPECT_TRUE(wait_no_session());
    EXPECT_FALSE(close_of(b.frames).has_value())
        << "a client that said nothing is not made to say 1012";
}

TEST_F(SessionRelayTest, HalfCloseFromTheClientReachesTheBackendAndBackFrames) {
    ASSERT_NO_FATAL_FAILURE(start(with_websocket("", false)));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    BackendConnection& b = h().backend().connection();
    client->write(client_frame(kClose, close_payload(1000)));
    client->shutdown();
    ASSERT_TRUE(h().run_until([&] { return b.peer->eof(); }));
    ASSERT_EQ(b.frames.size(), 1u);
    EXPECT_EQ(b.frames[0].close_code(), 1000);
    // The other direction still flows until the backend ends it.
    b.peer->write(server_frame(kClose, close_payload(1000)));
    b.peer->shutdown();
    ASSERT_TRUE(h().run_until([&] { return client->eof(); }));
    EXPECT_EQ(close_of(client_frames(*client))->close_code(), 1000);
    EXPECT_TRUE(wait_no_session());
}

}  // namespace
}  // namespace sb::test
