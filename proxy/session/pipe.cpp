#include "session/pipe.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "net/splice_pipe.h"
#include "session/session.h"

namespace sb::session {

namespace {

uint32_t random_mask() {
    // Masks for frames sent to backends: RFC 6455 wants them unpredictable.
    thread_local std::mt19937 rng{std::random_device{}()};
    return static_cast<uint32_t>(rng());
}

std::string token_bytes(uint64_t token) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i)
        out[static_cast<size_t>(i)] = static_cast<char>(token >> (56 - 8 * i));
    return out;
}

// The bytes to write for one chunk: ranges of the chunk's buffer, with proxy frames
// inserted between them and cut-out ranges (a swallowed Pong, a discarded tail) left
// out. One delivery plans at most four ranges: what precedes a swallowed Pong, what
// precedes the one proxy frame, that frame, and what follows it.
struct Plan {
    explicit Plan(char* b) : base(b) {}

    char* base;
    uv_buf_t bufs[6] = {};
    unsigned count = 0;
    size_t emitted = 0;  // bytes of the buffer before this offset are planned or cut

    // Plans the buffer's bytes up to offset `to`.
    void take(size_t to) {
        if (to <= emitted) return;
        bool contiguous = count > 0 && bufs[count - 1].base + bufs[count - 1].len == base + emitted;
        if (!contiguous && count == std::size(bufs)) std::abort();  // see the bound above
        if (contiguous) {
            bufs[count - 1].len += to - emitted;
        } else {
            bufs[count++] = uv_buf_init(base + emitted, static_cast<unsigned>(to - emitted));
        }
        emitted = to;
    }
    // Leaves out the buffer's bytes up to offset `to`.
    void cut(size_t to) {
        if (to > emitted) emitted = to;
    }
    void insert(uv::Block* frame) {
        if (count == std::size(bufs)) std::abort();  // see the bound above
        bufs[count++] = uv_buf_init(frame->data(), frame->size);
    }
};

}  // namespace

// Scanner callbacks for one stretch of a chunk. Offsets from the scanner are relative
// to where this stretch begins (`base` in the chunk's buffer). What the session must
// hear about is recorded and told after the chunk's write is issued, since the
// session may end itself when told.
struct Pipe::Sink {
    Pipe& pipe;
    Plan& plan;
    size_t base;
    uint64_t now_ms;
    Stop stop = Stop::None;
    size_t stop_at = 0;  // where the offending frame began
    bool stopped_for_control = false;
    bool saw_close = false;
    uint16_t close_code = 0;
    bool in_pong = false;  // inside a Pong that may answer our Ping
    size_t pong_at = 0;    // where that Pong began
    bool pong_matched = false;

    bool on_header(const ws::FrameHeader& h, size_t end) {
        size_t at = base + end;
        // The header began at most header_length bytes earlier; the carry guarantees
        // those bytes are in this buffer, except after bytes the session wrote itself.
        size_t start = at >= h.header_length ? at - h.header_length : 0;
        // Discarding: only Close frames matter now; the stream is still followed so
        // that the source's own Close is recognised.
        if (pipe.discarding_) return true;
        auto v = pipe.message_.on_header(h, pipe.from_client_);
        // Only clients are held to the framing rules; a backend is trusted with its
        // own protocol, and its client will judge what it sends.
        if (v != ws::Violation::None && pipe.from_client_) {
            pipe.violation_ = v;
            return halt(Stop::Violation, start);
        }
        if (const config::WebSocketConfig* limits = pipe.session_.client_limits();
            limits != nullptr && pipe.from_client_) {
            const auto& l = *limits;
            if (l.max_message_bytes > 0 && !h.is_control() &&
                pipe.message_.message_bytes() > l.max_message_bytes) {
                return halt(Stop::TooBig, start);
            }
            bool starts_message = h.opcode == ws::kText || h.opcode == ws::kBinary;
            if (l.max_messages_per_second > 0 && starts_message &&
                !pipe.session_.rate_bucket().take(l.max_messages_per_second, now_ms)) {
                return halt(Stop::RateLimited, start);
            }
        }
        if (pipe.pong_expected_ && h.opcode == ws::kPong && h.payload_length == 8) {
            in_pong = true;
            pong_at = start;
        }
        return true;
    }

