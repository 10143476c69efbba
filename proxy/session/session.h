// Session: one client connection and, once connected, its backend connection: the
// only place where a client socket, a backend socket, the HTTP parser, the frame
// scanner and the balancer meet. It is the state machine; its two Endpoints own the
// sockets, TLS layers, reads and writes, and its two Pipes relay between them.
//
// Ownership and lifetime: created by Session::accept() on a worker's thread; owns
// itself from then on, listed in its WorkerContext. It never deletes itself on the
// spot: finish() closes both Endpoints and the last close callback frees it, so no
// callback ever runs on a freed Session. Single-threaded (its worker's loop).
//
// States and transitions (drawn in docs/life-of-a-session.md). Only enter() changes
// the state and (re)arms the state's deadline; only finish() ends a session (access
// log, metrics, backend slot, handle closes in one place).
//
//   ReadingRequest ──request ok──▶ ConnectingBackend ──connected──▶ AwaitingResponse
//        │                          │   ▲ retry next backend          │        │
//        │ bad request, no route,   │   └─────────────┘               │ 101    │ other final
//        │ timeout                  │ none left / timeout             ▼        ▼ status
//        └──────────────┬───────────┘                              Relaying ─▶ (answer passed
//                       ▼                                             │         through)
//                    Closing ◀────── proxy close (drain, limits) ──────┘
//                       │ peers answered, or linger deadline
//                       ▼
//                     Closed ── both Endpoints closed ──▶ freed
//
//   ReadingRequest    → ConnectingBackend (head valid, routed, placed)
//                     → Closing (refused with an HTTP answer) | Closed (timeout, abort;
//                       between HTTP requests: keepalive_timeout, the client left)
//   ConnectingBackend → ConnectingBackend (connect failed: next backend, up to retries;
//                       or the previous request's connection is still closing)
//                     → AwaitingResponse (connected, TLS done, request written; plain
//                       HTTP: or a kept connection taken, the request written)
//                     → Closing (no backend: 502/503) | Closed
//   AwaitingResponse  → AwaitingResponse (an interim 1xx passed to the client)
//                     → Relaying (a valid 101, or another final answer passed through)
//                     → ConnectingBackend (plain HTTP: a reused connection failed before
//                       any answer byte; an idempotent request goes out on a new one)
//                     → Closing (garbage, a bad 101, timeout: 502/504) | Closed
//   Relaying          → ReadingRequest (plain HTTP: the answer ended, the client is kept
//                       alive: session_http.cpp)
//                     → Closing (a proxy close, a peer lost, an answer that said
//                       Connection: close is out) | Closed (both sides done)
//   Closing           → Closed (peers answered or hung up, or the linger deadline)
//
// Endpoint events (endpoint.h): bytes and end-of-stream for the handshake reader,
// connected, TLS ready or failed, drained, shut down, closed, and errors. Pipe events
// (pipe.h): source ended, Close frame seen, limit hit, Pong, activity, done.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/address.h"
#include "limits/token_bucket.h"
#include "metrics/close_reason.h"
#include "pool/generation.h"
#include "session/context.h"
#include "session/pipe.h"
#include "session/session_list.h"
#include "tls/connection.h"
#include "uv/timer_heap.h"

namespace sb::session {

enum class SessionState : uint8_t {
    ReadingRequest,     // reading the client's request head; deadline: handshake_timeout
    ConnectingBackend,  // TCP connect to a backend; deadline: connect_timeout per attempt
    AwaitingResponse,   // request sent, reading the backend's answer; deadline: connect_timeout
    Relaying,           // bytes flow both ways (frames after a 101, or a non-101 answer)
    Closing,            // a reply or Close frames are out; waiting for peers; deadline: linger
    Closed,             // handles are closing; the last close callback frees the session
};

std::string_view state_name(SessionState s);

// A Session is its own uv::Deadline (a base rather than a member, so the worker's
// TimerHeap finds the session from the deadline without a back pointer: the
// session's size is what an idle connection costs).
class Session : private uv::Deadline {
  public:
    using CloseReason = metrics::CloseReason;

    // How long a closing session waits for its peers to answer before it cuts them.
    static constexpr uint64_t kLingerMs = 5000;
    // A burst of at least this many handshakes, once over, has the heap trimmed.
    static constexpr unsigned kTrimAfterHandshakes = 64;

