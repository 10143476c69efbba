// Acceptor: takes new connections from one listening socket (one per worker and
// listener), and keeps doing so under descriptor exhaustion.
//
// It watches the socket with a uv_poll_t and calls accept4() itself rather than using
// uv_listen: when accept fails with EMFILE or ENFILE (out of file descriptors), it
// stops watching for a short pause instead of spinning on a socket that stays
// readable, logs once per interval with the number of failures, and resumes; pending
// clients wait in the kernel's accept queue until descriptors free up. (libuv's own
// answer to EMFILE is to accept and close the pending connections.)
//
// Owned by a Worker; used on that worker's thread. The callback receives the new
// descriptor and the peer's address; it owns the descriptor from then on.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "config/address.h"

namespace sb::net {

class Acceptor {
  public:
    using OnAccept = std::function<void(int fd, const config::SocketAddress& peer)>;

    // How long accepting pauses after EMFILE/ENFILE, and how often that is logged.
    static constexpr uint64_t kPauseMs = 100;
    static constexpr uint64_t kLogIntervalMs = 10'000;

    // Takes ownership of the listening descriptor `fd`.
    Acceptor(uv_loop_t* loop, int fd, std::string name, OnAccept on_accept);
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    bool start();
    // Stops accepting, closes the socket and frees the Acceptor once libuv is done
    // with its handles. The Acceptor must not be used afterwards.
    void close_and_delete();

    const std::string& name() const { return name_; }
    uint64_t exhausted_count() const { return exhausted_; }

  private:
    ~Acceptor() = default;
    void on_readable();
    void pause();
    static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
    static void on_resume(uv_timer_t* timer) noexcept;
    static void on_closed(uv_handle_t* handle) noexcept;

    uv_loop_t* loop_;
    int fd_;
    std::string name_;
    OnAccept on_accept_;
    uv_poll_t poll_;
    uv_timer_t resume_;
    uint64_t exhausted_ = 0;  // accept() failures for lack of descriptors
    uint64_t exhausted_logged_ = 0;
    uint64_t last_log_ms_ = 0;
    int open_handles_ = 2;
};

}  // namespace sb::net
