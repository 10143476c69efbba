#include "admin/admin_server.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "admin/status_page.h"
#include "http/message_parser.h"
#include "http/replies.h"
#include "http/request_key.h"
#include "log/logger.h"

namespace sb::admin {

namespace {

constexpr size_t kMaxRequest = 8 * 1024;

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

}  // namespace

struct AdminServer::Connection {
    uv_tcp_t tcp;
    AdminServer* server;
    std::string buffer;
    char in[2048];
    http::MessageParser parser{http::MessageParser::Kind::Request};
    bool answered = false;
    bool events = false;  // subscribed to /events
    bool closing = false;
};

std::string decode_query_value(std::string_view value) {
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%' && i + 2 < value.size() &&
                   std::isxdigit(static_cast<unsigned char>(value[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(value[i + 2]))) {
            out.push_back(
                static_cast<char>(std::stoi(std::string(value.substr(i + 1, 2)), nullptr, 16)));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

AdminServer::AdminServer(uv_loop_t* loop, AdminSources sources)
    : loop_(loop), sources_(std::move(sources)) {}

AdminServer::~AdminServer() = default;

bool AdminServer::listen(const config::SocketAddress& address, std::string& error) {
    uv_tcp_init(loop_, &server_);
    server_.data = this;
    uv_timer_init(loop_, &events_timer_);
    events_timer_.data = this;
    int rc = uv_tcp_bind(&server_, address.sockaddr_ptr(), 0);
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, &AdminServer::on_listen);
    if (rc != 0) {
        error = "cannot listen on " + address.to_string() + ": " + uv_strerror(rc);
        return false;
    }
    sockaddr_storage ss{};
    int len = sizeof(ss);
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&ss), &len);
    bound_ = config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    listening_ = true;
    uv_timer_start(&events_timer_, &AdminServer::on_timer, kEventIntervalMs, kEventIntervalMs);
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
    static_cast<AdminServer*>(server->data)->on_connection();
}

void AdminServer::on_connection() {
    auto* c = new Connection();
    c->server = this;
    uv_tcp_init(loop_, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&server_),
                  reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        uv_close(as_handle(&c->tcp),
                 [](uv_handle_t* h) noexcept { delete static_cast<Connection*>(h->data); });
        return;
    }
    connections_.push_back(c);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
            auto* conn = static_cast<Connection*>(h->data);
            *buf = uv_buf_init(conn->in, sizeof(conn->in));
        },
        [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
            auto* conn = static_cast<Connection*>(stream->data);
            AdminServer* self = conn->server;
            if (nread < 0) {
                self->drop(conn);
                return;
            }
            if (nread == 0 || conn->answered) return;
            conn->buffer.append(buf->base, static_cast<size_t>(nread));
            auto status = conn->parser.parse(conn->buffer);
            if (status == http::MessageParser::Status::Error) {
                self->send(*conn, 400, "text/plain", "bad request\n");
            } else if (status == http::MessageParser::Status::Complete) {
                std::string method(conn->parser.method().in(conn->buffer));
                std::string target(conn->parser.target().in(conn->buffer));
                self->respond(*conn, method, target);
            } else if (conn->buffer.size() > kMaxRequest) {
                self->send(*conn, 431, "text/plain", "request too large\n");
            }
        });
}

void AdminServer::respond(Connection& c, const std::string& method, const std::string& target) {
    auto question = target.find('?');
    std::string path = target.substr(0, question);
    std::string query = question == std::string::npos ? "" : target.substr(question + 1);
    if (method != "GET") {
        send(c, 405, "text/plain", "only GET is served here\n");
        return;
    }
    if (path == "/healthz") {
        bool draining = sources_.draining();
        send(c, draining ? 503 : 200, "text/plain", draining ? "draining\n" : "ok\n");
    } else if (path == "/metrics") {
        send(c, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(sources_));
    } else if (path == "/status") {
        send(c, 200, "application/json", status_json(sources_) + "\n");
    } else if (path == "/route") {
        std::string_view pool, key;
        if (!http::find_query(query, "pool", pool) || !http::find_query(query, "key", key)) {
            send(c, 400, "application/json", "{\"error\": \"usage: /route?pool=NAME&key=KEY\"}\n");
            return;
        }
        bool found = false;
        std::string body =
            route_json(sources_, decode_query_value(pool), decode_query_value(key), found);
        send(c, found ? 200 : 404, "application/json", body + "\n");
    } else if (path == "/") {
        send(c, 200, "text/html; charset=utf-8", std::string(status_page_html()));
    } else if (path == "/events") {
        // Server-sent events: the first snapshot now, then one per kEventIntervalMs.
        send(c, 200, "text/event-stream", "retry: 2000\n\ndata: " + live_json(sources_) + "\n\n",
             true);
        c.events = true;
    } else {
        send(c, 404, "text/plain", "not found\n");
    }
}

void AdminServer::send(Connection& c, int status, std::string_view content_type,
                       const std::string& body, bool keep_open) {
    c.answered = true;
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                       std::string(http::status_text(static_cast<http::Status>(status))) + "\r\n";
    head += "Content-Type: " + std::string(content_type) + "\r\n";
    head += "Cache-Control: no-store\r\n";
    if (status == 405) head += "Allow: GET\r\n";
    if (keep_open) {
        head += "Connection: keep-alive\r\n\r\n";
    } else {
        head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    }
    struct Write {
        uv_write_t req;
        std::string bytes;
        Connection* conn;
        bool close_after;
    };
    auto* w = new Write{{}, head + body, &c, !keep_open};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1,
                      [](uv_write_t* req, int st) noexcept {
                          auto* wr = static_cast<Write*>(req->data);
                          Connection* conn = wr->conn;
                          bool close_after = wr->close_after;
                          delete wr;
                          if (st == UV_ECANCELED) return;
                          if (close_after || st < 0) conn->server->drop(conn);
                      });
    if (rc != 0) {
        delete w;
        drop(&c);
    }
}

void AdminServer::push_events() {
    std::string event;
    for (Connection* c : std::vector<Connection*>(connections_)) {
        if (!c->events || c->closing) continue;
        if (event.empty()) event = "data: " + live_json(sources_) + "\n\n";
        struct Write {
            uv_write_t req;
            std::string bytes;
        };
        auto* w = new Write{{}, event};
        w->req.data = w;
        uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
        // A page that stopped reading is dropped rather than buffered without bound.
        if (c->tcp.write_queue_size > 64 * 1024 ||
            uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                     [](uv_write_t* req, int) noexcept {
                         delete static_cast<Write*>(req->data);
                     }) != 0) {
            delete w;
            drop(c);
        }
    }
}

void AdminServer::on_timer(uv_timer_t* timer) noexcept {
    static_cast<AdminServer*>(timer->data)->push_events();
}

void AdminServer::drop(Connection* c) {
    if (c->closing) return;
    c->closing = true;
    connections_.erase(std::remove(connections_.begin(), connections_.end(), c),
                       connections_.end());
    uv_close(as_handle(&c->tcp),
             [](uv_handle_t* h) noexcept { delete static_cast<Connection*>(h->data); });
}

}  // namespace sb::admin
