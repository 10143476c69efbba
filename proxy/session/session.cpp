// Session lifecycle: accept, state changes, deadlines, the relay's end, and finish().
// The handshake half lives in session_handshake.cpp.
#include "session/session.h"

#include <unistd.h>
#include <algorithm>

#include <atomic>
#include <nlohmann/json.hpp>

#include "log/logger.h"
#include "session/handshake_state.h"
#include "uv/slab.h"

namespace sb::session {

thread_local WorkerContext* WorkerContext::current = nullptr;

namespace {

std::atomic<uint64_t> g_next_id{1};

// What an idle connection costs (docs/architecture.md): a member that makes this
// grow should have a reason to live in every session rather than in Extras. (952: each
// Endpoint's pointer to its record layer, which replaces a client's SSL object of
// about 7.5 KB once its handshake is done; see issue 17. 968: each Endpoint's queue of
// writes in the worker's ring, see uv/ring.h.)
static_assert(sizeof(Session) <= 968, "Session grew; see 'Memory per connection'");

// Sessions come from their worker's own slab (see uv/slab.h for why).
uv::Slab& session_slab() {
    thread_local uv::Slab slab(sizeof(Session));
    return slab;
}

}  // namespace

std::string_view state_name(SessionState s) {
    switch (s) {
        case SessionState::ReadingRequest:
            return "reading request";
        case SessionState::ConnectingBackend:
            return "connecting to backend";
        case SessionState::AwaitingResponse:
            return "awaiting backend answer";
        case SessionState::Relaying:
            return "relaying";
        case SessionState::Closing:
            return "closing";
        case SessionState::Closed:
            return "closed";
    }
    return "unknown";
}

Session::Session(WorkerContext& ctx, pool::GenerationPtr generation,
                 const pool::ListenerRuntime& listener)
    : generation_(std::move(generation)),
      listener_(listener),
      listener_stats_(ctx.stats.listener(listener.config.name)),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)) {
    if (log::Logger::get().access_log_enabled()) {
        log_ = std::make_unique<LogInfo>();
        log_->started_ms = uv_now(ctx.loop);
    }
}

Session::~Session() = default;

void Session::accept(WorkerContext& ctx, pool::GenerationPtr generation,
                     const pool::ListenerRuntime& listener, int fd,
                     const config::SocketAddress& peer) {
    void* memory = session_slab().allocate();
    if (memory == nullptr) {
        ::close(fd);  // out of memory: the connection is refused at once
        return;
    }
    auto* s = new (memory) Session(ctx, std::move(generation), listener);
    ctx.sessions.push(s);
    if (!s->client_.adopt(ctx.loop, fd)) {
        // The handle is closing; its close callback frees the session.
        s->state_ = SessionState::Closed;
        return;
    }
    s->client_address_ = peer;
    ++ctx.handshakes_in_flight;
    s->in_handshake_ = true;
    s->listener_stats_.active.add(1);
    s->listener_stats_.total.add();
    s->handshake_ = std::make_unique<Handshake>();
    s->take_connection_slots();
    if (listener.config.proxy_protocol) {
        const auto& trusted = listener.config.proxy_protocol_from;
        if (!trusted.empty() && std::none_of(trusted.begin(), trusted.end(),
                                             [&](const auto& n) { return n.contains(peer); })) {
            // Closed before anything is read: its header would be a lie we cannot tell.
            s->log_event("PROXY protocol source not in proxy_protocol_from");
            s->finish(CloseReason::ProxyUntrusted);
            return;
        }
        // The header comes first, before TLS (start_client_tls follows it).
        s->handshake_->proxy_header = std::make_unique<net::proxy_header::Parser>();
    } else {
        s->start_client_tls();
        if (s->state_ == SessionState::Closed) return;
    }
    s->enter(SessionState::ReadingRequest);
    s->client_.deliver_to(Endpoint::Consumer::Handshake);
    s->client_.resume();
}

void Session::take_connection_slots() {
    // Counted at accept, exactly, across workers; refused only once the request head
    // is read, so the client gets an HTTP answer (SPEC §3: 429 and 503).
    auto& server = generation_->server_connections();
    auto& counters = *listener_.counters;
    if (!server.try_acquire(generation_->config().server.max_connections)) {
        handshake_->over_limit = CloseReason::ServerLimit;
        return;
    }
    held_ |= kHeldServer;
    if (!counters.connections.try_acquire(listener_.config.max_connections)) {
        handshake_->over_limit = CloseReason::ListenerLimit;
        return;
    }
    held_ |= kHeldListener;
    // Behind a PROXY header, the client's address is the one the header carries.
    if (!listener_.config.proxy_protocol) take_ip_slot();
}

