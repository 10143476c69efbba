#include "storm/storm_run.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "common/handshake.h"
#include "ws/protocol.h"

namespace sb::tools {

namespace {

constexpr double kBackoffBaseS = 0.1;
constexpr double kBackoffCapS = 10.0;
constexpr size_t kReadBufferBytes = 16 * 1024;
// Close 1013 (Try Again Later), RFC 6455 §7.4.1 via the IANA registry.
constexpr int kTryAgainLater = 1013;

// The number in a header value or close reason made of digits only ("2"), or -1.
double whole_seconds(std::string_view text) {
    if (text.empty() || text.size() > 6) return -1;
    double n = 0;
    for (char ch : text) {
        if (ch < '0' || ch > '9') return -1;
        n = n * 10 + (ch - '0');
    }
    return n;
}

// N from a 1013's reason `retry after N s`, or -1.
double retry_after_reason(std::string_view reason) {
    constexpr std::string_view kPrefix = "retry after ";
    size_t at = reason.find(kPrefix);
    if (at == std::string_view::npos) return -1;
    std::string_view rest = reason.substr(at + kPrefix.size());
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9')
        ++digits;
    return whole_seconds(rest.substr(0, digits));
}

uint64_t to_ms(double seconds) {
    return static_cast<uint64_t>(std::llround(std::max(0.0, seconds) * 1000.0));
}

}  // namespace

// One attempt's connection. Its handle is closed by close_socket() and the struct is
// freed in the close callback, which also tells the client (if it still waits).
struct StormClient::Socket {
    uv_tcp_t tcp{};
    uv_connect_t connect{};
    uv_write_t write{};        // the upgrade request
    uv_write_t close_write{};  // our answer to a Close
    std::string out;           // the request's bytes
    std::string close_out;     // the Close's bytes
    char buffer[kReadBufferBytes];
    StormClient* client = nullptr;
};

StormClient::StormClient(StormRun& run, size_t index) : run_(run), index_(index) {
    uv_timer_init(run_.loop(), &timer_);
    timer_.data = this;
}

void StormClient::start() {
    run_.want_attempt(this);
}

void StormClient::attempt() {
    started_ = run_.now();
    key_ = random_key(run_.rng());
    head_.clear();
    parser_ = std::make_unique<http::MessageParser>(http::MessageParser::Kind::Response);
    frames_ = FrameReader{};
    in_close_ = false;
    close_payload_.clear();

    socket_ = new Socket;
    socket_->client = this;
    socket_->tcp.data = socket_;
    socket_->connect.data = socket_;
    socket_->write.data = socket_;
    socket_->close_write.data = socket_;
    state_ = State::Connecting;
    uv_timer_start(&timer_, &StormClient::on_timer, run_.options().handshake_timeout_ms, 0);
    if (uv_tcp_init(run_.loop(), &socket_->tcp) != 0) {
        delete socket_;
        socket_ = nullptr;
        state_ = State::Closing;
        decide("reset", "", -1);
        return;
    }
    int rc = uv_tcp_connect(&socket_->connect, &socket_->tcp,
                            reinterpret_cast<const sockaddr*>(&run_.options().address),
                            &StormClient::on_connect);
    if (rc != 0) decide(rc == UV_ECONNREFUSED ? "refused" : "reset", "", -1);
}

// ---- libuv trampolines ----

void StormClient::on_connect(uv_connect_t* req, int status) noexcept {
    auto* socket = static_cast<Socket*>(req->data);
    if (socket->client != nullptr) socket->client->handle_connect(status);
}

void StormClient::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* socket = static_cast<Socket*>(handle->data);
    *buf = uv_buf_init(socket->buffer, sizeof socket->buffer);
}

void StormClient::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* socket = static_cast<Socket*>(stream->data);
    if (socket->client != nullptr) socket->client->handle_read(nread, buf->base);
}

