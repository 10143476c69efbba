// Session::abort at every state: whatever the session was doing, both peers see their
// connection end, and the teardown finds no handle open and no block kept (the
// fixture checks those after each test).
#include <string>

#include "session_fixture.h"

namespace sb::test {
namespace {

using SessionAbortTest = SessionTest;
using session::SessionState;

// Aborts the one live session, which must be in `state`, and waits for it to go.
#define ABORT_IN(state_value)                                                 \
    do {                                                                      \
        ASSERT_NE(h().session(), nullptr);                                    \
        ASSERT_EQ(h().session()->state(), state_value);                       \
        h().session()->abort(metrics::CloseReason::Shutdown);                 \
        ASSERT_TRUE(wait_no_session()) << "an aborted session was not freed"; \
    } while (false)

TEST_F(SessionAbortTest, WhileReadingTheRequest) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write("GET /chat HTTP/1.1\r\nHost: chat.exa");
    // The partial head is read (and copied aside) before the abort.
    ASSERT_TRUE(h().run_until([&] { return client->writes_pending() == 0; }));
    h().run_iterations(3);
    ABORT_IN(SessionState::ReadingRequest);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(h().backend().connections(), 0u);
}

TEST_F(SessionAbortTest, WhileConnectingToTheBackend) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    // The connect is started in the iteration that reads the request, and completes
    // in a later one: the state is observable in between.
    ASSERT_TRUE(h().run_until([&] {
        return h().session() != nullptr && h().session()->state() != SessionState::ReadingRequest;
    }));
    ABORT_IN(SessionState::ConnectingBackend);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_EQ(client->received(), "") << "an aborted session answers nothing";
}

TEST_F(SessionAbortTest, WhileAwaitingTheBackendAnswer) {
    HarnessOptions o;
    o.script.answer = BackendScript::Answer::Silent;
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request() + client_frame(kText, "glued"));
    ASSERT_TRUE(wait_backend_connection());
    ABORT_IN(SessionState::AwaitingResponse);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_TRUE(h().run_until([&] { return h().backend().connection().peer->ended(); }));
}

TEST_F(SessionAbortTest, WhileReadingTheBackendAnswerHead) {
    HarnessOptions o;
    o.script.answer = BackendScript::Answer::Raw;
    o.script.raw_answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs";
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write(upgrade_request());
    ASSERT_TRUE(wait_backend_connection());
    ASSERT_TRUE(
        h().run_until([&] { return h().backend().connection().peer->writes_pending() == 0; }));
    h().run_iterations(3);
    ABORT_IN(SessionState::AwaitingResponse);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
}

TEST_F(SessionAbortTest, WhileRelaying) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    client->write(client_frame(kText, "one"));
    ASSERT_TRUE(wait_client_frames(*client, 1));
    ABORT_IN(SessionState::Relaying);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_TRUE(h().run_until([&] { return h().backend().connection().peer->ended(); }));
}

TEST_F(SessionAbortTest, WhileRelayingWithReadsPausedAndWritesQueued) {
    HarnessOptions o;
    o.script.echo = false;
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    client->pause();
    std::string data;
    while (data.size() < (1u << 20))
        data += server_frame(kBinary, std::string(1000, 'z'));
    h().backend().connection().peer->write(data);
    ASSERT_TRUE(h().run_until([&] { return h().stats().pauses.value() > 0; }));
    // The session ends with a read paused: that pause is never resumed, by design.
    allow_unresumed_pause();
    ABORT_IN(SessionState::Relaying);
    EXPECT_TRUE(h().run_until([&] { return h().backend().connection().peer->ended(); }));
}

TEST_F(SessionAbortTest, WhileClosing) {
    HarnessOptions o;
    o.script.echo = false;  // the backend never answers the Close: the session stays Closing
    ASSERT_NO_FATAL_FAILURE(start(o));
    Peer* client = h().open_websocket();
    ASSERT_NE(client, nullptr);
    h().session()->close_gracefully(metrics::CloseReason::Shutdown, 1001,
                                    uv_now(h().loop()) + 5000);
    ASSERT_TRUE(wait_client_frames(*client, 1));
    ABORT_IN(SessionState::Closing);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
    EXPECT_TRUE(h().run_until([&] { return h().backend().connection().peer->ended(); }));
}

TEST_F(SessionAbortTest, WhileARefusalIsOut) {
    ASSERT_NO_FATAL_FAILURE(start());
    Peer* client = h().connect_client();
    ASSERT_NE(client, nullptr);
    client->write("POST /chat HTTP/1.1\r\nHost: chat.example\r\n\r\n");
    ASSERT_TRUE(h().run_until([&] { return status_of(client->received()) != 0; }));
    // The client keeps its end open: the session lingers in Closing for its FIN.
    ABORT_IN(SessionState::Closing);
    EXPECT_TRUE(h().run_until([&] { return client->ended(); }));
}

}  // namespace
}  // namespace sb::test