void Session::take_ip_slot() {
    // Every connection is counted per address, limit or not, so that a reload that
    // sets a limit finds the connections already open. client_address_ never changes
    // once this slot is held (release_connection_slots gives it back by that address).
    if (handshake_->over_limit) return;
    if (!listener_.counters->per_ip.try_acquire(client_address_.ip_string(),
                                                listener_.config.max_connections_per_ip)) {
        handshake_->over_limit = CloseReason::ClientLimit;
        return;
    }
    held_ |= kHeldIp;
    take_connect_token();
}

void Session::release_connection_slots() {
    if (held_ & kHeldServer) generation_->server_connections().release();
    if (held_ & kHeldListener) listener_.counters->connections.release();
    if (held_ & kHeldIp) listener_.counters->per_ip.release(client_address_.ip_string());
    held_ = 0;
}

void Session::enter(SessionState next) {
    // Closed is final: a callout that ended the session (a write that failed at once)
    // must not be followed by a step back to Closing.
    if (state_ == SessionState::Closed) return;
    state_ = next;
    if (in_handshake_ && next >= SessionState::Relaying) {
        in_handshake_ = false;
        ++ctx().handshakes_since_trim;
        if (--ctx().handshakes_in_flight == 0 &&
            ctx().handshakes_since_trim >= kTrimAfterHandshakes && ctx().on_handshake_burst_end) {
            ctx().on_handshake_burst_end();
        }
    }
    if (log::Logger::get().enabled(log::Level::Debug)) log_event("state");
    switch (next) {
        case SessionState::ReadingRequest:
            arm_deadline(static_cast<uint64_t>(listener_.config.handshake_timeout.count()));
            break;
        case SessionState::ConnectingBackend:
        case SessionState::AwaitingResponse:
            arm_deadline(static_cast<uint64_t>(pool_->config().connect_timeout.count()));
            break;
        case SessionState::Relaying:
            if (websocket_) {
                state_due_ = relay_due();
                rearm();
            } else {
                arm_deadline(raw_answer_timeout_ms());
            }
            break;
        case SessionState::Closing:
            arm_deadline(kLingerMs);
            break;
        case SessionState::Closed:
            state_due_ = 0;
            if (extras_) extras_->close_at = 0;
            ctx().timers.cancel(*this);
            break;
    }
}

void Session::arm_deadline(uint64_t delay_ms) {
    state_due_ = uv_now(ctx().loop) + delay_ms;
    rearm();
}

void Session::rearm() {
    // One Deadline serves the state's own timeout and a scheduled proxy close: it is
    // set to whichever comes first.
    uint64_t due = state_due_;
    uint64_t close_at = extras_ ? extras_->close_at : 0;
    if (close_at != 0 && (due == 0 || close_at < due)) due = close_at;
    if (due == 0) {
        ctx().timers.cancel(*this);
    } else {
        ctx().timers.arm_at(*this, due);
    }
}

void Session::schedule_close(CloseReason reason, uint16_t code, uint64_t at_ms,
                             uint64_t deadline_ms) {
    if (state_ == SessionState::Closing || state_ == SessionState::Closed) return;
    Extras& x = extras();
    x.pending_reason = reason;
    x.pending_code = code;
    x.close_at = std::max<uint64_t>(at_ms, 1);
    x.close_deadline = deadline_ms;
    rearm();
}

void Session::on_deadline(uv::Deadline& deadline) {
    static_cast<Session&>(deadline).on_timeout();
}

void fire_session_deadline(uv::Deadline& deadline) {
    Session::on_deadline(deadline);
}

