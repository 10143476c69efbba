// SessionHarness: one switchboard Session run in process, on a real uv_loop, against
// a fake WebSocket backend on 127.0.0.1:0 in the same loop, for the component tests
// (tests/component/) and the relay fuzzer. Everything runs on the calling thread, one
// loop iteration at a time, so a test is deterministic: it writes bytes, runs the loop
// until a condition holds (never sleeps), and looks at what each peer received.
//
// What it owns (all of it, for its whole life, on the thread that made it):
//  - the uv_loop_t, a metrics::WorkerStats and a session::WorkerContext on that loop
//    (WorkerContext::current points at it while the harness lives, as a Worker's
//    thread does), and a Generation built from inline TOML: one listener "public" and
//    one pool "chat" whose only backend is the FakeBackend;
//  - the FakeBackend: a libuv TCP server that reads the upgrade request, answers as
//    its BackendScript says (a correct 101, or one of the misbehaviours), then echoes
//    or records frames;
//  - every Peer: the test's end of each client connection (one end of a socketpair,
//    or of a TCP loopback pair; the other end goes to Session::accept) and each
//    connection the FakeBackend accepted.
//
// Teardown (teardown(), or the destructor): closes every peer, lets the sessions end,
// closes the harness's own handles, walks the loop for handles left open and closes
// the loop. The TeardownReport says what was left: a clean one has no handle open,
// uv_loop_close() == 0, no session alive and every BlockPool block given back.
//
// Self-contained: no GoogleTest here, so a fuzzer can link it. Not thread-safe.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/worker_stats.h"
#include "pool/generation.h"
#include "session/context.h"
#include "session/session.h"

namespace sb::test {

// ---- WebSocket frames, written and read independently of the proxy's own code ----

enum Opcode : uint8_t {
    kContinuation = 0x0,
    kText = 0x1,
    kBinary = 0x2,
    kClose = 0x8,
    kPing = 0x9,
    kPong = 0xA,
};

// One frame as a peer saw it: the payload is unmasked.
struct Frame {
    bool fin = true;
    uint8_t opcode = kText;
    bool masked = false;
    std::string payload;
    size_t wire_size = 0;  // header and payload bytes on the wire

    // A Close frame's status code, or 1005 when its payload has none.
    uint16_t close_code() const;
};

// The wire bytes of one frame with the shortest length form. A client's frames are
// masked (`masked`), with `mask_key`; a server's are not.
std::string encode_frame(uint8_t opcode, std::string_view payload, bool masked, bool fin = true,
                         uint32_t mask_key = 0x37fa213d);
// A client's (masked) and a backend's (unmasked) frame.
inline std::string client_frame(uint8_t opcode, std::string_view payload, bool fin = true) {
    return encode_frame(opcode, payload, true, fin);
}
inline std::string server_frame(uint8_t opcode, std::string_view payload, bool fin = true) {
    return encode_frame(opcode, payload, false, fin);
}
// A Close frame's payload: the code in network order, then the reason.
std::string close_payload(uint16_t code, std::string_view reason = {});

// Decodes the complete frames at the front of `bytes` into `out`; returns how many
// bytes they took (an incomplete frame at the end is left for later).
size_t decode_frames(std::string_view bytes, std::vector<Frame>& out);

// ---- HTTP ----

// The key of RFC 6455 §1.3's example, and a valid upgrade request carrying it.
inline constexpr std::string_view kClientKey = "dGhlIHNhbXBsZSBub25jZQ==";
std::string upgrade_request(std::string_view path = "/chat", std::string_view key = kClientKey);
// Length of the first HTTP head in `bytes` (through its blank line), or 0 if incomplete.
size_t head_length(std::string_view bytes);

// ---- Peer: the test's side of one connection ----

// A byte stream the test drives from the loop: it keeps every byte it read, writes
// copies of what it is given, and records how the stream ended. Owned by the harness
// (its memory outlives the loop); the handle is closed by close() or at teardown.
class Peer {
  public:
    enum class Kind : uint8_t { Pipe, Tcp };

    Peer(uv_loop_t* loop, Kind kind);
    ~Peer();
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    // Adopts a connected descriptor (a socketpair end: Pipe; a TCP socket: Tcp) and
    // starts reading. False if libuv refuses it.
    bool open(int fd);
    // The handle, for a server's uv_accept; reading starts with start_reading().
    uv_stream_t* stream() { return &handle_.stream; }
    void start_reading();

