// TLS on either side of a Session: ciphertext read from a socket goes into the side's
// tls::Connection, and the plaintext that comes out goes where plaintext read from a
// plain socket would go (the request or answer head, or a Pipe). Ciphertext the
// Connection produces (handshake records, alerts, tickets) is written at once, in
// the order it was produced.
#include "http/replies.h"
#include "log/logger.h"
#include "session/handshake_state.h"
#include "session/session.h"

namespace sb::session {

namespace {

uv_stream_t* as_stream(uv_tcp_t* t) {
    return reinterpret_cast<uv_stream_t*>(t);
}

}  // namespace

// A write of a chain of blocks the session owns (TLS output outside the relay).
struct Session::ChainWrite {
    uv_write_t write;
    uv_shutdown_t shutdown;
    Session* session;
    uv::Block* chain;
    bool shutdown_after;
};

void Session::write_chain(uv_stream_t* to, uv::Block* chain, bool shutdown_after) {
    if (chain == nullptr && !shutdown_after) return;
    uv_buf_t bufs[16];
    unsigned count = 0;
    for (uv::Block* b = chain; b != nullptr && count < std::size(bufs); b = b->next) {
        bufs[count++] = uv_buf_init(b->data(), b->size);
    }
    auto* w = new ChainWrite{{}, {}, this, chain, shutdown_after};
    w->write.data = w;
    if (uv_write(&w->write, to, bufs, count, &Session::on_chain_written) != 0) {
        tls::release_chain(ctx().blocks, chain);
        delete w;
        finish(reason_decided_ ? reason_ : CloseReason::ClientReset);
    }
}

void Session::on_chain_written(uv_write_t* req, int status) noexcept {
    auto* w = static_cast<ChainWrite*>(req->data);
    Session* s = w->session;
    tls::release_chain(s->ctx().blocks, w->chain);
    w->chain = nullptr;
    if (status == 0 && w->shutdown_after && s->state_ != SessionState::Closed) {
        w->shutdown.data = w;
        if (uv_shutdown(&w->shutdown, req->handle, [](uv_shutdown_t* sreq, int) noexcept {
                delete static_cast<ChainWrite*>(sreq->data);
            }) == 0) {
            return;
        }
    }
    delete w;
    if (status < 0 && status != UV_ECANCELED && s->state_ != SessionState::Closed) {
        s->log_event("TLS write failed", uv_strerror(status));
        s->finish(s->reason_decided_ ? s->reason_ : CloseReason::ClientReset);
    }
}

void Session::flush_tls(bool client_side) {
    tls::Connection* tls = tls_of(client_side);
    if (tls == nullptr || !tls->has_output()) return;
    write_chain(client_side ? as_stream(&client_) : as_stream(&backend_tcp_), tls->take_output(),
                false);
}

void Session::on_tls_input(bool client_side, ssize_t nread, const uv_buf_t* buf) {
    uv::Block* block = buf->base != nullptr ? reinterpret_cast<uv::Block*>(buf->base) - 1 : nullptr;
    if (nread <= 0) {
        if (block != nullptr) ctx().blocks.give(block);
        if (nread < 0) on_tls_end(client_side, static_cast<int>(nread));
        return;
    }
    tls::Connection* tls = tls_of(client_side);
    tls->give_input(block, buf->base, static_cast<size_t>(nread));
    pump_tls(client_side);
}

void Session::on_tls_end(bool client_side, int status) {
    Pipe& pipe = client_side ? to_backend_ : to_client_;
    if (pipe.attached()) {
        pipe.on_end(status);
    } else if (client_side) {
        if (state_ == SessionState::ReadingRequest) {
            finish(CloseReason::ClientAborted);
        } else if (state_ == SessionState::Closing) {
            finish(reason_);
        }
    } else if (state_ == SessionState::ConnectingBackend) {
        on_backend_tls_failed(status == UV_EOF ? "backend closed the connection"
                                               : uv_strerror(status));
    } else if (state_ == SessionState::AwaitingResponse) {
        refuse(CloseReason::BackendBadAnswer, "backend closed without answering");
    }
}

void Session::on_client_tls_failed() {
    tls::Connection& tls = *tls_of(true);
    if (tls.saw_plain_http()) {
        // As nginx does: a plain HTTP request on a TLS port gets a plain answer.
        log_event("plain HTTP request on a TLS listener");
        decide(CloseReason::BadRequest);
        status_ = 400;
        tls_->client.reset();  // the answer goes out unencrypted
        enter(SessionState::Closing);
        send_owned(as_stream(&client_),
                   http::reply(http::Status::BadRequest, "plain HTTP request sent to a TLS port"),
                   true);
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

void Session::pump_tls(bool client_side) {
    tls::Connection* tls = tls_of(client_side);
    Pipe& pipe = client_side ? to_backend_ : to_client_;
    while (tls != nullptr && state_ != SessionState::Closed) {
        if (!tls->handshake_done()) {
            auto status = tls->handshake();
            flush_tls(client_side);
            if (status == tls::Connection::Status::WantRead) return;
            if (status != tls::Connection::Status::Ok) {
                if (client_side) {
                    on_client_tls_failed();
                } else {
                    on_backend_tls_failed(tls->error());
                }
                return;
            }
            if (!client_side && state_ == SessionState::ConnectingBackend) on_backend_ready();
            continue;
        }
        size_t n = 0;
        tls::Connection::Status status;
        if (pipe.attached()) {
            if (!pipe.accepting()) return;  // resumed from Pipe::start() once it drains
            uv::Block* block = ctx().blocks.take();
            if (block == nullptr) {
                pipe.on_end(UV_ENOBUFS);
                return;
            }
            status =
                tls->read(block->data() + Pipe::kHeadroom, block->capacity - Pipe::kHeadroom, n);
            flush_tls(client_side);
            if (n > 0) {
                pipe.on_plaintext(block, n);
            } else {
                ctx().blocks.give(block);
            }
        } else if (client_side && state_ == SessionState::ReadingRequest) {
            uv_buf_t buf;
            handshake_->request_space(listener_.config.max_header_bytes, &buf);
            status = tls->read(buf.base, buf.len, n);
            flush_tls(client_side);
            Handshake::commit(handshake_->request, handshake_->request_before,
                              static_cast<ssize_t>(n));
            if (n > 0) on_request_bytes();
        } else if (!client_side && state_ == SessionState::AwaitingResponse) {
            uv_buf_t buf;
            handshake_->response_space(&buf);
            status = tls->read(buf.base, buf.len, n);
            flush_tls(client_side);
            Handshake::commit(handshake_->response, handshake_->response_before,
                              static_cast<ssize_t>(n));
            if (n > 0) on_response_bytes();
        } else {
            // Nothing wants these bytes now (a refused client still talking).
            status = tls->read(ctx().discard, sizeof(ctx().discard), n);
            flush_tls(client_side);
        }
        if (status == tls::Connection::Status::WantRead) return;
        if (status == tls::Connection::Status::Closed) {
            on_tls_end(client_side, UV_EOF);  // close_notify reads as EOF
            return;
        }
        if (status == tls::Connection::Status::Error) {
            log_event(client_side ? "client TLS error" : "backend TLS error", tls->error());
            on_tls_end(client_side, UV_EPROTO);
            return;
        }
    }
}

}  // namespace sb::session
