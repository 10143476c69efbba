#include "net/acceptor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log/logger.h"

namespace sb::net {

Acceptor::Acceptor(uv_loop_t* loop, int fd, std::string name, OnAccept on_accept)
    : loop_(loop), fd_(fd), name_(std::move(name)), on_accept_(std::move(on_accept)) {
    uv_poll_init(loop_, &poll_, fd_);
    poll_.data = this;
    uv_timer_init(loop_, &resume_);
    resume_.data = this;
}

bool Acceptor::start() {
    return uv_poll_start(&poll_, UV_READABLE, &Acceptor::on_poll) == 0;
}

void Acceptor::close_and_delete() {
    uv_poll_stop(&poll_);
    uv_timer_stop(&resume_);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &Acceptor::on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&resume_), &Acceptor::on_closed);
}

void Acceptor::on_closed(uv_handle_t* handle) noexcept {
    auto* self = static_cast<Acceptor*>(handle->data);
    if (--self->open_handles_ > 0) return;
    ::close(self->fd_);
    delete self;
}

void Acceptor::on_poll(uv_poll_t* handle, int status, int) noexcept {
    auto* self = static_cast<Acceptor*>(handle->data);
    if (status < 0) {
        log::warn("listener poll failed",
                  {{"listener", self->name_}, {"detail", uv_strerror(status)}});
        self->pause();
        return;
    }
    self->on_readable();
}

void Acceptor::on_readable() {
    // A bounded batch per wakeup keeps one busy listener from starving the loop; the
    // poll is level-triggered, so what is left is picked up on the next turn.
    for (int i = 0; i < 64; ++i) {
        sockaddr_storage peer{};
        socklen_t len = sizeof(peer);
        int fd =
            ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            on_accept_(fd,
                       config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer)));
            continue;
        }
        switch (errno) {
            case EAGAIN:
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;  // that one connection is gone; the next may be fine
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                ++exhausted_;
                pause();
                return;
            default:
                log::error("accept failed",
                           {{"listener", name_}, {"detail", std::strerror(errno)}});
                pause();
                return;
        }
    }
}

void Acceptor::pause() {
    uv_poll_stop(&poll_);
    uv_timer_start(&resume_, &Acceptor::on_resume, kPauseMs, 0);
    uint64_t now = uv_now(loop_);
    if (last_log_ms_ == 0 || now - last_log_ms_ >= kLogIntervalMs) {
        log::warn("out of file descriptors: accepting paused",
                  {{"listener", name_},
                   {"failures", std::to_string(exhausted_ - exhausted_logged_)},
                   {"pause", std::to_string(kPauseMs) + "ms"}});
        exhausted_logged_ = exhausted_;
        last_log_ms_ = now;
    }
}

void Acceptor::on_resume(uv_timer_t* timer) noexcept {
    auto* self = static_cast<Acceptor*>(timer->data);
    uv_poll_start(&self->poll_, UV_READABLE, &Acceptor::on_poll);
}

}  // namespace sb::net