    bool on_frame_end(const ws::FrameHeader& h, size_t end, std::span<const uint8_t> capture) {
        size_t at = base + end;
        // Messages count when relayed: not those cut off by a close or a limit.
        if (ws::MessageState::ends_message(h) && !pipe.discarding_) {
            pipe.session_.count_message(pipe.direction());
            if (auto* stats = pipe.session_.pool_stats()) stats->messages[pipe.direction()].add();
        }
        if (h.opcode == ws::kClose && !saw_close) {
            saw_close = true;
            close_code = ws::close_code_of(capture);
        }
        if (in_pong) {
            in_pong = false;
            std::string token = token_bytes(pipe.session_.ping_token());
            if (capture.size() == 8 && std::memcmp(capture.data(), token.data(), 8) == 0) {
                // The answer to our own Ping: it never reaches the backend.
                pong_matched = true;
                pipe.pong_expected_ = false;
                if (!pipe.discarding_) {
                    plan.take(pong_at);
                    plan.cut(at);
                }
            }
        }
        // A frame just ended: the place where a waiting proxy frame can go.
        if (pipe.control_ != nullptr && !pipe.discarding_) {
            stopped_for_control = true;
            return false;
        }
        return true;
    }

    bool halt(Stop why, size_t at) {
        stop = why;
        stop_at = at;
        return false;
    }
};

Pipe::~Pipe() {
    // By now libuv has cancelled every write; only a frame that never found its
    // boundary can be left.
    release(control_);
}

Endpoint& Pipe::src() const {
    return session_.endpoint(from_client_);
}
Endpoint& Pipe::dst() const {
    return session_.endpoint(!from_client_);
}

void Pipe::release(uv::Block* b) {
    // A block may head a chain.
    tls::release_chain(session_.context().blocks, b);
}

void Pipe::reset() {
    release(control_);
    control_ = nullptr;
    scanner_ = ws::FrameScanner{};
    mode_ = Mode::Frames;
    violation_ = ws::Violation::None;
    attached_ = stopped_ = paused_ = forwarding_ = false;
    dst_boundary_ = true;
    control_is_close_ = discarding_ = close_forwarded_ = close_received_ = false;
    pong_expected_ = holding_pong_ = source_ended_ = shutdown_wanted_ = done_ = false;
    message_ = ws::MessageState{};
    carry_.clear();
}

void Pipe::start() {
    stopped_ = false;
    if (source_ended_ || !attached_) return;
    if (dst().write_blocked()) {
        dst().await_drain();  // on_drained starts it
        return;
    }
    if (paused_) {
        paused_ = false;
        session_.context().stats.resumes.add();
    }
    src().deliver_to(Endpoint::Consumer::Pipe);
    src().resume();
}

void Pipe::stop() {
    stopped_ = true;
    src().pause();
}

void Pipe::pause() {
    if (paused_ || src().paused()) return;
    src().pause();
    paused_ = true;
    session_.context().stats.pauses.add();
}

void Pipe::on_end(int status) {
    if (status == UV_EOF) {
        source_ended_ = true;
        session_.on_source_ended(*this);
    } else {
        session_.on_side_error(from_client_, status);
    }
}

void Pipe::on_bytes(uv::Block* b, char* data, size_t n) {
    session_.count_bytes(direction(), n);
    if (auto* stats = session_.pool_stats()) stats->bytes[direction()].add(n);
    session_.on_activity(*this);
    // The bytes held back last time go in front of the new ones, in the headroom
    // every delivery leaves: one contiguous run, whose held part was scanned already.
    size_t scanned = carry_.size();
    char* start = carry_.put_before(data);
    forward(b, start, scanned + n, scanned);
}

