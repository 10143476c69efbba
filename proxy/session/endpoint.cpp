#include "session/endpoint.h"

#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "log/logger.h"
#include "session/context.h"
#include "session/session.h"
#include "uv/ring.h"

namespace sb::session {

namespace {

uv_handle_t* as_handle(uv_tcp_t* t) {
    return reinterpret_cast<uv_handle_t*>(t);
}

// The block whose embedded uv_write_t is `req` (it is the block's first member).
uv::Block* block_of_write(uv_write_t* req) {
    return reinterpret_cast<uv::Block*>(req);
}

tls::RecordCrypto& record_crypto() {
    return WorkerContext::current->record_crypto;
}

uv::Ring& ring() {
    return WorkerContext::current->ring;
}

// `p` lies in `block`'s buffer.
bool inside(uv::Block* block, const void* p) {
    const char* c = static_cast<const char*>(p);
    return block != nullptr && c >= block->data() && c < block->data() + block->capacity;
}

}  // namespace

// One write through the ring: the iovecs the kernel reads until the write completes,
// and the blocks they point into. A short write goes in again from where it stopped.
struct Endpoint::SendOp {
    static constexpr unsigned kInline = 8;

    static void* operator new(size_t size) noexcept {
        return size == sizeof(SendOp) ? slab().allocate() : nullptr;
    }
    static void operator delete(void* p) noexcept { slab().free(p); }
    static uv::Slab& slab() {
        thread_local uv::Slab slab(sizeof(SendOp));
        return slab;
    }

