#include "health/probe.h"

#include "health/probe_request.h"
#include "net/proxy_header.h"

namespace sb::health {

namespace {

// A response head larger than this is a failed check, not a reason to buffer more.
constexpr size_t kMaxHead = 16 * 1024;
// All the answer's heads together (interim 1xx ones included).
constexpr size_t kMaxAnswer = 4 * kMaxHead;
// After the verdict, how long the backend has to close its side before we do.
constexpr uint64_t kLingerMs = 1000;

struct WriteReq {
    uv_write_t req;
    std::string data;
};

std::string uv_error(const char* what, int status) {
    return std::string(what) + ": " + uv_strerror(status);
}

}  // namespace

Probe::Probe(uv_loop_t* loop, uv::BlockPool& blocks, ProbeTarget target, Done done)
    : loop_(loop), blocks_(blocks), target_(std::move(target)), done_(std::move(done)) {}

Probe::~Probe() = default;

Probe* Probe::start(uv_loop_t* loop, uv::BlockPool& blocks, std::mt19937_64& rng,
                    ProbeTarget target, Done done) {
    auto* p = new Probe(loop, blocks, std::move(target), std::move(done));
    p->begin(rng);
    return p;
}

void Probe::begin(std::mt19937_64& rng) {
    started_ = std::chrono::steady_clock::now();
    if (target_.check.kind == config::HealthCheckConfig::Kind::WebSocket) {
        key_ = random_websocket_key(rng);
        mask_ = static_cast<uint32_t>(rng());
    }
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    ++open_handles_;
    uv_tcp_init(loop_, &tcp_);
    tcp_.data = this;
    ++open_handles_;
    connect_req_.data = this;
    int rc =
        uv_tcp_connect(&connect_req_, &tcp_, target_.address.sockaddr_ptr(), &Probe::on_connect_cb);
    if (rc != 0) {
        // Reported from the timer: never from inside start().
        start_error_ = rc;
        uv_timer_start(&timer_, &Probe::on_timer_cb, 0, 0);
        return;
    }
    uv_timer_start(&timer_, &Probe::on_timer_cb,
                   static_cast<uint64_t>(target_.check.timeout.count()), 0);
}

void Probe::abort() {
    reported_ = true;  // nothing more is said
    done_ = nullptr;
    close();
}

void Probe::on_connect_cb(uv_connect_t* req, int status) noexcept {
    static_cast<Probe*>(req->data)->on_connect(status);
}

void Probe::on_connect(int status) {
    if (closing_ || reported_) return;
    if (status != 0) {
        report(false, uv_error("connect", status));
        close();
        return;
    }
    std::string header = net::proxy_header::encode_local(target_.proxy_protocol);
    if (!header.empty()) write_raw(std::move(header));
    if (closing_) return;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Probe::on_alloc_cb, &Probe::on_read_cb);
    if (target_.tls != nullptr) {
        phase_ = Phase::Handshaking;
        tls_ = tls::Connection::connect(target_.tls, target_.tls_name, target_.tls_verify, blocks_);
        if (!tls_) {
            report(false, "TLS: cannot start");
            close();
            return;
        }
        pump_tls();  // sends the ClientHello
        return;
    }
    on_ready();
}

void Probe::on_ready() {
    if (target_.check.kind == config::HealthCheckConfig::Kind::Tcp) {
        report(true, "");
        end_politely();
        return;
    }
    phase_ = Phase::Awaiting;
    send_plain(probe_request(target_.check, target_.host, key_));
}

void Probe::send_plain(const std::string& bytes) {
    if (!tls_) {
        write_raw(bytes);
        return;
    }
    if (!tls_->write(bytes.data(), bytes.size())) {
        report(false, "TLS: " + tls_->error());
        close();
        return;
    }
    flush_tls();
}

void Probe::flush_tls() {
    if (!tls_ || !tls_->has_output()) return;
    uv::Block* chain = tls_->take_output();
    std::string out;
    for (uv::Block* b = chain; b != nullptr; b = b->next)
        out.append(b->data(), b->size);
    tls::release_chain(blocks_, chain);
    write_raw(std::move(out));
}

void Probe::write_raw(std::string bytes) {
    if (closing_ || bytes.empty()) return;
    auto* w = new WriteReq{{}, std::move(bytes)};
    w->req.data = this;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, &Probe::on_write_cb);
    if (rc != 0) {
        delete w;
        if (!reported_) report(false, uv_error("write", rc));
        close();
    }
}

void Probe::on_write_cb(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* p = static_cast<Probe*>(req->data);
    delete w;
    if (status == 0 || status == UV_ECANCELED || p->closing_) return;
    if (!p->reported_) p->report(false, uv_error("write", status));
    p->close();
}

