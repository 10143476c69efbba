#include "session/pipe.h"

#include <cstring>
#include <random>

#include "session/session.h"

namespace sb::session {

namespace {

uv::Block* block_of(char* data) {
    return reinterpret_cast<uv::Block*>(data) - 1;
}

uint32_t random_mask() {
    // Masks for frames sent to backends: RFC 6455 wants them unpredictable.
    thread_local std::mt19937 rng{std::random_device{}()};
    return static_cast<uint32_t>(rng());
}

}  // namespace

// Scanner callbacks for one chunk. Records what the session must hear about, so the
// session is told only after the chunk's write is issued (it may end the session).
struct Pipe::Sink {
    Pipe& pipe;
    bool stopped_for_control = false;
    ws::Violation violation = ws::Violation::None;
    size_t violation_start = 0;       // where the offending frame began in this chunk
    bool violation_in_chunk = false;  // false: its header began in an earlier chunk
    bool saw_close = false;
    uint16_t close_code = 0;

    bool on_header(const ws::FrameHeader& h, size_t end) {
        auto v = pipe.message_.on_header(h, pipe.from_client_);
        if (v == ws::Violation::None) return true;
        violation = v;
        violation_in_chunk = end >= h.header_length;
        violation_start = violation_in_chunk ? end - h.header_length : 0;
        return false;
    }

    bool on_frame_end(const ws::FrameHeader& h, size_t, std::span<const uint8_t> capture) {
        if (ws::MessageState::ends_message(h)) ++pipe.messages_;
        if (h.opcode == ws::kClose && !saw_close) {
            saw_close = true;
            close_code = ws::close_code_of(capture);
        }
        // A frame just ended: the place where a waiting control frame can go.
        if (pipe.control_ != nullptr && !pipe.discarding_) {
            stopped_for_control = true;
            return false;
        }
        return true;
    }
};

void Pipe::start() {
    stopped_ = false;
    if (reading_ || source_ended_ || in_flight_ != nullptr || src_ == nullptr) return;
    if (paused_) {
        paused_ = false;
        session_.context().stats.resumes.add();
    }
    if (uv_read_start(src_, &Session::on_alloc, &Session::on_read) == 0) {
        reading_ = true;
    }
}

void Pipe::stop() {
    stopped_ = true;
    if (reading_) uv_read_stop(src_);
    reading_ = false;
}

void Pipe::pause() {
    if (!reading_) return;
    uv_read_stop(src_);
    reading_ = false;
    paused_ = true;
    session_.context().stats.pauses.add();
}

void Pipe::on_alloc(uv_buf_t* buf) {
    uv::Block* b = session_.context().blocks.take();
    if (b == nullptr) {
        *buf = uv_buf_init(nullptr, 0);  // libuv reports UV_ENOBUFS to on_read
        return;
    }
    *buf = uv_buf_init(b->data(), b->capacity);
}

void Pipe::release(uv::Block* b) {
    if (b != nullptr) session_.context().blocks.give(b);
}

void Pipe::on_read(ssize_t nread, const uv_buf_t* buf) {
    if (nread <= 0) {
        if (buf->base != nullptr) release(block_of(buf->base));
        if (nread == 0) return;  // EAGAIN: the block goes back, nothing is held
        reading_ = false;
        if (nread == UV_EOF) {
            source_ended_ = true;
            session_.on_source_ended(*this);
        } else {
            uv_read_stop(src_);
            session_.on_pipe_error(*this, static_cast<int>(nread), true);
        }
        return;
    }
    uv::Block* b = block_of(buf->base);  // data arrived, so libuv used our block
    b->size = static_cast<uint32_t>(nread);
    bytes_ += static_cast<uint64_t>(nread);
    forward(b);
}

void Pipe::scan_only(std::string_view bytes) {
    Sink sink{*this};
    scanner_.scan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), sink);
    bytes_ += bytes.size();
    dst_boundary_ = scanner_.at_boundary();
    // A backend may say goodbye in the same packet as its 101.
    if (sink.saw_close) {
        close_received_ = true;
        close_forwarded_ = true;
        session_.on_close_frame(*this, sink.close_code);
    }
}

void Pipe::forward(uv::Block* b) {
    forwarding_ = true;
    const bool discarding_at_start = discarding_;
    char* data = b->data();
    size_t len = b->size;
    uv_buf_t bufs[3];
    unsigned count = 0;
    uv::Block* injected = nullptr;
    Sink sink{*this};

    if (mode_ == Mode::Raw) {
        session_.on_raw_bytes(*this, std::string_view(data, len));
        bufs[count++] = uv_buf_init(data, static_cast<unsigned>(len));
    } else {
        size_t pos = 0;
        while (pos < len) {
            bool was_discarding = discarding_;
            sink.stopped_for_control = false;
            size_t stop =
                pos + scanner_.scan(reinterpret_cast<const uint8_t*>(data) + pos, len - pos, sink);
            if (sink.violation != ws::Violation::None) {
                // Forward what preceded the offending frame, then nothing more.
                // (If its header began in an earlier chunk, those header bytes are
                // already out and the stream can no longer end at a boundary.)
                size_t keep = pos + sink.violation_start;
                if (!was_discarding && keep > pos) {
                    bufs[count++] = uv_buf_init(data + pos, static_cast<unsigned>(keep - pos));
                }
                dst_boundary_ = sink.violation_in_chunk;
                discarding_ = true;
                break;
            }
            if (!was_discarding && stop > pos) {
                bufs[count++] = uv_buf_init(data + pos, static_cast<unsigned>(stop - pos));
            }
            pos = stop;
            if (sink.stopped_for_control) {
                // Exactly between two frames: the waiting control frame goes here.
                injected = control_;
                control_ = nullptr;
                bufs[count++] = uv_buf_init(injected->data(), injected->size);
                if (control_is_close_) {
                    close_forwarded_ = true;
                    discarding_ = true;
                }
            }
        }
        if (sink.violation == ws::Violation::None) dst_boundary_ = scanner_.at_boundary();
    }

    if (count == 0) {
        release(b);
    } else {
        write(b, bufs, count, injected);
    }
    forwarding_ = false;

    // Tell the session last: what it does may end the session.
    if (sink.saw_close) {
        close_received_ = true;
        // The source's own Close went on to dst (unless we were discarding): the
        // proxy must not send a second one that way.
        if (!discarding_at_start) close_forwarded_ = true;
        session_.on_close_frame(*this, sink.close_code);
    }
    if (sink.violation != ws::Violation::None) session_.on_violation(*this, sink.violation);
    if (shutdown_wanted_) maybe_shutdown();
}

