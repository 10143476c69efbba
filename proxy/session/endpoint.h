// Endpoint: one side of a session (the client connection, or the backend connection).
//
// It owns the side's socket, its optional TLS layer, its pending connect request, its
// one write path and its one read router:
//  - Reading: every byte the side delivers (read from the socket, or decrypted by its
//    TLS layer) goes to exactly one consumer at a time, chosen by the Session: the
//    handshake reader, then the Pipe that relays from this side. While the consumer is
//    paused nothing is delivered: the socket is read at most once more (pausing is
//    lazy, see pause()) and that read, like bytes a consumer gave back (unread()),
//    waits in one held block (an EOF behind it waits too); TLS records stay inside the
//    TLS layer. When
//    reading resumes they come out in the order they arrived, through the same
//    delivery as every later byte: there is no side door for "the first bytes".
//  - Writing: bytes to send are a read block's ranges (Pipe), a chain of blocks, or
//    a copy of owned bytes (an HTTP head); each write takes uv_try_write first and
//    queues the rest with the uv_write_t embedded in its first block. Writes complete
//    in order; the Session hears when everything queued is written (on_drained), so a
//    Pipe can stop reading its source meanwhile. Through TLS, plaintext is encrypted
//    at once and the ciphertext blocks are written the same way.
//  - The record layer (issue 17): once the client side's handshake is done, OpenSSL
//    hands its keys over (tls/record_handoff.h) and the SSL object is freed; records
//    are then opened in the read blocks and sealed in the written ones (in place when
//    the bytes have room around them, else into fresh blocks). A connection OpenSSL
//    cannot hand over (another cipher, early data...) stays on OpenSSL.
//  - The ring (uv/ring.h): once a wss session whose client is on the record layer
//    relays WebSocket frames, its sides without OpenSSL read and write through the
//    worker's io_uring instead of libuv (use_ring()): the same deliveries, the same rules, one
//    system call per wakeup for the whole worker. A read is started when reading is
//    wanted and delivered when it completes (held, like a lazy pause's read, if the
//    consumer paused meanwhile); every write is queued as a SendOp whose iovecs live
//    until its completion, one in the kernel at a time, so writes leave in order.
//  - Closing: close() closes the socket; its close callback is where the connect
//    request is freed (libuv cancels it there, and may touch it until then). A side on
//    the ring asks the kernel to cancel its operations, and its close completes (the
//    Session hears on_closed) only once the last of them has come back: until then the
//    kernel may still write into its read block or read from its write blocks.
//
// Owned by its Session (a member, never moved); single-threaded (the worker's loop).
// It calls back into the Session only through a handful of named events (see
// session.h: "Endpoint events").
#pragma once

#include <openssl/crypto.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tls/connection.h"
#include "tls/record_handoff.h"
#include "tls/record_layer.h"
#include "uv/block_pool.h"
#include "uv/slab.h"

namespace sb::session {

class Session;

class Endpoint {
  public:
    // Who receives what this side delivers.
    enum class Consumer : uint8_t {
        Handshake,  // the Session's handshake reader (request or answer head)
        Pipe,       // the Pipe relaying from this side
        Discard,    // nobody: bytes are read and dropped (a refused client still talking)
    };

    // Room before the data in every block this side delivers, where a Pipe puts back
    // the bytes it held from the previous delivery (Pipe::Carry).
    static constexpr uint32_t kHeadroom = 32;
    // Room left after the data of every block read from a socket: a record sealed in
    // place needs its content type and tag there (tls::seal_suffix).
    static constexpr uint32_t kTailroom = 32;
    static_assert(kHeadroom + kTailroom <= uv::BlockPool::kBlockSlack,
                  "a block reads 16 KiB: a full TLS record's plaintext");

    // The handle's `data` points at the Session from the start (libuv never touches
    // it), which is how the Endpoint finds its Session without a member of its own.
    Endpoint(Session& session, bool client_side) : client_side_(client_side) {
        tcp_.data = &session;
    }
    ~Endpoint();
    Endpoint(const Endpoint&) = delete;
    Endpoint& operator=(const Endpoint&) = delete;