void StormClient::on_write(uv_write_t* req, int) noexcept {
    auto* socket = static_cast<Socket*>(req->data);
    // After our Close the connection is done: close it once the frame is out.
    if (req == &socket->close_write &&
        !uv_is_closing(reinterpret_cast<uv_handle_t*>(&socket->tcp))) {
        uv_close(reinterpret_cast<uv_handle_t*>(&socket->tcp), &StormClient::on_socket_closed);
    }
}

void StormClient::on_socket_closed(uv_handle_t* handle) noexcept {
    auto* socket = static_cast<Socket*>(handle->data);
    delete socket;
}

void StormClient::on_timer(uv_timer_t* timer) noexcept {
    static_cast<StormClient*>(timer->data)->handle_timer();
}

// ---- an attempt ----

void StormClient::handle_connect(int status) {
    if (state_ != State::Connecting) return;
    if (status != 0) {
        decide(status == UV_ECONNREFUSED ? "refused" : "reset", "", -1);
        return;
    }
    state_ = State::Handshake;
    socket_->out =
        upgrade_request(run_.options().host_header, "/?room=c" + std::to_string(index_), key_);
    uv_buf_t buf = uv_buf_init(socket_->out.data(), static_cast<unsigned>(socket_->out.size()));
    auto* stream = reinterpret_cast<uv_stream_t*>(&socket_->tcp);
    uv_tcp_nodelay(&socket_->tcp, 1);
    if (uv_write(&socket_->write, stream, &buf, 1, &StormClient::on_write) != 0 ||
        uv_read_start(stream, &StormClient::on_alloc, &StormClient::on_read) != 0) {
        decide("reset", "", -1);
    }
}

void StormClient::handle_read(ssize_t nread, const char* data) {
    if (nread == 0) return;
    if (nread < 0) {
        // EOF or a reset: before an answer a refusal, after it a drop without a Close.
        if (state_ == State::Open) {
            drop(1006);
        } else if (state_ == State::Handshake || state_ == State::Provisional) {
            decide("reset", "", -1);
        }
        return;
    }
    if (state_ == State::Handshake) {
        head_.append(data, static_cast<size_t>(nread));
        handle_head();
        return;
    }
    if (state_ == State::Open || state_ == State::Provisional) {
        // FrameReader unmasks in place: the socket's buffer is writable.
        frames_.feed(reinterpret_cast<uint8_t*>(const_cast<char*>(data)),
                     static_cast<size_t>(nread), *this);
    }
}

void StormClient::handle_head() {
    switch (parser_->parse(head_)) {
        case http::MessageParser::Status::NeedMore:
            if (head_.size() > kMaxHeadBytes) decide("malformed", "", -1);
            return;
        case http::MessageParser::Status::Error:
            decide("malformed", "", -1);
            return;
        case http::MessageParser::Status::Complete:
            break;
    }
    std::string_view head(head_.data(), parser_->head_length());
    std::string_view value;
    int status = parser_->status_code();
    if (status != 101) {
        double wait = -1;
        if (http::find_header(head, parser_->headers(), "Retry-After", value)) {
            wait = whole_seconds(value);
        }
        decide("http_" + std::to_string(status), wait >= 0 ? std::to_string(int(wait)) : "", wait);
        return;
    }
    UpgradeResponseCheck check = check_upgrade_response(head, *parser_, key_);
    if (check.verdict != ResponseVerdict::Accepted) {
        decide("malformed", "", -1);
        return;
    }
    size_t rest = head_.size() - parser_->head_length();
    if (http::find_header(head, parser_->headers(), "X-Backend", value)) {
        state_ = State::Open;
        decide("open", std::string(value), 0);
    } else {
        state_ = State::Provisional;
        uv_timer_start(&timer_, &StormClient::on_timer, StormRun::kProvisionalMs, 0);
    }
    if (rest > 0) {
        std::string frames = head_.substr(parser_->head_length());
        frames_.feed(reinterpret_cast<uint8_t*>(frames.data()), frames.size(), *this);
    }
}

