#include "load/rate_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>

namespace sb::tools {

int RateTimer::init(uv_loop_t* loop, Callback callback, void* owner) {
    callback_ = callback;
    owner_ = owner;
    fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd_ < 0) return -errno;
    int rc = uv_poll_init(loop, &poll_, fd_);
    if (rc != 0) {
        ::close(fd_);
        fd_ = -1;
        return rc;
    }
    poll_.data = this;
    open_ = true;
    return 0;
}

void RateTimer::arm(uint64_t at_ns) {
    if (!open_) return;
    itimerspec spec{};
    // A zero it_value would disarm the timer; the monotonic clock is never at zero.
    if (at_ns == 0) at_ns = 1;
    spec.it_value.tv_sec = static_cast<time_t>(at_ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(at_ns % 1'000'000'000);
    timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
    if (!polling_) {
        polling_ = uv_poll_start(&poll_, UV_READABLE, &RateTimer::on_poll) == 0;
    }
}

void RateTimer::stop() {
    if (!open_) return;
    itimerspec disarm{};
    timerfd_settime(fd_, 0, &disarm, nullptr);
    if (polling_) uv_poll_stop(&poll_);
    polling_ = false;
}

void RateTimer::close() {
    if (!open_) return;
    stop();
    open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &RateTimer::on_close);
}

void RateTimer::on_poll(uv_poll_t* handle, int status, int) noexcept {
    auto* self = static_cast<RateTimer*>(handle->data);
    uint64_t expirations = 0;
    // Drain the expiration count so the descriptor stops being readable.
    ssize_t n = ::read(self->fd_, &expirations, sizeof expirations);
    (void)n;
    if (status == 0 && self->callback_ != nullptr) self->callback_(self->owner_);
}

void RateTimer::on_close(uv_handle_t* handle) noexcept {
    auto* self = static_cast<RateTimer*>(handle->data);
    // The descriptor may only be closed once libuv has stopped watching it.
    ::close(self->fd_);
    self->fd_ = -1;
}

}  // namespace sb::tools