    // Starts the session of a connection the listener accepted (descriptor `fd`, now
    // owned by the session) from `peer`.
    static void accept(WorkerContext& ctx, pool::GenerationPtr generation,
                       const pool::ListenerRuntime& listener, int fd,
                       const config::SocketAddress& peer);

    // Proxy-initiated end (drain, rehome, removed backend...): a relaying session sends
    // Close `code` to both peers at frame boundaries and waits for them until
    // `deadline_ms` (loop time); a session still in its handshake ends now.
    void close_gracefully(CloseReason reason, uint16_t code, uint64_t deadline_ms);
    // Ends the session at once (drain deadline passed, second signal).
    void abort(CloseReason reason);
    // Schedules close_gracefully(reason, code, deadline_ms) for loop time `at_ms`:
    // how a worker paces a mass close (drain, rehome, removed backends).
    void schedule_close(CloseReason reason, uint16_t code, uint64_t at_ms, uint64_t deadline_ms);

    // The session's room (nullptr before placement) and backend, for rehoming and
    // reloads that remove backends.
    const pool::Room* room() const { return placement_.room; }
    const pool::Backend* backend() const { return backend_; }
    const pool::Pool* pool() const { return pool_; }

    SessionState state() const { return state_; }
    // A plain HTTP connection (between requests, or in an exchange): after a reload it
    // is closed once its exchange is over, so that its next request meets the new
    // configuration on a new connection.
    bool serves_http() const;
    // A reload came while this connection's request head was arriving: that request is
    // served under the configuration it began with, and the connection ends with it.
    void close_after_request();
    uint64_t id() const { return id_; }
    const pool::Generation& generation() const { return *generation_; }

    // ---- Endpoint events (see endpoint.h) ----

    // Bytes for the handshake reader: the client's request head, or the backend's
    // answer head. The session owns `block` from here on.
    void on_handshake_bytes(Endpoint& side, uv::Block* block, char* data, size_t n);
    // The side ended (UV_EOF) or failed before (or instead of) a Pipe took it over.
    void on_handshake_end(Endpoint& side, int status);
    void on_connected(Endpoint& side, int status);
    void on_tls_ready(Endpoint& side);
    void on_tls_failed(Endpoint& side);
    void on_drained(Endpoint& side);
    void on_shutdown(Endpoint& side);
    void on_closed(Endpoint& side);
    // A read or write on one side failed (reset, broken pipe, TLS error...).
    void on_side_error(bool client_side, int status);

    // ---- Pipe events (see pipe.h) ----

    void on_source_ended(Pipe& pipe);
    void on_close_frame(Pipe& pipe, uint16_t code);
    void on_stop(Pipe& pipe, Pipe::Stop stop);
    void on_activity(Pipe& pipe);
    void on_pong(Pipe& pipe);
    void on_pipe_done(Pipe& pipe);
    // The proxy's Ping reached the client's side (its timeout counts from here).
    void on_ping_written(Pipe& pipe);
    // Bytes of an HTTP body (a request's, an answer's) or of a non-101 answer to an
    // upgrade; returns how many of them belong to the message.
    size_t on_raw_bytes(Pipe& pipe, std::string_view bytes);
    // After a Raw delivery was handed on: where an HTTP exchange ends (session_http.cpp).
    void after_raw_bytes(Pipe& pipe);

    // The worker's TimerHeap callback for session deadlines.
    static void on_deadline(uv::Deadline& deadline);

    // What Pipes and Endpoints reach through their session rather than keeping a copy.
    WorkerContext& context() { return ctx(); }
    Endpoint& endpoint(bool client_side) { return client_side ? client_ : backend_side_; }
    // The Endpoint whose socket `handle` is.
    Endpoint& endpoint_for(const uv_handle_t* handle) {
        return handle == client_.handle() ? client_ : backend_side_;
    }
    // The Pipe that reads from `side`, and the one that writes to it.
    Pipe& pipe_from(Endpoint& side) { return side.client_side() ? to_backend_ : to_client_; }
    Pipe& pipe_to(Endpoint& side) { return side.client_side() ? to_client_ : to_backend_; }
    metrics::PoolStats* pool_stats() const { return pool_stats_; }
    // The client's message limits, with their rate bucket (null without any).
    const config::WebSocketConfig* client_limits() const {
        if (pool_ == nullptr) return nullptr;
        const auto& ws = pool_->config().websocket;
        return ws.max_message_bytes > 0 || ws.max_messages_per_second > 0 ? &ws : nullptr;
    }
    limits::TokenBucket& rate_bucket() { return extras().bucket; }
    // Relayed bytes and messages, for the access log (the pool's counters are kept by
    // the Pipe itself).
    void count_bytes(metrics::Direction d, uint64_t n) {
        if (log_) log_->bytes[d] += n;
    }
    void count_message(metrics::Direction d) {
        if (log_) ++log_->messages[d];
    }
    // The token of the proxy's own Ping, whose Pong the client pipe swallows.
    uint64_t ping_token() const { return extras_ ? extras_->ping_token : 0; }