    Endpoint* endpoint = nullptr;
    SendOp* next = nullptr;
    uv::Block* owner = nullptr;
    uv::Block* extra = nullptr;
    msghdr msg{};
    iovec* iov = nullptr;  // inline_iov, or more's
    bool lazy = false;     // its last submission was a lazy send (uv::Ring::sendmsg)
    unsigned first = 0;    // the first iovec not yet written
    unsigned count = 0;
    std::unique_ptr<iovec[]> more;
    iovec inline_iov[kInline];
};

uv::Slab& Endpoint::Records::slab() {
    thread_local uv::Slab slab(sizeof(Records));
    return slab;
}

void* Endpoint::Records::operator new(size_t size) noexcept {
    return size == sizeof(Records) ? slab().allocate() : nullptr;
}

void Endpoint::Records::operator delete(void* p) noexcept {
    slab().free(p);
}

Endpoint::~Endpoint() {
    // By now libuv has closed the handle and cancelled every request, and the ring
    // has given back every operation (finish_close).
    release_sends();
    if (held_ != nullptr) blocks().give(held_);
    if (records_ && records_->in != nullptr) blocks().give(records_->in);
}

uv::BlockPool& Endpoint::blocks() const {
    return WorkerContext::current->blocks;
}

int Endpoint::fd() const {
    int fd = -1;
    if (!open_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return -1;
    return fd;
}

// ---- life ----

Endpoint& Endpoint::of(const uv_handle_t* handle) {
    return static_cast<Session*>(handle->data)->endpoint_for(handle);
}

bool Endpoint::adopt(uv_loop_t* loop, int fd) {
    void* session = tcp_.data;
    uv_tcp_init(loop, &tcp_);
    tcp_.data = session;
    alive_ = open_ = true;
    if (uv_tcp_open(&tcp_, fd) != 0) {
        ::close(fd);  // libuv did not take it
        close();
        return false;
    }
    // Small WebSocket messages must leave as soon as they are written.
    uv_tcp_nodelay(&tcp_, 1);
    return true;
}

bool Endpoint::adopt_connected(uv_loop_t* loop, int fd) {
    connected_ = ended_ = wanted_ = reading_ = eof_held_ = false;
    drain_awaited_ = false;
    shutdown_wanted_ = notify_sent_ = shutdown_sent_ = shutdown_done_ = false;
    consumer_ = Consumer::Handshake;
    if (!adopt(loop, fd)) return false;
    connected_ = true;
    return true;
}

int Endpoint::connect(uv_loop_t* loop, const sockaddr* address, uv_connect_t& request) {
    void* session = tcp_.data;
    uv_tcp_init(loop, &tcp_);
    tcp_.data = session;
    alive_ = open_ = true;
    connected_ = ended_ = wanted_ = reading_ = eof_held_ = false;
    drain_awaited_ = false;
    shutdown_wanted_ = notify_sent_ = shutdown_sent_ = shutdown_done_ = false;
    consumer_ = Consumer::Handshake;
    uv_tcp_nodelay(&tcp_, 1);
    request.data = this;
    return uv_tcp_connect(&request, &tcp_, address, &Endpoint::on_connect);
}

void Endpoint::on_connect(uv_connect_t* req, int status) noexcept {
    // Cancelled: the handle is closing, and on_close follows.
    if (status == UV_ECANCELED) return;
    auto* e = static_cast<Endpoint*>(req->data);
    if (!e->open_) return;
    e->connected_ = status == 0;
    e->session().on_connected(*e, status);
}

void Endpoint::close() {
    if (!open_) return;
    const int descriptor = fd();  // fd() says -1 once open_ is false
    open_ = false;
    wanted_ = false;
    reading_ = false;
    // The kernel holds the socket for as long as an operation on it is in flight,
    // whatever the descriptor: they are cancelled, and on_close waits for them. What is
    // queued for it goes in first, while its descriptor still names it (a last alert,
    // say, leaves as it would have left through libuv's write).
    if (ring_busy()) {
        ring().submit();
        ring().forget_queued(descriptor);  // what the kernel would not take, if anything
    }
    if (recv_armed_) ring().cancel(reinterpret_cast<uintptr_t>(this) | uv::Ring::kRecv);
    if (send_armed_) ring().cancel(reinterpret_cast<uintptr_t>(sends_) | uv::Ring::kSend);
    uv_close(as_handle(&tcp_), &Endpoint::on_close);
}

void Endpoint::on_close(uv_handle_t* handle) noexcept {
    Endpoint* e = &Endpoint::of(handle);
    // Still alive for the Session until the ring gives back what it holds.
    if (e->ring_busy()) {
        e->close_waits_ = true;
        return;
    }
    e->finish_close();
}

void Endpoint::finish_close() {
    Endpoint* e = this;
    e->close_waits_ = false;
    if (e->ring_ && ring().sides > 0) --ring().sides;
    e->ring_ = e->ring_writes_ = false;
    e->release_sends();
    e->alive_ = false;
    // libuv has called back every request of the handle by now (the connect request
    // included, which its owner may now free or reuse for a next attempt).
    e->tls_.reset();
    if (e->records_) {
        if (e->records_->in != nullptr) e->blocks().give(e->records_->in);
        // The keys protect nothing more: their cached schedules go, and the bytes too
        // (~Records).
        record_crypto().forget(e->records_->keys.read);
        record_crypto().forget(e->records_->keys.write);
        e->records_.reset();
    }
    if (e->held_ != nullptr) {
        e->blocks().give(e->held_);
        e->held_ = nullptr;
    }
    e->writes_in_flight_ = 0;
    e->session().on_closed(*e);
}

// ---- TLS ----

bool Endpoint::start_tls_server(SSL_CTX* ctx, uv::BlockPool& pool) {
    tls_ = tls::Connection::accept(ctx, pool);
    if (tls_ && held_ != nullptr) {
        // Read before TLS started (a PROXY header's tail): ciphertext, not plaintext.
        tls_->give_input(held_, held_->data() + held_offset_, held_len_);
        held_ = nullptr;
    }
    return tls_ != nullptr;
}

bool Endpoint::start_tls_client(SSL_CTX* ctx, const std::string& name, bool verify,
                                uv::BlockPool& pool) {
    tls_ = tls::Connection::connect(ctx, name, verify, pool);
    return tls_ != nullptr;
}

bool Endpoint::flush_tls() {
    if (!tls_ || !tls_->has_output()) return true;
    return write_chain_raw(tls_->take_output());
}

bool Endpoint::step_handshake() {
    auto status = tls_->handshake();
    if (!flush_tls()) return false;
    if (status == tls::Connection::Status::WantRead) return false;
    if (status != tls::Connection::Status::Ok) {
        session().on_tls_failed(*this);
        return false;
    }
    if (client_side_) switch_to_records();
    session().on_tls_ready(*this);
    return true;
}

void Endpoint::switch_to_records() {
    // Before any SSL_read: OpenSSL has processed no KeyUpdate yet (record_handoff.h),
    // and the tickets it wrote are out (flush_tls), counted by the written counter.
    tls::RecordCrypto& crypto = record_crypto();
    if (!crypto.ok() || tls_->has_output()) return;
    std::unique_ptr<Records> r(new Records);
    if (r == nullptr) {
        log::warn("client TLS stays on OpenSSL", {{"detail", "no memory for the record layer"}});
        return;
    }
    std::string why;
    if (!tls_->take_record_keys(crypto, r->keys, why)) {
        log::debug("client TLS stays on OpenSSL", {{"detail", why}});
        return;
    }
    // What the client sent after its Finished (its first records) is opened by the
    // record layer, from where OpenSSL stopped.
    size_t offset = 0;
    size_t len = 0;
    r->in = tls_->take_input(offset, len);
    r->in_offset = static_cast<uint32_t>(offset);
    r->in_len = static_cast<uint32_t>(len);
    tls_.reset();  // the SSL object: the memory this switch is for
    records_ = std::move(r);
    log::debug("client TLS handed to the record layer");
}

bool Endpoint::read_records() {
    Records& r = *records_;
    if (r.plain_len > 0) return deliver_plaintext();
    if (r.in == nullptr) return false;
    auto* in = reinterpret_cast<uint8_t*>(r.in->data()) + r.in_offset;
    auto e = r.reader.next(record_crypto(), r.keys.read, in, r.in_len);
    r.in_offset += static_cast<uint32_t>(e.consumed);
    r.in_len -= static_cast<uint32_t>(e.consumed);
    if (e.kind == tls::RecordReader::Kind::Data) {
        r.plain = e.data;
        r.plain_len = static_cast<uint32_t>(e.size);
    }
    // The read block goes back once opened, unless the plaintext still lies in it.
    if (r.in_len == 0 && (r.plain_len == 0 || !inside(r.in, r.plain))) {
        blocks().give(r.in);
        r.in = nullptr;
    }
    using Kind = tls::RecordReader::Kind;
    switch (e.kind) {
        case Kind::NeedMore:
            return false;
        case Kind::Data:
            return true;
        case Kind::KeyUpdate:
            // RFC 8446 §4.6.3: ours goes out before any more of our data (seal_and_write):
            // owed, not sent now, so that requests from a client that does not read
            // cannot queue an answer each.
            if (e.update_requested && !notify_sent_) r.key_update_owed = true;
            return true;
        case Kind::Renegotiation:
            return write_alert(tls::alert::kWarning, tls::alert::kNoRenegotiation);
        case Kind::CloseNotify:
            deliver_end(UV_EOF);  // a half-close: our side may go on writing
            return false;
        case Kind::PeerAlert:
            r.alert_end = Records::AlertEnd::Received;
            r.end_alert = e.alert;
            deliver_end(UV_ECONNRESET);
            return false;
        case Kind::Fail:
            r.alert_end = Records::AlertEnd::Sent;
            r.end_alert = e.alert;
            write_alert(tls::alert::kFatal, e.alert);
            if (open_ && !ended_) deliver_end(UV_EPROTO);
            return false;
    }
    return false;
}

std::string Endpoint::end_detail(int status) const {
    if (records_ == nullptr || records_->alert_end == Records::AlertEnd::None) {
        return uv_strerror(status);
    }
    std::string detail = records_->alert_end == Records::AlertEnd::Received ? "TLS alert received: "
                                                                            : "TLS alert sent: ";
    std::string_view name = tls::alert_name(records_->end_alert);
    if (name.empty()) return detail + std::to_string(records_->end_alert);
    return detail.append(name);
}

bool Endpoint::deliver_plaintext() {
    Records& r = *records_;
    char* p = reinterpret_cast<char*>(r.plain);
    size_t n = r.plain_len;
    if (r.in != nullptr && r.in_len == 0 && inside(r.in, p) && p >= r.in->data() + kHeadroom) {
        // The last record of the read block: delivered where it was opened, with the
        // header and whatever came before as the Pipe's headroom.
        uv::Block* block = r.in;
        r.in = nullptr;
        r.plain = nullptr;
        r.plain_len = 0;
        deliver(block, p, n);
        return true;
    }
    // More records follow in the block, or the record was gathered by the reader:
    // copied into a block of its own (a block at a time).
    uv::Block* block = blocks().take();
    if (block == nullptr) {
        deliver_end(UV_ENOBUFS);
        return false;
    }
    n = std::min<size_t>(n, block->capacity - kHeadroom - kTailroom);
    std::memcpy(block->data() + kHeadroom, p, n);
    r.plain += n;
    r.plain_len -= static_cast<uint32_t>(n);
    if (r.plain_len == 0) r.plain = nullptr;
    deliver(block, block->data() + kHeadroom, n);
    return true;
}

bool Endpoint::read_record() {
    uv::Block* block = blocks().take();
    if (block == nullptr) {
        deliver_end(UV_ENOBUFS);
        return false;
    }
    size_t n = 0;
    auto status = tls_->read(block->data() + kHeadroom, block->capacity - kHeadroom - kTailroom, n);
    if (!flush_tls()) {
        blocks().give(block);
        return false;
    }
    if (n > 0) {
        deliver(block, block->data() + kHeadroom, n);
    } else {
        blocks().give(block);
    }
    if (status == tls::Connection::Status::Ok) return true;
    // A partial record: more ciphertext must come from the socket first.
    if (status == tls::Connection::Status::WantRead) return n > 0;
    // close_notify reads as the end of the stream; anything else is an error.
    if (open_ && !ended_) {
        deliver_end(status == tls::Connection::Status::Closed ? UV_EOF : UV_EPROTO);
    }
    return false;
}

void Endpoint::run_deliveries() {
    // One loop for everything this side holds, in arrival order: bytes given back
    // first, then TLS records. A consumer that resumes from inside a delivery (the
    // handshake reader starting the relay, say) only sets wanted_; this loop, still
    // on the stack, delivers the rest, so nothing is skipped or taken out of order.
    if (delivering_) return;
    delivering_ = true;
    while (open_ && !ended_) {
        if (tls_ && !tls_->handshake_done()) {
            if (!step_handshake()) break;
            continue;
        }
        if (!wanted_) break;
        if (held_ != nullptr) {
            uv::Block* block = held_;
            held_ = nullptr;
            deliver(block, block->data() + held_offset_, held_len_);
            continue;
        }
        if (tls_ && tls_->has_pending()) {
            if (!read_record()) break;
            continue;
        }
        if (records_ && (records_->plain_len > 0 || records_->in != nullptr)) {
            if (!read_records()) break;
            continue;
        }
        if (eof_held_) {
            eof_held_ = false;
            delivering_ = false;
            deliver_end(UV_EOF);
            return;
        }
        break;
    }
    delivering_ = false;
    if (open_ && wanted_ && !ended_ && held_ == nullptr) start_reading();
}

// ---- reading ----

void Endpoint::resume() {
    wanted_ = true;
    if (open_) run_deliveries();
}

void Endpoint::start_reading() {
    if (ring_) {
        arm_recv(false);
        return;
    }
    if (reading_) return;
    int rc = uv_read_start(stream(), &Endpoint::on_alloc, &Endpoint::on_read);
    if (rc == 0 || rc == UV_EALREADY) reading_ = true;
}

void Endpoint::pause() {
    // Lazily (plain sockets): the socket stays watched until something arrives while
    // paused (on_read then holds it and stops). A uv_read_stop and the uv_read_start that follows
    // cost two epoll_ctl calls, and most pauses see nothing arrive: an HTTP client waiting for its
    // answer, a Pipe whose destination drains within the tick. At most one block is ever held, as
    // before: with one held already, reading stops now.
    wanted_ = false;
    // A TLS side stops at once: the TLS layer keeps the ciphertext of the read it is
    // in the middle of, and a next read would take its place.
    if (held_ != nullptr || encrypted()) stop_reading();
}

void Endpoint::arm_recv(bool poll_first) {
    if (recv_armed_ || !open_) return;
    if (!ring().recv(fd(), this, poll_first)) {
        on_read_result(nullptr, nullptr, UV_ENOBUFS);  // the kernel takes nothing
        return;
    }
    recv_armed_ = true;
}

void Endpoint::stop_reading() {
    // On the ring, lazily: a read in the kernel completes and is held (on_read_result),
    // as a lazy pause's read is (cancelling it would cost as much as its completion).
    if (ring_) return;
    if (reading_ && open_) uv_read_stop(stream());
    reading_ = false;
}

void Endpoint::unread(uv::Block* block, char* data, size_t n) {
    // The consumer paused before giving the bytes back; only one delivery can be
    // given back, so one block is all that is ever held.
    if (held_ != nullptr) blocks().give(held_);
    static_assert(uv::BlockPool::kBlockSize <= UINT16_MAX, "held_offset_ and held_len_ fit");
    held_ = block;
    held_offset_ = static_cast<uint16_t>(data - block->data());
    held_len_ = static_cast<uint16_t>(n);
    if (!wanted_) stop_reading();  // nothing more can be held
}

void Endpoint::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    Endpoint* e = &Endpoint::of(handle);
    uv::Block* b = e->blocks().take();
    if (b == nullptr) {
        *buf = uv_buf_init(nullptr, 0);  // libuv reports UV_ENOBUFS to on_read
    } else if (e->tls_) {
        // Ciphertext: a whole block, handed to the TLS layer.
        *buf = uv_buf_init(b->data(), b->capacity);
    } else {
        // Headroom in front, where a Pipe puts back the bytes it held last time, and
        // tailroom behind, where a record sealed in place puts its tag.
        *buf = uv_buf_init(b->data() + kHeadroom, b->capacity - kHeadroom - kTailroom);
    }
}

void Endpoint::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    Endpoint* e = &Endpoint::of(reinterpret_cast<uv_handle_t*>(stream));
    uv::Block* block = nullptr;
    if (buf->base != nullptr) {
        char* start = e->tls_ ? buf->base : buf->base - kHeadroom;
        block = reinterpret_cast<uv::Block*>(start) - 1;
    }
    e->on_read_result(block, buf->base, nread);
}

