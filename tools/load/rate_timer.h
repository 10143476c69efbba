// RateTimer: a one-shot timer with nanosecond resolution for rate mode's send
// schedule, made of a Linux timerfd watched by a uv_poll_t.
//
// libuv timers count whole milliseconds; sends released on millisecond ticks would be
// up to a millisecond late, and since rate mode measures RTT from the scheduled time,
// that would add up to a millisecond to every sample on a path whose RTT is tens of
// microseconds. The timerfd is armed on CLOCK_MONOTONIC, the clock of uv_hrtime().
//
// Owned by LoadRun; close() must be called before the loop ends; single-threaded.
#pragma once

#include <uv.h>

#include <cstdint>

namespace sb::tools {

class RateTimer {
  public:
    using Callback = void (*)(void* owner);

    RateTimer() = default;
    RateTimer(const RateTimer&) = delete;
    RateTimer& operator=(const RateTimer&) = delete;

    // Returns 0 or an error (from timerfd_create or uv_poll_init).
    [[nodiscard]] int init(uv_loop_t* loop, Callback callback, void* owner);
    // Fires once at `at_ns` (uv_hrtime() clock); at once if that time has passed.
    void arm(uint64_t at_ns);
    void stop();
    void close();

  private:
    static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
    static void on_close(uv_handle_t* handle) noexcept;

    uv_poll_t poll_{};
    int fd_ = -1;
    bool open_ = false;
    bool polling_ = false;
    Callback callback_ = nullptr;
    void* owner_ = nullptr;
};

}  // namespace sb::tools
