// AdminServer: the admin listener (SPEC §4), served by the main thread's own loop,
// apart from the traffic listeners: /healthz, /metrics, /status, /route, the status
// page at /, and /events, the server-sent events stream that keeps the page live.
//
// It owns the listening socket, the events timer and every admin connection; what a
// request gets is decided without sockets by admin_request.h. One request per
// connection (answers carry `Connection: close`), except /events, which stays open
// and receives a snapshot every second. Because the listener faces whoever can reach
// it, a connection must deliver its request within `request_timeout` (and then take
// its answer within as long again), and at most `max_connections` are open at once:
// more are accepted and closed at once, so half-sent requests cannot hold descriptors
// forever.
//
// Owned by the Server; main thread only. It keeps answering during a drain; the Server
// calls close() once the last worker has exited, which ends every connection (events
// subscribers included), so nothing of it keeps the main loop alive.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "admin/admin_request.h"
#include "admin/views.h"
#include "config/address.h"

namespace sb::admin {

struct AdminLimits {
    // From accept until the request head is complete; once answered, the same time
    // again for the answer to be taken (a client that never reads is let go).
    std::chrono::milliseconds request_timeout{10000};
    // Admin connections open at once, /events subscribers included.
    size_t max_connections = 64;
};

class AdminServer {
  public:
    static constexpr uint64_t kEventIntervalMs = 1000;

    AdminServer(uv_loop_t* loop, AdminSources sources, AdminLimits limits = {});
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Opens the listener; on failure returns false with `error`.
    bool listen(const config::SocketAddress& address, std::string& error);
    const config::SocketAddress& bound() const { return bound_; }
    // Closes the listener and every connection; the object may be destroyed once
    // the loop has run the close callbacks. Idempotent.
    void close();

    size_t connections_for_test() const { return connections_.size(); }

  private:
    struct Connection;
    struct Write;

    void on_connection();
    void on_read(Connection& c, ssize_t nread);
    void on_written(Connection& c, int status, bool close_after);
    void on_timeout(Connection& c);
    void send(Connection& c, AdminAnswer answer);
    // Queues `bytes` on `c`; false (and `c` dropped) when it cannot be written.
    bool write(Connection& c, std::string bytes, bool close_after);
    void push_events();
    void drop(Connection* c);

    static void on_listen(uv_stream_t* server, int status) noexcept;
    static void on_events_timer(uv_timer_t* timer) noexcept;
    static void on_alloc(uv_handle_t* handle, size_t size, uv_buf_t* buf) noexcept;
    static void on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_write_cb(uv_write_t* req, int status) noexcept;
    static void on_timeout_cb(uv_timer_t* timer) noexcept;
    static void on_connection_closed(uv_handle_t* handle) noexcept;

    uv_loop_t* loop_;
    AdminSources sources_;
    AdminLimits limits_;
    uv_tcp_t server_{};
    uv_timer_t events_timer_{};
    config::SocketAddress bound_;
    std::vector<Connection*> connections_;
    bool closed_ = false;
};

}  // namespace sb::admin