    // ---- life ----

    // Adopts an accepted descriptor. False if libuv refuses it (the descriptor is
    // closed; the handle, if initialised, is closed too).
    bool adopt(uv_loop_t* loop, int fd);
    // Adopts `fd`, a socket already connected to a backend (a kept-alive connection
    // from the worker's IdleConnections), as if connect() had just succeeded; no
    // on_connected follows. False if libuv refuses it (then as adopt()).
    bool adopt_connected(uv_loop_t* loop, int fd);
    // Opens a socket and connects it to `address` with `request`, which the caller
    // keeps alive until the outcome arrives as Session::on_connected(*this, status) or
    // the handle's close callback has run (the session's handshake state holds it).
    // Returns 0, or the libuv error of a failed start (then no callback comes, but the
    // handle is open and must be closed).
    int connect(uv_loop_t* loop, const sockaddr* address, uv_connect_t& request);
    // Closes the socket (if open). Session::on_closed(*this) follows from libuv.
    void close();
    bool is_open() const { return open_; }
    // The handle exists: opened and its close callback has not run yet.
    bool alive() const { return alive_; }
    bool connected() const { return connected_; }
    // Reads and writes go through the worker's ring from now on (writes once libuv's
    // are out), if the worker has one, this side has no OpenSSL layer and the ring has
    // room for one more side (uv::Ring::kMaxSides). The session calls it when a wss
    // relay on the record layer starts; until then, for plain ws (spliced) and for HTTP
    // exchanges (whose backend connections are parked between requests), libuv does
    // the I/O.
    void use_ring();
    // A completion of the worker's ring for a side (kRecv) or one of its writes (kSend).
    static void on_ring_completion(uint64_t user_data, int32_t res, uint32_t flags) noexcept;
    // Whether anything waits for the ring's lazy send `user_data` to complete
    // (uv::Ring::sendmsg): a write queued behind it, a drain someone waits for
    // (await_drain), a shutdown, or a close.
    static bool send_awaited(uint64_t user_data) noexcept;

    // ---- TLS ----

    // Starts TLS on this side: as a server (client side) or a client (backend side).
    // Returns false if OpenSSL cannot make a connection object. Bytes given back with
    // unread() (what followed a PROXY header) become the TLS layer's first input.
    bool start_tls_server(SSL_CTX* ctx, uv::BlockPool& pool);
    bool start_tls_client(SSL_CTX* ctx, const std::string& name, bool verify, uv::BlockPool& pool);
    tls::Connection* tls() const { return tls_.get(); }
    // Drops the TLS layer (a plain HTTP request to a TLS port is answered in plain).
    void drop_tls() { tls_.reset(); }
    // The client side left OpenSSL for the record layer after its handshake.
    bool on_records() const { return records_ != nullptr; }
    // Bytes on the wire are not the bytes delivered or written (OpenSSL or records).
    bool encrypted() const { return tls_ != nullptr || records_ != nullptr; }

    // ---- reading ----

    // Routes delivered bytes to `c` from now on (reading is not started by this).
    void deliver_to(Consumer c) { consumer_ = c; }
    Consumer consumer() const { return consumer_; }
    // Starts (or resumes) delivering: held bytes first, then TLS plaintext already
    // decrypted or received, then the socket.
    void resume();
    // Stops delivering; nothing is lost (see the header comment).
    void pause();
    bool paused() const { return !wanted_; }
    // Gives back the last `n` bytes of a delivered block (they start at `data`): they
    // are delivered again, first, when reading resumes. At most one block is held, and
    // it is always the one just delivered (the head ended inside it).
    void unread(uv::Block* block, char* data, size_t n);
    // The peer has finished sending (EOF or close_notify) or the read side failed.
    bool ended() const { return ended_; }
    // Why reading ended with `status`, for the log: the fatal TLS alert the record layer
    // received or sent, if one ended it (its end status, ECONNRESET or EPROTO, would
    // hide it), else libuv's text for `status`.
    std::string end_detail(int status) const;
    // Bytes given back with unread() wait to be delivered.
    bool holds_bytes() const { return held_ != nullptr; }