    SessionLink link;  // WorkerContext::sessions

  private:
    struct Handshake;

    Session(WorkerContext& ctx, pool::GenerationPtr generation,
            const pool::ListenerRuntime& listener);
    ~Session();

    void take_connection_slots();
    void take_ip_slot();
    void release_connection_slots();
    void enter(SessionState next);
    void arm_deadline(uint64_t delay_ms);
    void rearm();
    void decide(CloseReason reason);
    void backend_lost();
    void fail_client(CloseReason reason, uint16_t code, std::string_view why);
    void maybe_finish();
    void finish(CloseReason reason);
    // Answers the request with the reason's status and ends the session;
    // `retry_after` (seconds, 0 = none) adds a Retry-After header.
    void refuse(CloseReason reason, std::string_view detail, unsigned retry_after = 0);

    // Admission control (session_admission.cpp).
    // Sheds the request placement refused for want of a token (ShedPoolRate,
    // ShedBackendRate): a 503 with Retry-After, or with shed = "close_1013" an upgrade
    // completed by switchboard itself and closed at once with 1013.
    void shed(CloseReason reason);
    // The client's bytes after a 1013 shed: its Close ends the session.
    void on_shed_bytes(uv::Block* block, char* data, size_t n);
    // retry_after jittered by ±50% for this client, in whole seconds rounded up, >= 1.
    unsigned retry_hint(config::Duration retry_after);
    // max_connects_per_ip_per_second, once the client's address is known: false (and
    // the connection marked over its limit) when the address has no token.
    bool take_connect_token();

    // Handshake (session_handshake.cpp).
    void on_proxy_header_bytes(uv::Block* block, char* data, size_t n);
    void start_client_tls();
    void on_request_bytes(uv::Block* block, char* data, size_t n);
    void on_request_head();
    // Routes the request head to its pool and computes its balancing key; false once
    // refused (no route).
    bool route_request();
    void connect_next();
    // Opens a new connection to backend_.
    void connect_backend();
    void on_connect_failed(std::string_view why);
    void on_backend_connected();
    void on_backend_ready();
    void on_response_bytes(uv::Block* block, char* data, size_t n);
    bool on_response_head();
    void start_relay(bool websocket);
    void on_client_tls_failed();
    void on_backend_tls_failed(std::string_view why);

    // Plain HTTP requests (session_http.cpp).
    void start_http_request();
    void on_http_backend_ready();
    void start_http_response();
    size_t on_http_body_bytes(Pipe& pipe, std::string_view bytes);
    void end_http_exchange();
    void next_http_request(pool::Backend* kept, const pool::Pool* kept_pool);
    static bool shares_connections(const pool::Pool& pool);
    bool take_idle_connection();
    // The request goes out on the connection the backend Endpoint holds (kept or
    // adopted): no connect.
    void send_on_reused_connection();
    // A dup of the backend connection goes to the worker's idle set for `idle_ms`.
    void hand_to_idle_set(const pool::Backend& backend, const pool::Pool& pool, uint64_t idle_ms);
    void keep_backend_connection();
    bool reuse_kept_connection();
    void drop_kept_connection();
    bool backend_connection_clean() const;
    void park_kept_connection();
    bool retry_on_new_connection(std::string_view why);
    void count_http_request();

    // A non-101 answer passed through must keep coming: a backend silent this long in
    // its middle ends the session (the listener's handshake_timeout: the client is
    // still, in effect, waiting for its handshake's answer).
    uint64_t raw_answer_timeout_ms() const {
        return static_cast<uint64_t>(listener_.config.handshake_timeout.count());
    }
    void on_timeout();
    uint64_t relay_due() const;
    void on_relay_timeout(uint64_t now);

