#include "echo_backend/echo_connection.h"

#include <cstring>
#include <string>
#include <string_view>

#include "common/handshake.h"
#include "echo_backend/echo_server.h"
#include "http/message_parser.h"

namespace sb::tools {

namespace {

constexpr std::string_view kWhoami = "whoami";

// Close codes a peer may send (RFC 6455 §7.4): the defined ones that are not reserved
// for local use (1004-1006, 1015), and the registered and private ranges.
bool valid_close_code(uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

}  // namespace

struct EchoConnection::Handshake {
    std::string head;
    http::MessageParser parser{http::MessageParser::Kind::Request};
};

EchoConnection::EchoConnection(EchoServer& server) : server_(server) {}

EchoConnection::~EchoConnection() = default;

void EchoConnection::start(uv_stream_t* listener) {
    // Once uv_tcp_init succeeds the handle must be closed, so every failure below
    // goes through close(), which frees the connection in its callback.
    if (uv_tcp_init(server_.loop(), &tcp_) != 0) {
        delete this;
        return;
    }
    tcp_.data = this;
    server_.add(this);
    writer_.init(reinterpret_cast<uv_stream_t*>(&tcp_), this, kLowWatermark);
    deadline_ms_ = uv_now(server_.loop()) + kHandshakeTimeoutMs;
    handshake_ = std::make_unique<Handshake>();
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0 ||
        uv_tcp_nodelay(&tcp_, 1) != 0 ||
        uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &EchoConnection::on_alloc,
                      &EchoConnection::on_read) != 0) {
        close();
    }
}

void EchoConnection::go_away() {
    if (state_ == State::Open && reader_.at_boundary()) {
        uint8_t frame[4];
        size_t n = encode_frame_header(frame, true, ws::kClose, 2, nullptr);
        frame[n++] = static_cast<uint8_t>(ws::kGoingAway >> 8);
        frame[n++] = static_cast<uint8_t>(ws::kGoingAway & 0xFF);
        (void)writer_.write(frame, n);  // best effort: the process is exiting
    }
    close();
}

void EchoConnection::check_deadline(uint64_t now_ms) {
    if (deadline_ms_ != 0 && now_ms >= deadline_ms_ && state_ != State::Open) close();
}

// ---- libuv trampolines ----

void EchoConnection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<EchoConnection*>(handle->data);
    // Every connection reads into the server's one buffer: the read callback consumes
    // it entirely (what must outlive it is copied), so no connection owns one.
    *buf = uv_buf_init(reinterpret_cast<char*>(self->server_.read_buffer()),
                       static_cast<unsigned>(EchoServer::kReadBufferBytes));
}

void EchoConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    static_cast<EchoConnection*>(stream->data)->handle_read(nread, buf);
}

void EchoConnection::on_shutdown(uv_shutdown_t* req, int status) noexcept {
    auto* self = static_cast<EchoConnection*>(req->data);
    if (status != 0 || self->state_ != State::Closing) {
        self->close();
        return;
    }
    // Our FIN is out. Wait for the client's, so that its last bytes do not turn our
    // close into a reset that could destroy the Close frame still in flight.
    self->state_ = State::Lingering;
    self->deadline_ms_ = uv_now(self->server_.loop()) + kLingerTimeoutMs;
}

void EchoConnection::on_close(uv_handle_t* handle) noexcept {
    auto* self = static_cast<EchoConnection*>(handle->data);
    self->server_.remove(self);
    delete self;
}

void EchoConnection::on_write_drained() {
    if (state_ == State::Open && paused_ && writer_.queued() <= kLowWatermark) {
        paused_ = false;
        if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &EchoConnection::on_alloc,
                          &EchoConnection::on_read) != 0) {
            close();
        }
    } else if (state_ == State::Closing) {
        shut_down_when_flushed();
    }
}

void EchoConnection::on_write_error(int) {
    close();
}

// ---- input ----