    // ---- writing ----

    // Writes `bufs` (pointing into `owner`, and into `extra` if set); both blocks go
    // back to the pool once their bytes are written. False if the write failed at once
    // (Session::on_write_failed has been called).
    bool write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    // Writes a chain of blocks (linked by Block::next), each block's [data(), size).
    bool write_chain(uv::Block* chain);
    // Writes a copy of `bytes` (an HTTP head, a reply).
    bool write_copy(std::string_view bytes);
    // Writes that libuv or the ring still holds.
    bool write_pending() const { return writes_in_flight_ > 0; }
    // The caller, having heard write_pending(), waits for on_drained: the ring must not
    // hold back the completion of a write in the kernel until its next wakeup.
    void await_drain() { drain_awaited_ = writes_in_flight_ > 0; }
    // Writes wait behind the one being written: the source of a Pipe into this side
    // stops reading. Through libuv, any write left over from uv_try_write waits for
    // the socket. Through the ring every write is in flight until its completion, so
    // one is let be: the source reads its next block while the kernel sends the last
    // one (a direction then holds two blocks at most, instead of one), and a wakeup
    // submits the next read with the last write.
    bool write_blocked() const {
        return ring_writes_ ? writes_in_flight_ > 1 : writes_in_flight_ > 0;
    }
    // Once every queued write is out: TLS close_notify, then TCP shutdown (FIN).
    // Session::on_shutdown(*this) follows once the FIN is out.
    void shutdown();
    bool shutdown_requested() const { return shutdown_wanted_; }
    bool shut_down() const { return shutdown_done_; }

    bool client_side() const { return client_side_; }
    const uv_handle_t* handle() const { return reinterpret_cast<const uv_handle_t*>(&tcp_); }
    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
    // The socket's descriptor (splice), or -1.
    int fd() const;
    // Blocks of this side (TLS output, held bytes, writes) come from here.
    uv::BlockPool& blocks() const;

  private:
    void deliver(uv::Block* block, char* data, size_t n);
    void deliver_end(int status);
    // What a read brought (nread bytes at `base` in `block`, or an end or error), from
    // libuv or from the ring.
    void on_read_result(uv::Block* block, char* base, ssize_t nread);
    // Delivers held bytes and TLS plaintext while the consumer wants them (and drives
    // the TLS handshake), then (re)starts reading the socket.
    void run_deliveries();
    // One TLS handshake step; true once it completed (on_tls_ready was called).
    bool step_handshake();
    // Decrypts and delivers one record's worth; false when nothing more can come out
    // now (more ciphertext needed, the stream ended, an error).
    bool read_record();
    bool flush_tls();
    // Handshake done (client side): takes OpenSSL's keys and frees the SSL object, or
    // leaves the connection on OpenSSL if it cannot be handed over.
    void switch_to_records();
    // One step of the record layer's reading: delivers opened plaintext, or opens the
    // next record of the read block; false when nothing more can come out now.
    bool read_records();
    bool deliver_plaintext();
    // Seals `bufs` as application data records and writes them.
    bool seal_and_write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    // Seals and writes a KeyUpdate or an alert.
    bool write_key_update(bool update_requested);
    bool write_alert(uint8_t level, uint8_t description);
    bool write_sealed_control(tls::Sealed sealed, uv::Block* block);
    // After sealing: a KeyUpdate due (TLS 1.3) goes out now; TLS 1.2 cannot rekey and
    // closes. False if the connection is closing.
    bool after_seal(tls::SealStatus status);
    // Writes as they are, with no TLS layer in between (ciphertext, or a plain side).
    bool write_raw(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    bool write_chain_raw(uv::Block* chain);
    void start_reading();
    void stop_reading();
    Session& session() const { return *static_cast<Session*>(tcp_.data); }
    // The Endpoint whose socket `handle` is (its data is the Session).
    static Endpoint& of(const uv_handle_t* handle);
    void maybe_shutdown();
    void failed_write(int status);
    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
    static void on_close(uv_handle_t* handle) noexcept;
    // What the close callback does once nothing is left in the ring.
    void finish_close();

    // ---- the ring ----
    struct SendOp;
    bool ring_write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra);
    bool submit_send(bool lazy = true);
    void on_ring_recv(int32_t res, uint32_t flags);
    // Starts a read in the ring, if none is in flight; `poll_first`: it takes a
    // buffer only once data is there.
    void arm_recv(bool poll_first);
    static void on_ring_send(SendOp* op, int32_t res);
    void release_sends();
    bool ring_busy() const { return recv_armed_ || send_armed_; }

