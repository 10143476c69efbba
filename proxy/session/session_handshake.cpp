// The handshake half of a Session: read and check the client's upgrade request, route
// it, connect to a backend (walking the preference order on failure), forward the
// request, read the backend's answer, and start the relay.
#include <algorithm>
#include <cstring>
#include <random>

#include "balance/hash.h"
#include "config/validate.h"
#include "http/forward.h"
#include "http/replies.h"
#include "http/request_key.h"
#include "http/upgrade_response.h"
#include "log/logger.h"
#include "session/handshake_state.h"
#include "session/session.h"

namespace sb::session {

using http::MessageParser;

namespace {

metrics::CloseReason reason_for(http::Status status) {
    switch (status) {
        case http::Status::UpgradeRequired:
            return metrics::CloseReason::BadVersion;
        case http::Status::HeadersTooLarge:
            return metrics::CloseReason::HeadersTooLarge;
        case http::Status::Forbidden:
            return metrics::CloseReason::OriginNotAllowed;
        case http::Status::NotFound:
            return metrics::CloseReason::NoRoute;
        default:
            return metrics::CloseReason::BadRequest;
    }
}

}  // namespace

// ---- client request ----

void Session::on_handshake_bytes(Endpoint& side, uv::Block* block, char* data, size_t n) {
    if (state_ == SessionState::ReadingRequest && side.client_side()) {
        if (handshake_->proxy_header) {
            on_proxy_header_bytes(block, data, n);
        } else {
            on_request_bytes(block, data, n);
        }
    } else if (state_ == SessionState::AwaitingResponse && !side.client_side()) {
        on_response_bytes(block, data, n);
    } else if (side.client_side() && handshake_ && handshake_->shedding) {
        on_shed_bytes(block, data, n);
    } else {
        // A refused client still talking, or a backend talking before it was asked.
        ctx().blocks.give(block);
    }
}

void Session::on_handshake_end(Endpoint& side, int status) {
    if (!side.client_side() && state_ == SessionState::ReadingRequest && handshake_ &&
        handshake_->kept != nullptr) {
        // The backend connection kept for this client's next request closed or failed
        // meanwhile: dropped; that request will go on another.
        drop_kept_connection();
        return;
    }
    if (side.client_side()) {
        if (state_ == SessionState::Relaying && !websocket_) {
            finish(reason_);  // the client left while an answer was passed through
        } else if (state_ == SessionState::ReadingRequest) {
            if (between_requests_) {
                // A kept-alive client hung up between requests: an ordinary end.
                finish(status == UV_EOF ? CloseReason::ClientClosed : CloseReason::ClientReset);
                return;
            }
            if (status != UV_EOF) log_event("client connection error", client_.end_detail(status));
            if (handshake_->proxy_header && handshake_->proxy_header->started()) {
                // A connection that ends with no byte at all is a balancer's TCP check.
                log_event("connection ended inside the PROXY protocol header");
                finish(CloseReason::ProxyProtocol);
                return;
            }
            finish(CloseReason::ClientAborted);
        } else if (state_ == SessionState::Closing) {
            finish(reason_);  // a refused client hung up after our answer
        }
        return;
    }
    if (state_ == SessionState::ConnectingBackend) {
        // Only a TLS backend is read before the request goes out.
        on_backend_tls_failed(status == UV_EOF ? "backend closed the connection"
                                               : uv_strerror(status));
    } else if (state_ == SessionState::AwaitingResponse) {
        const char* why =
            status == UV_EOF ? "backend closed without answering" : uv_strerror(status);
        if (retry_on_new_connection(why)) return;
        refuse(CloseReason::BackendBadAnswer, why);
    }
}

void Session::on_proxy_header_bytes(uv::Block* block, char* data, size_t n) {
    auto& hs = *handshake_;
    using Status = net::proxy_header::Parser::Status;
    auto outcome = hs.proxy_header->feed(data, n);
    if (outcome.status == Status::NeedMore) {
        ctx().blocks.give(block);
        return;
    }
    if (outcome.status == Status::Error) {
        ctx().blocks.give(block);
        // No answer: whoever sent this is not the balancer the listener expects, and
        // an HTTP reply would only tell it what we are.
        log_event("bad PROXY protocol header", outcome.error);
        finish(CloseReason::ProxyProtocol);
        return;
    }
    const auto& header = hs.proxy_header->header();
    if (!header.local) {
        client_address_ = header.source;
        hs.local_address = header.destination;
    }
    if (log::Logger::get().enabled(log::Level::Debug)) {
        log_event("PROXY protocol header", header.local ? "local" : client_address_.to_string());
    }
    hs.proxy_header.reset();
    take_ip_slot();
    // What followed the header is the client's first bytes (a ClientHello, a request):
    // they go back to the Endpoint, and through TLS when the listener has it.
    client_.pause();
    size_t rest = n - outcome.consumed;
    if (rest > 0) {
        client_.unread(block, data + outcome.consumed, rest);
    } else {
        ctx().blocks.give(block);
    }
    start_client_tls();
    if (state_ == SessionState::Closed) return;
    client_.resume();
}

void Session::start_client_tls() {
    if (listener_.tls &&
        !client_.start_tls_server(listener_.tls->default_context(), ctx().blocks)) {
        finish(CloseReason::InternalError);
    }
}

void Session::on_request_bytes(uv::Block* block, char* data, size_t n) {
    auto& hs = *handshake_;
    if (between_requests_) {
        // A kept-alive connection's next request has begun: from here on it has the
        // listener's handshake_timeout to arrive whole, and its own access-log line.
        between_requests_ = false;
        arm_deadline(static_cast<uint64_t>(listener_.config.handshake_timeout.count()));
        if (log_) log_->started_ms = uv_now(ctx().loop);
    }
    uint64_t limit = listener_.config.max_header_bytes;
    size_t before = hs.request.size();
    hs.request.append(data, n);
    auto status = hs.request_parser.parse(hs.request);
    if (status == MessageParser::Status::Error) {
        ctx().blocks.give(block);
        refuse(CloseReason::BadRequest, hs.request_parser.error());
    } else if (status == MessageParser::Status::Complete) {
        // Nothing more is read from the client until a backend has answered (STYLE
        // §3). The bytes behind the head (frames sent early) go back to the client's
        // Endpoint: the Pipe takes them first, through the same checks as any frame.
        client_.pause();
        size_t head_end = hs.request_parser.head_end();
        if (head_end < hs.request.size()) {
            size_t extra = hs.request.size() - head_end;
            // The head ended inside this delivery (it was incomplete before it).
            client_.unread(block, data + (n - extra), extra);
        } else {
            ctx().blocks.give(block);
        }
        hs.request.resize(std::max(head_end, before));
        if (hs.request_parser.head_length() > limit) {
            refuse(CloseReason::HeadersTooLarge, "request head over max_header_bytes");
        } else {
            on_request_head();
        }
    } else {
        ctx().blocks.give(block);
        if (hs.request.size() > limit) {
            refuse(CloseReason::HeadersTooLarge, "request head over max_header_bytes");
        }
    }
}

void Session::on_request_head() {
    auto& hs = *handshake_;
    const auto& parser = hs.request_parser;
    hs.method = std::string(parser.method().in(hs.request));
    if (log_) {
        log_->head_in = static_cast<uint32_t>(parser.head_length());
        log_->target = std::string(parser.target().in(hs.request));
        std::string_view host;
        if (http::find_header(hs.request, parser.headers(), "host", host))
            log_->host = std::string(host);
    }

    std::string_view key;
    if (http::find_header(hs.request, parser.headers(), "sec-websocket-key", key))
        hs.client_key = std::string(key);

    if (hs.over_limit) {
        switch (*hs.over_limit) {
            case CloseReason::ClientLimit:
                refuse(CloseReason::ClientLimit, "too many connections from this address");
                break;
            case CloseReason::ConnectRateLimited:
                refuse(CloseReason::ConnectRateLimited,
                       "too many new connections from this address", hs.connect_retry_after);
                break;
            default:
                refuse(*hs.over_limit, "too many connections");
                break;
        }
        return;
    }
    if (!http::wants_websocket(hs.request, parser)) {
        start_http_request();
        return;
    }
    auto check = http::check_upgrade(hs.request, parser, hs.upgrade);
    if (check.status != http::Status::Ok) {
        refuse(reason_for(check.status), check.reason);
        return;
    }
    const auto& allowed = listener_.config.allowed_origins;
    if (!allowed.empty()) {
        // RFC 6454: origins compare as (scheme, host, port), default ports implied. A
        // request without an Origin is refused too: the list names who may connect.
        std::string origin = config::normalize_origin(hs.upgrade.origin);
        if (origin.empty() || std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
            refuse(CloseReason::OriginNotAllowed,
                   hs.upgrade.origin.empty() ? "no Origin header" : "origin not allowed");
            return;
        }
    }
    if (!route_request()) return;

    std::string client_ip = client_address_.ip_string();
    http::ForwardInfo info;
    info.add_forwarded_headers = pool_->config().forwarded_headers;
    info.client_ip = client_ip;
    info.proto = listener_.tls ? "https" : "http";
    hs.backend_request = http::backend_request(hs.request, parser, info);

    hs.connect_started_ms = uv_now(ctx().loop);
    connect_next();
}

bool Session::route_request() {
    auto& hs = *handshake_;
    const std::string* pool_name = listener_.router.route(hs.upgrade.host_name, hs.upgrade.path);
    if (pool_name == nullptr) {
        refuse(CloseReason::NoRoute, "no route for this host and path");
        return false;
    }
    pool_ = generation_->pool(*pool_name);
    pool_stats_ = &ctx().stats.pool(*pool_name);

    std::string client_ip = client_address_.ip_string();
    http::KeySource source{hs.request, &hs.request_parser.headers(), hs.upgrade.path,
                           hs.upgrade.query, client_ip};
    bool fell_back = false;
    hs.key = http::balancing_key(pool_->config().hash_key, source, fell_back);
    hs.key_hash = balance::hash_key(hs.key);
    return true;
}

// ---- connecting ----

void Session::connect_next() {
    auto& hs = *handshake_;
    using Outcome = pool::Pool::Outcome;
    if (backend_side_.alive() && hs.kept == nullptr) {
        // The connection of this client's previous request is still closing; its close
        // callback (on_closed) comes back here.
        enter(SessionState::ConnectingBackend);
        return;
    }
    if (hs.connect_after_close) {
        hs.connect_after_close = false;
        if (hs.http && take_idle_connection()) return;
        connect_backend();
        return;
    }
    if (hs.http && hs.http->fresh_retry) {
        // A kept-alive connection failed before any answer: the same backend again, on
        // a new connection.
        hs.http->fresh_retry = false;
        connect_backend();
        return;
    }
    Outcome outcome;
    const bool retrying = static_cast<bool>(placement_);
    if (!placement_) {
        // SPEC §3 Admission: a new client connection takes tokens, an upgrade always;
        // later plain requests on a kept-alive connection take none.
        hs.takes_tokens = !hs.http || !admitted_;
        outcome = hs.http
                      ? pool_->pick(hs.key, hs.key_hash, hs.tried, placement_, hs.takes_tokens)
                      : pool_->place(hs.key, hs.key_hash, hs.tried, placement_, hs.takes_tokens);
        if (outcome == Outcome::Placed || outcome == Outcome::Joined) admitted_ = true;
    } else if (hs.tried.size() > pool_->config().retries) {
        pool_->release(placement_);
        outcome = Outcome::NoBackend;
    } else {
        outcome = pool_->retry(hs.key_hash, hs.tried, placement_, hs.takes_tokens);
    }
    // Every connect failed: the connection never came into the pool, and its token
    // goes back (a dead backend not yet marked down must not use up the pool's rate).
    if (retrying && hs.takes_tokens && outcome != Outcome::Placed) pool_->give_back_pool_token();
    if (outcome == Outcome::ShedPool || outcome == Outcome::ShedBackend) {
        shed(outcome == Outcome::ShedPool ? CloseReason::ShedPoolRate
                                          : CloseReason::ShedBackendRate);
        return;
    }
    if (outcome == Outcome::Full) {
        refuse(CloseReason::NoBackend, "the room's backend is full");
        return;
    }
    if (outcome == Outcome::NoBackend) {
        if (hs.tried.empty()) {
            refuse(CloseReason::NoBackend, "no backend available");
        } else {
            refuse(CloseReason::BackendRefused, "could not connect to a backend");
        }
        return;
    }
    backend_ = placement_.backend;
    if (hs.kept != nullptr) {
        if (hs.http && hs.kept == backend_ && reuse_kept_connection()) return;
        // Another backend (or an upgrade): the kept connection goes to the idle set
        // for other clients, and this request connects once its Endpoint is closed.
        park_kept_connection();
        hs.connect_after_close = true;
        enter(SessionState::ConnectingBackend);
        backend_side_.close();
        return;
    }
    if (hs.http && take_idle_connection()) return;
    connect_backend();
}

void Session::connect_backend() {
    auto& hs = *handshake_;
    enter(SessionState::ConnectingBackend);
    int rc = backend_side_.connect(ctx().loop, backend_->resolved().sockaddr_ptr(), hs.connect);
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM) {
        // Our own shortage, not the backend's fault: no passive-health failure.
        log_event("cannot open a backend connection", uv_strerror(rc));
        refuse(CloseReason::Overloaded, "the proxy is out of resources");
    } else if (rc != 0) {
        on_connect_failed(uv_strerror(rc));
    }
}