void EchoConnection::handle_read(ssize_t nread, const uv_buf_t* buf) {
    if (nread == 0) return;  // EAGAIN: nothing read
    if (nread < 0) {
        // EOF or a reset. In Open state the client left without a close handshake;
        // there is nobody left to tell, so just close.
        close();
        return;
    }
    auto n = static_cast<size_t>(nread);
    switch (state_) {
        case State::Handshake:
            handle_handshake_bytes(buf->base, n);
            break;
        case State::Open:
            process_frames(reinterpret_cast<uint8_t*>(buf->base), n);
            break;
        case State::Closing:
        case State::Lingering:
        case State::Closed:
            break;  // after our Close or 400, input is discarded
    }
}

void EchoConnection::handle_handshake_bytes(const char* data, size_t n) {
    Handshake& hs = *handshake_;
    hs.head.append(data, n);
    switch (hs.parser.parse(hs.head)) {
        case http::MessageParser::Status::NeedMore:
            if (hs.head.size() > kMaxHeadBytes) reject("request head too large");
            return;
        case http::MessageParser::Status::Error:
            reject(hs.parser.error());
            return;
        case http::MessageParser::Status::Complete:
            break;
    }
    std::string_view head(hs.head.data(), hs.parser.head_length());
    UpgradeRequestCheck check = check_upgrade_request(head, hs.parser);
    if (!check.ok) {
        reject(check.reason);
        return;
    }
    std::string response = switching_protocols_response(check.key, server_.name());
    if (writer_.write(response.data(), response.size()) != 0) {
        close();
        return;
    }
    state_ = State::Open;
    deadline_ms_ = 0;
    server_.note_upgrade();
    // Frames the client sent right behind its request are in the same buffer. Keep
    // the head alive while they are echoed (the batch may point into it), then free it.
    std::unique_ptr<Handshake> done = std::move(handshake_);
    size_t head_length = done->parser.head_length();
    if (done->head.size() > head_length) {
        process_frames(reinterpret_cast<uint8_t*>(done->head.data()) + head_length,
                       done->head.size() - head_length);
    }
}

void EchoConnection::reject(std::string_view reason) {
    std::string response = bad_request_response(reason);
    if (writer_.write(response.data(), response.size()) != 0) {
        close();
        return;
    }
    handshake_.reset();
    enter_closing();
    shut_down_when_flushed();
}

void EchoConnection::process_frames(uint8_t* data, size_t n) {
    WriteBatch& batch = server_.batch();
    batch.begin(&writer_);
    reader_.feed(data, n, *this);
    if (batch.flush() != 0) {
        close();
        return;
    }
    if (state_ == State::Closing) {
        shut_down_when_flushed();
    } else if (!paused_ && writer_.queued() > kHighWatermark) {
        // The client is not reading its echoes as fast as it sends: stop reading
        // until the queue drains (on_write_drained).
        paused_ = true;
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    }
}

// ---- the echo (FrameReader sink) ----

bool EchoConnection::on_frame_header(const FrameHeader& h) {
    // No extension was negotiated, so the RSV bits must be clear (§5.2).
    if (h.rsv != 0) return protocol_error();
    if (messages_.on_header(h, /*from_client=*/true) != ws::Violation::None) {
        return protocol_error();
    }
    in_control_ = h.is_control();
    if (in_control_) {
        control_len_ = 0;
        return true;
    }
    if (h.opcode != ws::kContinuation) {
        message_opcode_ = h.opcode;
        out_in_message_ = false;
        holding_ = h.opcode == ws::kText;
        held_len_ = 0;
    }
    if (holding_) {
        if (held_len_ + h.payload_length <= kWhoami.size()) return true;  // keep holding
        // Too long to be `whoami`: release what was held, then stream as usual.
        holding_ = false;
        if (held_len_ > 0) emit_frame(false, held_, held_len_);
    }
    emit_header(h.fin, h.payload_length);
    return true;
}