void Endpoint::on_read_result(uv::Block* block, char* base, ssize_t nread) {
    Endpoint* e = this;
    if (nread <= 0 || !e->open_) {
        if (block != nullptr) e->blocks().give(block);
        if (nread == UV_EOF && e->open_ && !e->wanted_) {
            // Paused (lazily): the end waits behind whatever is held, as it would have
            // waited in the socket.
            e->eof_held_ = true;
            e->stop_reading();
            return;
        }
        if (nread < 0 && e->open_) e->deliver_end(static_cast<int>(nread));
        return;
    }
    if (e->tls_) {
        e->tls_->give_input(block, base, static_cast<size_t>(nread));
        if (!e->wanted_) e->stop_reading();  // the TLS layer holds this read's records
        e->run_deliveries();
        return;
    }
    if (e->records_) {
        // Reading stops while records of the last read wait (pause(), and the loop
        // opens them all before it reads again), so there is none here. (On the ring,
        // a read is started only once they are all opened, and one at a time.)
        Records& r = *e->records_;
        if (r.in != nullptr) {
            e->blocks().give(block);
            e->deliver_end(UV_EPROTO);
            return;
        }
        r.in = block;
        r.in_offset = static_cast<uint32_t>(base - block->data());
        r.in_len = static_cast<uint32_t>(nread);
        if (!e->wanted_) e->stop_reading();
        e->run_deliveries();
        return;
    }
    if (!e->wanted_ && !e->delivering_) {
        // Arrived while paused (lazily): held, and reading stops until resume(). One
        // block at most: reading stops (on the ring: no read starts) while one is held.
        if (e->held_ != nullptr) {
            e->blocks().give(block);
            e->deliver_end(UV_EPROTO);
            return;
        }
        e->held_ = block;
        e->held_offset_ = static_cast<uint16_t>(base - block->data());
        e->held_len_ = static_cast<uint16_t>(nread);
        e->stop_reading();
        return;
    }
    e->delivering_ = true;
    e->deliver(block, base, static_cast<size_t>(nread));
    e->delivering_ = false;
    // What the delivery left (bytes given back) goes on now if the consumer still
    // wants it, and reading restarts if it was stopped meanwhile. The usual read (no
    // bytes given back, still reading) has nothing left: skip the loop.
    const bool reading = e->ring_ ? e->recv_armed_ : e->reading_;
    if (e->held_ != nullptr || (e->wanted_ && !reading)) e->run_deliveries();
}

