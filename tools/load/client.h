// Client: one sb-load WebSocket connection, from connect to close: TCP connect, the
// TLS handshake when the run has --tls (TlsStream), the upgrade handshake, masked
// binary messages generated from the shared pattern, echoes checked byte for byte as
// they arrive, Pong answers to Pings, and the close handshake. What to send and when
// is decided by its owner through Events (LoadRun).
//
// A message is one frame. It is generated in 64 KiB chunks while the write queue is
// under kHighWatermark, so a 16 MiB message costs no 16 MiB buffer, and small
// messages cost no allocation. Our control frames (Pong, Close) wait until the frame
// being sent is complete: nothing may be inserted inside a frame.
//
// Allocated by LoadRun; freed by LoadRun in on_client_done(), which the handle's close
// callback calls (never on the spot). Single-threaded.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/frame_codec.h"
#include "common/stream_writer.h"
#include "load/client_context.h"
#include "load/tls_stream.h"
#include "ws/protocol.h"

namespace sb::tools {

// Why a client failed; each kind is one key of the report's "error_kinds".
enum class ClientError {
    None,          // no error (or cancelled by us at the end of the run)
    Connect,       // TCP connect failed
    Timeout,       // connect + handshake took longer than the connect timeout
    HttpStatus,    // the server answered the upgrade with something other than 101
    Handshake,     // a malformed answer, a wrong accept key, or a close before it
    Protocol,      // a frame breaking RFC 6455 (masked, reserved bits, bad control)
    Mismatch,      // an echo that differs from what was sent (content, length, opcode)
    ServerClose,   // the server sent a Close we did not ask for
    Eof,           // the connection closed or reset without a close handshake
    Write,         // a write failed
    CloseTimeout,  // no answer to our Close in time
    Tls,           // the TLS handshake failed, or a record did not decrypt
};
inline constexpr size_t kClientErrorKinds = 12;
std::string_view client_error_name(ClientError e);

// Scheduled send times of one client in rate mode: [head, sent) were sent and await
// their echo, [sent, tail) are due but not sent yet. Fixed capacity (a power of two).
class TimeRing {
  public:
    void reset(size_t capacity) {
        times_.assign(capacity, 0);
        mask_ = capacity - 1;
    }
    bool full() const { return tail_ - head_ == times_.size(); }
    void push(uint64_t t) { times_[tail_++ & mask_] = t; }
    bool has_unsent() const { return sent_ < tail_; }
    uint64_t take_unsent() { return times_[sent_++ & mask_]; }
    uint64_t pop_sent() { return times_[head_++ & mask_]; }
    uint64_t unsent() const { return tail_ - sent_; }
    uint64_t awaiting() const { return sent_ - head_; }

  private:
    std::vector<uint64_t> times_;
    uint64_t mask_ = 0;
    uint64_t head_ = 0, sent_ = 0, tail_ = 0;
};

class Client final : public StreamWriter::Listener {
  public:
    class Events {
      public:
        virtual void on_client_open(Client& c, uint64_t now_ns) = 0;
        // An echo of the oldest message in flight arrived, complete and intact.
        virtual void on_client_echo(Client& c, uint64_t now_ns) = 0;
        // The client can take a new message (can_send()) after being unable to.
        virtual void on_client_writable(Client& c) = 0;
        // The handle has closed; the owner deletes the client when this returns.
        virtual void on_client_done(Client& c) = 0;

      protected:
        ~Events() = default;
    };

    enum class State {
        Connecting,   // TCP connect in progress
        Handshaking,  // TLS handshake (--tls), then request sent, reading the response head
        Open,         // messages flow
        Closing,      // close handshake under way; nothing new is sent
        Closed,       // uv_close called; on_client_done follows
    };

    static constexpr size_t kHighWatermark = 256 * 1024;
    static constexpr size_t kLowWatermark = 64 * 1024;

    Client(ClientContext& context, Events& events, uint32_t slot, uint32_t id);
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    ~Client();

    // Starts connecting. Returns false when not even the handle could be set up (the
    // owner then deletes the client itself); any later failure ends in on_client_done.
    [[nodiscard]] bool connect(uint64_t now_ns);
    // True when a new message may start: Open, the previous one fully handed to the
    // writer, and the write queue under the high watermark.
    bool can_send() const {
        return state_ == State::Open && tx_left_ == 0 && !tx_active_ &&
               writer_.queued() < kHighWatermark;
    }
    // Starts message number sent() (requires can_send()).
    void send_message(uint64_t now_ns);
    // Ends the connection politely: Close 1000 once the frame being sent is complete,
    // then wait for the server's Close and its TCP close. While connecting, cancels;
    // while handshaking, waits for the answer first.
    void close_gracefully(uint64_t now_ns);
    // Closes at once, recording `error` (None: a cancellation, not an error).
    void abort(ClientError error);
    // Enforces the connect and close timeouts; called periodically by the owner.
    void check_deadline(uint64_t now_ns);

