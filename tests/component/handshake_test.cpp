// The handshake of a Session in process: the upgrade reaches the backend and its 101
// the client; frames that arrive glued to the request or to the 101 enter the relay
// exactly once and are checked like every frame; a frame header cut anywhere across
// the handshake bytes and the next write comes out whole; the backend's answers that
// are not a good 101 (interim 1xx, a wrong accept, garbage, silence, a hang-up).
#include <string>

#include "session_fixture.h"

namespace sb::test {
namespace {

using SessionHandshakeTest = SessionTest;
using Answer = BackendScript::Answer;

HarnessOptions recording() {
    HarnessOptions o;
    o.script.echo = false;
    return o;
}

TEST_F(SessionHandshakeTest, UpgradeReachesTheBackendAndFramesEchoBothWays) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    const BackendConnection& b = h().backend().connection();
    EXPECT_NE(b.request_head.find("Sec-WebSocket-Key: " + std::string(kClientKey)),
              std::string::npos)
        << b.request_head;
    EXPECT_NE(b.request_head.find("X-Forwarded-For: 127.0.0.1"), std::string::npos)
        << b.request_head;
    EXPECT_EQ(h().session()->state(), session::SessionState::Relaying);

    client->write(client_frame(kText, "hello") + client_frame(kBinary, std::string(300, 'x')) +
                  client_frame(kText, "last"));
    ASSERT_TRUE(wait_client_frames(*client, 3));
    auto frames = client_frames(*client);
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(frames[0].payload, "hello");
    EXPECT_EQ(frames[1].payload, std::string(300, 'x'));
    EXPECT_EQ(frames[2].payload, "last");
    for (const auto& f : frames) {
        EXPECT_FALSE(f.masked) << "frames to a client are never masked";
    }
    ASSERT_EQ(b.frames.size(), 3u);
    for (const auto& f : b.frames) {
        EXPECT_TRUE(f.masked) << "a client's mask reaches the backend";
    }

    // The client ends it: Close both ways; the backend closes TCP first (RFC 6455
    // §7.1.1), the proxy passes that on, and the client hangs up in turn.
    client->write(client_frame(kClose, close_payload(1000)));
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    std::optional<Frame> close = close_of(client_frames(*client));
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->close_code(), 1000);
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, FramesGluedToTheRequestReachTheBackendExactlyOnce) {
    ASSERT_NO_FATAL_FAILURE(start(recording()));
    std::string glued = client_frame(kText, "early one") + client_frame(kBinary, "early two");
    Peer* client = h().open_websocket(glued);
    ASSERT_NE(client, nullptr);
    BackendConnection& b = h().backend().connection();
    // A sentinel written after the 101 arrives behind them: anything relayed twice
    // would sit in between.
    std::string sentinel = client_frame(kText, "sentinel");
    client->write(sentinel);
    ASSERT_TRUE(h().run_until([&] { return b.stream().size() >= glued.size() + sentinel.size(); }));
    EXPECT_EQ(b.stream(), glued + sentinel);
}

TEST_F(SessionHandshakeTest, FramesGluedToThe101ReachTheClientExactlyOnce) {
    HarnessOptions o = recording();
    std::string glued =
        server_frame(kText, "welcome") + server_frame(kBinary, std::string(500, 'w'));
    o.script.after_answer = glued;
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    std::string sentinel = server_frame(kText, "sentinel");
    h().backend().connection().peer->write(sentinel);
    ASSERT_TRUE(h().run_until([&] {
        return client->received_after(after_101(*client)).size() >= glued.size() + sentinel.size();
    }));
    EXPECT_EQ(client->received_after(after_101(*client)), glued + sentinel);
}

TEST_F(SessionHandshakeTest, MessageGluedToTheRequestIsHeldToMaxMessageBytes) {
    HarnessOptions o = recording();
    o.websocket_toml = "max_message_bytes = 1000";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket(client_frame(kBinary, std::string(5000, 'm')));
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(wait_client_frames(*client, 1));
    std::optional<Frame> close = close_of(client_frames(*client));
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->close_code(), 1009);
    // Nothing of the message went to the backend: only the proxy's Close.
    ASSERT_TRUE(wait_backend_frames(1));
    const auto& frames = h().backend().connection().frames;
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].opcode, kClose);
    EXPECT_EQ(frames[0].close_code(), 1001);
}

