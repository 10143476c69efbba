// Pipe: one direction of a session's relay, from a source socket to a destination
// socket. Both directions are the same code with the roles swapped.
//
// Owned by its Session (a member, never moved); runs on the session's worker thread.
//
// What it does with each chunk read from the source:
//  - the FrameScanner follows frame headers in place (payloads are never copied or
//    unmasked), so the Pipe counts messages and bytes and sees Close frames;
//  - the chunk is written with uv_try_write; only a remainder is queued, with the
//    uv_write_t embedded in the chunk's Block, so there is at most one write in
//    flight and it never allocates;
//  - while a write is in flight the source is not read (backpressure by stopping
//    reads, never by growing a queue): memory per direction is at most one Block;
//  - a control frame of the proxy's own (Close, Ping) waits for the next frame
//    boundary and is written between two frames, never inside one.
//
// Once the source has ended (EOF) and everything is written, the destination is
// shut down for writing: TCP half-close propagates, and the Pipe is done.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string_view>

#include "uv/block_pool.h"
#include "ws/frame_scanner.h"
#include "ws/protocol.h"

namespace sb::session {

class Session;

class Pipe {
  public:
    enum class Mode : uint8_t {
        Frames,  // WebSocket frames after a 101
        Raw,     // bytes as they come (a non-101 answer passed through)
    };

    Pipe(Session& session, bool from_client) : session_(session), from_client_(from_client) {}
    ~Pipe();
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    void attach(uv_stream_t* src, uv_stream_t* dst, Mode mode) {
        src_ = src;
        dst_ = dst;
        mode_ = mode;
    }

    // Starts reading the source (deferred while a write is in flight).
    void start();
    // Stops reading the source for good (until start() is called again).
    void stop();

    // Scans bytes that arrived with the handshake and will be written by the session
    // ahead of the relay, so the scanner's view of the stream stays complete.
    void scan_only(std::string_view bytes);

    // libuv read plumbing for the source socket (called by the Session trampolines).
    void on_alloc(uv_buf_t* buf);
    void on_read(ssize_t nread, const uv_buf_t* buf);

    // Queues a Close frame to the destination at the next frame boundary; bytes read
    // after that point are no longer forwarded, only watched for the source's own
    // Close frame. Does nothing if a Close already went this way.
    void send_close(uint16_t code, std::string_view reason);
    // Stops forwarding without sending anything (the destination is gone).
    void discard() { discarding_ = true; }

    // Shuts the destination down for writing once pending bytes are written.
    void shutdown_destination();

    bool attached() const { return src_ != nullptr; }
    bool from_client() const { return from_client_; }
    bool source_ended() const { return source_ended_; }
    bool close_forwarded() const { return close_forwarded_; }
    // The source sent a Close frame (forwarded or, when discarding, swallowed).
    bool close_received() const { return close_received_; }
    bool write_pending() const { return in_flight_ != nullptr; }
    bool done() const { return shutdown_done_; }

    uint64_t bytes() const { return bytes_; }
    uint64_t messages() const { return messages_; }

  private:
    struct Sink;

    void forward(uv::Block* block);
    // Writes bufs (which point into `owner` and, if set, `extra`); both blocks go
    // back to the pool once their bytes are written. Returns false on error (the
    // session has been told).
    bool write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    void write_control();
    void after_write();
    void maybe_shutdown();
    void release(uv::Block* block);
    void pause();
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;

    Session& session_;
    uv_stream_t* src_ = nullptr;
    uv_stream_t* dst_ = nullptr;
    ws::FrameScanner scanner_;
    ws::MessageState message_;
    uv::Block* in_flight_ = nullptr;        // block whose bytes a queued write still needs
    uv::Block* in_flight_extra_ = nullptr;  // a control frame written along with it
    uv::Block* control_ = nullptr;          // a proxy frame waiting for a frame boundary
    uint64_t bytes_ = 0;
    uint64_t messages_ = 0;
    Mode mode_ = Mode::Frames;
    const bool from_client_;
    bool reading_ = false;
    bool stopped_ = false;      // the session stopped reading for good
    bool paused_ = false;       // reading stopped by backpressure
    bool forwarding_ = false;   // inside forward(): defer shutdowns and controls
    bool dst_boundary_ = true;  // what went to dst so far ends between two frames
    bool control_is_close_ = false;
    bool discarding_ = false;       // forward nothing more; watch for Close and EOF
    bool close_forwarded_ = false;  // a Close frame went to dst (the source's or ours)
    bool close_received_ = false;   // the source sent a Close frame
    bool source_ended_ = false;
    bool shutdown_wanted_ = false;
    bool shutdown_sent_ = false;
    bool shutdown_done_ = false;
};

}  // namespace sb::session