void Session::on_timeout() {
    uint64_t now = uv_now(ctx().loop);
    if (extras_ && extras_->close_at != 0 && now >= extras_->close_at) {
        extras_->close_at = 0;
        close_gracefully(extras_->pending_reason, extras_->pending_code, extras_->close_deadline);
        if (state_ == SessionState::Closed) return;
    }
    if (state_due_ == 0 || now < state_due_) {
        rearm();
        return;
    }
    state_due_ = 0;
    switch (state_) {
        case SessionState::ReadingRequest:
            if (between_requests_) {
                auto& hs = *handshake_;
                if (hs.kept != nullptr && now >= hs.kept_until && now < hs.keepalive_until) {
                    // The backend connection kept for this client idled out first.
                    drop_kept_connection();
                    state_due_ = hs.keepalive_until;
                    break;
                }
                finish(CloseReason::KeepaliveTimeout);  // an idle kept-alive connection
                break;
            }
            // A slow client gets no answer: writing one would only cost more.
            if (handshake_ && handshake_->proxy_header) {
                log_event("no PROXY protocol header within handshake_timeout");
                finish(CloseReason::ProxyProtocol);
                break;
            }
            finish(CloseReason::HandshakeTimeout);
            break;
        case SessionState::ConnectingBackend:
            on_connect_failed("connect timeout");
            break;
        case SessionState::AwaitingResponse:
            refuse(CloseReason::BackendTimeout, handshake_ && handshake_->http
                                                    ? "backend did not answer in time"
                                                    : "backend did not answer the upgrade in time");
            break;
        case SessionState::Relaying:
            if (!websocket_) {
                log_event("backend answer stalled");
                finish(reason_);
                break;
            }
            on_relay_timeout(now);
            if (state_ == SessionState::Relaying) state_due_ = relay_due();
            break;
        case SessionState::Closing:
            finish(reason_decided_ ? reason_ : CloseReason::CloseTimeout);
            break;
        case SessionState::Closed:
            break;
    }
    if (state_ != SessionState::Closed) rearm();
}

void Session::decide(CloseReason reason) {
    if (reason_decided_) return;
    reason_ = reason;
    reason_decided_ = true;
}

void Session::close_gracefully(CloseReason reason, uint16_t code, uint64_t deadline_ms) {
    if (state_ == SessionState::Closed) return;
    if (state_ != SessionState::Relaying || !websocket_) {
        if (handshake_ && handshake_->http && !between_requests_ &&
            state_ != SessionState::Closing) {
            // An HTTP request under way is answered; its answer says "Connection: close"
            // if it has not gone yet, and the connection ends with it.
            close_after_exchange_ = true;
            return;
        }
        // Not a WebSocket yet (or an HTTP answer in flight): nothing to say goodbye to.
        if (state_ != SessionState::Closing) finish(reason);
        return;
    }
    decide(reason);
    if (close_code_ == 0) close_code_ = code;
    std::string_view why = metrics::info(reason).log_reason;
    to_client_.send_close(code, why);
    // The backend loses a client that is going away, whatever the client is told.
    to_backend_.send_close(ws::kGoingAway, why);
    enter(SessionState::Closing);
    state_due_ = std::max<uint64_t>(deadline_ms, 1);  // the caller's deadline, not the linger
    rearm();
}

void Session::abort(CloseReason reason) {
    finish(reason);
}

// ---- errors and ends of either side ----

void Session::on_side_error(bool client_side, int status) {
    if (state_ == SessionState::Closed) return;
    if (state_ == SessionState::Closing) {
        // A peer that errs while we close is as finished as one that answered.
        finish(reason_decided_ ? reason_ : CloseReason::CloseTimeout);
        return;
    }
    if (client_side) {
        log_event("client connection error", client_.end_detail(status));
        decide(state_ == SessionState::Relaying ? CloseReason::ClientReset
                                                : CloseReason::ClientAborted);
        finish(reason_);
        return;
    }
    if (state_ != SessionState::Relaying) {
        if (retry_on_new_connection(uv_strerror(status))) return;
        // During the handshake: the client still gets an answer.
        refuse(CloseReason::BackendBadAnswer,
               std::string("backend connection failed: ") + uv_strerror(status));
        return;
    }
    if (!websocket_ || to_client_.close_received() || to_backend_.source_ended()) {
        // An HTTP answer cut short, a backend that already said goodbye, or a client
        // that already hung up.
        finish(reason_decided_ ? reason_ : CloseReason::BackendClosed);
        return;
    }
    log_event("backend connection lost", uv_strerror(status));
    backend_lost();
}

void Session::backend_lost() {
    // Tell the client to reconnect (1012): it will be routed again, to a backend that
    // is up. The backend connection is of no further use. The access log keeps
    // close_code null: no Close frame passed, the connection ended with a TCP close
    // (SPEC §5), whatever the proxy then tells the client.
    decide(CloseReason::BackendLost);
    backend_gone_ = true;
    to_backend_.discard();
    to_client_.send_close(ws::kServiceRestart, "backend connection lost");
    to_client_.shutdown_destination();
    enter(SessionState::Closing);
}