void Session::on_connected(Endpoint&, int status) {
    if (state_ != SessionState::ConnectingBackend) return;
    if (status != 0) {
        on_connect_failed(uv_strerror(status));
    } else {
        on_backend_connected();
    }
}

void Session::on_connect_failed(std::string_view why) {
    log_event("backend connect failed", why);
    handshake_->tried.push_back(static_cast<uint32_t>(pool_->index_of(backend_)));
    // Passive health (SPEC §3): `fall` consecutive failures mark it down for `interval`.
    const auto& health = pool_->config().health_check;
    if (backend_->record_failure(health.fall, health.interval)) {
        log::warn("backend marked down", {{"backend", backend_->address()},
                                          {"pool", pool_->name()},
                                          {"cause", std::string(why)}});
    }
    // The socket must be closed before the Endpoint can connect again; on_closed()
    // continues with connect_next().
    state_due_ = 0;
    rearm();
    backend_side_.close();
}

void Session::on_backend_connected() {
    if (backend_->record_success()) {
        log::info("backend up again", {{"backend", backend_->address()}, {"pool", pool_->name()}});
        if (ctx().on_backend_up) ctx().on_backend_up(pool_->name());
    }
    backend_side_.deliver_to(Endpoint::Consumer::Handshake);
    if (auto version = pool_->config().proxy_protocol; version != config::ProxyProtocol::Off) {
        // The PROXY header goes first, in the clear, before TLS and the request.
        auto& hs = *handshake_;
        if (!hs.local_address.is_set()) {
            sockaddr_storage ss{};
            int len = sizeof ss;
            if (uv_tcp_getsockname(reinterpret_cast<const uv_tcp_t*>(client_.handle()),
                                   reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
                hs.local_address =
                    config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
            }
        }
        if (!backend_side_.write_copy(
                net::proxy_header::encode(version, client_address_, hs.local_address))) {
            return;  // on_side_error has refused the client
        }
    }
    if (const tls::ClientContext* tls = pool_->tls()) {
        // TLS first, within the same connect_timeout; the request follows the handshake
        // (on_tls_ready), which resume() starts by sending the ClientHello.
        const auto& c = tls->config();
        // "" = the backend's host name: the DNS name it was found under, else its IP.
        std::string name = !c.server_name.empty()     ? c.server_name
                           : backend_->host().empty() ? backend_->resolved().ip_string()
                                                      : backend_->host();
        if (!backend_side_.start_tls_client(tls->context(), name, c.verify, ctx().blocks)) {
            refuse(CloseReason::InternalError, "cannot start TLS");
            return;
        }
        backend_side_.resume();
        return;
    }
    backend_side_.resume();
    on_backend_ready();
}

void Session::on_tls_ready(Endpoint& side) {
    if (!side.client_side() && state_ == SessionState::ConnectingBackend) on_backend_ready();
}

void Session::on_tls_failed(Endpoint& side) {
    if (side.client_side()) {
        on_client_tls_failed();
    } else {
        on_backend_tls_failed(side.tls()->error());
    }
}

void Session::on_client_tls_failed() {
    tls::Connection& tls = *client_.tls();
    if (tls.saw_plain_http()) {
        // As nginx does: a plain HTTP request on a TLS port gets a plain answer.
        log_event("plain HTTP request on a TLS listener");
        client_.drop_tls();  // the answer goes out unencrypted
        refuse(CloseReason::BadRequest, "plain HTTP request sent to a TLS port");
        return;
    }
    log_event("client TLS handshake failed", tls.error());
    finish(CloseReason::TlsHandshakeFailed);
}

void Session::on_backend_tls_failed(std::string_view why) {
    log::warn("backend TLS handshake failed", {{"session", std::to_string(id_)},
                                               {"pool", pool_->name()},
                                               {"backend", backend_->address()},
                                               {"cause", std::string(why)}});
    refuse(CloseReason::BackendTlsFailed, "TLS to the backend failed");
}

void Session::on_backend_ready() {
    if (handshake_->http) {
        on_http_backend_ready();
        return;
    }
    enter(SessionState::AwaitingResponse);
    backend_side_.write_copy(handshake_->backend_request);
}

// ---- backend answer ----

void Session::on_response_bytes(uv::Block* block, char* data, size_t n) {
    auto& hs = *handshake_;
    hs.response.append(data, n);
    for (;;) {
        auto status = hs.response_parser.parse(hs.response);
        if (status == MessageParser::Status::Error) {
            ctx().blocks.give(block);
            refuse(CloseReason::BackendBadAnswer,
                   "malformed answer from backend: " + hs.response_parser.error());
            return;
        }
        if (status == MessageParser::Status::NeedMore) {
            ctx().blocks.give(block);
            if (hs.response.size() > Handshake::kMaxResponseHead) {
                refuse(CloseReason::BackendBadAnswer, "backend answer head too large");
            }
            return;
        }
        if (!hs.response_parser.is_interim()) break;
        // RFC 9110 §15.2: an interim answer (100, 103) goes to the client as it is,
        // and the final one is still to come, from the same bytes on.
        const auto& p = hs.response_parser;
        std::string_view head =
            std::string_view(hs.response).substr(p.head_begin(), p.head_length());
        if (log_) log_->head_out += static_cast<uint32_t>(head.size());
        if (!client_.write_copy(head)) {
            ctx().blocks.give(block);
            return;
        }
        hs.response_parser.start_next();
    }
    // The final head is complete. What follows it (frames, or the body of another
    // answer) goes back to the backend's Endpoint for the Pipe, as on the client side.
    backend_side_.pause();
    size_t head_end = hs.response_parser.head_end();
    size_t extra = hs.response.size() - head_end;
    if (extra > 0) {
        backend_side_.unread(block, data + (n - extra), extra);
    } else {
        ctx().blocks.give(block);
    }
    hs.response.resize(head_end);
    if (hs.http) {
        start_http_response();
        return;
    }
    if (on_response_head()) {
        status_ = static_cast<uint16_t>(hs.response_parser.status_code());
        start_relay(status_ == 101);
    }
}

bool Session::on_response_head() {
    auto& hs = *handshake_;
    pool_stats_->handshake.observe(static_cast<double>(uv_now(ctx().loop) - hs.connect_started_ms) /
                                   1000.0);
    if (hs.response_parser.status_code() != 101) return true;
    // A 101 must really be the backend's consent to this upgrade (RFC 6455 §4.1):
    // anything else relayed as WebSocket would be a stream of unchecked bytes.
    auto check = http::check_upgrade_response(hs.response, hs.response_parser, hs.client_key);
    if (check.status != http::Status::Ok) {
        refuse(CloseReason::BackendBadAnswer, check.reason);
        return false;
    }
    return true;
}

void Session::start_relay(bool websocket) {
    auto& hs = *handshake_;
    websocket_ = websocket;
    const auto& p = hs.response_parser;
    std::string_view head = std::string_view(hs.response).substr(p.head_begin(), p.head_length());
    if (log_) log_->head_out += static_cast<uint32_t>(head.size());
    if (!client_.write_copy(head)) return;

    if (websocket) {
        backend_->add_total();
        handshake_.reset();
        to_client_.attach(Pipe::Mode::Frames);
        to_backend_.attach(Pipe::Mode::Frames);
        // A wss client on the record layer, and its backend unless OpenSSL has it, read
        // and write through the worker's ring from here on. A plain ws session stays on
        // libuv: its large payloads are spliced, and a splice cannot go in while a ring
        // write is in flight on the same socket (docs/architecture.md).
        if (client_.on_records()) {
            client_.use_ring();
            backend_side_.use_ring();
        }
        uint64_t now = uv_now(ctx().loop);
        const auto& ws = pool_->config().websocket;
        bool timers = ws.ping_interval.count() > 0 || ws.idle_timeout.count() > 0 ||
                      ws.max_lifetime.count() > 0;
        if (ws.max_messages_per_second > 0) extras().bucket.reset(ws.max_messages_per_second, now);
        if (timers) {
            Extras& x = extras();
            x.last_client_ms = x.last_backend_ms = now;
            if (ws.max_lifetime.count() > 0) {
                // ±10% so a fleet's connections, opened together, do not expire together.
                std::uniform_real_distribution<double> jitter(0.9, 1.1);
                x.expire_at =
                    now + static_cast<uint64_t>(static_cast<double>(ws.max_lifetime.count()) *
                                                jitter(ctx().rng));
            }
        }
        enter(SessionState::Relaying);
        // Frames the client sent right behind its request go first: its Endpoint holds
        // them, and the Pipe takes them as it takes every frame. A limit they hit puts
        // the session in Closing, where the backend must still be read for its Close.
        to_backend_.start();
        if (state_ != SessionState::Closed) to_client_.start();
        return;
    }

    // Any other answer goes to the client unchanged, body included; then we close.
    decide(CloseReason::BackendAnswered);
    to_client_.attach(Pipe::Mode::Raw);
    enter(SessionState::Relaying);
    // The client is read (and what it sends dropped) so that its hang-up is seen and
    // a close never resets an answer in flight; the answer must keep coming (on_raw_bytes
    // re-arms the deadline).
    client_.deliver_to(Endpoint::Consumer::Discard);
    client_.resume();
    if (state_ == SessionState::Closed) return;
    // Neither a length nor chunks: the body runs until the backend closes; no body at
    // all: the answer is complete.
    if (!hs.response_parser.has_body() && !hs.response_parser.body_ends_at_eof()) {
        to_client_.shutdown_destination();
    } else {
        to_client_.start();
    }
}

size_t Session::on_raw_bytes(Pipe& pipe, std::string_view bytes) {
    if (handshake_ && handshake_->http) return on_http_body_bytes(pipe, bytes);
    // Bytes of a non-101 answer: follow its framing to know when it ends. Only the
    // answer's own bytes go to the client: what a backend sends past its end is not
    // the client's (a second answer smuggled behind the first).
    if (state_ == SessionState::Relaying) arm_deadline(raw_answer_timeout_ms());
    bool ended = false;
    size_t used = 0;
    if (!handshake_ || !handshake_->response_parser.consume_body(bytes, ended, &used)) {
        log_event("malformed answer body from backend",
                  handshake_ ? handshake_->response_parser.error() : "");
        ended = true;
        used = 0;
    }
    if (ended) {
        pipe.stop();
        pipe.shutdown_destination();
    }
    return used;
}

// ---- refusals ----

void Session::refuse(CloseReason reason, std::string_view detail, unsigned retry_after) {
    if (state_ == SessionState::Closed || state_ == SessionState::Closing) return;
    decide(reason);
    const auto& info = metrics::info(reason);
    status_ = static_cast<uint16_t>(info.status);
    log_event("refused", std::string(info.log_reason) + ": " + std::string(detail));
    backend_side_.close();
    enter(SessionState::Closing);
    client_.write_copy(http::reply(static_cast<http::Status>(info.status), detail, retry_after));
    if (state_ == SessionState::Closed) return;
    client_.shutdown();
    // Keep reading (and discarding) until the client hangs up, so that closing never
    // turns into a reset that could destroy the answer in flight.
    client_.deliver_to(Endpoint::Consumer::Discard);
    client_.resume();
}

}  // namespace sb::session