    // Queues a copy of `bytes` (writes complete in order).
    void write(std::string_view bytes);
    // Stops reading (a slow reader: the kernel buffers fill, then the proxy must stop).
    void pause();
    void resume();
    // Sends FIN once every queued write is out.
    void shutdown();
    // Closes the connection (FIN, or for a socketpair the end of the stream).
    void close();
    // Closes a TCP connection with a reset (RST); a Pipe peer just closes.
    void reset();

    // Called after each read that added bytes or ended the stream.
    std::function<void(Peer&)> on_read;

    const std::string& received() const { return received_; }
    // Bytes received after the first `skip` (a head, usually).
    std::string_view received_after(size_t skip) const;
    bool eof() const { return eof_; }
    // A read error (UV_ECONNRESET...), or 0.
    int read_error() const { return read_error_; }
    // The stream ended one way or the other (EOF or an error).
    bool ended() const { return eof_ || read_error_ != 0; }
    bool is_closed() const { return closed_; }
    bool is_open() const { return open_; }
    size_t writes_pending() const { return writes_pending_; }
    int write_error() const { return write_error_; }
    uint64_t bytes_written() const { return bytes_written_; }

  private:
    struct WriteRequest;
    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
    static void on_close(uv_handle_t* h) noexcept;

    union Handle {
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } handle_{};
    Kind kind_;
    std::string received_;
    std::unique_ptr<char[]> buffer_;
    uint64_t bytes_written_ = 0;
    size_t writes_pending_ = 0;
    int read_error_ = 0;
    int write_error_ = 0;
    bool open_ = false;    // initialised and not closing
    bool closed_ = false;  // the close callback ran
    bool eof_ = false;
    bool reading_ = false;
};

// ---- the fake backend ----

struct BackendScript {
    enum class Answer : uint8_t {
        Upgrade,      // a correct 101 (Sec-WebSocket-Accept from the request's key)
        WrongAccept,  // a 101 whose Sec-WebSocket-Accept matches no key
        Raw,          // `raw_answer` as it is (a 403, garbage...)
        Silent,       // reads the request and never answers
        Close,        // closes the connection (FIN) on the request, without answering
        Reset,        // resets the connection on the request
    };
    Answer answer = Answer::Upgrade;
    std::string raw_answer;  // for Answer::Raw
    // Written before the answer, in its own write (e.g. "HTTP/1.1 100 Continue\r\n\r\n").
    std::string interim;
    // Written in the same write as the answer: frames right behind the 101.
    std::string after_answer;
    // After a 101: answer each complete frame (data frames echoed unmasked, Ping with
    // Pong, Close with the same Close and then FIN), or only record them.
    bool echo = true;
    // SO_RCVBUF of each accepted connection (0 = the kernel's): a small one makes a
    // backend that stops reading push back on the proxy sooner.
    int receive_buffer = 0;
};

// One connection the FakeBackend accepted.
struct BackendConnection {
    Peer* peer = nullptr;
    std::string request_head;   // the upgrade request as the backend got it
    bool answered = false;      // the script's answer went out
    std::vector<Frame> frames;  // frames decoded after the request head
    size_t decoded = 0;         // bytes of the stream after the head decoded so far
    bool close_seen = false;

    // The bytes received after the request head.
    std::string_view stream() const { return peer->received_after(request_head.size()); }
};

class SessionHarness;

class FakeBackend {
  public:
    FakeBackend(SessionHarness& harness, BackendScript script);
    ~FakeBackend();
    FakeBackend(const FakeBackend&) = delete;
    FakeBackend& operator=(const FakeBackend&) = delete;

    // Binds 127.0.0.1:0 and listens; false on failure.
    bool start();
    uint16_t port() const { return port_; }
    // Stops accepting (closes the listening handle).
    void stop();

    BackendScript& script() { return script_; }
    size_t connections() const { return connections_.size(); }
    // The `i`-th accepted connection (it exists: check connections() first).
    BackendConnection& connection(size_t i = 0) { return *connections_.at(i); }

  private:
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_close(uv_handle_t* h) noexcept;
    void on_bytes(BackendConnection& c);
    void answer(BackendConnection& c);