void Probe::on_alloc_cb(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* p = static_cast<Probe*>(handle->data);
    uv::Block* b = p->blocks_.take();
    *buf = b == nullptr ? uv_buf_init(nullptr, 0) : uv_buf_init(b->data(), b->capacity);
}

void Probe::on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* p = static_cast<Probe*>(stream->data);
    uv::Block* block = buf->base == nullptr ? nullptr : reinterpret_cast<uv::Block*>(buf->base) - 1;
    if (nread <= 0 || p->closing_) {
        if (block != nullptr) p->blocks_.give(block);
        if (p->closing_ || nread == 0) return;
        if (nread == UV_EOF) {
            p->on_eof();
        } else {
            if (!p->reported_) p->report(false, uv_error("read", static_cast<int>(nread)));
            p->close();
        }
        return;
    }
    if (p->tls_) {
        p->tls_->give_input(block, buf->base, static_cast<size_t>(nread));
        p->pump_tls();
        return;
    }
    p->on_bytes(buf->base, static_cast<size_t>(nread));
    p->blocks_.give(block);
}

void Probe::pump_tls() {
    if (!tls_->handshake_done()) {
        auto status = tls_->handshake();
        flush_tls();
        if (closing_) return;
        if (status == tls::Connection::Status::WantRead) return;
        if (status != tls::Connection::Status::Ok) {
            if (!reported_) report(false, "TLS: " + tls_->error());
            close();
            return;
        }
        on_ready();
        if (closing_) return;
    }
    char plain[4096];
    for (;;) {
        size_t n = 0;
        auto status = tls_->read(plain, sizeof(plain), n);
        flush_tls();
        if (closing_) return;
        if (n > 0) {
            on_bytes(plain, n);
            if (closing_) return;
        }
        if (status == tls::Connection::Status::Ok) continue;
        if (status == tls::Connection::Status::WantRead) return;
        if (status == tls::Connection::Status::Closed) {
            on_eof();
        } else {
            if (!reported_) report(false, "TLS: " + tls_->error());
            close();
        }
        return;
    }
}

void Probe::on_bytes(const char* data, size_t n) {
    if (phase_ != Phase::Awaiting) return;  // after the verdict: read and dropped
    if (answer_.size() + n > kMaxAnswer) {
        // Endless interim (1xx) heads: bounded like a head that never ends.
        report(false, "response head too large");
        close();
        return;
    }
    answer_.append(data, n);
    auto verdict = check_answer(target_.check, answer_, parser_, key_, kMaxHead);
    if (verdict.state == Verdict::State::NeedMore) return;
    report(verdict.state == Verdict::State::Ok, verdict.error);
    end_politely();
}

void Probe::on_eof() {
    if (!reported_) {
        report(false, phase_ == Phase::Handshaking ? "TLS: closed during the handshake"
                                                   : "closed before a complete answer");
    }
    close();
}

void Probe::report(bool ok, std::string error) {
    if (reported_) return;
    reported_ = true;
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(ok, error, ms);
}

void Probe::end_politely() {
    if (closing_) return;
    phase_ = Phase::Ending;
    answer_.clear();
    answer_.shrink_to_fit();
    if (target_.check.kind == config::HealthCheckConfig::Kind::WebSocket &&
        parser_.status_code() == 101) {
        send_plain(close_frame_1000(mask_));
        if (closing_) return;
    }
    if (tls_) {
        tls_->close_notify();
        flush_tls();
        if (closing_) return;
    }
    // FIN once the writes are out; the backend closes its side and we see EOF.
    shutdown_req_.data = this;
    if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_),
                    &Probe::on_shutdown_cb) != 0) {
        close();
        return;
    }
    uv_timer_stop(&timer_);
    uv_timer_start(&timer_, &Probe::on_timer_cb, kLingerMs, 0);
}

void Probe::on_shutdown_cb(uv_shutdown_t*, int) noexcept {
    // Nothing to do: EOF, an error or the linger timer ends the probe.
}

std::string Probe::phase_name() const {
    switch (phase_) {
        case Phase::Connecting:
            return "timeout (connect)";
        case Phase::Handshaking:
            return "timeout (TLS handshake)";
        case Phase::Awaiting:
            return "timeout (response)";
        case Phase::Ending:
            return "timeout";
    }
    return "timeout";
}

void Probe::on_timer_cb(uv_timer_t* timer) noexcept {
    static_cast<Probe*>(timer->data)->on_timeout();
}

void Probe::on_timeout() {
    if (start_error_ != 0 && !reported_) {
        report(false, uv_error("connect", start_error_));
    } else if (!reported_) {
        report(false, phase_name());
    }
    close();
}

void Probe::close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Probe::on_close_cb);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Probe::on_close_cb);
}

void Probe::on_close_cb(uv_handle_t* handle) noexcept {
    auto* p = static_cast<Probe*>(handle->data);
    if (--p->open_handles_ == 0) delete p;
}

}  // namespace sb::health
