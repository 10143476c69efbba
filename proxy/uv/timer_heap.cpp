#include "uv/timer_heap.h"

#include <algorithm>
#include <cassert>

namespace sb::uv {

TimerHeap::TimerHeap(uv_loop_t* loop, Fire fire) : loop_(loop), fire_(fire) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    // The timer alone must not keep a loop alive once everything else has closed.
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void TimerHeap::close() {
    assert(heap_.empty());
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void TimerHeap::arm(Deadline& d, uint64_t delay_ms) {
    arm_at(d, uv_now(loop_) + delay_ms);
}

void TimerHeap::arm_at(Deadline& d, uint64_t due_ms) {
    // Never due before the next millisecond: a callback that re-arms its own deadline
    // "now" then fires on the next loop turn instead of spinning inside run_due().
    due_ms = std::max(due_ms, uv_now(loop_) + 1);
    if (d.armed()) {
        uint64_t old = d.due_;
        d.due_ = due_ms;
        if (due_ms < old) {
            sift_up(d.index_);
        } else {
            sift_down(d.index_);
        }
    } else {
        d.due_ = due_ms;
        heap_.push_back(&d);
        d.index_ = static_cast<uint32_t>(heap_.size() - 1);
        sift_up(d.index_);
    }
    reschedule();
}

void TimerHeap::cancel(Deadline& d) {
    if (!d.armed()) return;
    uint32_t i = d.index_;
    Deadline* last = heap_.back();
    heap_.pop_back();
    d.index_ = Deadline::kUnarmed;
    if (last != &d) {
        place(i, last);
        sift_up(i);
        sift_down(last->index_);
    }
    // The uv timer may now fire early, find nothing due, and re-arm; that is cheaper
    // than touching it on every cancel.
}

void TimerHeap::sift_up(uint32_t i) {
    Deadline* d = heap_[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (heap_[parent]->due_ <= d->due_) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, d);
}

void TimerHeap::sift_down(uint32_t i) {
    Deadline* d = heap_[i];
    auto n = static_cast<uint32_t>(heap_.size());
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap_[child + 1]->due_ < heap_[child]->due_) ++child;
        if (heap_[child]->due_ >= d->due_) break;
        place(i, heap_[child]);
        i = child;
    }
    place(i, d);
}

void TimerHeap::reschedule() {
    if (heap_.empty()) return;
    uint64_t first = heap_.front()->due_;
    if (scheduled_for_ != 0 && scheduled_for_ <= first) return;
    uint64_t now = uv_now(loop_);
    scheduled_for_ = first;
    uv_timer_start(&timer_, &TimerHeap::on_timer, first > now ? first - now : 0, 0);
}

void TimerHeap::on_timer(uv_timer_t* t) noexcept {
    static_cast<TimerHeap*>(t->data)->run_due();
}

void TimerHeap::run_due() {
    scheduled_for_ = 0;
    uint64_t now = uv_now(loop_);
    while (!heap_.empty() && heap_.front()->due_ <= now) {
        Deadline* d = heap_.front();
        cancel(*d);
        fire_(*d);  // may arm or cancel any deadline, this one included
    }
    reschedule();
}

}  // namespace sb::uv
