// Session: one client connection and, once connected, its backend connection: the
// only place where a client socket, a backend socket, the HTTP parser, the frame
// scanner and the balancer meet.
//
// Ownership and lifetime: created by Session::accept() on a worker's thread; owns
// itself from then on, listed in its WorkerContext. It never deletes itself on the
// spot: finish() closes its handles and the last close callback frees it, so no
// callback ever runs on a freed Session. Single-threaded (its worker's loop).
//
// States and transitions (drawn in docs/life-of-a-session.md):
//
//   ReadingRequest ──request ok──▶ ConnectingBackend ──connected──▶ AwaitingResponse
//        │                          │   ▲ retry next backend          │        │
//        │ bad request, no route,   │   └─────────────┘               │ 101    │ other status
//        │ timeout                  │ none left / timeout             ▼        ▼
//        └──────────────┬───────────┘                              Relaying ─▶ (answer passed
//                       ▼                                             │         through, closing)
//                    Closing ◀────── proxy close (drain, limits) ──────┘
//                       │ peers answered, or linger deadline
//                       ▼
//                     Closed ── last handle closed ──▶ freed
//
// Only enter() changes the state and (re)arms the state's deadline; only finish()
// ends a session (access log, metrics, backend slot, handle closes in one place).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/address.h"
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

class Session {
  public:
    using CloseReason = metrics::CloseReason;

    // How long a closing session waits for its peers to answer before it cuts them.
    static constexpr uint64_t kLingerMs = 5000;

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
    uint64_t id() const { return id_; }
    const pool::Generation& generation() const { return *generation_; }

    // Pipe callbacks.
    void on_pipe_error(Pipe& pipe, int status, bool while_reading);
    void on_source_ended(Pipe& pipe);
    void on_close_frame(Pipe& pipe, uint16_t code);
    void on_stop(Pipe& pipe, Pipe::Stop stop);
    void on_activity(Pipe& pipe);
    void on_pong(Pipe& pipe);
    void on_pipe_done(Pipe& pipe);
    void on_raw_bytes(Pipe& pipe, std::string_view bytes);
    // Decrypts what a TLS side has read and hands it on (also called by a Pipe that
    // resumes after backpressure with ciphertext still waiting).
    void pump_tls(bool client_side);
    WorkerContext& context() { return ctx_; }

    // libuv read callbacks for both sockets; they dispatch on the handle and state.
    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;

    SessionLink link;  // WorkerContext::sessions

  private:
    struct Handshake;
    struct OwnedWrite;

    Session(WorkerContext& ctx, pool::GenerationPtr generation,
            const pool::ListenerRuntime& listener);
    ~Session();

    void take_connection_slots();
    void release_connection_slots();
    void enter(SessionState next);
    void arm_deadline(uint64_t delay_ms);
    void rearm();
    void decide(CloseReason reason);
    void backend_lost();
    void maybe_finish();
    void finish(CloseReason reason);
    void refuse(CloseReason reason, std::string_view detail);
    void close_handles();

    // Handshake (session_handshake.cpp).
    void on_request_read(ssize_t nread);
    void on_request_bytes();
    void on_request_head();
    void connect_next();
    void on_connected();
    void on_backend_ready();
    void on_connect_failed(std::string_view why);
    void on_response_read(ssize_t nread);
    void on_response_bytes();
    void on_response_head();
    void start_relay(bool websocket);
    void send_owned(uv_stream_t* to, std::string bytes, bool shutdown_after);
    static void on_owned_written(uv_write_t* req, int status) noexcept;

    // TLS (session_tls.cpp).
    struct ChainWrite;
    void on_tls_input(bool client_side, ssize_t nread, const uv_buf_t* buf);
    void on_tls_end(bool client_side, int status);
    void on_client_tls_failed();
    void on_backend_tls_failed(std::string_view why);
    void flush_tls(bool client_side);
    void write_chain(uv_stream_t* to, uv::Block* chain, bool shutdown_after);
    static void on_chain_written(uv_write_t* req, int status) noexcept;

    // libuv trampolines.
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_closed(uv_handle_t* handle) noexcept;
    static void on_deadline(void* self);
    void on_timeout();
    uint64_t relay_due() const;
    void on_relay_timeout(uint64_t now);

    void write_access_log();
    void log_event(std::string_view message, std::string_view detail = {}) const;

    WorkerContext& ctx_;
    pool::GenerationPtr generation_;
    const pool::ListenerRuntime& listener_;
    metrics::ListenerStats& listener_stats_;
    const pool::Pool* pool_ = nullptr;
    metrics::PoolStats* pool_stats_ = nullptr;
    pool::Backend* backend_ = nullptr;  // the backend tried last; owned by generation_
    pool::Placement placement_;         // room and backend slot held until finish()
    uint64_t id_;
    uint64_t started_ms_;  // loop time at accept

    uv_tcp_t client_;
    uv_tcp_t backend_tcp_;
    std::unique_ptr<tls::Connection> client_tls_;   // when the listener has TLS
    std::unique_ptr<tls::Connection> backend_tls_;  // when the pool has TLS
    Pipe to_backend_{*this, true};
    Pipe to_client_{*this, false};
    std::unique_ptr<Handshake> handshake_;  // only until the relay starts
    uv::Deadline deadline_{&Session::on_deadline, this};
    uint64_t state_due_ = 0;       // loop time the current state times out (0 = never)
    uint64_t close_at_ = 0;        // loop time of a scheduled proxy close (0 = none)
    uint64_t close_deadline_ = 0;  // ...and when that close must be complete
    // Relay timers (loop time, 0 = not set): see relay_due().
    uint64_t last_client_ms_ = 0;   // last bytes from the client
    uint64_t last_backend_ms_ = 0;  // last bytes from the backend
    uint64_t ping_sent_ms_ = 0;     // our Ping is out since (0 = none outstanding)
    uint64_t ping_token_seq_ = 0;
    uint64_t expire_at_ = 0;  // max_lifetime, jittered
    uint64_t linger_at_ = 0;  // both Close frames passed; peers must hang up by then

    config::SocketAddress client_address_;
    std::string host_;       // for the access log
    std::string target_;     // request target (path and query), for the access log
    uint32_t head_in_ = 0;   // request head bytes read from the client
    uint32_t head_out_ = 0;  // answer head bytes written to the client
    uint16_t status_ = 0;
    uint16_t close_code_ = 0;  // first Close frame's code, or the one the proxy sent
    SessionState state_ = SessionState::ReadingRequest;
    CloseReason reason_ = CloseReason::ClientClosed;
    CloseReason pending_reason_ = CloseReason::Shutdown;  // of the scheduled close
    std::optional<CloseReason> over_limit_;               // a connection limit refused it at accept
    static constexpr uint8_t kHeldServer = 1, kHeldListener = 2, kHeldIp = 4;
    uint8_t held_ = 0;  // connection slots taken at accept
    uint16_t pending_code_ = 0;
    bool reason_decided_ = false;
    metrics::Side close_sender_ = metrics::Side::Client;  // who sent the first Close frame
    bool websocket_ = false;                              // relaying frames (a 101 went through)
    bool backend_open_ = false;  // backend_tcp_ initialized and not yet closed
    bool backend_gone_ = false;  // backend lost mid-relay; only the client is left
    bool client_gone_ = false;   // client dead (no pong); only the backend is left
    uint8_t open_handles_ = 0;
};

}  // namespace sb::session