void StormClient::handle_timer() {
    switch (state_) {
        case State::Idle:
            run_.want_attempt(this);
            break;
        case State::Connecting:
        case State::Handshake:
            decide("timeout", "", -1);
            break;
        case State::Provisional:
            // A 101 of the proxy's own that no Close followed: open after all.
            state_ = State::Open;
            decide("open", "", 0);
            break;
        case State::Open:
        case State::Closing:
            break;
    }
}

// ---- frames after the 101: only a Close matters ----

bool StormClient::on_frame_header(const FrameHeader& h) {
    in_close_ = h.opcode == ws::kClose;
    if (in_close_) close_payload_.clear();
    return true;
}

bool StormClient::on_frame_payload(uint8_t* bytes, size_t n) {
    if (in_close_ && close_payload_.size() + n <= 125) {
        close_payload_.append(reinterpret_cast<const char*>(bytes), n);
    }
    return true;
}

bool StormClient::on_frame_end(const FrameHeader&) {
    if (!in_close_) return true;
    int code = close_payload_.size() >= 2 ? (static_cast<uint8_t>(close_payload_[0]) << 8) |
                                                static_cast<uint8_t>(close_payload_[1])
                                          : 1005;
    // Answer with a Close carrying the same code (masked, as a client's frames are),
    // then close once it is written.
    uint8_t mask[4];
    run_.rng().fill(mask, sizeof mask);
    uint8_t frame[kMaxFrameHeader + 2];
    size_t body = std::min<size_t>(close_payload_.size(), 2);
    size_t n = encode_frame_header(frame, true, ws::kClose, body, mask);
    mask_copy(frame + n, reinterpret_cast<const uint8_t*>(close_payload_.data()), body, mask, 0);
    Socket* socket = socket_;
    if (state_ == State::Provisional) {
        double wait = retry_after_reason(std::string_view(close_payload_).substr(body));
        decide(code == kTryAgainLater ? "close_1013" : "close_other",
               wait >= 0 ? std::to_string(int(wait)) : "", wait);
    } else {
        drop(code);
    }
    // decide()/drop() detached the socket; it closes after this write.
    socket->close_out.assign(reinterpret_cast<const char*>(frame), n + body);
    uv_buf_t buf =
        uv_buf_init(socket->close_out.data(), static_cast<unsigned>(socket->close_out.size()));
    if (uv_write(&socket->close_write, reinterpret_cast<uv_stream_t*>(&socket->tcp), &buf, 1,
                 &StormClient::on_write) != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&socket->tcp), &StormClient::on_socket_closed);
    }
    return false;
}

// ---- outcomes ----

void StormClient::decide(const std::string& kind, const std::string& detail, double wait_s) {
    double now = run_.now();
    uv_timer_stop(&timer_);
    if (!drops_.empty()) attempts_.push_back({started_, now, kind, detail});
    run_.note_outcome(kind);
    run_.attempt_done();
    if (kind == "open") {
        tries_ = 0;
        backend_ = detail;
        if (!drops_.empty()) back_at_ = now;
        run_.on_open(*this, detail, !drops_.empty());
        return;
    }
    ++tries_;
    close_socket(wait_s >= 0 ? wait_s : backoff());
}

void StormClient::drop(int code) {
    double now = run_.now();
    drops_.emplace_back(now, code);
    back_at_ = 0;
    run_.on_drop(backend_);
    tries_ = 0;
    double wait = backoff();
    ++tries_;
    close_socket(wait);
}

double StormClient::backoff() {
    double ceiling =
        std::min(kBackoffCapS, kBackoffBaseS * std::ldexp(1.0, int(std::min(tries_, 20u))));
    double u = static_cast<double>(run_.rng().next() >> 11) * 0x1.0p-53;
    return u * ceiling;
}

