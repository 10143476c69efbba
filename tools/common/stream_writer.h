// StreamWriter: the output side of one tool connection. WriteBatch: gathers the
// pieces of several frames so that they leave in one system call.
//
// StreamWriter tries uv_try_write first, so that the common case (the socket has
// room) copies nothing and allocates nothing. Only bytes the kernel refused are
// copied, into `inflight_` (handed to the one uv_write in flight) or, while that
// write runs, into `pending_` (handed to the next one). Both buffers keep their
// capacity, so a connection in a steady state does not allocate per message; they are
// released when they have grown past kKeepCapacity, so idle connections stay small.
//
// Backpressure is the owner's job: it compares queued() with its watermarks, stops
// reading or generating above the high one, and resumes from on_write_drained().
//
// Owned by a connection object (a member; never moved); single-threaded. The owner
// must keep the writer alive until the stream's close callback, since closing
// cancels the write in flight and its callback still touches the writer.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sb::tools {

class StreamWriter {
  public:
    // What the owner hears about. Both are called from the uv_write callback.
    class Listener {
      public:
        // A write finished and queued() is now at or below the low watermark passed to
        // init() (it may be zero: check idle() when waiting for everything to leave).
        virtual void on_write_drained() = 0;
        // A write failed (UV_ECANCELED when the stream was closed under it).
        virtual void on_write_error(int status) = 0;

      protected:
        ~Listener() = default;
    };

    // Buffers larger than this are released once empty.
    static constexpr size_t kKeepCapacity = 256 * 1024;

    StreamWriter() = default;
    StreamWriter(const StreamWriter&) = delete;
    StreamWriter& operator=(const StreamWriter&) = delete;

    void init(uv_stream_t* stream, Listener* listener, size_t low_watermark) {
        stream_ = stream;
        listener_ = listener;
        low_watermark_ = low_watermark;
    }

    // Writes the buffers in order after everything queued before. Returns 0, or the
    // libuv error that broke the stream (the writer then refuses further writes).
    [[nodiscard]] int write(const uv_buf_t* bufs, unsigned count);
    [[nodiscard]] int write(const void* data, size_t n);

    // Bytes accepted by write() that the kernel has not taken yet.
    size_t queued() const { return inflight_.size() + pending_.size(); }
    bool idle() const { return queued() == 0; }
    int error() const { return error_; }

  private:
    static void on_write(uv_write_t* req, int status) noexcept;
    void handle_write(int status);
    void start_write();
    void append_unsent(std::vector<char>& to, const uv_buf_t* bufs, unsigned count, size_t skip);

    uv_stream_t* stream_ = nullptr;
    Listener* listener_ = nullptr;
    size_t low_watermark_ = 0;
    uv_write_t req_{};
    std::vector<char> inflight_;  // bytes of the uv_write in flight; empty = none in flight
    std::vector<char> pending_;   // bytes queued behind it
    int error_ = 0;
};

// WriteBatch collects the frames a connection produces while it handles one chunk of
// input and gives them to its StreamWriter in a single write() (one writev).
//
// Small pieces (frame headers, small payloads) are copied into the batch so that
// consecutive ones merge into one buffer; larger ones are referenced and must stay
// valid until flush(). When the batch is full it flushes early. One batch per loop,
// shared by all connections: begin(), add()..., flush() always run within one callback.
class WriteBatch {
  public:
    static constexpr size_t kCopyBytes = 16 * 1024;
    static constexpr size_t kCopyLimit = 512;  // pieces up to this size are copied
    static constexpr unsigned kMaxBufs = 64;

    void begin(StreamWriter* writer) {
        writer_ = writer;
        used_ = 0;
        count_ = 0;
        status_ = 0;
    }
    void add(const void* data, size_t n);
    // Writes what the batch holds. Returns 0 or the stream's error (sticky for the
    // batch: once a write failed, later adds are dropped).
    [[nodiscard]] int flush();

  private:
    StreamWriter* writer_ = nullptr;
    char copy_[kCopyBytes];
    size_t used_ = 0;  // bytes of copy_ in use
    uv_buf_t bufs_[kMaxBufs];
    unsigned count_ = 0;
    int status_ = 0;
};

}  // namespace sb::tools