// Regression: when frames glued to the request made the session close (1009, 1008),
// it went to Closing inside start_relay(), which then never started the
// backend-to-client Pipe: the backend was never read again, its Close answer and its
// FIN went unseen, and the session ended only at its 5 s linger deadline.
TEST_F(SessionHandshakeTest, GluedMessageOverTheLimitEndsOnceBothPeersAnswerTheClose) {
    HarnessOptions o;  // an echoing backend answers the proxy's Close and hangs up
    o.websocket_toml = "max_message_bytes = 1000";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket(client_frame(kBinary, std::string(5000, 'm')));
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(wait_client_frames(*client, 1));
    EXPECT_EQ(client_frames(*client)[0].close_code(), 1009);
    client->write(client_frame(kClose, close_payload(1009)));
    // The backend got the proxy's Close 1001; it answers it and closes TCP at once.
    ASSERT_TRUE(wait_backend_frames(1));
    // Both peers have answered: well before the linger deadline, the session is gone.
    EXPECT_TRUE(h().run_until([&] { return h().sessions() == 0; }, std::chrono::milliseconds(2000)))
        << "the session waited for its linger deadline";
}

TEST_F(SessionHandshakeTest, UnmaskedFrameGluedToTheRequestGets1002) {
    ASSERT_NO_FATAL_FAILURE(start(recording()));
    Peer* client = h().open_websocket(server_frame(kText, "unmasked"));
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    std::optional<Frame> close = close_of(client_frames(*client));
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->close_code(), 1002);
    ASSERT_TRUE(wait_no_session());
    for (const auto& f : h().backend().connection().frames)
        EXPECT_EQ(f.opcode, kClose) << "the unmasked frame reached the backend";
}

// A frame whose header (14 bytes: 64-bit length and mask) is cut at byte `cut`: the
// first part glued to the request, the rest written once the 101 is out.
class SplitClientHeaderTest : public SessionTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(SplitClientHeaderTest, ComesOutWholeAndExactlyOnce) {
    ASSERT_NO_FATAL_FAILURE(start(recording()));
    const std::string frame = client_frame(kBinary, std::string(70000, 'p'));
    const size_t cut = GetParam();
    Peer* client = h().open_websocket(frame.substr(0, cut));
    ASSERT_NE(client, nullptr);
    std::string sentinel = client_frame(kText, "sentinel");
    client->write(frame.substr(cut) + sentinel);
    BackendConnection& b = h().backend().connection();
    ASSERT_TRUE(h().run_until([&] { return b.stream().size() >= frame.size() + sentinel.size(); }));
    EXPECT_TRUE(b.stream() == frame + sentinel) << "cut at " << cut << ": the stream differs";
    ASSERT_EQ(b.frames.size(), 2u);
    EXPECT_EQ(b.frames[0].payload.size(), 70000u);
}

TEST_P(SplitClientHeaderTest, IsStillCheckedAgainstMaxMessageBytes) {
    HarnessOptions o = recording();
    o.websocket_toml = "max_message_bytes = 60000";
    ASSERT_NO_FATAL_FAILURE(start(o));
    const std::string frame = client_frame(kBinary, std::string(70000, 'p'));
    const size_t cut = GetParam();
    Peer* client = h().open_websocket(frame.substr(0, cut));
    ASSERT_NE(client, nullptr);
    client->write(frame.substr(cut));
    ASSERT_TRUE(wait_client_frames(*client, 1));
    std::optional<Frame> close = close_of(client_frames(*client));
    ASSERT_TRUE(close.has_value());
    EXPECT_EQ(close->close_code(), 1009) << "cut at " << cut;
    ASSERT_TRUE(wait_backend_frames(1));
    EXPECT_LT(h().backend().connection().stream().size(), 200u)
        << "cut at " << cut << ": the oversized message's payload reached the backend";
}

INSTANTIATE_TEST_SUITE_P(EveryByteOfTheHeader, SplitClientHeaderTest,
                         ::testing::Range<size_t>(1, 17));