void Endpoint::deliver(uv::Block* block, char* data, size_t n) {
    switch (consumer_) {
        case Consumer::Handshake:
            session().on_handshake_bytes(*this, block, data, n);
            return;
        case Consumer::Pipe:
            session().pipe_from(*this).on_bytes(block, data, n);
            return;
        case Consumer::Discard:
            blocks().give(block);
            return;
    }
}

void Endpoint::deliver_end(int status) {
    ended_ = true;
    if (recv_armed_ && open_) {
        ring().cancel(reinterpret_cast<uintptr_t>(this) | uv::Ring::kRecv);
    } else if (reading_ && open_) {
        uv_read_stop(stream());
    }
    reading_ = false;
    if (consumer_ == Consumer::Pipe) {
        session().pipe_from(*this).on_end(status);
    } else {
        session().on_handshake_end(*this, status);
    }
}

// ---- writing ----

bool Endpoint::write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra) {
    if (tls_) {
        // Encrypt now, in order, and send the ciphertext: the plaintext blocks are free.
        bool ok = true;
        for (unsigned i = 0; i < count && ok; ++i)
            ok = tls_->write(bufs[i].base, bufs[i].len);
        tls::release_chain(blocks(), owner);
        tls::release_chain(blocks(), extra);
        uv::Block* chain = tls_->take_output();
        if (!ok) {
            tls::release_chain(blocks(), chain);
            failed_write(UV_EPROTO);
            return false;
        }
        return write_chain_raw(chain);
    }
    if (records_) return seal_and_write(owner, bufs, count, extra);
    return write_raw(owner, bufs, count, extra);
}