    State state() const { return state_; }
    ClientError error() const { return error_; }
    uint32_t slot() const { return slot_; }
    bool was_open() const { return opened_ns_ != 0; }
    uint64_t connect_started_ns() const { return connect_started_ns_; }
    uint64_t opened_ns() const { return opened_ns_; }
    uint64_t last_send_ns() const { return last_send_ns_; }
    uint64_t sent() const { return tx_seq_; }
    uint64_t echoed() const { return rx_seq_; }
    uint64_t in_flight() const { return tx_seq_ - rx_seq_; }
    // Both Close frames were exchanged.
    bool closed_cleanly() const { return close_sent_ && close_received_; }
    // The connection's TLS (after its handshake: version, resumption); null without --tls.
    const TlsStream* tls() const { return tls_.get(); }

    // Rate mode's schedule (unused otherwise).
    TimeRing schedule;

    // FrameReader sink (see frame_codec.h).
    bool on_frame_header(const FrameHeader& h);
    bool on_frame_payload(uint8_t* bytes, size_t n);
    bool on_frame_end(const FrameHeader& h);

  private:
    struct Handshake;  // request key and response head; freed once open

    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_close(uv_handle_t* handle) noexcept;
    void on_write_drained() override;
    void on_write_error(int status) override;

    void handle_connect(int status);
    void handle_read(ssize_t nread, const uv_buf_t* buf);
    // The server closed (TCP EOF, a reset, or TLS close_notify).
    void handle_end();
    // Ciphertext read with --tls: the handshake, then plaintext to handle_plain().
    void handle_tls_bytes(uint8_t* data, size_t n);
    // Bytes of the WebSocket connection: the response head, then frames.
    void handle_plain(uint8_t* data, size_t n);
    bool send_upgrade_request();
    // Everything leaves through here: encrypted with --tls, as is otherwise.
    int send_bytes(const void* data, size_t n) {
        return tls_ != nullptr ? tls_->write(data, n) : writer_.write(data, n);
    }
    void handle_handshake_bytes(const char* data, size_t n);
    void process_frames(uint8_t* data, size_t n);
    // Generates and writes the current message until it is done or the queue is full.
    void pump(size_t header_length);
    // Sends the control frames that waited for the end of the frame being sent.
    void after_frame();
    void send_control(uint8_t opcode, const uint8_t* payload, size_t n);
    void send_close(uint16_t code);
    bool mismatch();
    void note_error(ClientError e) {
        if (error_ == ClientError::None) error_ = e;
    }

    ClientContext& context_;
    Events& events_;
    uint32_t slot_;
    uint32_t id_;
    State state_ = State::Connecting;
    ClientError error_ = ClientError::None;
    uv_tcp_t tcp_{};
    uv_connect_t connect_req_{};
    StreamWriter writer_;
    std::unique_ptr<TlsStream> tls_;  // --tls only; writes into writer_
    std::unique_ptr<Handshake> handshake_;
    FrameReader reader_;
    ws::MessageState messages_;
    uint64_t connect_started_ns_ = 0;
    uint64_t opened_ns_ = 0;
    uint64_t deadline_ns_ = 0;  // Connecting, Handshaking and Closing; 0 = none

    // Sending: message tx_seq_ - 1 is being generated while tx_left_ > 0.
    uint64_t tx_seq_ = 0;
    uint64_t tx_left_ = 0;
    uint64_t tx_offset_ = 0;
    size_t tx_start_ = 0;
    bool tx_active_ = false;  // inside pump(): re-entry guard
    uint8_t tx_mask_[4] = {};
    uint64_t last_send_ns_ = 0;

    // Receiving: the echo of message rx_seq_ is expected next.
    uint64_t rx_seq_ = 0;
    uint64_t rx_offset_ = 0;
    size_t rx_start_ = 0;
    bool in_control_ = false;
    uint8_t control_len_ = 0;
    uint8_t control_[125] = {};

    // Control frames waiting for a frame boundary of our output.
    bool pong_pending_ = false;
    uint8_t pong_len_ = 0;
    uint8_t pong_[125] = {};
    bool close_when_open_ = false;  // close_gracefully() came during the handshake
    bool close_pending_ = false;
    uint16_t close_code_ = ws::kNormalClosure;
    bool close_sent_ = false;
    bool close_received_ = false;
};

}  // namespace sb::tools