    // The record layer's state: the keys, the reader, the read block being opened and
    // the plaintext opened but not yet delivered (in that block or the reader's). A
    // few hundred bytes instead of OpenSSL's SSL object.
    struct Records {
        // From the worker's slab for them, like Sessions: a connection's lasting state
        // kept apart from the handshake's freed memory (uv/slab.h).
        // Null when the slab can map no more memory (`new Records` is then null too):
        // the connection stays on OpenSSL rather than end the process.
        static void* operator new(size_t size) noexcept;
        static void operator delete(void* p) noexcept;
        static uv::Slab& slab();
        // The keys leave no copy in the slab, however the switch or the connection ends
        // (a key derivation that fails halfway included).
        ~Records() { OPENSSL_cleanse(&keys, sizeof(keys)); }

        tls::RecordKeys keys;
        tls::RecordReader reader;
        uv::Block* in = nullptr;  // ciphertext from in->data() + in_offset, in_len bytes
        uint32_t in_offset = 0;
        uint32_t in_len = 0;
        uint8_t* plain = nullptr;
        uint32_t plain_len = 0;
        bool key_update_owed = false;  // the client asked for one (RFC 8446 §4.6.3)
        // The fatal alert that ended reading, received or sent (end_detail).
        enum class AlertEnd : uint8_t { None, Received, Sent };
        AlertEnd alert_end = AlertEnd::None;
        uint8_t end_alert = 0;
    };

    uv_tcp_t tcp_;
    std::unique_ptr<tls::Connection> tls_;
    std::unique_ptr<Records> records_;
    SendOp* sends_ = nullptr;    // writes queued in the ring, the first in the kernel
    uv::Block* held_ = nullptr;  // bytes given back with unread(); one block at most
    uint16_t held_offset_ = 0;   // ...from held_->data() + held_offset_
    uint16_t held_len_ = 0;
    uint16_t writes_in_flight_ = 0;
    Consumer consumer_ = Consumer::Handshake;
    const bool client_side_;
    bool alive_ : 1 = false;  // initialised; the close callback has not run
    bool open_ : 1 = false;   // alive and not closing
    bool connected_ : 1 = false;
    bool wanted_ : 1 = false;   // the consumer takes bytes now
    bool reading_ : 1 = false;  // uv_read_start is in effect
    bool ended_ : 1 = false;
    bool delivering_ : 1 = false;  // inside resume(): no recursion
    bool shutdown_wanted_ : 1 = false;
    bool notify_sent_ : 1 = false;  // TLS close_notify queued
    bool shutdown_sent_ : 1 = false;
    bool shutdown_done_ : 1 = false;
    bool eof_held_ : 1 = false;       // the peer's EOF came while paused: delivered on resume
    bool ring_ : 1 = false;           // reads go through the ring (use_ring)
    bool ring_writes_ : 1 = false;    // ...and writes, libuv's being out
    bool recv_armed_ : 1 = false;     // a read is in the kernel
    bool send_armed_ : 1 = false;     // sends_'s first is in the kernel
    bool close_waits_ : 1 = false;    // libuv closed the socket; the ring is not done yet
    bool drain_awaited_ : 1 = false;  // someone waits for on_drained (await_drain)
};

}  // namespace sb::session
