// The plain HTTP half of a Session (SPEC §3 HTTP requests): a request that is not a
// WebSocket upgrade goes to its routed pool, placed as an upgrade would be but without
// making a room; its body and its answer's body stream through the Pipes in Raw mode,
// framed by the two MessageParsers; then the client connection waits for its next
// request (keep-alive), which may be an upgrade.
//
// One exchange at a time: the next request is not read before the answer to this one
// has ended (its bytes stay in the client's Endpoint, delivered when reading resumes),
// so pipelined requests are answered in order and a client that pipelines without
// reading holds at most one answer's worth of buffers.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "http/forward.h"
#include "http/handshake.h"
#include "log/logger.h"
#include "session/handshake_state.h"
#include "session/session.h"

namespace sb::session {

void Session::close_after_request() {
    close_after_exchange_ = true;
}

bool Session::serves_http() const {
    return !websocket_ && state_ != SessionState::Closing && state_ != SessionState::Closed &&
           (between_requests_ || (handshake_ && handshake_->http));
}

void Session::start_http_request() {
    auto& hs = *handshake_;
    const auto& parser = hs.request_parser;
    auto& h = hs.http.emplace();
    h.started_ms = uv_now(ctx().loop);
    h.http10 = parser.http_minor() == 0;
    auto check = http::check_http_request(hs.request, parser, hs.upgrade);
    if (check.status != http::Status::Ok) {
        refuse(CloseReason::BadRequest, check.reason);
        return;
    }
    if (!route_request()) return;
    // A declared length over the limit is refused before any backend is contacted (a
    // client that sent "Expect: 100-continue" has sent no body yet). A chunked body is
    // counted as it streams (on_http_body_bytes).
    uint64_t max_body = pool_->config().http.max_request_body;
    if (max_body > 0 && parser.content_length() > 0 &&
        static_cast<uint64_t>(parser.content_length()) > max_body) {
        refuse(CloseReason::BodyTooLarge, "request body over max_request_body");
        return;
    }
    h.keep_client = parser.keep_alive();
    http::ForwardInfo info;
    info.add_forwarded_headers = pool_->config().forwarded_headers;
    std::string client_ip = client_address_.ip_string();
    info.client_ip = client_ip;
    info.proto = listener_.tls ? "https" : "http";
    hs.backend_request = http::backend_http_request(hs.request, parser, info);
    if (hs.method == "HEAD") hs.response_parser.expect_no_body();
    hs.connect_started_ms = h.started_ms;
    connect_next();
}

bool Session::shares_connections(const pool::Pool& pool) {
    // Kept connections go from one client to another only when nothing in them belongs
    // to one client: a PROXY header speaks for the client it was sent for, and a TLS
    // connection's state lives in its OpenSSL object, which cannot move between
    // sessions. Such connections are still kept with their own client.
    const auto& c = pool.config();
    return c.http.max_idle_connections > 0 && c.proxy_protocol == config::ProxyProtocol::Off &&
           pool.tls() == nullptr;
}

bool Session::take_idle_connection() {
    if (!shares_connections(*pool_) || handshake_->http->retried) return false;
    int fd = ctx().idle.take(backend_->address());
    if (fd < 0) return false;
    if (!backend_side_.adopt_connected(ctx().loop, fd)) {
        refuse(CloseReason::InternalError, "cannot adopt a kept backend connection");
        return true;
    }
    send_on_reused_connection();
    return true;
}

void Session::send_on_reused_connection() {
    handshake_->http->reused = true;
    enter(SessionState::ConnectingBackend);
    backend_side_.deliver_to(Endpoint::Consumer::Handshake);
    backend_side_.resume();
    on_http_backend_ready();
}

void Session::hand_to_idle_set(const pool::Backend& backend, const pool::Pool& pool,
                               uint64_t idle_ms) {
    int fd = ::dup(backend_side_.fd());
    if (fd < 0) return;
    ctx().idle.put(backend.address(), fd, pool.config().http.max_idle_connections, idle_ms);
}

bool Session::backend_connection_clean() const {
    // Only a connection whose last answer ended exactly where its framing said, with
    // nothing unsent, unread or half-closed, may carry another request.
    return backend_side_.is_open() && backend_side_.connected() && !backend_side_.ended() &&
           !backend_side_.write_pending() && !backend_side_.holds_bytes() &&
           !backend_side_.shutdown_requested() &&
           (backend_side_.tls() == nullptr || !backend_side_.tls()->has_pending());
}

void Session::keep_backend_connection() {
    const auto& h = *handshake_->http;
    if (!h.backend_reusable || !h.request_done || !shares_connections(*pool_) ||
        !backend_connection_clean() || !backend_->is_up()) {
        return;
    }
    hand_to_idle_set(*backend_, *pool_,
                     static_cast<uint64_t>(pool_->config().http.idle_timeout.count()));
}

void Session::drop_kept_connection() {
    auto& hs = *handshake_;
    if (hs.kept == nullptr) return;
    ctx().idle.give_back(hs.kept->address());
    hs.kept = nullptr;
    hs.kept_pool = nullptr;
    backend_side_.close();
}

bool Session::reuse_kept_connection() {
    // The same client's next request to the same backend: its connection is still in
    // the backend Endpoint, and carries the request with no handle or descriptor work.
    auto& hs = *handshake_;
    ctx().idle.give_back(hs.kept->address());
    hs.kept = nullptr;
    if (!backend_connection_clean() || !IdleConnections::silent(backend_side_.fd())) return false;
    send_on_reused_connection();
    return true;
}

void Session::park_kept_connection() {
    auto& hs = *handshake_;
    const pool::Backend* kept = hs.kept;
    const pool::Pool* pool = hs.kept_pool;
    hs.kept = nullptr;
    hs.kept_pool = nullptr;
    if (kept != nullptr) ctx().idle.give_back(kept->address());
    // It has been idle since the exchange: only the rest of its idle_timeout is left.
    uint64_t now = uv_now(ctx().loop);
    if (kept == nullptr || pool == nullptr || !shares_connections(*pool) || hs.kept_until <= now ||
        !backend_connection_clean() || !IdleConnections::silent(backend_side_.fd())) {
        return;
    }
    hand_to_idle_set(*kept, *pool, hs.kept_until - now);
}

bool Session::retry_on_new_connection(std::string_view why) {
    // SPEC §3: a request that fails on a reused connection before any answer byte goes
    // out once more on a new one, when its method is idempotent (RFC 9110 §9.2.2) and
    // nothing of it is lost (no body was streamed from the client).
    if (!handshake_ || !handshake_->http) return false;
    auto& hs = *handshake_;
    auto& h = *hs.http;
    static constexpr std::string_view kIdempotent[] = {"GET",   "HEAD", "OPTIONS",
                                                       "TRACE", "PUT",  "DELETE"};
    bool idempotent = false;
    for (auto m : kIdempotent)
        idempotent = idempotent || hs.method == m;
    if (!h.reused || h.retried || !hs.response.empty() || hs.request_parser.has_body() ||
        !idempotent) {
        return false;
    }
    log_event("kept-alive backend connection failed; sending the request on a new one", why);
    h.retried = true;
    h.reused = false;
    h.fresh_retry = true;
    enter(SessionState::ConnectingBackend);
    backend_side_.close();  // on_closed goes on with connect_next()
    return true;
}

void Session::on_http_backend_ready() {
    auto& hs = *handshake_;
    auto& h = *hs.http;
    pool_stats_->http_backend[h.reused ? 1 : 0].add();
    enter(SessionState::AwaitingResponse);
    // response_timeout counts from the request's last byte: re-armed while the body
    // streams, so a slow upload is not cut by it (SPEC §2).
    arm_deadline(static_cast<uint64_t>(pool_->config().http.response_timeout.count()));
    if (!backend_side_.write_copy(hs.backend_request)) return;
    if (hs.request_parser.has_body()) {
        // The body streams with the relay's backpressure: what followed the head is
        // held by the client's Endpoint and reaches the Pipe first.
        to_backend_.attach(Pipe::Mode::Raw);
        to_backend_.start();
    } else {
        h.request_done = true;
    }
}

void Session::start_http_response() {
    auto& hs = *handshake_;
    auto& h = *hs.http;
    const auto& p = hs.response_parser;
    status_ = static_cast<uint16_t>(p.status_code());
    if (status_ == 101) {
        refuse(CloseReason::BackendBadAnswer, "101 to a request that asked for no upgrade");
        return;
    }
    if (auto framing = http::connection_names_framing(hs.response, p); !framing.empty()) {
        refuse(CloseReason::BackendBadAnswer,
               "answer's Connection names " + std::string(framing) + " (its own framing)");
        return;
    }
    if (h.http10 && p.chunked() && p.has_body()) {
        // RFC 9112 §7.1: an HTTP/1.0 client cannot read chunks, and the proxy does not
        // re-frame bodies. (The request went out as HTTP/1.0: the backend broke it.)
        refuse(CloseReason::BackendBadAnswer, "chunked answer to an HTTP/1.0 request");
        return;
    }
    // A body that ends when the backend closes ends the client's connection too: the
    // client could not tell where it ended otherwise.
    bool until_close = p.body_ends_at_eof();
    // An answer before the request's end: the rest of the body will not be read, so
    // the connection cannot carry another request, and the answer says so.
    if (until_close || close_after_exchange_ || !h.request_done) h.keep_client = false;
    h.backend_reusable = p.keep_alive() && !until_close;
    std::string head = http::client_response(hs.response, p, h.keep_client, h.http10);
    if (log_) log_->head_out += static_cast<uint32_t>(head.size());
    to_client_.attach(Pipe::Mode::Raw);
    enter(SessionState::Relaying);
    arm_deadline(static_cast<uint64_t>(pool_->config().http.response_timeout.count()));
    if (!client_.write_copy(head)) return;
    if (!p.has_body() && !until_close) {
        h.response_done = true;
        end_http_exchange();
        return;
    }
    to_client_.start();
}

size_t Session::on_http_body_bytes(Pipe& pipe, std::string_view bytes) {
    auto& hs = *handshake_;
    auto& h = *hs.http;
    uint64_t timeout = static_cast<uint64_t>(pool_->config().http.response_timeout.count());
    bool ended = false;
    size_t used = 0;
    if (pipe.from_client()) {
        if (h.request_done) return 0;
        if (!hs.request_parser.consume_body(bytes, ended, &used)) {
            h.bad_body = true;
            pipe.stop();
            return 0;
        }
        uint64_t max_body = pool_->config().http.max_request_body;
        if (max_body > 0 && hs.request_parser.body_bytes() > max_body) {
            h.body_too_large = true;
            pipe.stop();
            return 0;
        }
        if (state_ == SessionState::AwaitingResponse) arm_deadline(timeout);
        if (!ended) return used;
        h.request_done = true;
        pipe.stop();
        size_t rest = bytes.size() - used;
        if (rest > 0) {
            // The next request, pipelined: back to the client's Endpoint, which delivers
            // it to the request reader once this exchange is over. A copy, since the
            // delivered block goes to the backend with this request's last bytes.
            if (log_) log_->bytes[metrics::kClientToBackend] -= rest;
            uv::Block* block = ctx().blocks.take();
            if (block == nullptr || rest > block->capacity - Endpoint::kHeadroom) {
                if (block != nullptr) ctx().blocks.give(block);
                h.keep_client = false;  // it will not be read: the connection ends after this
            } else {
                char* at = block->data() + Endpoint::kHeadroom;
                std::memcpy(at, bytes.data() + used, rest);
                client_.unread(block, at, rest);
            }
        }
        return used;
    }
    if (h.response_done) return 0;
    if (!hs.response_parser.consume_body(bytes, ended, &used)) {
        log_event("malformed answer body from backend", hs.response_parser.error());
        h.keep_client = false;
        h.backend_reusable = false;
        h.response_done = true;
        h.bad_body = true;
        pipe.stop();
        return 0;
    }
    arm_deadline(timeout);
    if (ended) {
        h.response_done = true;
        pipe.stop();
        // Bytes past the answer's end are not the client's (a second answer smuggled
        // behind the first): dropped, and the connection is not used again.
        if (used < bytes.size()) h.backend_reusable = false;
    }
    return used;
}

void Session::after_raw_bytes(Pipe& pipe) {
    if (state_ == SessionState::Closed || !handshake_ || !handshake_->http) return;
    auto& h = *handshake_->http;
    if (pipe.from_client()) {
        if (h.body_too_large || h.bad_body) {
            CloseReason reason =
                h.body_too_large ? CloseReason::BodyTooLarge : CloseReason::BadRequest;
            std::string why = h.body_too_large
                                  ? std::string("request body over max_request_body")
                                  : "malformed request body: " + handshake_->request_parser.error();
            if (state_ == SessionState::Relaying) {
                // The answer has begun: nothing more can be said to the client.
                log_event("request body refused", why);
                finish(reason);
            } else {
                refuse(reason, why);
            }
            return;
        }
        if (h.request_done && h.response_done) end_http_exchange();
        return;
    }
    if (h.bad_body) {
        finish(CloseReason::BackendBadAnswer);
        return;
    }
    if (h.response_done) end_http_exchange();
}

void Session::count_http_request() {
    if (pool_stats_ == nullptr || !handshake_ || !handshake_->http) return;
    unsigned cls = status_ / 100;
    if (cls >= 1 && cls <= 5) pool_stats_->http_requests[cls - 1].add();
    pool_stats_->http_duration.observe(
        static_cast<double>(uv_now(ctx().loop) - handshake_->http->started_ms) / 1000.0);
}

void Session::end_http_exchange() {
    auto& h = *handshake_->http;
    count_http_request();
    if (log_ && log::Logger::get().access_log_enabled()) write_access_log();
    pool_->release(placement_);
    // An answer that came before its request's end (an early 413 or 401 from the
    // application): the rest of the body is not read, so the connection cannot carry
    // another request.
    if (!h.request_done || close_after_exchange_) h.keep_client = false;
    between_requests_ = true;  // this request is logged; an end from now on is no request's
    // The backend connection stays with this client for its next request (the usual
    // case: the same page, the same room, the same backend); it goes to the idle set
    // when that request goes elsewhere or the client leaves.
    pool::Backend* keep = nullptr;
    if (h.keep_client && h.backend_reusable && pool_->config().http.max_idle_connections > 0 &&
        backend_connection_clean() && backend_->is_up() &&
        ctx().idle.lend(backend_->address(), pool_->config().http.max_idle_connections)) {
        keep = backend_;
        // Nothing is expected from it until the next request: what comes meanwhile (a
        // reset, a stray byte) is the handshake reader's, which leaves the connection
        // unfit for reuse rather than failing the idle client.
        backend_side_.deliver_to(Endpoint::Consumer::Handshake);
        backend_side_.pause();
    } else {
        keep_backend_connection();
        backend_side_.close();
    }
    if (!h.keep_client) {
        // The answer said "Connection: close": once it is out, FIN; the client's own
        // FIN (or the linger) ends the session, so no reset can destroy the answer.
        decide(CloseReason::ClientClosed);
        to_client_.shutdown_destination();
        if (state_ == SessionState::Closed) return;
        client_.deliver_to(Endpoint::Consumer::Discard);
        client_.resume();
        return;
    }
    next_http_request(keep, pool_);
}

void Session::next_http_request(pool::Backend* kept, const pool::Pool* kept_pool) {
    config::SocketAddress local = handshake_->local_address;
    handshake_ = std::make_unique<Handshake>();
    handshake_->local_address = local;
    handshake_->kept = kept;
    handshake_->kept_pool = kept != nullptr ? kept_pool : nullptr;
    to_backend_.reset();
    to_client_.reset();
    status_ = 0;
    backend_ = nullptr;
    pool_ = nullptr;
    pool_stats_ = nullptr;
    reason_decided_ = false;
    reason_ = CloseReason::ClientClosed;
    if (log_) *log_ = LogInfo{};
    enter(SessionState::ReadingRequest);
    uint64_t now = uv_now(ctx().loop);
    auto& hs = *handshake_;
    hs.keepalive_until = now + static_cast<uint64_t>(listener_.config.keepalive_timeout.count());
    state_due_ = hs.keepalive_until;
    if (kept != nullptr) {
        // The kept backend connection is idle too: idle_timeout closes it even while
        // the client stays.
        hs.kept_until = now + static_cast<uint64_t>(kept_pool->config().http.idle_timeout.count());
        state_due_ = std::min(state_due_, hs.kept_until);
    }
    rearm();
    client_.deliver_to(Endpoint::Consumer::Handshake);
    client_.resume();
}

}  // namespace sb::session
