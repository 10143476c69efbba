// Pipe: one direction of a session's relay, from a source socket to a destination
// socket. Both directions are the same code with the roles swapped.
//
// Owned by its Session (a member, never moved); runs on the session's worker thread.
//
// What it does with each chunk read from the source:
//  - the FrameScanner follows frame headers in place (payloads are never copied or
//    unmasked), so the Pipe counts messages and bytes, sees Close frames, and applies
//    the client's message limits;
//  - the chunk is written with uv_try_write; only a remainder is queued, with the
//    uv_write_t embedded in the chunk's Block, so there is at most one write in
//    flight and it never allocates;
//  - while a write is in flight the source is not read (backpressure by stopping
//    reads, never by growing a queue): memory per direction is at most one Block
//    (eight in the rare case below);
//  - most of a large payload between plain sockets is spliced (splice(2) through the
//    worker's kernel pipe, never copied into the proxy), in rounds no larger than the
//    destination's free send buffer; what it refuses all the same is read back into
//    Blocks and queued as an ordinary write;
//  - a control frame of the proxy's own (Close, Ping) waits for the next frame
//    boundary and is written between two frames, never inside one;
//  - what goes out never ends inside a frame header: a header split across reads is
//    held back (at most 14 bytes, "carry") and written with the next chunk, so the
//    stream can always be cut cleanly at the start of a frame. The same hold-back
//    keeps a client's Pong that may answer the proxy's own Ping until it can be
//    compared, so the matching Pong is swallowed and never reaches the backend.
//
// Once the source has ended (EOF) and the session asks, the destination is shut down
// for writing: TCP half-close propagates, and the Pipe is done.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "limits/token_bucket.h"
#include "metrics/worker_stats.h"
#include "net/splice_pipe.h"
#include "tls/connection.h"
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

    // Why forwarding stopped at a frame: the session decides what to send.
    enum class Stop : uint8_t {
        None,
        Violation,    // RFC 6455 framing broken (see violation())
        TooBig,       // message over max_message_bytes
        RateLimited,  // over max_messages_per_second
    };

    // Room before the data in every read block for the carried header bytes.
    static constexpr uint32_t kHeadroom = 16;
    // A payload is spliced when more than this is left of it (a few blocks' worth:
    // below that, two splices per chunk gain nothing on a read and a write).
    static constexpr uint64_t kSpliceMin = 32 * 1024;
    // Bytes per splice round at most: what the destination refuses of a round is
    // parked in read blocks, and a write takes eight of them (write_chain).
    static constexpr uint64_t kSpliceRound = 8 * uv::BlockPool::kBlockSize;
    // Splice rounds per read callback: 1 MiB, then the other sessions' turn.
    static constexpr int kSpliceRounds = 8;
    static_assert(kSpliceRound <= net::SplicePipe::kCapacity);

    Pipe(Session& session, bool from_client) : session_(session), from_client_(from_client) {}
    ~Pipe();
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    // Starts relaying. The sockets, their TLS layers, the pool's counters and the
    // client's limits are the session's: a Pipe keeps no copy of them (an idle
    // connection's size is the point).
    void attach(Mode mode) {
        mode_ = mode;
        attached_ = true;
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
    // Plaintext the session decrypted from a TLS source: `n` bytes at
    // block->data() + kHeadroom. The Pipe owns the block from here on.
    void on_plaintext(uv::Block* block, size_t n);
    // The source ended (UV_EOF, or close_notify) or failed (another status).
    void on_end(int status);
    // Whether the Pipe takes source bytes now (no write in flight, not stopped).
    bool accepting() const { return in_flight_ == nullptr && !stopped_ && !source_ended_; }

    // Queues a Close frame to the destination at the next frame boundary; bytes read
    // after that point are no longer forwarded, only watched for the source's own
    // Close frame. Does nothing if a Close already went this way.
    void send_close(uint16_t code, std::string_view reason);
    // Queues a Ping carrying `token` (8 bytes) at the next frame boundary; false if
    // another proxy frame is still waiting.
    bool send_ping(uint64_t token);
    // The source's Pong carrying the session's Ping token answers our Ping: swallow it.
    void expect_pong() { pong_expected_ = true; }
    bool pong_expected() const { return pong_expected_; }
    // Stops forwarding without sending anything (the destination is gone).
    void discard() { discarding_ = true; }

    // Shuts the destination down for writing once pending bytes are written.
    void shutdown_destination();

    bool attached() const { return attached_; }
    bool from_client() const { return from_client_; }
    bool source_ended() const { return source_ended_; }
    bool close_forwarded() const { return close_forwarded_; }
    // The source sent a Close frame (forwarded or, when discarding, swallowed).
    bool close_received() const { return close_received_; }
    bool write_pending() const { return in_flight_ != nullptr; }
    bool done() const { return shutdown_done_; }
    ws::Violation violation() const { return violation_; }

  private:
    struct Sink;

    metrics::Direction direction() const {
        return from_client_ ? metrics::kClientToBackend : metrics::kBackendToClient;
    }
    uv_stream_t* src() const;
    uv_stream_t* dst() const;
    tls::Connection* src_tls() const;
    tls::Connection* dst_tls() const;

    void forward(uv::Block* block, char* data, size_t len);
    // Whether the rest of the current payload may bypass user memory (splice_payload).
    bool may_splice() const;
    // Moves most of a large payload from source to destination with splice(2).
    void splice_payload();
    // Reads `n` bytes the destination refused back out of the kernel pipe and queues
    // them as an ordinary write. False on error (the session has been told).
    bool park_spliced(size_t n);
    // Writes bufs (which point into `owner` and, if set, `extra`); both blocks go
    // back to the pool once their bytes are written. Returns false on error (the
    // session has been told).
    bool write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    // Writes a chain of blocks (linked by Block::next) that are all to go out as is.
    bool write_chain(uv::Block* chain);
    bool write_plain(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    bool queue_control(const std::string& frame, bool is_close);
    void write_control();
    void after_write();
    void maybe_shutdown();
    void release(uv::Block* block);
    void pause();
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;

    // Two of these live in every session: the order packs the small fields into the
    // scanner's tail padding (which no_unique_address lets them use).
    Session& session_;
    [[no_unique_address]] ws::FrameScanner scanner_;
    uint8_t carry_len_ = 0;
    Mode mode_ = Mode::Frames;
    ws::Violation violation_ = ws::Violation::None;
    const bool from_client_;
    bool attached_ : 1 = false;
    bool reading_ : 1 = false;
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
    bool shutdown_sent_ : 1 = false;
    bool shutdown_done_ : 1 = false;
    ws::MessageState message_;
    uv::Block* in_flight_ = nullptr;  // blocks a queued write still needs (a chain)
    uv::Block* control_ = nullptr;    // a proxy frame waiting for a frame boundary
    uint8_t carry_[14] = {};          // source bytes held back: an incomplete header or Pong
};

}  // namespace sb::session
