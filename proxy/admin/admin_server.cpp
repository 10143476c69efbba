#include "admin/admin_server.h"

#include <algorithm>
#include <string>

#include "admin/status_page.h"
#include "log/logger.h"

namespace sb::admin {

namespace {

// A page that stopped reading /events is dropped rather than buffered without bound.
constexpr size_t kMaxEventBacklog = 64 * 1024;

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

uv_stream_t* as_stream(uv_tcp_t* tcp) {
    return reinterpret_cast<uv_stream_t*>(tcp);
}

}  // namespace

// One admin connection: its socket and its deadline timer, both with `data` pointing
// here; freed by the second close callback.
struct AdminServer::Connection {
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    AdminServer* server = nullptr;
    std::string received;
    char in[2048];
    RequestReader reader;
    int open_handles = 0;
    bool answered = false;
    bool stream = false;  // subscribed to /events
    bool closing = false;
};

// One write in flight: the bytes live until libuv is done with them.
struct AdminServer::Write {
    uv_write_t req;
    std::string bytes;
    Connection* connection;
    bool close_after;
};

AdminServer::AdminServer(uv_loop_t* loop, AdminSources sources, AdminLimits limits)
    : loop_(loop), sources_(std::move(sources)), limits_(limits) {}

AdminServer::~AdminServer() = default;

bool AdminServer::listen(const config::SocketAddress& address, std::string& error) {
    uv_tcp_init(loop_, &server_);
    server_.data = this;
    uv_timer_init(loop_, &events_timer_);
    events_timer_.data = this;
    int rc = uv_tcp_bind(&server_, address.sockaddr_ptr(), 0);
    if (rc == 0) rc = uv_listen(as_stream(&server_), 128, &AdminServer::on_listen);
    if (rc != 0) {
        error = "cannot listen on " + address.to_string() + ": " + uv_strerror(rc);
        return false;
    }
    sockaddr_storage ss{};
    int len = sizeof(ss);
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&ss), &len);
    bound_ = config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    uv_timer_start(&events_timer_, &AdminServer::on_events_timer, kEventIntervalMs,
                   kEventIntervalMs);
    return true;
}

void AdminServer::close() {
    if (closed_) return;
    closed_ = true;
    if (server_.loop != nullptr) {
        uv_close(as_handle(&server_), nullptr);
        uv_timer_stop(&events_timer_);
        uv_close(as_handle(&events_timer_), nullptr);
    }
    auto connections = connections_;
    for (Connection* c : connections)
        drop(c);
}

void AdminServer::on_listen(uv_stream_t* server, int status) noexcept {
    if (status < 0) return;
    try {
        static_cast<AdminServer*>(server->data)->on_connection();
    } catch (...) {
        // Only memory can fail here; the pending connection waits for the next turn.
    }
}

void AdminServer::on_connection() {
    if (connections_.size() >= limits_.max_connections) {
        // Over the cap: accept and close at once. Not accepting would leave the
        // connection in the backlog and stop libuv from polling the listener.
        auto* refused = new uv_tcp_t();
        uv_tcp_init(loop_, refused);
        uv_accept(as_stream(&server_), as_stream(refused));
        uv_close(as_handle(refused),
                 [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_tcp_t*>(h); });
        log::debug("admin: connection refused, too many open",
                   {{"limit", std::to_string(limits_.max_connections)}});
        return;
    }
    auto* c = new Connection();
    c->server = this;
    uv_tcp_init(loop_, &c->tcp);
    uv_timer_init(loop_, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    connections_.push_back(c);
    if (uv_accept(as_stream(&server_), as_stream(&c->tcp)) != 0) {
        drop(c);
        return;
    }
    uv_timer_start(&c->timer, &AdminServer::on_timeout_cb,
                   static_cast<uint64_t>(limits_.request_timeout.count()), 0);
    if (uv_read_start(as_stream(&c->tcp), &AdminServer::on_alloc, &AdminServer::on_read_cb) != 0)
        drop(c);
}

void AdminServer::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* c = static_cast<Connection*>(handle->data);
    *buf = uv_buf_init(c->in, sizeof(c->in));
}

