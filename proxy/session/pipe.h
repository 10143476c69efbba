// Pipe: one direction of a session's relay, from a source Endpoint to a destination
// Endpoint. Both directions are the same code with the roles swapped.
//
// Owned by its Session (a member, never moved); runs on the session's worker thread.
//
// What it does with each run of bytes its source delivers (every byte of the
// direction, from the first one that arrived with the handshake on, comes through
// on_bytes; there is no other way in):
//  - the FrameScanner follows frame headers in place (payloads are never copied or
//    unmasked), so the Pipe counts messages and bytes, sees Close frames, and applies
//    the client's framing rules and message limits;
//  - the bytes are written to the destination; while its writes are pending the
//    source is paused (backpressure by stopping reads, never by growing a queue), so
//    a direction holds at most the block it is writing (eight in the rare case below);
//  - most of a large payload between plain sockets is spliced (splice(2) through the
//    worker's kernel pipe, never copied into the proxy), in rounds no larger than the
//    destination's free send buffer; what it refuses all the same is read back into
//    blocks and queued as an ordinary write;
//  - a control frame of the proxy's own (Close, Ping) waits for the next frame
//    boundary and is written between two frames, never inside one;
//  - what goes out never ends inside a frame header: a header split across
//    deliveries is held back in a Carry and put in front of the next delivery, so the
//    stream can always be cut cleanly at the start of a frame. The same hold-back keeps
//    a client's Pong that may answer the proxy's own Ping until it can be compared,
//    so the matching Pong is swallowed and never reaches the backend.
//
// Once the source has ended (EOF) and the session asks, the destination is shut down
// for writing: TCP half-close propagates, and the Pipe is done.
#pragma once

#include <uv.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include "config/config.h"
#include "metrics/worker_stats.h"
#include "net/splice_pipe.h"
#include "session/endpoint.h"
#include "uv/block_pool.h"
#include "ws/frame_scanner.h"
#include "ws/protocol.h"

namespace sb::session {

class Session;

// Source bytes a Pipe holds back from one delivery to the next: an incomplete frame
// header (13 bytes at most), or the start of a Pong that may answer the proxy's Ping
// (its 6-byte masked header and 8-byte token: the only Pong held, since a longer
// header is a violation that stops the relay first). A run that does not fit is
// never held (hold() refuses it and the Pipe forwards it instead), so no input can
// overrun it, whatever the checks before it let through.
class Carry {
  public:
    static constexpr size_t kCapacity = 14;

    // Keeps a copy of `n` bytes; false, keeping nothing, if they do not fit.
    bool hold(const char* data, size_t n) {
        if (n > kCapacity) {
            len_ = 0;
            return false;
        }
        std::memcpy(bytes_, data, n);
        len_ = static_cast<uint8_t>(n);
        return true;
    }
    // Puts the held bytes in front of `data` (which has room for them before it) and
    // forgets them; returns where the run now starts.
    char* put_before(char* data) {
        char* start = data - len_;
        std::memcpy(start, bytes_, len_);
        len_ = 0;
        return start;
    }
    size_t size() const { return len_; }
    const uint8_t* data() const { return bytes_; }
    void clear() { len_ = 0; }

  private:
    uint8_t bytes_[kCapacity] = {};
    uint8_t len_ = 0;
};
static_assert(Endpoint::kHeadroom >= Carry::kCapacity,
              "a delivery's headroom must take everything a Carry can hold");

class Pipe {
  public:
    enum class Mode : uint8_t {
        Frames,  // WebSocket frames after a 101
        Raw,     // bytes as they come: an HTTP body (a request's, an answer's), or a
                 // non-101 answer to an upgrade; the session frames them (on_raw_bytes)
    };

    // Why forwarding stopped at a frame: the session decides what to send.
    enum class Stop : uint8_t {
        None,
        Violation,    // RFC 6455 framing broken (see violation())
        TooBig,       // message over max_message_bytes
        RateLimited,  // over max_messages_per_second
    };

    // A payload is spliced when more than this is left of it (a few blocks' worth:
    // below that, two splices per chunk gain nothing on a read and a write).
    static constexpr uint64_t kSpliceMin = 32 * 1024;
    // Bytes per splice round at most: what the destination refuses of a round is
    // parked in read blocks.
    static constexpr uint64_t kSpliceRound =
        8 * (uv::BlockPool::kBlockSize - uv::BlockPool::kBlockSlack);
    // Splice rounds per read callback: 1 MiB, then the other sessions' turn.
    static constexpr int kSpliceRounds = 8;
    static_assert(kSpliceRound <= net::SplicePipe::kCapacity);