bool Endpoint::write_chain(uv::Block* chain) {
    if (chain == nullptr) return true;
    if (tls_) {
        bool ok = true;
        for (uv::Block* b = chain; b != nullptr && ok; b = b->next)
            ok = tls_->write(b->data(), b->size);
        tls::release_chain(blocks(), chain);
        uv::Block* out = tls_->take_output();
        if (!ok) {
            tls::release_chain(blocks(), out);
            failed_write(UV_EPROTO);
            return false;
        }
        return write_chain_raw(out);
    }
    if (records_) {
        // A head or a proxy frame: a block or two, copied into records.
        uv_buf_t stack_bufs[16];
        std::vector<uv_buf_t> heap_bufs;
        uv_buf_t* bufs = stack_bufs;
        size_t count = 0;
        for (uv::Block* b = chain; b != nullptr; b = b->next)
            ++count;
        if (count > std::size(stack_bufs)) {
            heap_bufs.resize(count);
            bufs = heap_bufs.data();
        }
        size_t i = 0;
        for (uv::Block* b = chain; b != nullptr; b = b->next)
            bufs[i++] = uv_buf_init(b->data(), b->size);
        return seal_and_write(chain, bufs, static_cast<unsigned>(count), nullptr);
    }
    return write_chain_raw(chain);
}

bool Endpoint::seal_and_write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra) {
    tls::RecordCrypto& crypto = record_crypto();
    tls::TrafficKeys& keys = records_->keys.write;
    const size_t prefix = tls::seal_prefix(keys);
    const size_t suffix = tls::seal_suffix(keys, 0);
    // RFC 8446 §4.6.3: the KeyUpdate a client asked for goes out before our next data,
    // one for however many requests came while we were silent.
    if (!open_ || notify_sent_ || (records_->key_update_owed && !write_key_update(false))) {
        tls::release_chain(blocks(), owner);
        tls::release_chain(blocks(), extra);
        return false;
    }
    // The usual relayed read: one range of one block, with the headroom and tailroom
    // every read leaves around it. Sealed where it lies, no copy.
    if (count == 1 && extra == nullptr && owner->next == nullptr && bufs[0].len > 0 &&
        bufs[0].len <= tls::kMaxPlaintext && inside(owner, bufs[0].base) &&
        bufs[0].base >= owner->data() + prefix &&
        bufs[0].base + bufs[0].len + suffix <= owner->data() + owner->capacity) {
        auto* start = reinterpret_cast<uint8_t*>(bufs[0].base - prefix);
        size_t cap = static_cast<size_t>(owner->data() + owner->capacity - bufs[0].base) + prefix;
        tls::Sealed sealed =
            tls::seal(crypto, keys, tls::ContentType::ApplicationData, start, bufs[0].len, cap);
        if (sealed.status == tls::SealStatus::Exhausted ||
            sealed.status == tls::SealStatus::Error) {
            tls::release_chain(blocks(), owner);
            failed_write(UV_EPROTO);
            return false;
        }
        uv_buf_t out =
            uv_buf_init(reinterpret_cast<char*>(start), static_cast<unsigned>(sealed.size));
        return write_raw(owner, &out, 1, nullptr) && after_seal(sealed.status);
    }
    // Anything else (several ranges, a chain, a copied head): the plaintext is copied
    // into fresh blocks, as much as fits in one record per block, and sealed there.
    uv::Block* chain = nullptr;
    uv::Block** tail = &chain;
    uv::Block* cur = nullptr;
    size_t cur_len = 0;
    tls::SealStatus worst = tls::SealStatus::Ok;
    bool ok = true;
    auto seal_current = [&] {
        if (cur == nullptr) return;
        auto* start = reinterpret_cast<uint8_t*>(cur->data());
        tls::Sealed sealed = tls::seal(crypto, keys, tls::ContentType::ApplicationData, start,
                                       cur_len, cur->capacity);
        if (sealed.status == tls::SealStatus::Exhausted ||
            sealed.status == tls::SealStatus::Error) {
            ok = false;
            blocks().give(cur);
        } else {
            if (sealed.status == tls::SealStatus::KeyUpdateDue) worst = sealed.status;
            cur->size = static_cast<uint32_t>(sealed.size);
            *tail = cur;
            tail = &cur->next;
        }
        cur = nullptr;
        cur_len = 0;
    };
    for (unsigned i = 0; i < count && ok; ++i) {
        const char* p = bufs[i].base;
        size_t left = bufs[i].len;
        while (left > 0 && ok) {
            if (cur == nullptr) {
                cur = blocks().take();
                if (cur == nullptr) {
                    ok = false;
                    break;
                }
            }
            size_t room = std::min(tls::kMaxPlaintext, cur->capacity - prefix - suffix) - cur_len;
            size_t n = std::min(left, room);
            std::memcpy(cur->data() + prefix + cur_len, p, n);
            cur_len += n;
            p += n;
            left -= n;
            if (cur_len == std::min(tls::kMaxPlaintext, cur->capacity - prefix - suffix)) {
                seal_current();
            }
        }
    }
    if (ok && cur_len > 0) seal_current();
    if (cur != nullptr) blocks().give(cur);
    tls::release_chain(blocks(), owner);
    tls::release_chain(blocks(), extra);
    if (!ok) {
        tls::release_chain(blocks(), chain);
        failed_write(UV_EPROTO);
        return false;
    }
    return write_chain_raw(chain) && after_seal(worst);
}