    void write_access_log();
    void log_event(std::string_view message, std::string_view detail = {}) const;

    // State most connections never need, allocated on first use: the relay's timers
    // (when the pool sets ping, idle or lifetime limits), a scheduled proxy close
    // (drain, rehome), the message-rate bucket and the proxy's Ping token.
    struct Extras {
        uint64_t last_client_ms = 0;   // last bytes from the client
        uint64_t last_backend_ms = 0;  // last bytes from the backend
        uint64_t ping_sent_ms = 0;     // our Ping was written at (0 = none outstanding)
        bool ping_queued = false;      // our Ping waits in the Pipe for a frame boundary
        uint64_t ping_token = 0;
        uint64_t expire_at = 0;       // max_lifetime, jittered
        uint64_t linger_at = 0;       // both Close frames passed; peers must hang up by then
        uint64_t close_at = 0;        // a scheduled proxy close (0 = none)...
        uint64_t close_deadline = 0;  // ...and when it must be complete
        CloseReason pending_reason = CloseReason::Shutdown;
        uint16_t pending_code = 0;
        limits::TokenBucket bucket;
    };
    // What only the access log needs, kept only while it is on (from accept).
    struct LogInfo {
        uint64_t started_ms = 0;        // loop time at accept
        std::string host;               // Host header as sent
        std::string target;             // request target (path and query)
        uint64_t bytes[2] = {0, 0};     // relayed, by metrics::Direction
        uint64_t messages[2] = {0, 0};  // relayed WebSocket messages, by direction
        uint32_t head_in = 0;           // request head bytes read from the client
        uint32_t head_out = 0;          // answer head bytes written to the client
    };
    // The worker's context: every session method runs on its worker's thread, so it
    // is found there rather than stored in each session.
    static WorkerContext& ctx() { return *WorkerContext::current; }
    Extras& extras() {
        if (!extras_) extras_ = std::make_unique<Extras>();
        return *extras_;
    }

    // Field order keeps padding out: this object is what an idle connection costs.
    pool::GenerationPtr generation_;
    const pool::ListenerRuntime& listener_;
    metrics::ListenerStats& listener_stats_;
    const pool::Pool* pool_ = nullptr;
    metrics::PoolStats* pool_stats_ = nullptr;
    pool::Backend* backend_ = nullptr;  // the backend tried last; owned by generation_
    pool::Placement placement_;         // room and backend slot held until finish()
    uint64_t id_;
    uint64_t state_due_ = 0;  // loop time the current state times out (0 = never)

    Endpoint client_{*this, true};
    Endpoint backend_side_{*this, false};
    Pipe to_backend_{*this, true};
    Pipe to_client_{*this, false};
    std::unique_ptr<Handshake> handshake_;  // only until the relay starts
    std::unique_ptr<Extras> extras_;
    std::unique_ptr<LogInfo> log_;

    config::SocketAddress client_address_;
    uint16_t status_ = 0;
    uint16_t close_code_ = 0;  // first Close frame's code, or the one the proxy sent
    SessionState state_ = SessionState::ReadingRequest;
    CloseReason reason_ = CloseReason::ClientClosed;
    metrics::Side close_sender_ = metrics::Side::Client;  // who sent the first Close frame
    static constexpr uint8_t kHeldServer = 1, kHeldListener = 2, kHeldIp = 4;
    uint8_t held_ = 0;  // connection slots taken at accept (per IP: after a PROXY header)
    bool reason_decided_ : 1 = false;
    bool websocket_ : 1 = false;      // relaying frames (a 101 went through)
    bool backend_gone_ : 1 = false;   // backend lost mid-relay; only the client is left
    bool client_failed_ : 1 = false;  // 1002 sent: the client's TCP closes once it is out
    bool client_gone_ : 1 = false;    // client dead (no pong); only the backend is left
    bool in_handshake_ : 1 = false;   // counted in WorkerContext::handshakes_in_flight
    // HTTP keep-alive: waiting for the next request, every earlier one answered and
    // logged (an end now is no request's end).
    bool between_requests_ : 1 = false;
    // A proxy close (drain, reload) came during an HTTP exchange: it ends with the answer.
    bool close_after_exchange_ : 1 = false;
    // Admission (SPEC §3): this connection's first request took its tokens; later
    // plain requests on it take none (an upgrade always takes them).
    bool admitted_ : 1 = false;
};

}  // namespace sb::session
