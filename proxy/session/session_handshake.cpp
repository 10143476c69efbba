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
#include "log/logger.h"
#include "session/handshake_state.h"
#include "session/session.h"

namespace sb::session {

using http::MessageParser;

namespace {

uv_handle_t* as_handle(uv_tcp_t* t) {
    return reinterpret_cast<uv_handle_t*>(t);
}
uv_stream_t* as_stream(uv_tcp_t* t) {
    return reinterpret_cast<uv_stream_t*>(t);
}

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

void Session::on_request_read(ssize_t nread) {
    auto& hs = *handshake_;
    Handshake::commit(hs.request, hs.request_before, nread);
    if (nread == 0) return;
    if (nread < 0) {
        if (nread != UV_EOF)
            log_event("client connection error", uv_strerror(static_cast<int>(nread)));
        finish(CloseReason::ClientAborted);
        return;
    }
    on_request_bytes();
}

void Session::on_request_bytes() {
    auto& hs = *handshake_;
    uint64_t limit = listener_.config.max_header_bytes;
    auto status = hs.request_parser.parse(hs.request);
    if (status == MessageParser::Status::Error) {
        refuse(CloseReason::BadRequest, hs.request_parser.error());
    } else if (status == MessageParser::Status::Complete) {
        if (hs.request_parser.head_length() > limit) {
            refuse(CloseReason::HeadersTooLarge, "request head over max_header_bytes");
        } else {
            on_request_head();
        }
    } else if (hs.request.size() > limit) {
        refuse(CloseReason::HeadersTooLarge, "request head over max_header_bytes");
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

    if (hs.over_limit) {
        refuse(*hs.over_limit, *hs.over_limit == CloseReason::ClientLimit
                                   ? "too many connections from this address"
                                   : "too many connections");
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
    const std::string* pool_name = listener_.router.route(hs.upgrade.host_name, hs.upgrade.path);
    if (pool_name == nullptr) {
        refuse(CloseReason::NoRoute, "no route for this host and path");
        return;
    }
    pool_ = generation_->pool(*pool_name);
    pool_stats_ = &ctx().stats.pool(*pool_name);

    std::string client_ip = client_address_.ip_string();
    http::KeySource source{hs.request, &parser.headers(), hs.upgrade.path, hs.upgrade.query,
                           client_ip};
    bool fell_back = false;
    hs.key = http::balancing_key(pool_->config().hash_key, source, fell_back);
    hs.key_hash = balance::hash_key(hs.key);

    http::ForwardInfo info;
    info.add_forwarded_headers = pool_->config().forwarded_headers;
    info.client_ip = client_ip;
    info.proto = listener_.tls ? "https" : "http";
    hs.backend_request = http::backend_request(hs.request, parser, info);

    // Nothing more is read from the client until a backend has answered.
    uv_read_stop(as_stream(&client_));
    hs.connect_started_ms = uv_now(ctx().loop);
    connect_next();
}

// ---- connecting ----

void Session::connect_next() {
    auto& hs = *handshake_;
    using Outcome = pool::Pool::Outcome;
    Outcome outcome;
    if (!placement_) {
        outcome = pool_->place(hs.key, hs.key_hash, hs.tried, placement_);
    } else if (hs.tried.size() > pool_->config().retries) {
        pool_->release(placement_);
        outcome = Outcome::NoBackend;
    } else {
        outcome = pool_->retry(hs.key_hash, hs.tried, placement_);
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
    uv_tcp_init(ctx().loop, &backend_tcp_);
    backend_tcp_.data = this;
    backend_open_ = true;
    ++open_handles_;
    uv_tcp_nodelay(&backend_tcp_, 1);
    hs.connect.data = this;
    enter(SessionState::ConnectingBackend);
    int rc = uv_tcp_connect(&hs.connect, &backend_tcp_, backend_->resolved().sockaddr_ptr(),
                            &Session::on_connect);
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM) {
        // Our own shortage, not the backend's fault: no passive-health failure.
        log_event("cannot open a backend connection", uv_strerror(rc));
        refuse(CloseReason::Overloaded, "the proxy is out of resources");
    } else if (rc != 0) {
        on_connect_failed(uv_strerror(rc));
    }
}

void Session::on_connect(uv_connect_t* req, int status) noexcept {
    if (status == UV_ECANCELED) return;  // the session is closing
    auto* s = static_cast<Session*>(req->data);
    if (s->state_ != SessionState::ConnectingBackend) return;
    if (status != 0) {
        s->on_connect_failed(uv_strerror(status));
    } else {
        s->on_connected();
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
    // The handle must be closed before it can be initialized again for the next
    // attempt; on_closed() continues with connect_next().
    state_due_ = 0;
    rearm();
    uv_close(as_handle(&backend_tcp_), &Session::on_closed);
}

void Session::on_connected() {
    if (backend_->record_success()) {
        log::info("backend up again", {{"backend", backend_->address()}, {"pool", pool_->name()}});
        if (ctx().on_backend_up) ctx().on_backend_up(pool_->name());
    }
    uv_read_start(as_stream(&backend_tcp_), &Session::on_alloc, &Session::on_read);
    if (const tls::ClientContext* tls = pool_->tls()) {
        // TLS first, within the same connect_timeout; the request follows the handshake.
        const auto& c = tls->config();
        std::string name = c.server_name.empty() ? backend_->resolved().ip_string() : c.server_name;
        tls_sides().backend =
            tls::Connection::connect(tls->context(), name, c.verify, ctx().blocks);
        if (tls_of(false) == nullptr) {
            refuse(CloseReason::InternalError, "cannot start TLS");
            return;
        }
        pump_tls(false);  // sends the ClientHello
        return;
    }
    on_backend_ready();
}

void Session::on_backend_ready() {
    enter(SessionState::AwaitingResponse);
    send_owned(as_stream(&backend_tcp_), handshake_->backend_request, false);
}

// ---- backend answer ----

void Session::on_response_read(ssize_t nread) {
    auto& hs = *handshake_;
    Handshake::commit(hs.response, hs.response_before, nread);
    if (nread == 0) return;
    if (nread < 0) {
        refuse(CloseReason::BackendBadAnswer, nread == UV_EOF
                                                  ? "backend closed without answering"
                                                  : uv_strerror(static_cast<int>(nread)));
        return;
    }
    on_response_bytes();
}

void Session::on_response_bytes() {
    auto& hs = *handshake_;
    auto status = hs.response_parser.parse(hs.response);
    if (status == MessageParser::Status::Error) {
        refuse(CloseReason::BackendBadAnswer,
               "malformed answer from backend: " + hs.response_parser.error());
    } else if (status == MessageParser::Status::Complete) {
        on_response_head();
    } else if (hs.response.size() > Handshake::kMaxResponseHead) {
        refuse(CloseReason::BackendBadAnswer, "backend answer head too large");
    }
}

void Session::on_response_head() {
    auto& hs = *handshake_;
    // A 101 from a plain backend goes on to be read at once, in the relay, so reading
    // is not stopped only to start again (libuv would pay two epoll_ctl calls for
    // it). Any other answer is looked at first; a TLS backend may hold decrypted
    // input the relay takes first (Pipe::start).
    if (hs.response_parser.status_code() != 101 || tls_of(false) != nullptr) {
        uv_read_stop(as_stream(&backend_tcp_));
    }
    pool_stats_->handshake.observe(static_cast<double>(uv_now(ctx().loop) - hs.connect_started_ms) /
                                   1000.0);
    status_ = static_cast<uint16_t>(hs.response_parser.status_code());
    start_relay(status_ == 101);
}

void Session::start_relay(bool websocket) {
    auto& hs = *handshake_;
    websocket_ = websocket;
    size_t response_head = hs.response_parser.head_length();
    if (log_) log_->head_out = static_cast<uint32_t>(response_head);
    std::string_view backend_extra = std::string_view(hs.response).substr(response_head);

    to_client_.attach(websocket ? Pipe::Mode::Frames : Pipe::Mode::Raw);
    if (websocket) {
        backend_->add_total();
        to_client_.scan_only(backend_extra);
        send_owned(as_stream(&client_), std::move(hs.response), false);

        // Frames the client sent early, right behind its request, go first.
        std::string_view client_extra =
            std::string_view(hs.request).substr(hs.request_parser.head_length());
        to_backend_.attach(Pipe::Mode::Frames);
        if (!client_extra.empty()) {
            to_backend_.scan_only(client_extra);
            send_owned(as_stream(&backend_tcp_), std::string(client_extra), false);
        }
        handshake_.reset();
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
        to_backend_.start();
        to_client_.start();
        return;
    }

    // Any other answer goes to the client unchanged, body included; then we close.
    decide(CloseReason::BackendAnswered);
    bool ended = false;
    if (!backend_extra.empty() && !hs.response_parser.consume_body(backend_extra, ended)) {
        ended = true;
    }
    // Neither a length nor chunks: the body runs until the backend closes.
    if (!hs.response_parser.has_body() && !hs.response_parser.body_ends_at_eof()) ended = true;
    send_owned(as_stream(&client_), std::move(hs.response), false);
    enter(SessionState::Relaying);
    if (ended) {
        to_client_.shutdown_destination();
    } else {
        to_client_.start();
    }
}

void Session::on_raw_bytes(Pipe& pipe, std::string_view bytes) {
    // Bytes of a non-101 answer: follow its framing to know when it ends.
    bool ended = false;
    if (!handshake_ || !handshake_->response_parser.consume_body(bytes, ended)) ended = true;
    if (ended) {
        pipe.stop();
        pipe.shutdown_destination();
    }
}

// ---- refusals and owned writes ----

void Session::refuse(CloseReason reason, std::string_view detail) {
    if (state_ == SessionState::Closed || state_ == SessionState::Closing) return;
    decide(reason);
    const auto& info = metrics::info(reason);
    status_ = static_cast<uint16_t>(info.status);
    log_event("refused", std::string(info.log_reason) + ": " + std::string(detail));
    if (backend_open_ && !uv_is_closing(as_handle(&backend_tcp_))) {
        uv_close(as_handle(&backend_tcp_), &Session::on_closed);
    }
    enter(SessionState::Closing);
    send_owned(as_stream(&client_), http::reply(static_cast<http::Status>(info.status), detail),
               true);
    // Keep reading (and discarding) until the client hangs up, so that closing never
    // turns into a reset that could destroy the answer in flight.
    uv_read_start(as_stream(&client_), &Session::on_alloc, &Session::on_read);
}

void Session::send_owned(uv_stream_t* to, std::string bytes, bool shutdown_after) {
    if (bytes.empty() && !shutdown_after) return;
    tls::Connection* tls = tls_of(to == as_stream(&client_));
    if (tls != nullptr) {
        if (!tls->write(bytes.data(), bytes.size())) {
            log_event("TLS write failed", tls->error());
            finish(reason_decided_ ? reason_ : CloseReason::InternalError);
            return;
        }
        if (shutdown_after) tls->close_notify();
        write_chain(to, tls->take_output(), shutdown_after);
        return;
    }
    auto* w = new OwnedWrite{};
    w->session = this;
    w->bytes = std::move(bytes);
    w->shutdown_after = shutdown_after;
    w->write.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    int rc = uv_write(&w->write, to, &buf, 1, &Session::on_owned_written);
    if (rc != 0) {
        delete w;
        log_event("write failed", uv_strerror(rc));
        finish(reason_decided_ ? reason_ : CloseReason::InternalError);
    }
}

void Session::on_owned_written(uv_write_t* req, int status) noexcept {
    auto* w = static_cast<OwnedWrite*>(req->data);
    Session* s = w->session;
    if (status == 0 && w->shutdown_after && s->state_ != SessionState::Closed) {
        w->shutdown.data = w;
        int rc = uv_shutdown(&w->shutdown, req->handle, [](uv_shutdown_t* sreq, int) noexcept {
            delete static_cast<OwnedWrite*>(sreq->data);
        });
        if (rc == 0) return;
    }
    delete w;
    if (status < 0 && status != UV_ECANCELED && s->state_ != SessionState::Closed) {
        bool to_client = req->handle == as_stream(&s->client_);
        s->log_event(to_client ? "write to client failed" : "write to backend failed",
                     uv_strerror(status));
        if (s->state_ == SessionState::Closing || to_client) {
            s->finish(s->reason_decided_ ? s->reason_ : CloseReason::ClientReset);
        } else {
            s->refuse(CloseReason::BackendBadAnswer, "backend connection failed");
        }
    }
}

}  // namespace sb::session