bool Endpoint::after_seal(tls::SealStatus status) {
    if (status != tls::SealStatus::KeyUpdateDue || !open_) return open_;
    if (records_->keys.write.version == tls::RecordVersion::Tls13) return write_key_update(false);
    // TLS 1.2 has no KeyUpdate (renegotiation is refused): say goodbye and close
    // before the key reaches its limit.
    write_alert(tls::alert::kWarning, tls::alert::kCloseNotify);
    notify_sent_ = true;
    failed_write(UV_EPROTO);
    return false;
}

bool Endpoint::write_key_update(bool update_requested) {
    records_->key_update_owed = false;  // any KeyUpdate of ours answers the requests
    uv::Block* block = blocks().take();
    if (block == nullptr) {
        failed_write(UV_ENOBUFS);
        return false;
    }
    auto* out = reinterpret_cast<uint8_t*>(block->data());
    return write_sealed_control(tls::seal_key_update(record_crypto(), records_->keys.write,
                                                     update_requested, out, block->capacity),
                                block);
}

bool Endpoint::write_alert(uint8_t level, uint8_t description) {
    uv::Block* block = blocks().take();
    if (block == nullptr) {
        failed_write(UV_ENOBUFS);
        return false;
    }
    auto* out = reinterpret_cast<uint8_t*>(block->data());
    return write_sealed_control(tls::seal_alert(record_crypto(), records_->keys.write, level,
                                                description, out, block->capacity),
                                block);
}

bool Endpoint::write_sealed_control(tls::Sealed sealed, uv::Block* block) {
    if (sealed.status == tls::SealStatus::Exhausted || sealed.status == tls::SealStatus::Error) {
        blocks().give(block);
        failed_write(UV_EPROTO);
        return false;
    }
    block->size = static_cast<uint32_t>(sealed.size);
    return write_chain_raw(block);
}

bool Endpoint::write_copy(std::string_view bytes) {
    uv::Block* chain = nullptr;
    uv::Block** tail = &chain;
    while (!bytes.empty()) {
        uv::Block* b = blocks().take();
        if (b == nullptr) {
            tls::release_chain(blocks(), chain);
            failed_write(UV_ENOBUFS);
            return false;
        }
        size_t n = std::min<size_t>(bytes.size(), b->capacity);
        std::memcpy(b->data(), bytes.data(), n);
        b->size = static_cast<uint32_t>(n);
        bytes.remove_prefix(n);
        *tail = b;
        tail = &b->next;
    }
    return write_chain(chain);
}

bool Endpoint::write_chain_raw(uv::Block* chain) {
    if (chain == nullptr) return true;
    // As many buffers as blocks: no chain is ever cut short.
    size_t count = 0;
    for (uv::Block* b = chain; b != nullptr; b = b->next)
        ++count;
    uv_buf_t stack_bufs[16];
    std::vector<uv_buf_t> heap_bufs;
    uv_buf_t* bufs = stack_bufs;
    if (count > std::size(stack_bufs)) {
        heap_bufs.resize(count);
        bufs = heap_bufs.data();
    }
    size_t i = 0;
    for (uv::Block* b = chain; b != nullptr; b = b->next)
        bufs[i++] = uv_buf_init(b->data(), b->size);
    return write_raw(chain, bufs, static_cast<unsigned>(count), nullptr);
}

