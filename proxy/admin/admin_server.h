// AdminServer: the admin listener (SPEC §4), served by the main thread's own loop,
// apart from the traffic listeners: /healthz, /metrics, /status, /route, the status
// page at /, and /events, the server-sent events stream that keeps the page live.
//
// One request per connection (answers carry `Connection: close`), except /events,
// which stays open and receives a snapshot every second. Unknown paths get 404,
// methods other than GET 405.
//
// Owned by the Server; main thread only. close() ends every connection.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "admin/views.h"
#include "config/address.h"

namespace sb::admin {

class AdminServer {
  public:
    static constexpr uint64_t kEventIntervalMs = 1000;

    AdminServer(uv_loop_t* loop, AdminSources sources);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Opens the listener; on failure returns false with `error`.
    bool listen(const config::SocketAddress& address, std::string& error);
    const config::SocketAddress& bound() const { return bound_; }
    // Closes the listener and every connection; the object may be destroyed once
    // the loop has run the close callbacks.
    void close();

  private:
    struct Connection;

    void on_connection();
    void respond(Connection& c, const std::string& method, const std::string& target);
    void send(Connection& c, int status, std::string_view content_type, const std::string& body,
              bool keep_open = false);
    void push_events();
    void drop(Connection* c);

    static void on_listen(uv_stream_t* server, int status) noexcept;
    static void on_timer(uv_timer_t* timer) noexcept;

    uv_loop_t* loop_;
    AdminSources sources_;
    uv_tcp_t server_{};
    uv_timer_t events_timer_{};
    config::SocketAddress bound_;
    std::vector<Connection*> connections_;
    bool listening_ = false;
    bool closed_ = false;
};

// Decodes %XX escapes and '+' (a space) of a query-string value.
std::string decode_query_value(std::string_view value);

}  // namespace sb::admin