void Session::fail_client(CloseReason reason, uint16_t code, std::string_view why) {
    // RFC 6455 §7.1.7: after a protocol error the endpoint Fails the WebSocket
    // Connection: the Close goes out and the TCP connection closes at once, with no
    // wait for the client's answer. The backend is told its client is going away.
    decide(reason);
    if (close_code_ == 0) {
        close_code_ = code;
        close_sender_ = metrics::Side::Proxy;
    }
    client_failed_ = true;
    to_client_.send_close(code, why);
    to_client_.shutdown_destination();
    // The client is not read any more; the backend still is, up to the end of the
    // frame it may be in the middle of, where the Close goes in (after it the Pipe
    // forwards nothing more).
    to_backend_.discard();
    to_backend_.stop();
    to_backend_.send_close(ws::kGoingAway, why);
    to_backend_.shutdown_destination();
    enter(SessionState::Closing);
    maybe_finish();
}

void Session::on_source_ended(Pipe& pipe) {
    if (state_ == SessionState::Closing) {
        maybe_finish();
        return;
    }
    if (!websocket_) {
        if (pipe.from_client()) {
            // A client that hung up inside its request's body.
            finish(CloseReason::ClientAborted);
            return;
        }
        // The backend ended an answer (one that runs to the close, or one cut short).
        if (handshake_ && handshake_->http) {
            auto& h = *handshake_->http;
            bool ended = false;
            if (handshake_->response_parser.consume_body({}, ended) && ended) {
                h.response_done = true;
            }
            h.keep_client = false;
            h.backend_reusable = false;
            if (!h.response_done) log_event("backend closed inside its answer");
        }
        to_client_.shutdown_destination();
        return;
    }
    if (pipe.from_client()) {
        decide(CloseReason::ClientClosed);
        to_backend_.shutdown_destination();
        return;
    }
    if (!to_client_.close_received() && !to_backend_.source_ended()) {
        log_event("backend closed without a Close frame");
        backend_lost();
        return;
    }
    decide(CloseReason::BackendClosed);
    to_client_.shutdown_destination();
}

void Session::on_close_frame(Pipe& pipe, uint16_t code) {
    if (state_ == SessionState::Closed) return;
    if (close_code_ == 0) {
        close_code_ = code;
        close_sender_ = pipe.from_client() ? metrics::Side::Client : metrics::Side::Backend;
    }
    decide(pipe.from_client() ? CloseReason::ClientClosed : CloseReason::BackendClosed);
    if (state_ == SessionState::Closing) {
        maybe_finish();  // a peer answered our Close
        return;
    }
    // Both Close frames have passed: the close handshake is complete and the backend
    // should now close TCP. Give the peers a bounded time to do so.
    if (to_backend_.close_received() && to_client_.close_received() && extras().linger_at == 0) {
        extras().linger_at = uv_now(ctx().loop) + kLingerMs;
        state_due_ = relay_due();
        rearm();
    }
}

void Session::on_stop(Pipe& pipe, Pipe::Stop stop) {
    if (state_ == SessionState::Closed) return;
    uint64_t deadline = uv_now(ctx().loop) + kLingerMs;
    switch (stop) {
        case Pipe::Stop::Violation:
            log_event("client protocol violation", ws::violation_text(pipe.violation()));
            fail_client(CloseReason::ProtocolError, ws::kProtocolError,
                        ws::violation_text(pipe.violation()));
            break;
        case Pipe::Stop::TooBig:
            log_event("client message over max_message_bytes");
            close_gracefully(CloseReason::MessageTooBig, ws::kMessageTooBig, deadline);
            break;
        case Pipe::Stop::RateLimited:
            log_event("client over max_messages_per_second");
            close_gracefully(CloseReason::RateLimited, ws::kPolicyViolation, deadline);
            break;
        case Pipe::Stop::None:
            break;
    }
}

void Session::on_activity(Pipe& pipe) {
    // Only relay timers read these; without any, reads store nothing.
    if (extras_)
        (pipe.from_client() ? extras_->last_client_ms : extras_->last_backend_ms) =
            uv_now(ctx().loop);
}

void Session::on_pong(Pipe&) {
    extras().ping_sent_ms = 0;  // the client is alive; the next ping waits for the next silence
    extras().ping_queued = false;
    if (state_ == SessionState::Relaying) {
        state_due_ = relay_due();
        rearm();
    }
}