bool Endpoint::write_raw(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra) {
    if (!open_) {
        tls::release_chain(blocks(), owner);
        tls::release_chain(blocks(), extra);
        return false;
    }
    // Writes go through the ring once every write libuv holds is out: they leave in
    // the order they were made.
    if (ring_ && (ring_writes_ || writes_in_flight_ == 0)) {
        ring_writes_ = true;
        return ring_write(owner, bufs, count, extra);
    }
    size_t total = 0;
    for (unsigned i = 0; i < count; ++i)
        total += bufs[i].len;
    size_t written = 0;
    // Only when nothing is queued: writes leave in the order they were made.
    if (writes_in_flight_ == 0) {
        int rc = uv_try_write(stream(), bufs, count);
        if (rc < 0 && rc != UV_EAGAIN) {
            tls::release_chain(blocks(), owner);
            tls::release_chain(blocks(), extra);
            failed_write(rc);
            return false;
        }
        written = rc > 0 ? static_cast<size_t>(rc) : 0;
    }
    if (written == total) {
        tls::release_chain(blocks(), owner);
        tls::release_chain(blocks(), extra);
        return true;
    }
    // Queue what the kernel did not take, with the uv_write_t embedded in the first
    // block; the blocks go back in on_write.
    unsigned first = 0;
    while (written >= bufs[first].len)
        written -= bufs[first++].len;
    bufs[first].base += written;
    bufs[first].len -= written;
    if (extra != nullptr) {
        uv::Block* tail = owner;
        while (tail->next != nullptr)
            tail = tail->next;
        tail->next = extra;
    }
    int rc = uv_write(&owner->write, stream(), bufs + first, count - first, &Endpoint::on_write);
    if (rc != 0) {
        tls::release_chain(blocks(), owner);
        failed_write(rc);
        return false;
    }
    ++writes_in_flight_;
    return true;
}

void Endpoint::on_write(uv_write_t* req, int status) noexcept {
    Endpoint* e = &Endpoint::of(reinterpret_cast<uv_handle_t*>(req->handle));
    tls::release_chain(e->blocks(), block_of_write(req));
    if (e->writes_in_flight_ > 0) --e->writes_in_flight_;
    if (status == UV_ECANCELED || !e->open_) return;  // the handle is closing
    if (status < 0) {
        e->failed_write(status);
        return;
    }
    if (e->writes_in_flight_ > 0) return;
    e->drain_awaited_ = false;
    e->session().on_drained(*e);
    if (e->open_ && e->shutdown_wanted_) e->maybe_shutdown();
}

void Endpoint::failed_write(int status) {
    session().on_side_error(client_side_, status);
}

void Endpoint::shutdown() {
    shutdown_wanted_ = true;
    maybe_shutdown();
}

void Endpoint::maybe_shutdown() {
    if (!open_ || shutdown_sent_ || writes_in_flight_ > 0) return;
    if (tls_ && !notify_sent_) {
        // TLS says goodbye with close_notify before the TCP FIN.
        notify_sent_ = true;
        tls_->close_notify();
        if (!flush_tls() || writes_in_flight_ > 0) return;  // the FIN follows on_write
    }
    if (records_ && !notify_sent_) {
        if (!write_alert(tls::alert::kWarning, tls::alert::kCloseNotify)) return;
        notify_sent_ = true;
        if (writes_in_flight_ > 0) return;  // the FIN follows on_write
    }
    shutdown_sent_ = true;
    auto* req = new uv_shutdown_t;
    req->data = this;
    if (uv_shutdown(req, stream(), &Endpoint::on_shutdown) != 0) {
        delete req;
        shutdown_done_ = true;
        session().on_shutdown(*this);
    }
}

void Endpoint::on_shutdown(uv_shutdown_t* req, int status) noexcept {
    auto* e = static_cast<Endpoint*>(req->data);
    delete req;
    if (status == UV_ECANCELED || !e->open_) return;
    e->shutdown_done_ = true;
    e->session().on_shutdown(*e);
}

// ---- the ring ----

void Endpoint::use_ring() {
    if (ring_ || !open_ || tls_ != nullptr || !ring().is_open()) return;
    // The completion queue has room for so many sides' completions: beyond, libuv.
    const bool debug = log::Logger::get().enabled(log::Level::Debug);
    if (ring().sides >= uv::Ring::max_sides()) {
        if (debug) {
            log::debug("relay side stays on libuv: the ring serves all the sides it may",
                       {{"sides", std::to_string(ring().sides)}});
        }
        return;
    }
    ++ring().sides;
    if (debug) log::debug("relay side on the ring", {{"sides", std::to_string(ring().sides)}});
    if (reading_) uv_read_stop(stream());
    reading_ = false;
    ring_ = true;
}

void Endpoint::on_ring_completion(uint64_t user_data, int32_t res, uint32_t flags) noexcept {
    const uint64_t address = user_data & ~uint64_t{uv::Ring::kTagMask};
    switch (user_data & uv::Ring::kTagMask) {
        case uv::Ring::kRecv:
            reinterpret_cast<Endpoint*>(address)->on_ring_recv(res, flags);
            return;
        case uv::Ring::kSend:
            on_ring_send(reinterpret_cast<SendOp*>(address), res);
            return;
        default:
            return;
    }
}