// A backend frame (10-byte header: 64-bit length) cut at byte `cut`: the first part
// glued to the 101, the rest written once the client has the 101.
class SplitBackendHeaderTest : public SessionTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(SplitBackendHeaderTest, ComesOutWholeAndExactlyOnce) {
    const std::string frame = server_frame(kBinary, std::string(70000, 'q'));
    const size_t cut = GetParam();
    HarnessOptions o = recording();
    o.script.after_answer = frame.substr(0, cut);
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    std::string sentinel = server_frame(kText, "sentinel");
    h().backend().connection().peer->write(frame.substr(cut) + sentinel);
    ASSERT_TRUE(h().run_until([&] {
        return client->received_after(after_101(*client)).size() >= frame.size() + sentinel.size();
    }));
    EXPECT_TRUE(client->received_after(after_101(*client)) == frame + sentinel)
        << "cut at " << cut << ": the stream differs";
}

INSTANTIATE_TEST_SUITE_P(EveryByteOfTheHeader, SplitBackendHeaderTest,
                         ::testing::Range<size_t>(1, 13));

TEST_F(SessionHandshakeTest, InterimAnswerIsPassedOnAndThe101Awaited) {
    HarnessOptions o;
    o.script.interim = "HTTP/1.1 100 Continue\r\n\r\n";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(client->received().substr(0, o.script.interim.size()), o.script.interim);
    EXPECT_EQ(client->received().find("HTTP/1.1 101"), o.script.interim.size());
    client->write(client_frame(kText, "after interim"));
    ASSERT_TRUE(wait_client_frames(*client, 1));
    EXPECT_EQ(client_frames(*client)[0].payload, "after interim");
}

TEST_F(SessionHandshakeTest, WrongSecWebSocketAcceptGivesTheClient502) {
    HarnessOptions o;
    o.script.answer = Answer::WrongAccept;
    o.script.after_answer = server_frame(kText, "must not pass");
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 502) << client->received();
    EXPECT_EQ(client->received().find("must not pass"), std::string::npos);
    // The refused client hangs up; only then is the session gone (its FIN is awaited).
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, GarbageAnswerGivesTheClient502) {
    HarnessOptions o;
    o.script.answer = Answer::Raw;
    o.script.raw_answer = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 502) << client->received();
    // The refused client hangs up; only then is the session gone (its FIN is awaited).
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, BackendHangingUpWithoutAnswerGivesTheClient502) {
    HarnessOptions o;
    o.script.answer = Answer::Close;
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 502) << client->received();
    // The refused client hangs up; only then is the session gone (its FIN is awaited).
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, BackendResettingOnTheRequestGivesTheClient502) {
    HarnessOptions o;
    o.script.answer = Answer::Reset;
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 502) << client->received();
    // The refused client hangs up; only then is the session gone (its FIN is awaited).
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, SilentBackendGivesTheClient504AtConnectTimeout) {
    HarnessOptions o;
    o.script.answer = Answer::Silent;
    o.pool_toml = "connect_timeout = \"200ms\"";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(status_of(client->received()), 504) << client->received();
    // The refused client hangs up; only then is the session gone (its FIN is awaited).
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, NonUpgradeAnswerIsPassedThroughUnchanged) {
    HarnessOptions o;
    o.script.answer = Answer::Raw;
    o.script.raw_answer =
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nno room";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(client->received(), o.script.raw_answer);
    // The refused client hangs up; only then is the session gone (its FIN is awaited).
    client->close();
    EXPECT_TRUE(wait_no_session());
}

TEST_F(SessionHandshakeTest, MalformedRequestGets400WithoutTouchingTheBackend) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    // An HTTP/1.1 request without a Host (RFC 9112 §3.2), upgrade or not.
    client->write("GET /chat HTTP/1.1\r\nUser-Agent: t\r\n\r\n");
    ASSERT_TRUE(h().run_until([&] { return status_of(client->received()) != 0; }));
    EXPECT_EQ(status_of(client->received()), 400) << client->received();
    client->close();
    EXPECT_TRUE(wait_no_session());
    EXPECT_EQ(h().backend().connections(), 0u);
}

TEST_F(SessionHandshakeTest, TcpClientUpgradesLikeASocketPair) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().open_websocket({}, SessionHarness::Transport::Tcp);
    ASSERT_NE(client, nullptr);
    client->write(client_frame(kText, "over tcp"));
    ASSERT_TRUE(wait_client_frames(*client, 1));
    EXPECT_EQ(client_frames(*client)[0].payload, "over tcp");
}

}  // namespace
}  // namespace sb::test