void AdminServer::on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) noexcept {
    auto* c = static_cast<Connection*>(stream->data);
    try {
        c->server->on_read(*c, nread);
    } catch (...) {
        // Answers are built without throwing; this is the last guard for the loop.
        c->server->drop(c);
    }
}

void AdminServer::on_read(Connection& c, ssize_t nread) {
    if (nread < 0) {
        // The client hung up. With an answer on its way, let the write finish (a
        // client may half-close after its request); otherwise there is no one to
        // answer.
        if (c.answered && !c.stream) {
            uv_read_stop(as_stream(&c.tcp));
        } else {
            drop(&c);
        }
        return;
    }
    if (nread == 0 || c.answered) return;  // bytes after the request are ignored
    c.received.append(c.in, static_cast<size_t>(nread));
    auto answer = c.reader.read(sources_, c.received);
    if (answer) send(c, std::move(*answer));
}

void AdminServer::send(Connection& c, AdminAnswer answer) {
    c.answered = true;
    c.received.clear();
    c.received.shrink_to_fit();
    if (answer.stream) {
        // Events subscribers stay until they go, the listener closes or their backlog
        // grows too large; the request deadline no longer applies.
        c.stream = true;
        uv_timer_stop(&c.timer);
    } else {
        // The same time again to take the answer: a client that never reads is let go.
        uv_timer_start(&c.timer, &AdminServer::on_timeout_cb,
                       static_cast<uint64_t>(limits_.request_timeout.count()), 0);
    }
    write(c, std::move(answer.bytes), !answer.stream);
}

bool AdminServer::write(Connection& c, std::string bytes, bool close_after) {
    auto* w = new Write{{}, std::move(bytes), &c, close_after};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    if (uv_write(&w->req, as_stream(&c.tcp), &buf, 1, &AdminServer::on_write_cb) != 0) {
        delete w;
        drop(&c);
        return false;
    }
    return true;
}

void AdminServer::on_write_cb(uv_write_t* req, int status) noexcept {
    auto* w = static_cast<Write*>(req->data);
    Connection* c = w->connection;
    bool close_after = w->close_after;
    delete w;
    // Cancelled writes come from uv_close: the connection is going already.
    if (status == UV_ECANCELED) return;
    c->server->on_written(*c, status, close_after);
}

void AdminServer::on_written(Connection& c, int status, bool close_after) {
    if (close_after || status < 0) drop(&c);
}

void AdminServer::on_timeout_cb(uv_timer_t* timer) noexcept {
    auto* c = static_cast<Connection*>(timer->data);
    c->server->on_timeout(*c);
}

void AdminServer::on_timeout(Connection& c) {
    log::debug(c.answered ? "admin: answer not taken in time, closing"
                          : "admin: request not complete in time, closing");
    drop(&c);
}

void AdminServer::push_events() {
    std::string event;
    for (Connection* c : std::vector<Connection*>(connections_)) {
        if (!c->stream || c->closing) continue;
        if (c->tcp.write_queue_size > kMaxEventBacklog) {
            drop(c);
            continue;
        }
        if (event.empty()) event = "data: " + live_json(sources_) + "\n\n";
        write(*c, event, false);
    }
}

void AdminServer::on_events_timer(uv_timer_t* timer) noexcept {
    auto* self = static_cast<AdminServer*>(timer->data);
    try {
        self->push_events();
    } catch (const std::exception& e) {
        try {
            log::error("admin: cannot push events", {{"detail", e.what()}});
        } catch (...) {
        }
    } catch (...) {
    }
}

void AdminServer::drop(Connection* c) {
    if (c->closing) return;
    c->closing = true;
    connections_.erase(std::remove(connections_.begin(), connections_.end(), c),
                       connections_.end());
    uv_close(as_handle(&c->tcp), &AdminServer::on_connection_closed);
    uv_close(as_handle(&c->timer), &AdminServer::on_connection_closed);
}

void AdminServer::on_connection_closed(uv_handle_t* handle) noexcept {
    auto* c = static_cast<Connection*>(handle->data);
    if (--c->open_handles == 0) delete c;
}

}  // namespace sb::admin
