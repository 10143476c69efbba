#include "load/client.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/handshake.h"
#include "http/message_parser.h"

namespace sb::tools {

std::string_view client_error_name(ClientError e) {
    switch (e) {
        case ClientError::None:
            return "none";
        case ClientError::Connect:
            return "connect";
        case ClientError::Timeout:
            return "timeout";
        case ClientError::HttpStatus:
            return "http_status";
        case ClientError::Handshake:
            return "handshake";
        case ClientError::Protocol:
            return "protocol";
        case ClientError::Mismatch:
            return "mismatch";
        case ClientError::ServerClose:
            return "server_close";
        case ClientError::Eof:
            return "eof";
        case ClientError::Write:
            return "write";
        case ClientError::CloseTimeout:
            return "close_timeout";
        case ClientError::Tls:
            return "tls";
    }
    return "unknown";
}

struct Client::Handshake {
    std::string key;
    std::string head;
    http::MessageParser parser{http::MessageParser::Kind::Response};
};

Client::Client(ClientContext& context, Events& events, uint32_t slot, uint32_t id)
    : context_(context), events_(events), slot_(slot), id_(id) {}

Client::~Client() = default;

bool Client::connect(uint64_t now_ns) {
    connect_started_ns_ = now_ns;
    deadline_ns_ = now_ns + context_.connect_timeout_ns;
    if (uv_tcp_init(context_.loop, &tcp_) != 0) return false;
    tcp_.data = this;
    connect_req_.data = this;
    writer_.init(reinterpret_cast<uv_stream_t*>(&tcp_), this, kLowWatermark);
    if (context_.tls != nullptr) tls_ = std::make_unique<TlsStream>(*context_.tls, slot_, writer_);
    handshake_ = std::make_unique<Handshake>();
    int rc =
        uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&context_.address),
                       &Client::on_connect);
    if (rc != 0) abort(ClientError::Connect);  // EMFILE, EADDRNOTAVAIL, ...
    return true;
}

// ---- libuv trampolines ----

void Client::on_connect(uv_connect_t* req, int status) noexcept {
    static_cast<Client*>(req->data)->handle_connect(status);
}

void Client::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<Client*>(handle->data);
    // All clients read into the context's one buffer; a read callback consumes it
    // entirely before returning.
    *buf = uv_buf_init(reinterpret_cast<char*>(self->context_.read_buffer.get()),
                       static_cast<unsigned>(ClientContext::kChunkBytes));
}

void Client::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    static_cast<Client*>(stream->data)->handle_read(nread, buf);
}

void Client::on_close(uv_handle_t* handle) noexcept {
    auto* self = static_cast<Client*>(handle->data);
    self->events_.on_client_done(*self);  // deletes self
}

void Client::on_write_drained() {
    if (state_ == State::Closed) return;
    if (tx_left_ > 0 && !tx_active_) {
        pump(0);
        if (state_ == State::Closed) return;
    }
    if (can_send()) events_.on_client_writable(*this);
}

void Client::on_write_error(int status) {
    abort(status == UV_ECANCELED ? ClientError::None : ClientError::Write);
}

// ---- connection and handshake ----

void Client::handle_connect(int status) {
    if (state_ == State::Closed) return;  // aborted while connecting (UV_ECANCELED)
    if (status != 0) {
        abort(ClientError::Connect);
        return;
    }
    uv_tcp_nodelay(&tcp_, 1);
    state_ = State::Handshaking;
    if (tls_ != nullptr) {
        // The upgrade request follows once the TLS handshake is done (handle_tls_bytes).
        if (!tls_->start()) {
            abort(writer_.error() != 0 ? ClientError::Write : ClientError::Tls);
            return;
        }
    } else if (!send_upgrade_request()) {
        return;
    }
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Client::on_alloc, &Client::on_read) !=
        0) {
        abort(ClientError::Connect);
    }
}

bool Client::send_upgrade_request() {
    handshake_->key = random_key(context_.rng);
    std::string request = upgrade_request(context_.host_header, context_.path, handshake_->key);
    if (send_bytes(request.data(), request.size()) != 0) {
        abort(ClientError::Write);
        return false;
    }
    return true;
}

void Client::handle_read(ssize_t nread, const uv_buf_t* buf) {
    if (nread == 0 || state_ == State::Closed) return;
    if (nread < 0) {
        handle_end();
        return;
    }
    auto* data = reinterpret_cast<uint8_t*>(buf->base);
    auto n = static_cast<size_t>(nread);
    if (tls_ != nullptr) {
        handle_tls_bytes(data, n);
    } else {
        handle_plain(data, n);
    }
}

void Client::handle_end() {
    // After the close handshake this is the server's close, the normal end; anywhere
    // else the connection died under us.
    if (state_ == State::Handshaking) {
        abort(tls_ != nullptr && !tls_->handshake_done() ? ClientError::Tls
                                                         : ClientError::Handshake);
    } else if (state_ == State::Closing && close_received_) {
        if (tls_ != nullptr) tls_->end_cleanly();
        abort(ClientError::None);
    } else {
        abort(ClientError::Eof);
    }
}

