// TimerHeap: many cheap deadlines on one libuv timer.
//
// A uv_timer_t costs 152 bytes; a Deadline costs 16 and is a base of its owner (a
// Session is one), so the heap's single callback finds the owner by a static_cast
// and no per-deadline callback or back pointer is stored. The heap keeps pointers to
// armed deadlines ordered by due time and keeps its single uv_timer_t set to the
// earliest. Deadlines have the loop's millisecond resolution, which is all the
// proxy's timeouts need.
//
// Owned by a Worker (or the main loop); used only from that loop's thread. A Deadline
// must be cancelled (or fired) before its owner is freed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace sb::uv {

class TimerHeap;

struct Deadline {
    Deadline() = default;
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

    bool armed() const { return index_ != kUnarmed; }
    uint64_t due() const { return due_; }

  private:
    friend class TimerHeap;
    static constexpr uint32_t kUnarmed = std::numeric_limits<uint32_t>::max();

    uint64_t due_ = 0;  // uv_now() milliseconds
    uint32_t index_ = kUnarmed;
};

class TimerHeap {
  public:
    using Fire = void (*)(Deadline& due);

    // `fire` runs for every deadline that comes due (the owner is the Deadline's
    // derived object).
    TimerHeap(uv_loop_t* loop, Fire fire);
    TimerHeap(const TimerHeap&) = delete;
    TimerHeap& operator=(const TimerHeap&) = delete;

    // Arms (or re-arms) `d` to fire `delay_ms` from the loop's current time.
    void arm(Deadline& d, uint64_t delay_ms);
    // Arms `d` for an absolute loop time.
    void arm_at(Deadline& d, uint64_t due_ms);
    void cancel(Deadline& d);

    size_t size() const { return heap_.size(); }
    uint64_t now() const { return uv_now(loop_); }

    // Stops the timer and closes its handle; the heap must be empty.
    void close();

  private:
    static void on_timer(uv_timer_t* t) noexcept;
    void run_due();
    void reschedule();
    void sift_up(uint32_t i);
    void sift_down(uint32_t i);
    void place(uint32_t i, Deadline* d) {
        heap_[i] = d;
        d->index_ = i;
    }

    uv_loop_t* loop_;
    Fire fire_;
    uv_timer_t timer_;
    std::vector<Deadline*> heap_;
    uint64_t scheduled_for_ = 0;  // due time the uv timer is set to (0 = stopped)
};

}  // namespace sb::uv