    Pipe(Session& session, bool from_client) : session_(session), from_client_(from_client) {}
    ~Pipe();
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    // Starts relaying in `mode`; reading starts with start().
    void attach(Mode mode) {
        mode_ = mode;
        attached_ = true;
    }
    // Back to the state of a new Pipe, for the next HTTP exchange on a kept-alive
    // connection (or its WebSocket upgrade). Only between exchanges: nothing of this
    // direction is held, waiting or being forwarded.
    void reset();
    // Starts (or resumes) taking the source's bytes: those it holds first.
    void start();
    // Stops taking the source's bytes for good (until start() is called again).
    void stop();

    // ---- from the source Endpoint ----

    // `n` bytes at `data` inside `block` (with Endpoint::kHeadroom free before
    // `data`); the Pipe owns the block from here on.
    void on_bytes(uv::Block* block, char* data, size_t n);
    // The source ended (UV_EOF, or close_notify) or failed (another status).
    void on_end(int status);

    // ---- from the destination Endpoint ----

    // Everything written to the destination is out: take source bytes again.
    void on_drained();
    // The destination's FIN is out.
    void on_shutdown();

    // Queues a Close frame to the destination at the next frame boundary; bytes read
    // after that point are no longer forwarded, only watched for the source's own
    // Close frame. Does nothing if a Close already went this way.
    void send_close(uint16_t code, std::string_view reason);
    // Queues a Ping carrying `token` (8 bytes) at the next frame boundary; false if
    // another proxy frame is still waiting.
    bool send_ping(uint64_t token);
    // The source's Pong carrying the session's Ping token answers our Ping: swallow it.
    void expect_pong() { pong_expected_ = true; }
    // Stops forwarding without sending anything (the destination is gone).
    void discard() { discarding_ = true; }

    // Shuts the destination down for writing once pending bytes are written.
    void shutdown_destination();

    bool attached() const { return attached_; }
    bool from_client() const { return from_client_; }
    bool source_ended() const { return source_ended_; }
    // The source sent a Close frame (forwarded or, when discarding, swallowed).
    bool close_received() const { return close_received_; }
    bool done() const { return done_; }
    ws::Violation violation() const { return violation_; }
    // Reads paused by backpressure and resumed, for the "every pause resumed" checks.
    bool paused() const { return paused_; }

  private:
    struct Sink;

    metrics::Direction direction() const {
        return from_client_ ? metrics::kClientToBackend : metrics::kBackendToClient;
    }
    Endpoint& src() const;
    Endpoint& dst() const;
    // Writes to dst() are in flight, and this Pipe waits for on_drained.
    bool draining();

    void forward(uv::Block* block, char* data, size_t len, size_t scanned);
    // Whether the rest of the current payload may bypass user memory (splice_payload).
    bool may_splice() const;
    // Moves most of a large payload from source to destination with splice(2).
    void splice_payload();
    // Reads `n` bytes the destination refused back out of the kernel pipe and queues
    // them as an ordinary write. False on error (the session has been told).
    bool park_spliced(size_t n);
    // Writes bufs (pointing into `owner` and, if set, `extra`) to the destination and
    // pauses the source while they are pending. False on error.
    bool write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    bool queue_control(const std::string& frame, bool is_close);
    void write_control();
    void maybe_shutdown();
    void release(uv::Block* block);
    void pause();

    // Two of these live in every session: the order packs the small fields into the
    // scanner's tail padding (which no_unique_address lets them use).
    Session& session_;
    [[no_unique_address]] ws::FrameScanner scanner_;
    Mode mode_ = Mode::Frames;
    ws::Violation violation_ = ws::Violation::None;
    const bool from_client_;
    bool attached_ : 1 = false;
    bool stopped_ : 1 = false;      // the session stopped reading for good
    bool paused_ : 1 = false;       // reading stopped by backpressure
    bool forwarding_ : 1 = false;   // inside forward(): defer shutdowns and controls
    bool dst_boundary_ : 1 = true;  // what went to dst so far ends between two frames
    bool control_is_close_ : 1 = false;
    bool discarding_ : 1 = false;       // forward nothing more; watch for Close and EOF
    bool close_forwarded_ : 1 = false;  // a Close frame went to dst (the source's or ours)
    bool close_received_ : 1 = false;   // the source sent a Close frame
    bool pong_expected_ : 1 = false;    // our Ping is out; its Pong is to be swallowed
    bool holding_pong_ : 1 = false;     // the carry holds the start of such a Pong
    bool source_ended_ : 1 = false;
    bool shutdown_wanted_ : 1 = false;
    bool done_ : 1 = false;  // the destination is shut down
    ws::MessageState message_;
    uv::Block* control_ = nullptr;  // a proxy frame waiting for a frame boundary
    Carry carry_;                   // source bytes held back, scanned already
};

}  // namespace sb::session