uint64_t Session::relay_due() const {
    // The earliest of the relay's timers; each is computed from timestamps the Pipes
    // keep current, so traffic never has to touch the deadline heap.
    if (!extras_) return 0;  // no relay timer was ever needed
    const Extras& x = *extras_;
    const auto& ws = pool_->config().websocket;
    uint64_t due = 0;
    auto consider = [&](uint64_t t) {
        if (t != 0 && (due == 0 || t < due)) due = t;
    };
    consider(x.linger_at);
    consider(x.expire_at);
    if (ws.idle_timeout.count() > 0) {
        consider(std::max(x.last_client_ms, x.last_backend_ms) +
                 static_cast<uint64_t>(ws.idle_timeout.count()));
    }
    // A Ping still waiting for a frame boundary has no deadline yet: the client cannot
    // answer what it was never sent (on_ping_written starts the clock).
    if (ws.ping_interval.count() > 0 && !(x.ping_queued && x.ping_sent_ms == 0)) {
        consider(x.ping_sent_ms != 0
                     ? x.ping_sent_ms + static_cast<uint64_t>(ws.ping_timeout.count())
                     : x.last_client_ms + static_cast<uint64_t>(ws.ping_interval.count()));
    }
    return due;
}

void Session::on_relay_timeout(uint64_t now) {
    const auto& ws = pool_->config().websocket;
    uint64_t deadline = now + kLingerMs;
    Extras& x = extras();
    if (x.linger_at != 0 && now >= x.linger_at) {
        // Both Close frames went through and a peer kept its socket open.
        finish(reason_);
    } else if (x.expire_at != 0 && now >= x.expire_at) {
        close_gracefully(CloseReason::MaxLifetime, ws::kGoingAway, deadline);
    } else if (ws.idle_timeout.count() > 0 &&
               now >= std::max(x.last_client_ms, x.last_backend_ms) +
                          static_cast<uint64_t>(ws.idle_timeout.count())) {
        close_gracefully(CloseReason::IdleTimeout, ws::kGoingAway, deadline);
    } else if (ws.ping_interval.count() > 0 && x.ping_sent_ms != 0 &&
               now >= x.ping_sent_ms + static_cast<uint64_t>(ws.ping_timeout.count())) {
        // No Pong: the client is gone (a phone that lost its network). Nothing can be
        // said to it; the backend hears 1001.
        log_event("client did not answer a ping");
        decide(CloseReason::PingTimeout);
        if (close_code_ == 0) close_code_ = ws::kGoingAway;
        client_gone_ = true;
        to_client_.discard();
        to_backend_.send_close(ws::kGoingAway, "ping timeout");
        enter(SessionState::Closing);
        maybe_finish();
    } else if (ws.ping_interval.count() > 0 && x.ping_sent_ms == 0 && !x.ping_queued &&
               now >= x.last_client_ms + static_cast<uint64_t>(ws.ping_interval.count())) {
        // Each Ping carries a fresh token (not a secret: it only tells our Pongs apart).
        x.ping_token = x.ping_token * 6364136223846793005ull + id_ + 1;
        x.ping_queued = true;
        if (to_client_.send_ping(x.ping_token)) {
            to_backend_.expect_pong();
        } else {
            x.ping_queued = false;
            x.last_client_ms = now;  // a proxy frame is still waiting; try again later
        }
    }
}

void Session::on_pipe_done(Pipe&) {
    maybe_finish();
}

void Session::on_ping_written(Pipe&) {
    if (!extras_ || state_ != SessionState::Relaying) return;
    extras_->ping_sent_ms = uv_now(ctx().loop);
    state_due_ = relay_due();
    rearm();
}

void Session::on_drained(Endpoint& side) {
    Pipe& pipe = pipe_to(side);
    if (pipe.attached()) pipe.on_drained();
}

void Session::on_shutdown(Endpoint& side) {
    Pipe& pipe = pipe_to(side);
    if (pipe.attached()) {
        pipe.on_shutdown();
    } else if (state_ == SessionState::Closing && side.client_side()) {
        // A refusal is out and the FIN with it; the client's own FIN (or the linger
        // deadline) ends the session.
    }
}

void Session::maybe_finish() {
    if (state_ == SessionState::Closed) return;
    bool done = false;
    if (client_failed_) {
        // Failing the client: done once its Close and FIN are out (RFC 6455 §7.1.7).
        done = to_client_.done() || client_.ended();
    } else if (!websocket_) {
        // An answer passed through: once it is out (FIN sent), the client's own FIN or
        // the linger ends the session, so the close never turns into a reset that
        // could destroy the answer still in flight.
        if (to_client_.done()) {
            done = client_.ended();
            if (!done) enter(SessionState::Closing);
        }
    } else if (state_ == SessionState::Closing) {
        // Closing: each peer is finished once it answered with a Close or hung up.
        bool client_finished =
            client_gone_ || to_backend_.close_received() || to_backend_.source_ended();
        bool backend_finished =
            backend_gone_ || to_client_.close_received() || to_client_.source_ended();
        done = client_finished && backend_finished;
    } else {
        done = to_client_.done() && (to_backend_.done() || !websocket_);
    }
    if (done) finish(reason_);
}