void Client::handle_tls_bytes(uint8_t* data, size_t n) {
    tls_->give_input(data, n);
    if (!tls_->handshake_done()) {
        switch (tls_->handshake()) {
            case TlsStream::Status::Ok:
                break;
            case TlsStream::Status::WantRead:
                return;
            case TlsStream::Status::Closed:
            case TlsStream::Status::Error:
                abort(ClientError::Tls);
                return;
        }
        if (!send_upgrade_request()) return;
    }
    // Each pass either decrypts a record (consuming input) or has consumed it all, so
    // the loop ends with the bytes handed in.
    uint8_t* plain = context_.plain_buffer.get();
    for (;;) {
        size_t got = 0;
        switch (tls_->read(plain, ClientContext::kChunkBytes, got)) {
            case TlsStream::Status::Ok:
                handle_plain(plain, got);
                if (state_ == State::Closed) return;
                break;
            case TlsStream::Status::WantRead:
                return;
            case TlsStream::Status::Closed:
                handle_end();
                return;
            case TlsStream::Status::Error:
                abort(ClientError::Tls);
                return;
        }
    }
}

void Client::handle_plain(uint8_t* data, size_t n) {
    if (state_ == State::Handshaking) {
        handle_handshake_bytes(reinterpret_cast<const char*>(data), n);
    } else if (!close_received_) {
        process_frames(data, n);
    }
}

void Client::handle_handshake_bytes(const char* data, size_t n) {
    Handshake& hs = *handshake_;
    hs.head.append(data, n);
    switch (hs.parser.parse(hs.head)) {
        case http::MessageParser::Status::NeedMore:
            if (hs.head.size() > kMaxHeadBytes) abort(ClientError::Handshake);
            return;
        case http::MessageParser::Status::Error:
            abort(ClientError::Handshake);
            return;
        case http::MessageParser::Status::Complete:
            break;
    }
    std::string_view head(hs.head.data(), hs.parser.head_length());
    UpgradeResponseCheck check = check_upgrade_response(head, hs.parser, hs.key);
    if (check.verdict != ResponseVerdict::Accepted) {
        abort(check.verdict == ResponseVerdict::Refused ? ClientError::HttpStatus
                                                        : ClientError::Handshake);
        return;
    }
    state_ = State::Open;
    opened_ns_ = uv_hrtime();
    deadline_ns_ = 0;
    // Frames may follow the head in the same read; keep the head buffer alive while
    // they are processed, then free it.
    std::unique_ptr<Handshake> done = std::move(handshake_);
    events_.on_client_open(*this, opened_ns_);
    if (close_when_open_ && state_ == State::Open) close_gracefully(opened_ns_);
    size_t head_length = done->parser.head_length();
    if ((state_ == State::Open || state_ == State::Closing) && done->head.size() > head_length) {
        process_frames(reinterpret_cast<uint8_t*>(done->head.data()) + head_length,
                       done->head.size() - head_length);
    }
}

// ---- sending ----

void Client::send_message(uint64_t now_ns) {
    tx_start_ = ClientContext::pattern_start(id_, tx_seq_);
    ++tx_seq_;
    tx_left_ = context_.message_size;
    tx_offset_ = 0;
    last_send_ns_ = now_ns;
    uint64_t key = context_.rng.next();
    std::memcpy(tx_mask_, &key, sizeof tx_mask_);
    size_t header_length = encode_frame_header(context_.tx_buffer.get(), true, ws::kBinary,
                                               context_.message_size, tx_mask_);
    pump(header_length);
}

void Client::pump(size_t header_length) {
    // The first chunk shares the transmit buffer with the frame header, so a small
    // message leaves in one write.
    uint8_t* buffer = context_.tx_buffer.get();
    tx_active_ = true;
    for (;;) {
        size_t chunk =
            static_cast<size_t>(std::min<uint64_t>(tx_left_, ClientContext::kChunkBytes));
        mask_copy(buffer + header_length, context_.pattern_at(tx_start_, tx_offset_), chunk,
                  tx_mask_, tx_offset_);
        if (send_bytes(buffer, header_length + chunk) != 0) {
            tx_active_ = false;
            abort(ClientError::Write);
            return;
        }
        tx_left_ -= chunk;
        tx_offset_ += chunk;
        header_length = 0;
        if (tx_left_ == 0) break;
        if (writer_.queued() >= kHighWatermark) {
            tx_active_ = false;  // on_write_drained() resumes
            return;
        }
    }
    tx_active_ = false;
    after_frame();
}

void Client::after_frame() {
    if (state_ == State::Closed) return;
    if (pong_pending_) {
        pong_pending_ = false;
        send_control(ws::kPong, pong_, pong_len_);
    }
    if (close_pending_ && !close_sent_ && state_ != State::Closed) {
        close_pending_ = false;
        send_close(close_code_);
    }
}