void StormClient::close_socket(double next_wait_s) {
    // The socket goes its own way (closed now, or after our Close frame is written,
    // see on_frame_end); the next attempt waits only for the timer.
    state_ = State::Idle;
    if (socket_ != nullptr) {
        Socket* socket = socket_;
        socket_ = nullptr;
        socket->client = nullptr;
        auto* handle = reinterpret_cast<uv_handle_t*>(&socket->tcp);
        if (!in_close_ && !uv_is_closing(handle)) uv_close(handle, &StormClient::on_socket_closed);
    }
    uv_timer_start(&timer_, &StormClient::on_timer, to_ms(next_wait_s), 0);
}

// ---- the run ----

StormRun::StormRun(uv_loop_t* loop, StormOptions options)
    : loop_(loop), options_(std::move(options)) {
    uv_timer_init(loop_, &deadline_);
    deadline_.data = this;
}

StormRun::~StormRun() = default;

double StormRun::now() const {
    return static_cast<double>(uv_hrtime()) / 1e9;
}

void StormRun::run() {
    started_ = now();
    clients_.reserve(options_.clients);
    for (size_t i = 0; i < options_.clients; ++i) {
        clients_.push_back(std::make_unique<StormClient>(*this, i));
    }
    for (auto& c : clients_)
        c->start();
    uv_timer_start(&deadline_, &StormRun::on_deadline, to_ms(options_.max_seconds), 0);
    uv_run(loop_, UV_RUN_DEFAULT);
}

void StormRun::stop() {
    uv_stop(loop_);
}

void StormRun::on_deadline(uv_timer_t* timer) noexcept {
    static_cast<StormRun*>(timer->data)->stop();
}

void StormRun::want_attempt(StormClient* c) {
    if (filled_at_ > 0 || in_flight_ < kFillConcurrency) {
        ++in_flight_;
        c->attempt();
    } else {
        waiting_.push_back(c);
    }
}

void StormRun::attempt_done() {
    --in_flight_;
    while (!waiting_.empty() && (filled_at_ > 0 || in_flight_ < kFillConcurrency)) {
        StormClient* c = waiting_.front();
        waiting_.pop_front();
        ++in_flight_;
        c->attempt();
    }
}

void StormRun::note_outcome(const std::string& kind) {
    if (first_drop_ == 0) ++fill_outcomes_[kind];
}

void StormRun::on_open(StormClient&, const std::string& backend, bool after_drop) {
    ++open_;
    ++backends_[backend];
    if (!after_drop) {
        if (++ever_open_ == options_.clients) {
            filled_at_ = now();
            std::printf("connected %zu\n", options_.clients);
            std::fflush(stdout);
        }
    }
    if (first_drop_ > 0 && open_ == options_.clients) {
        all_back_at_ = now();
        stop();
    }
}

void StormRun::on_drop(const std::string& backend) {
    --open_;
    --backends_[backend];
    if (first_drop_ == 0) first_drop_ = now();
}

std::string StormRun::report() const {
    using nlohmann::json;
    auto time_or_null = [](double t) { return t > 0 ? json(t) : json(nullptr); };
    json affected = json::object();
    for (const auto& c : clients_) {
        if (c->drops().empty()) continue;
        json drops = json::array();
        for (const auto& [t, code] : c->drops())
            drops.push_back({t, code});
        json attempts = json::array();
        for (const auto& a : c->attempts()) {
            attempts.push_back(
                {a.started, a.decided, a.kind, a.detail.empty() ? json(nullptr) : json(a.detail)});
        }
        affected[std::to_string(c->index())] = {
            {"drops", drops}, {"attempts", attempts}, {"back_at", time_or_null(c->back_at())}};
    }
    json backends = json::object();
    for (const auto& [name, n] : backends_) {
        if (n > 0) backends[name] = n;
    }
    json report = {{"clients", options_.clients},
                   {"started", started_},
                   {"filled_at", time_or_null(filled_at_)},
                   {"first_drop", time_or_null(first_drop_)},
                   {"all_back_at", time_or_null(all_back_at_)},
                   {"open_at_end", open_},
                   {"ever_open", ever_open_},
                   {"fill_outcomes", fill_outcomes_},
                   {"backends_at_end", backends},
                   {"affected", affected}};
    return report.dump();
}

}  // namespace sb::tools