    SessionHarness& harness_;
    BackendScript script_;
    uv_tcp_t server_{};
    bool listening_ = false;
    bool server_closed_ = true;
    uint16_t port_ = 0;
    std::vector<std::unique_ptr<BackendConnection>> connections_;
};

// ---- the harness ----

struct HarnessOptions {
    // Lines added to [pools.chat] and [pools.chat.websocket], and to the listener.
    std::string pool_toml;
    std::string websocket_toml;
    std::string listener_toml;
    BackendScript script;
};

struct TeardownReport {
    std::vector<std::string> open_handles;  // handles uv_walk found once all was closed
    int loop_close = 0;                     // uv_loop_close()'s result
    size_t sessions_left = 0;               // sessions still alive once both peers were closed
    size_t blocks_in_use = 0;               // BlockPool blocks never given back
    uint64_t pauses = 0;
    uint64_t resumes = 0;

    bool clean() const {
        return open_handles.empty() && loop_close == 0 && sessions_left == 0 && blocks_in_use == 0;
    }
    std::string describe() const;
};

class SessionHarness {
  public:
    // How long run_until waits by default: far longer than any condition needs on a
    // loaded machine, and short enough that a hang fails the test quickly.
    static constexpr std::chrono::milliseconds kDefaultLimit{5000};

    explicit SessionHarness(HarnessOptions options = {});
    ~SessionHarness();
    SessionHarness(const SessionHarness&) = delete;
    SessionHarness& operator=(const SessionHarness&) = delete;

    // False (with error() saying why) if the setup failed: no test can run then.
    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

    uv_loop_t* loop() { return &loop_; }
    session::WorkerContext& context() { return *context_; }
    metrics::WorkerStats& stats() { return stats_; }
    FakeBackend& backend() { return *backend_; }
    const pool::GenerationPtr& generation() const { return generation_; }

    enum class Transport : uint8_t { SocketPair, Tcp };
    // A new client connection: one end goes to Session::accept (from 127.0.0.1), the
    // returned Peer is the test's end. nullptr (and error()) on failure.
    Peer* connect_client(Transport transport = Transport::SocketPair);
    // The first live session, or nullptr.
    session::Session* session() { return context_->sessions.first(); }
    size_t sessions() const { return context_->sessions.size(); }

    // Runs the loop one iteration at a time until `done()` holds (true) or `limit`
    // of loop time or a bounded number of iterations passes (false).
    bool run_until(const std::function<bool()>& done,
                   std::chrono::milliseconds limit = kDefaultLimit);
    // Runs `n` loop iterations that do not wait for events (UV_RUN_NOWAIT): whatever
    // the kernel has ready is handled, then it returns.
    void run_iterations(int n);
    // Client helper: connects, sends the upgrade request and runs until the 101 is
    // received in full; returns the client Peer, or nullptr.
    Peer* open_websocket(std::string_view glued = {}, Transport transport = Transport::SocketPair);

    // The most BlockPool blocks in use seen between two loop iterations.
    size_t max_blocks_in_use() const { return max_blocks_in_use_; }
    void reset_max_blocks_in_use() { max_blocks_in_use_ = context_->blocks.in_use(); }

    // Closes everything and reports what was left (see the header comment). The
    // harness cannot be used afterwards; calling it twice returns the first report.
    TeardownReport teardown();

    // For FakeBackend: a new Peer owned by the harness.
    Peer& make_peer(Peer::Kind kind);

  private:
    static void on_guard(uv_timer_t* t) noexcept;
    void sample() {
        size_t n = context_->blocks.in_use();
        if (n > max_blocks_in_use_) max_blocks_in_use_ = n;
    }

    uv_loop_t loop_{};
    uv_timer_t guard_{};
    bool guard_fired_ = false;
    metrics::WorkerStats stats_;
    std::unique_ptr<session::WorkerContext> context_;
    session::WorkerContext* previous_context_ = nullptr;
    std::unique_ptr<FakeBackend> backend_;
    pool::GenerationPtr generation_;
    const pool::ListenerRuntime* listener_ = nullptr;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::string error_;
    size_t max_blocks_in_use_ = 0;
    bool torn_down_ = false;
    TeardownReport report_;
};

}  // namespace sb::test