void Pipe::forward(uv::Block* b, char* data, size_t len, size_t scanned) {
    forwarding_ = true;
    const bool discarding_at_start = discarding_;
    Plan plan{data};
    uv::Block* injected = nullptr;
    bool ping_inserted = false;
    Stop stop = Stop::None;
    Sink sink{*this, plan, scanned, uv_now(session_.context().loop)};

    if (mode_ == Mode::Raw) {
        plan.take(session_.on_raw_bytes(*this, std::string_view(data, len)));
    } else {
        // A Pong held back from the last delivery starts this run.
        if (holding_pong_) {
            sink.in_pong = true;
            sink.pong_at = 0;
            holding_pong_ = false;
        }
        size_t pos = scanned;
        while (pos < len) {
            sink.base = pos;
            sink.stopped_for_control = false;
            size_t stop_at =
                pos + scanner_.scan(reinterpret_cast<const uint8_t*>(data) + pos, len - pos, sink);
            if (sink.stop != Stop::None) {
                // Forward what preceded the offending frame, then nothing more; keep
                // scanning the rest so a Close from the source is still seen.
                stop = sink.stop;
                sink.stop = Stop::None;
                plan.take(sink.stop_at);
                dst_boundary_ = true;
                discarding_ = true;
                pos = stop_at;
                continue;
            }
            pos = stop_at;
            if (sink.stopped_for_control) {
                // Exactly between two frames: the waiting proxy frame goes here.
                plan.take(pos);
                injected = control_;
                control_ = nullptr;
                plan.insert(injected);
                if (control_is_close_) {
                    close_forwarded_ = true;
                    discarding_ = true;
                } else {
                    ping_inserted = true;
                }
            }
        }
        if (discarding_) {
            plan.cut(len);
        } else {
            // Hold back an incomplete header, or a Pong that may be ours, for the next
            // delivery: what goes out ends between frames or inside a payload. Every
            // byte of an incomplete header is in this run (the carry put the earlier
            // ones in front), so the header's start is within it.
            size_t hold = len;
            if (size_t partial = scanner_.partial_header_bytes(); partial > 0) {
                hold = len - std::min(partial, len);
            } else if (sink.in_pong) {
                hold = sink.pong_at;
                holding_pong_ = true;
            }
            if (!carry_.hold(data + hold, len - hold)) {
                // More than a header and a Pong's capture cannot be pending; should it
                // ever be, the bytes go on unheld (a Pong then reaches the backend).
                hold = len;
                holding_pong_ = false;
            }
            plan.take(hold);
            dst_boundary_ = hold < len || scanner_.at_boundary();
        }
    }

    bool written = true;
    if (plan.count == 0) {
        release(b);
        release(injected);
    } else {
        written = write(b, plan.bufs, plan.count, injected);
    }
    if (written && stop == Stop::None && !sink.saw_close && !sink.pong_matched && may_splice()) {
        splice_payload();
    }
    forwarding_ = false;

    // Tell the session last: what it does may end the session.
    if (ping_inserted && written) session_.on_ping_written(*this);
    if (sink.pong_matched) session_.on_pong(*this);
    if (sink.saw_close) {
        close_received_ = true;
        // The source's own Close went on to dst (unless we were discarding): the
        // proxy must not send a second one that way.
        if (!discarding_at_start) close_forwarded_ = true;
        session_.on_close_frame(*this, sink.close_code);
    }
    if (stop != Stop::None) session_.on_stop(*this, stop);
    if (shutdown_wanted_) maybe_shutdown();
    // Last, with the bytes handed on: the session may end the exchange here (and reset
    // this Pipe for the next one).
    if (mode_ == Mode::Raw && written) session_.after_raw_bytes(*this);
}

bool Pipe::may_splice() const {
    // Mid-payload, with nothing held back, waiting or queued, and plaintext on both
    // sides: then the bytes up to the frame's end need no look from the proxy.
    return mode_ == Mode::Frames && !discarding_ && control_ == nullptr && !dst().write_pending() &&
           carry_.size() == 0 && !holding_pong_ && !shutdown_wanted_ && !stopped_ &&
           !src().paused() && !scanner_.current().is_control() &&
           scanner_.partial_header_bytes() == 0 && scanner_.payload_remaining() > kSpliceMin &&
           !src().encrypted() && !dst().encrypted();
}

void Pipe::splice_payload() {
    // Why: a 1 MiB message costs 64 read/write pairs through 16 KiB blocks, each
    // copying the bytes into the proxy and out again; spliced, it is 8 pairs of
    // page moves.
    net::SplicePipe& kernel = session_.context().splice;
    int in = src().fd();
    int out = dst().fd();
    if (!kernel.ready() || in < 0 || out < 0) return;
    // No more than the destination takes: what it refuses must be read back out and
    // parked, and a nearly full destination is left to ordinary reads, which park one
    // block at most. Asked once per callback (two system calls), then spent: the
    // destination's peer drains it meanwhile, so the budget only errs low.
    size_t room = net::SplicePipe::send_room(out);
    // Bounded, so one large message does not keep the worker from its other sessions;
    // libuv calls back for the rest.
    for (int round = 0; round < kSpliceRounds; ++round) {
        // The payload's last byte is left to the scanner, so that every frame ends
        // in one place (on_frame_end: message counts, proxy frames waiting).
        uint64_t left = scanner_.payload_remaining() - 1;
        size_t want = static_cast<size_t>(std::min<uint64_t>({left, kSpliceRound, room}));
        if (want < kSpliceMin) return;
        ssize_t n = kernel.fill(in, want);
        // Nothing to read now (libuv calls back when there is), or the source ended or
        // failed: libuv's next read sees the same and reports it.
        if (n <= 0) return;
        auto got = static_cast<size_t>(n);
        scanner_.skip_payload(got);
        session_.count_bytes(direction(), got);
        if (auto* stats = session_.pool_stats()) stats->bytes[direction()].add(got);
        size_t sent = 0;
        while (sent < got) {
            ssize_t m = kernel.drain(out, got - sent);
            if (m > 0) {
                sent += static_cast<size_t>(m);
                continue;
            }
            if (errno == EAGAIN) break;
            // The destination failed (reset, gone): as a failed write.
            int error = uv_translate_sys_error(errno);
            kernel.clear();  // the next session finds the pipe empty
            session_.on_side_error(!from_client_, error);
            return;
        }
        room -= sent;
        if (sent < got) {
            // The destination is full after all: the ordinary write path queues the
            // rest and pauses reading until it drains.
            park_spliced(got - sent);
            return;
        }
    }
}

