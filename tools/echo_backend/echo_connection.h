// EchoConnection: one client of sb-echo-backend, from accept to close.
//
// It reads the upgrade request, answers 101 (or 400), then echoes by streaming: each
// incoming data frame is answered by a frame of the same length, opcode and FIN bit
// as it arrives, its payload unmasked in the shared read buffer and written straight
// from there. So a 16 MiB message needs no 16 MiB buffer, and a steady stream of
// messages costs no allocation. Two exceptions hold bytes back: a text message of at
// most 6 bytes (it might be `whoami`, answered with the backend's name) and control
// frames (a Ping is answered by a Pong with its payload, a Close by a Close with its
// code). Because output frames mirror input frames, the output is between frames
// exactly when the input is, which is where those replies go.
//
// Backpressure: above kHighWatermark queued bytes, reading stops; it resumes once
// the queue is back at kLowWatermark.
//
// Allocated by EchoServer on accept; frees itself in its close callback (never on the
// spot); single-threaded.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/frame_codec.h"
#include "common/stream_writer.h"
#include "ws/protocol.h"

namespace sb::tools {

class EchoServer;

class EchoConnection final : public StreamWriter::Listener {
  public:
    static constexpr size_t kHighWatermark = 256 * 1024;
    static constexpr size_t kLowWatermark = 64 * 1024;

    explicit EchoConnection(EchoServer& server);
    EchoConnection(const EchoConnection&) = delete;
    EchoConnection& operator=(const EchoConnection&) = delete;
    ~EchoConnection();

    // Accepts the connection pending on `listener` and starts reading. On failure the
    // connection closes (and frees) itself.
    void start(uv_stream_t* listener);
    // Server shutdown: a best-effort Close 1001 if the output is between frames, then
    // close at once.
    void go_away();
    // Called by the server's sweep: closes the connection if its state's deadline
    // (uv_now milliseconds) has passed.
    void check_deadline(uint64_t now_ms);

    // FrameReader sink (see frame_codec.h).
    bool on_frame_header(const FrameHeader& h);
    bool on_frame_payload(uint8_t* bytes, size_t n);
    bool on_frame_end(const FrameHeader& h);

    // Links of the server's live-connection list.
    EchoConnection* prev = nullptr;
    EchoConnection* next = nullptr;

  private:
    enum class State {
        Handshake,  // reading the request head; deadline kHandshakeTimeoutMs
        Open,       // echoing frames
        Closing,    // our last bytes (a Close, or a 400) are queued; input is discarded
        Lingering,  // FIN sent; reading and discarding until the client's FIN
        Closed,     // uv_close called; the close callback frees the connection
    };
    static constexpr uint64_t kHandshakeTimeoutMs = 30'000;
    static constexpr uint64_t kClosingTimeoutMs = 10'000;
    static constexpr uint64_t kLingerTimeoutMs = 2'000;

    struct Handshake;  // the request head being read; freed once answered

    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
    static void on_close(uv_handle_t* handle) noexcept;
    void on_write_drained() override;
    void on_write_error(int status) override;

    void handle_read(ssize_t nread, const uv_buf_t* buf);
    void handle_handshake_bytes(const char* data, size_t n);
    void reject(std::string_view reason);
    // Echoes frames from data[0..n) (writable: payloads are unmasked in place).
    void process_frames(uint8_t* data, size_t n);

    // Output helpers: they add to the server's WriteBatch, flushed by process_frames.
    void emit_header(bool fin, uint64_t payload_length);
    void emit_frame(bool fin, const uint8_t* payload, size_t n);
    void emit_control(uint8_t opcode, const uint8_t* payload, size_t n);
    uint8_t output_opcode() const;
    // Answers a Close frame (in control_) and starts closing. Returns false.
    bool answer_close();
    // Sends Close 1002 and starts closing. Returns false, to stop the frame reader.
    bool protocol_error();

    void enter_closing();
    void shut_down_when_flushed();
    void close();

    EchoServer& server_;
    uv_tcp_t tcp_{};
    uv_shutdown_t shutdown_req_{};
    State state_ = State::Handshake;
    uint64_t deadline_ms_ = 0;  // for Handshake, Closing and Lingering; 0 = none
    bool paused_ = false;       // reading stopped for backpressure
    bool shutdown_started_ = false;
    StreamWriter writer_;
    std::unique_ptr<Handshake> handshake_;
    FrameReader reader_;
    ws::MessageState messages_;

    // Echo state of the message in progress.
    uint8_t message_opcode_ = ws::kBinary;  // opcode of its first frame
    bool out_in_message_ = false;           // we sent a non-final frame of it
    bool in_control_ = false;               // the current input frame is a control frame
    bool holding_ = false;                  // holding a short text message (maybe whoami)
    uint8_t held_len_ = 0;
    uint8_t held_[6] = {};
    uint8_t control_len_ = 0;
    uint8_t control_[125] = {};
};

}  // namespace sb::tools