bool Pipe::write(uv::Block* owner, uv_buf_t* bufs, unsigned count, uv::Block* extra) {
    size_t total = 0;
    for (unsigned i = 0; i < count; ++i)
        total += bufs[i].len;
    int rc = uv_try_write(dst_, bufs, count);
    if (rc == UV_EAGAIN) rc = 0;
    if (rc < 0) {
        release(owner);
        release(extra);
        session_.on_pipe_error(*this, rc, false);
        return false;
    }
    auto written = static_cast<size_t>(rc);
    if (written == total) {
        release(owner);
        release(extra);
        return true;
    }
    // Queue what the kernel did not take, and stop reading until it drains.
    unsigned first = 0;
    while (written >= bufs[first].len)
        written -= bufs[first++].len;
    bufs[first].base += written;
    bufs[first].len -= written;
    in_flight_ = owner;
    in_flight_extra_ = extra;
    owner->write.data = this;
    rc = uv_write(&owner->write, dst_, bufs + first, count - first, &Pipe::on_write);
    if (rc != 0) {
        in_flight_ = in_flight_extra_ = nullptr;
        release(owner);
        release(extra);
        session_.on_pipe_error(*this, rc, false);
        return false;
    }
    pause();
    return true;
}

void Pipe::on_write(uv_write_t* req, int status) noexcept {
    auto* pipe = static_cast<Pipe*>(req->data);
    pipe->release(pipe->in_flight_);
    pipe->release(pipe->in_flight_extra_);
    pipe->in_flight_ = pipe->in_flight_extra_ = nullptr;
    if (status == UV_ECANCELED) return;  // the session is closing its handles
    if (status < 0) {
        pipe->session_.on_pipe_error(*pipe, status, false);
        return;
    }
    pipe->after_write();
}

void Pipe::after_write() {
    if (control_ != nullptr && dst_boundary_) {
        write_control();
        if (in_flight_ != nullptr) return;
    }
    if (shutdown_wanted_) {
        maybe_shutdown();
    } else if (!stopped_) {
        start();
    }
}

void Pipe::send_close(uint16_t code, std::string_view reason) {
    if (close_forwarded_ || control_ != nullptr || shutdown_sent_ || dst_ == nullptr) return;
    // Frames to a backend are masked, as a client's must be (RFC 6455 §5.3).
    std::string frame = ws::close_frame(code, reason, from_client_, random_mask());
    uv::Block* b = session_.context().blocks.take();
    if (b == nullptr) return;
    std::memcpy(b->data(), frame.data(), frame.size());
    b->size = static_cast<uint32_t>(frame.size());
    control_ = b;
    control_is_close_ = true;
    if (in_flight_ == nullptr && !forwarding_ && dst_boundary_) write_control();
}

void Pipe::write_control() {
    uv::Block* c = control_;
    control_ = nullptr;
    if (control_is_close_) {
        close_forwarded_ = true;
        discarding_ = true;
    }
    uv_buf_t buf = uv_buf_init(c->data(), c->size);
    write(c, &buf, 1, nullptr);
}

void Pipe::shutdown_destination() {
    shutdown_wanted_ = true;
    maybe_shutdown();
}

void Pipe::maybe_shutdown() {
    if (!shutdown_wanted_ || shutdown_sent_ || forwarding_ || in_flight_ != nullptr) return;
    if (control_ != nullptr) {
        if (dst_boundary_) {
            write_control();
            if (in_flight_ != nullptr) return;  // shut down once it is written
        } else {
            // The stream stopped inside a frame: a frame can no longer be added.
            release(control_);
            control_ = nullptr;
        }
    }
    shutdown_sent_ = true;
    auto* req = new uv_shutdown_t;
    req->data = this;
    if (uv_shutdown(req, dst_, &Pipe::on_shutdown) != 0) {
        delete req;
        shutdown_done_ = true;
        session_.on_pipe_done(*this);
    }
}

void Pipe::on_shutdown(uv_shutdown_t* req, int status) noexcept {
    auto* pipe = static_cast<Pipe*>(req->data);
    delete req;
    if (status == UV_ECANCELED) return;
    pipe->shutdown_done_ = true;
    pipe->session_.on_pipe_done(*pipe);
}

Pipe::~Pipe() {
    // By now libuv has cancelled every write; only a frame that never found its
    // boundary can be left.
    release(control_);
}

}  // namespace sb::session
