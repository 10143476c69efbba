#include "echo_backend/echo_server.h"

#include "common/address.h"
#include "echo_backend/echo_connection.h"

namespace sb::tools {

namespace {

// Room for 5,000 connections arriving at once; the kernel caps it at somaxconn.
constexpr int kBacklog = 8192;
constexpr uint64_t kSweepIntervalMs = 1000;

}  // namespace

EchoServer::EchoServer(uv_loop_t* loop, std::string name)
    : loop_(loop),
      name_(std::move(name)),
      read_buffer_(new uint8_t[kReadBufferBytes]),
      batch_(std::make_unique<WriteBatch>()) {}

EchoServer::~EchoServer() = default;

int EchoServer::listen(const sockaddr* addr, std::string& bound) {
    int rc = uv_tcp_init(loop_, &listener_);
    if (rc != 0) return rc;
    listener_.data = this;
    listener_open_ = true;
    rc = uv_tcp_bind(&listener_, addr, 0);
    if (rc == 0) {
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kBacklog,
                       &EchoServer::on_connection);
    }
    if (rc != 0) return rc;  // stop() closes the listener
    sockaddr_storage name{};
    int length = sizeof name;
    rc = uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&name), &length);
    if (rc != 0) return rc;
    bound = format_address(reinterpret_cast<const sockaddr*>(&name));

    rc = uv_timer_init(loop_, &sweep_timer_);
    if (rc != 0) return rc;
    sweep_timer_.data = this;
    sweep_open_ = true;
    return uv_timer_start(&sweep_timer_, &EchoServer::on_sweep, kSweepIntervalMs, kSweepIntervalMs);
}

bool EchoServer::open_accept_log(const std::string& path) {
    accept_log_.reset(std::fopen(path.c_str(), "w"));
    return accept_log_ != nullptr;
}

void EchoServer::note_upgrade() {
    // uv_hrtime() is CLOCK_MONOTONIC, the clock of Python's time.monotonic(), so the
    // bench can set these times against its own (the moment it killed a backend).
    if (accept_log_) {
        std::fprintf(accept_log_.get(), "%llu\n",
                     static_cast<unsigned long long>(uv_hrtime() / 1000));
    }
}

void EchoServer::stop() {
    if (stopping_) return;
    stopping_ = true;
    if (accept_log_) std::fflush(accept_log_.get());
    if (listener_open_) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    if (sweep_open_) uv_close(reinterpret_cast<uv_handle_t*>(&sweep_timer_), nullptr);
    listener_open_ = false;
    sweep_open_ = false;
    // go_away() closes the handle; the connection leaves the list only in its close
    // callback, so walk with the successor read first and each closed exactly once.
    for (EchoConnection* c = head_; c != nullptr;) {
        EchoConnection* next = c->next;
        c->go_away();
        c = next;
    }
}

void EchoServer::add(EchoConnection* c) {
    c->prev = nullptr;
    c->next = head_;
    if (head_ != nullptr) head_->prev = c;
    head_ = c;
    ++live_;
}

void EchoServer::remove(EchoConnection* c) {
    if (c->prev != nullptr) c->prev->next = c->next;
    if (c->next != nullptr) c->next->prev = c->prev;
    if (head_ == c) head_ = c->next;
    c->prev = c->next = nullptr;
    --live_;
}

void EchoServer::on_connection(uv_stream_t* listener, int status) noexcept {
    auto* self = static_cast<EchoServer*>(listener->data);
    // An accept error (EMFILE, ...) is transient from the listener's point of view:
    // libuv keeps listening, and the next connection may succeed.
    if (status == 0 && !self->stopping_) self->accept_one();
}

void EchoServer::accept_one() {
    auto* connection = new EchoConnection(*this);
    connection->start(reinterpret_cast<uv_stream_t*>(&listener_));
}

void EchoServer::on_sweep(uv_timer_t* timer) noexcept {
    static_cast<EchoServer*>(timer->data)->sweep();
}

void EchoServer::sweep() {
    if (accept_log_) std::fflush(accept_log_.get());
    uint64_t now = uv_now(loop_);
    for (EchoConnection* c = head_; c != nullptr;) {
        EchoConnection* next = c->next;
        c->check_deadline(now);
        c = next;
    }
}

}  // namespace sb::tools