bool EchoConnection::on_frame_payload(uint8_t* bytes, size_t n) {
    // The lengths were checked in on_frame_header: control payloads are at most 125
    // bytes (MessageState) and held text at most 6, so the copies below fit.
    if (in_control_) {
        std::memcpy(control_ + control_len_, bytes, n);
        control_len_ = static_cast<uint8_t>(control_len_ + n);
    } else if (holding_) {
        std::memcpy(held_ + held_len_, bytes, n);
        held_len_ = static_cast<uint8_t>(held_len_ + n);
    } else {
        server_.batch().add(bytes, n);
    }
    return true;
}

bool EchoConnection::on_frame_end(const FrameHeader& h) {
    if (in_control_) {
        switch (h.opcode) {
            case ws::kPing:
                emit_control(ws::kPong, control_, control_len_);
                break;
            case ws::kClose:
                return answer_close();
            default:
                break;  // an unsolicited Pong needs no answer
        }
        return true;
    }
    if (holding_ && h.fin) {
        holding_ = false;
        if (std::string_view(reinterpret_cast<const char*>(held_), held_len_) == kWhoami) {
            const std::string& name = server_.name();
            emit_frame(true, reinterpret_cast<const uint8_t*>(name.data()), name.size());
        } else {
            emit_frame(true, held_, held_len_);
        }
    }
    return true;
}

uint8_t EchoConnection::output_opcode() const {
    return out_in_message_ ? uint8_t{ws::kContinuation} : message_opcode_;
}

void EchoConnection::emit_header(bool fin, uint64_t payload_length) {
    uint8_t header[kMaxFrameHeader];
    size_t n = encode_frame_header(header, fin, output_opcode(), payload_length, nullptr);
    server_.batch().add(header, n);
    out_in_message_ = !fin;
}

void EchoConnection::emit_frame(bool fin, const uint8_t* payload, size_t n) {
    emit_header(fin, n);
    server_.batch().add(payload, n);
}

void EchoConnection::emit_control(uint8_t opcode, const uint8_t* payload, size_t n) {
    uint8_t header[kMaxFrameHeader];
    size_t len = encode_frame_header(header, true, opcode, n, nullptr);
    server_.batch().add(header, len);
    server_.batch().add(payload, n);
}

bool EchoConnection::answer_close() {
    // Echo the client's code; an empty Close gets an empty one; a 1-byte payload or a
    // code no peer may send is a protocol error (§5.5.1, §7.4).
    if (control_len_ == 0) {
        emit_control(ws::kClose, nullptr, 0);
    } else {
        uint16_t code = ws::close_code_of({control_, control_len_});
        if (control_len_ < 2 || !valid_close_code(code)) return protocol_error();
        emit_control(ws::kClose, control_, 2);
    }
    enter_closing();
    return false;
}

bool EchoConnection::protocol_error() {
    uint8_t payload[2] = {static_cast<uint8_t>(ws::kProtocolError >> 8),
                          static_cast<uint8_t>(ws::kProtocolError & 0xFF)};
    emit_control(ws::kClose, payload, sizeof payload);
    enter_closing();
    return false;
}

// ---- closing ----

void EchoConnection::enter_closing() {
    state_ = State::Closing;
    deadline_ms_ = uv_now(server_.loop()) + kClosingTimeoutMs;
    if (paused_) {
        // Keep reading (and discarding) so the client's FIN is seen while lingering.
        paused_ = false;
        if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &EchoConnection::on_alloc,
                          &EchoConnection::on_read) != 0) {
            close();
        }
    }
}

void EchoConnection::shut_down_when_flushed() {
    if (state_ != State::Closing || shutdown_started_ || !writer_.idle()) return;
    // RFC 6455 §7.1.1: after the close handshake the server closes TCP first.
    shutdown_started_ = true;
    shutdown_req_.data = this;
    if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_),
                    &EchoConnection::on_shutdown) != 0) {
        close();
    }
}

void EchoConnection::close() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &EchoConnection::on_close);
}

}  // namespace sb::tools
