// EchoServer: the listening side of sb-echo-backend. It owns the listening socket,
// the list of live EchoConnections, the buffers every connection borrows while one of
// its callbacks runs (the 64 KiB read buffer and the WriteBatch), and a once-a-second
// sweep that closes connections stuck in a state with a deadline, and optionally the
// accept log (one line per upgrade answered with 101, flushed by the sweep and at stop).
//
// One per process, created by main() on the stack before the loop runs and destroyed
// after it ends; single-threaded (everything runs on the one uv loop).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "common/stream_writer.h"

namespace sb::tools {

class EchoConnection;

class EchoServer {
  public:
    // Size of the read buffer all connections share (libuv fills it, the connection
    // consumes it before its read callback returns).
    static constexpr size_t kReadBufferBytes = 64 * 1024;

    EchoServer(uv_loop_t* loop, std::string name);
    EchoServer(const EchoServer&) = delete;
    EchoServer& operator=(const EchoServer&) = delete;
    ~EchoServer();

    // Binds `addr`, listens and starts the sweep. Returns 0 or a libuv error;
    // `bound` receives the address actually bound (with the port picked for port 0).
    [[nodiscard]] int listen(const sockaddr* addr, std::string& bound);
    // Opens (truncates) `path` as the accept log. Returns false when it cannot.
    [[nodiscard]] bool open_accept_log(const std::string& path);
    // Records an upgrade answered with 101 in the accept log, if there is one.
    void note_upgrade();
    // Closes the listener, the sweep timer and every connection (each gets a Close
    // 1001 when it is between frames). The loop then ends once their handles close.
    void stop();

    uv_loop_t* loop() const { return loop_; }
    const std::string& name() const { return name_; }
    uint8_t* read_buffer() { return read_buffer_.get(); }
    WriteBatch& batch() { return *batch_; }

    // The live-connection list (intrusive, so adding and removing never allocates).
    void add(EchoConnection* c);
    void remove(EchoConnection* c);
    size_t live() const { return live_; }
    bool stopping() const { return stopping_; }

  private:
    static void on_connection(uv_stream_t* listener, int status) noexcept;
    static void on_sweep(uv_timer_t* timer) noexcept;
    void accept_one();
    void sweep();

    uv_loop_t* loop_;
    std::string name_;
    uv_tcp_t listener_{};
    uv_timer_t sweep_timer_{};
    bool listener_open_ = false;
    bool sweep_open_ = false;
    bool stopping_ = false;
    // The accept log: fclose'd by its deleter at destruction, which flushes it.
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> accept_log_{nullptr, &std::fclose};
    std::unique_ptr<uint8_t[]> read_buffer_;
    std::unique_ptr<WriteBatch> batch_;
    EchoConnection* head_ = nullptr;
    size_t live_ = 0;
};

}  // namespace sb::tools