void Client::send_control(uint8_t opcode, const uint8_t* payload, size_t n) {
    uint8_t frame[kMaxFrameHeader + 125];
    uint8_t mask[4];
    uint64_t key = context_.rng.next();
    std::memcpy(mask, &key, sizeof mask);
    size_t header_length = encode_frame_header(frame, true, opcode, n, mask);
    mask_copy(frame + header_length, payload, n, mask, 0);
    if (send_bytes(frame, header_length + n) != 0) abort(ClientError::Write);
}

void Client::send_close(uint16_t code) {
    close_sent_ = true;
    uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code & 0xFF)};
    send_control(ws::kClose, payload, sizeof payload);
}

void Client::close_gracefully(uint64_t now_ns) {
    switch (state_) {
        case State::Connecting:
            abort(ClientError::None);
            return;
        case State::Handshaking:
            // The request is out, and a proxy may already have involved a backend:
            // hear the answer, then close politely (see handle_handshake_bytes).
            close_when_open_ = true;
            deadline_ns_ = std::min(deadline_ns_, now_ns + context_.close_timeout_ns);
            return;
        case State::Open:
            state_ = State::Closing;
            deadline_ns_ = now_ns + context_.close_timeout_ns;
            close_pending_ = true;
            close_code_ = ws::kNormalClosure;
            if (tx_left_ == 0 && !tx_active_) after_frame();
            return;
        case State::Closing:
        case State::Closed:
            return;
    }
}

void Client::abort(ClientError error) {
    if (state_ == State::Closed) return;
    note_error(error);
    state_ = State::Closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Client::on_close);
}

void Client::check_deadline(uint64_t now_ns) {
    if (deadline_ns_ == 0 || now_ns < deadline_ns_) return;
    switch (state_) {
        case State::Connecting:
        case State::Handshaking:
            abort(ClientError::Timeout);
            return;
        case State::Closing:
            // Only a Close left unanswered is the server's fault. A server that answered
            // but kept TCP open, or a message of ours still being sent when the run
            // ended, is cut without blame.
            abort(close_sent_ && !close_received_ ? ClientError::CloseTimeout : ClientError::None);
            return;
        case State::Open:
        case State::Closed:
            return;
    }
}

// ---- receiving (FrameReader sink) ----

void Client::process_frames(uint8_t* data, size_t n) {
    reader_.feed(data, n, *this);
}

bool Client::mismatch() {
    abort(ClientError::Mismatch);
    return false;
}

bool Client::on_frame_header(const FrameHeader& h) {
    if (state_ == State::Closed) return false;
    // No extension was negotiated, so the RSV bits must be clear; server frames must
    // not be masked; control frames must be short and whole (MessageState).
    if (h.rsv != 0 || messages_.on_header(h, /*from_client=*/false) != ws::Violation::None) {
        abort(ClientError::Protocol);
        return false;
    }
    in_control_ = h.is_control();
    if (in_control_) {
        control_len_ = 0;
        return true;
    }
    if (h.opcode != ws::kContinuation) {
        // A new message: it must be the echo of our oldest message in flight.
        if (in_flight() == 0 || h.opcode != ws::kBinary) return mismatch();
        rx_offset_ = 0;
        rx_start_ = ClientContext::pattern_start(id_, rx_seq_);
    }
    if (h.payload_length > context_.message_size - rx_offset_) return mismatch();
    return true;
}

bool Client::on_frame_payload(uint8_t* bytes, size_t n) {
    if (in_control_) {
        std::memcpy(control_ + control_len_, bytes, n);  // <= 125 bytes: checked above
        control_len_ = static_cast<uint8_t>(control_len_ + n);
        return true;
    }
    while (n > 0) {
        size_t piece = std::min(n, ClientContext::kPatternPeriod);
        if (std::memcmp(bytes, context_.pattern_at(rx_start_, rx_offset_), piece) != 0) {
            return mismatch();
        }
        bytes += piece;
        n -= piece;
        rx_offset_ += piece;
    }
    return true;
}

bool Client::on_frame_end(const FrameHeader& h) {
    if (in_control_) {
        if (h.opcode == ws::kPing) {
            std::memcpy(pong_, control_, control_len_);
            pong_len_ = control_len_;
            pong_pending_ = true;
            if (tx_left_ == 0 && !tx_active_) after_frame();
        } else if (h.opcode == ws::kClose) {
            close_received_ = true;
            if (!close_sent_) {
                // The server closes on its own (a drain, a limit, a crash recovery...).
                note_error(ClientError::ServerClose);
                if (tx_left_ > 0) {
                    abort(ClientError::ServerClose);  // cannot answer inside our frame
                    return false;
                }
                uint16_t code = ws::close_code_of({control_, control_len_});
                close_code_ = code == 1005 ? uint16_t{ws::kNormalClosure} : code;
                close_pending_ = true;
                state_ = State::Closing;
                deadline_ns_ = uv_hrtime() + context_.close_timeout_ns;
                after_frame();
            }
            return false;  // nothing may follow a Close; wait for the TCP close
        }
        return state_ != State::Closed;
    }
    if (h.fin) {
        if (rx_offset_ != context_.message_size) return mismatch();
        ++rx_seq_;
        events_.on_client_echo(*this, uv_hrtime());
    }
    return state_ != State::Closed;
}

}  // namespace sb::tools