// ---- the end ----

void Session::finish(CloseReason reason) {
    if (state_ == SessionState::Closed) return;
    decide(reason);
    enter(SessionState::Closed);
    const auto& info = metrics::info(reason_);
    if (status_ == 0) status_ = static_cast<uint16_t>(info.status);
    if (info.refusal) listener_stats_.rejections[static_cast<size_t>(reason_)].add();
    ctx().stats.count_end(reason_);
    if (websocket_) {
        ctx().stats.count_close(close_code_,
                                close_code_ == 0 || info.closed_by == metrics::Side::Proxy
                                    ? info.closed_by
                                    : close_sender_);
    }
    listener_stats_.active.add(-1);
    release_connection_slots();
    if (pool_ != nullptr) pool_->release(placement_);
    // A session accepted while the access log was off has nothing to write; nor has a
    // kept-alive HTTP connection between requests (each request wrote its own line).
    if (!between_requests_) {
        count_http_request();
        if (log_ && log::Logger::get().access_log_enabled()) write_access_log();
    }
    // A backend connection kept for this client's next request serves other clients.
    if (handshake_ && handshake_->kept != nullptr) park_kept_connection();
    // The handshake state (with the connect request libuv may still cancel) goes with
    // the Session, after the close callbacks.
    client_.close();
    backend_side_.close();
}

void Session::on_closed(Endpoint& side) {
    // A failed attempt's socket is closed: the next attempt may reuse the Endpoint.
    if (&side == &backend_side_ && state_ == SessionState::ConnectingBackend) {
        connect_next();
        return;
    }
    if (client_.alive() || backend_side_.alive()) return;
    ctx().timers.cancel(*this);
    ctx().sessions.remove(this);
    this->~Session();
    session_slab().free(this);
}

void Session::write_access_log() {
    nlohmann::ordered_json j;
    j["ts"] = log::Logger::timestamp();
    j["listener"] = listener_.config.name;
    j["client"] = client_address_.to_string();
    j["method"] = handshake_ && !handshake_->method.empty() ? handshake_->method : "GET";
    j["host"] = log_->host;
    j["path"] = log_->target;
    j["status"] = status_;
    j["pool"] = pool_ ? nlohmann::ordered_json(pool_->name()) : nlohmann::ordered_json(nullptr);
    j["backend"] =
        backend_ ? nlohmann::ordered_json(backend_->address()) : nlohmann::ordered_json(nullptr);
    j["duration_ms"] = uv_now(ctx().loop) - log_->started_ms;
    j["bytes_in"] = log_->head_in + log_->bytes[metrics::kClientToBackend];
    j["bytes_out"] = log_->head_out + log_->bytes[metrics::kBackendToClient];
    j["messages_in"] = log_->messages[metrics::kClientToBackend];
    j["messages_out"] = log_->messages[metrics::kBackendToClient];
    j["close_code"] =
        close_code_ ? nlohmann::ordered_json(close_code_) : nlohmann::ordered_json(nullptr);
    const auto& info = metrics::info(reason_);
    j["closed_by"] = metrics::side_name(close_code_ != 0 && info.closed_by != metrics::Side::Proxy
                                            ? close_sender_
                                            : info.closed_by);
    j["reason"] = info.log_reason.empty() ? nlohmann::ordered_json(nullptr)
                                          : nlohmann::ordered_json(info.log_reason);
    log::Logger::get().access(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void Session::log_event(std::string_view message, std::string_view detail) const {
    log::Level level =
        state_ == SessionState::Closed || message == "state" ? log::Level::Debug : log::Level::Info;
    if (!log::Logger::get().enabled(level)) return;
    log::Logger::get().write(level, message,
                             {{"session", std::to_string(id_)},
                              {"listener", listener_.config.name},
                              {"client", client_address_.to_string()},
                              {"backend", backend_ ? backend_->address() : "-"},
                              {"action", std::string(state_name(state_))},
                              {"detail", std::string(detail)}});
}

}  // namespace sb::session