void Endpoint::on_ring_recv(int32_t res, uint32_t flags) {
    recv_armed_ = false;
    uv::Block* block = nullptr;
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        block = ring().take_buffer(static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
    }
    if (close_waits_ || !open_ || ended_) {
        // Closing, or the end was delivered already (the read was cancelled).
        if (block != nullptr) blocks().give(block);
        if (close_waits_ && !ring_busy()) finish_close();
        return;
    }
    if (res == -ENOBUFS) {
        // The kernel picks a provided buffer as it issues a read, and more reads went
        // in at one wakeup than there were buffers (the worker refills them only when
        // it handles completions). Data may be waiting: it is read now, into a block
        // of its own, as libuv would have. Then the read goes in again, waiting for
        // data before it takes a buffer (IORING_RECVSEND_POLL_FIRST), so that a quiet
        // socket cannot meet an empty ring twice.
        if (!wanted_) return;  // paused: resume() starts the read again
        log::debug("the ring's read buffers ran out: read directly");
        uv::Block* b = blocks().take();
        char byte = 0;
        char* base = b != nullptr ? b->data() + kHeadroom : &byte;
        // Without a block (the pool's memory is exhausted), a peek says whether the
        // read must fail, as libuv's does when data comes and it has no memory.
        const size_t len = b != nullptr ? b->capacity - kHeadroom - kTailroom : 1;
        ssize_t n = ::recv(fd(), base, len, MSG_DONTWAIT | (b == nullptr ? MSG_PEEK : 0));
        const int error = n < 0 ? errno : 0;
        if (n > 0 && b != nullptr) {
            on_read_result(b, base, n);
            return;
        }
        if (b != nullptr) blocks().give(b);
        if (n > 0) {
            on_read_result(nullptr, nullptr, UV_ENOBUFS);
        } else if (n == 0) {
            on_read_result(nullptr, nullptr, UV_EOF);
        } else if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) {
            arm_recv(true);
        } else {
            on_read_result(nullptr, nullptr, -error);
        }
        return;
    }
    if (res > 0 && block == nullptr) res = -EIO;  // a read into no buffer: cannot be
    if (res <= 0) {
        if (block != nullptr) blocks().give(block);
        on_read_result(nullptr, nullptr, res == 0 ? UV_EOF : res);
        return;
    }
    on_read_result(block, block->data() + kHeadroom, res);
}

bool Endpoint::ring_write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra) {
    auto* op = new SendOp;
    if (op == nullptr) {
        tls::release_chain(blocks(), owner);
        tls::release_chain(blocks(), extra);
        failed_write(UV_ENOBUFS);
        return false;
    }
    op->endpoint = this;
    op->owner = owner;
    op->extra = extra;
    op->iov = op->inline_iov;
    if (count > SendOp::kInline) {
        op->more.reset(new (std::nothrow) iovec[count]);
        if (op->more == nullptr) {
            delete op;
            tls::release_chain(blocks(), owner);
            tls::release_chain(blocks(), extra);
            failed_write(UV_ENOBUFS);
            return false;
        }
        op->iov = op->more.get();
    }
    for (unsigned i = 0; i < count; ++i) {
        if (bufs[i].len > 0) op->iov[op->count++] = iovec{bufs[i].base, bufs[i].len};
    }
    if (op->count == 0) {
        tls::release_chain(blocks(), owner);
        tls::release_chain(blocks(), extra);
        delete op;
        return true;
    }
    SendOp** tail = &sends_;
    while (*tail != nullptr)
        tail = &(*tail)->next;
    *tail = op;
    ++writes_in_flight_;
    return send_armed_ || submit_send();
}

bool Endpoint::submit_send(bool lazy) {
    SendOp* op = sends_;
    op->msg.msg_iov = op->iov + op->first;
    op->msg.msg_iovlen = op->count - op->first;
    op->lazy = lazy && ring().lazy_sends();
    if (!ring().sendmsg(fd(), &op->msg, op, op->lazy)) {
        failed_write(UV_ENOBUFS);  // the kernel takes nothing; the op goes on close
        return false;
    }
    send_armed_ = true;
    return true;
}

bool Endpoint::send_awaited(uint64_t user_data) noexcept {
    const auto* op = reinterpret_cast<const SendOp*>(user_data & ~uint64_t{uv::Ring::kTagMask});
    const Endpoint* e = op->endpoint;
    return op->next != nullptr || !e->open_ || e->close_waits_ || e->shutdown_wanted_ ||
           e->drain_awaited_;
}

void Endpoint::on_ring_send(SendOp* op, int32_t res) {
    Endpoint* e = op->endpoint;
    e->send_armed_ = false;
    if (res == -EAGAIN && op->lazy && e->open_) {
        // A lazy send found no room in the socket: it goes in again, waiting for room.
        e->submit_send(false);
        return;
    }
    if (res > 0 && e->open_) {
        // A short write goes in again from where it stopped.
        auto left = static_cast<size_t>(res);
        while (op->first < op->count && left >= op->iov[op->first].iov_len)
            left -= op->iov[op->first++].iov_len;
        if (op->first < op->count) {
            iovec& v = op->iov[op->first];
            v.iov_base = static_cast<char*>(v.iov_base) + left;
            v.iov_len -= left;
            // The socket is full: the rest waits for room (a lazy send would fail).
            e->submit_send(false);
            return;
        }
    }
    // Written, failed, or its side is closing: its blocks go back.
    e->sends_ = op->next;
    tls::release_chain(e->blocks(), op->owner);
    tls::release_chain(e->blocks(), op->extra);
    delete op;
    if (e->writes_in_flight_ > 0) --e->writes_in_flight_;
    if (e->close_waits_) {
        if (!e->ring_busy()) e->finish_close();
        return;
    }
    if (!e->open_) return;  // the close callback releases the rest
    if (res <= 0) {
        e->failed_write(res < 0 ? res : UV_EPIPE);
        return;
    }
    if (e->sends_ != nullptr) {
        e->submit_send();
        return;
    }
    e->drain_awaited_ = false;
    e->session().on_drained(*e);
    if (e->open_ && e->shutdown_wanted_) e->maybe_shutdown();
}

void Endpoint::release_sends() {
    while (sends_ != nullptr) {
        SendOp* op = sends_;
        sends_ = op->next;
        tls::release_chain(blocks(), op->owner);
        tls::release_chain(blocks(), op->extra);
        delete op;
    }
}

}  // namespace sb::session