bool Pipe::park_spliced(size_t n) {
    net::SplicePipe& kernel = session_.context().splice;
    uv::Block* chain = nullptr;
    uv::Block** tail = &chain;
    while (n > 0) {
        uv::Block* b = session_.context().blocks.take();
        ssize_t r =
            b != nullptr ? kernel.read_back(b->data(), std::min<size_t>(n, b->capacity)) : -1;
        if (r <= 0) {
            if (b != nullptr) session_.context().blocks.give(b);
            release(chain);
            kernel.clear();  // the next session finds the pipe empty
            session_.on_side_error(!from_client_, UV_ENOBUFS);
            return false;
        }
        b->size = static_cast<uint32_t>(r);
        *tail = b;
        tail = &b->next;
        n -= static_cast<size_t>(r);
    }
    if (!dst().write_chain(chain)) return false;
    if (draining()) pause();
    return true;
}

bool Pipe::write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra) {
    if (!dst().write(owner, bufs, count, extra)) return false;
    // Backpressure: nothing more is read from the source until the destination has
    // taken everything (on_drained), or on the ring all but the write in the kernel.
    if (dst().write_blocked()) {
        dst().await_drain();
        pause();
    }
    return true;
}

bool Pipe::draining() {
    // Whoever waits for on_drained says so: the ring then gives the completion of a
    // write in the kernel at once rather than with its next wakeup (uv::Ring::sendmsg).
    if (!dst().write_pending()) return false;
    dst().await_drain();
    return true;
}

void Pipe::on_drained() {
    if (!attached_) return;
    if (control_ != nullptr && dst_boundary_) {
        write_control();
        if (draining()) return;
    }
    if (shutdown_wanted_) {
        maybe_shutdown();
    } else if (!stopped_) {
        start();
    }
}

void Pipe::on_shutdown() {
    done_ = true;
    session_.on_pipe_done(*this);
}

bool Pipe::queue_control(const std::string& frame, bool is_close) {
    if (control_ != nullptr || dst().shutdown_requested() || !attached_) return false;
    uv::Block* b = session_.context().blocks.take();
    if (b == nullptr) return false;
    std::memcpy(b->data(), frame.data(), frame.size());
    b->size = static_cast<uint32_t>(frame.size());
    control_ = b;
    control_is_close_ = is_close;
    if (!dst().write_pending() && !forwarding_ && dst_boundary_) {
        write_control();
    } else {
        dst().await_drain();  // on_drained writes it
    }
    return true;
}

void Pipe::send_close(uint16_t code, std::string_view reason) {
    if (close_forwarded_) return;
    if (control_ != nullptr && !control_is_close_) {
        // A waiting Ping gives way to the Close.
        release(control_);
        control_ = nullptr;
    }
    // Frames to a backend are masked, as a client's must be (RFC 6455 §5.3).
    queue_control(ws::close_frame(code, reason, from_client_, random_mask()), true);
}

bool Pipe::send_ping(uint64_t token) {
    if (close_forwarded_ || discarding_) return false;
    return queue_control(ws::ping_frame(token_bytes(token), from_client_, random_mask()), false);
}

void Pipe::write_control() {
    uv::Block* c = control_;
    control_ = nullptr;
    if (control_is_close_) {
        close_forwarded_ = true;
        discarding_ = true;
    }
    bool is_ping = !control_is_close_;
    uv_buf_t buf = uv_buf_init(c->data(), c->size);
    if (write(c, &buf, 1, nullptr) && is_ping) session_.on_ping_written(*this);
}

void Pipe::shutdown_destination() {
    shutdown_wanted_ = true;
    maybe_shutdown();
}

void Pipe::maybe_shutdown() {
    if (!shutdown_wanted_ || forwarding_ || draining() || dst().shutdown_requested() ||
        !dst().is_open()) {
        return;
    }
    if (control_ != nullptr) {
        if (dst_boundary_) {
            write_control();
            if (draining()) return;  // shut down once it is written
        } else {
            // The stream stopped inside a frame: a frame can no longer be added.
            release(control_);
            control_ = nullptr;
        }
    }
    if (carry_.size() > 0 && !discarding_) {
        // The source ended inside a header: pass its last bytes on as they are.
        uv::Block* b = session_.context().blocks.take();
        if (b != nullptr) {
            std::memcpy(b->data(), carry_.data(), carry_.size());
            uv_buf_t buf = uv_buf_init(b->data(), static_cast<unsigned>(carry_.size()));
            carry_.clear();
            if (!write(b, &buf, 1, nullptr) || draining()) return;
        }
    }
    dst().shutdown();
}

}  // namespace sb::session
