// SharedBucket: a token bucket shared by every worker of the process, exact under
// concurrency (SPEC §3 Admission: a pool's or a backend's new connections per second).
//
// It is the generic cell rate algorithm (GCRA, ITU-T I.371), which is a token bucket
// kept as one number: the "theoretical arrival time" `tat` at which the bucket would
// be full again. A bucket of `capacity` tokens refilled at `rate` per second admits a
// connection at `now` when tat - now <= (capacity - 1) * T with T = 1 s / rate, and
// the admission moves tat to max(tat, now) + T. One 64-bit atomic, updated with a
// compare-and-swap: two workers can never both take the last token, and nothing is
// locked. A bucket that has not been touched for capacity * T is full, whatever its
// tat says, so the bucket starts full and needs no timer.
//
// In any window of W seconds a bucket admits at most capacity + rate * W connections:
// the bound the SPEC promises ("at most rate + burst in any second"). T is rounded up
// to whole nanoseconds so the rate is never exceeded by rounding.
//
// The rate and capacity are passed to each call rather than stored, as TokenBucket
// does: a reload that changes them applies to the state already kept (a bucket lives
// across generations, with its pool or its backend). A tat more than capacity * T
// ahead of now (a debt run up at an older, slower rate or a larger burst) counts as an
// empty bucket at the new rate, never as seconds of debt: the first take at the new
// rate writes the cut back, and a token comes T after it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace sb::limits {

class SharedBucket {
  public:
    static constexpr int64_t kSecondNs = 1'000'000'000;

    // Nanoseconds between tokens at `rate` per second (rounded up; rate > 0).
    static int64_t interval_ns(uint64_t rate) {
        return static_cast<int64_t>((static_cast<uint64_t>(kSecondNs) + rate - 1) / rate);
    }

    // Takes a token at `now_ns` (any monotonic clock in nanoseconds); false when the
    // bucket is empty. rate > 0 and capacity > 0.
    bool take(uint64_t rate, uint64_t capacity, int64_t now_ns) {
        const int64_t t = interval_ns(rate);
        const int64_t tolerance = static_cast<int64_t>(capacity - 1) * t;
        int64_t tat = tat_.load(std::memory_order_relaxed);
        for (;;) {
            int64_t from = due(tat, t, capacity, now_ns);
            if (from - now_ns > tolerance) {
                // Empty. A debt from an older rate or burst is cut to one empty bucket
                // now, so that the new rate refills it from here.
                if (tat > from && !tat_.compare_exchange_weak(tat, from, std::memory_order_relaxed))
                    continue;
                return false;
            }
            if (tat_.compare_exchange_weak(tat, from + t, std::memory_order_relaxed)) return true;
        }
    }

    // Gives back a token taken by take() and not used (the connection it was for was
    // placed nowhere): as if that take had not happened, up to a full bucket.
    void give_back(uint64_t rate, int64_t now_ns) {
        const int64_t t = interval_ns(rate);
        int64_t tat = tat_.load(std::memory_order_relaxed);
        for (;;) {
            // A tat at or before now - t is a full bucket already.
            int64_t back = std::max(tat - t, now_ns - t);
            if (back >= tat) return;
            if (tat_.compare_exchange_weak(tat, back, std::memory_order_relaxed)) return;
        }
    }

    // Whether a take() at `now_ns` would succeed (racy by nature: for reports).
    bool has_token(uint64_t rate, uint64_t capacity, int64_t now_ns) const {
        const int64_t t = interval_ns(rate);
        const int64_t tolerance = static_cast<int64_t>(capacity - 1) * t;
        return due(tat_.load(std::memory_order_relaxed), t, capacity, now_ns) - now_ns <= tolerance;
    }

    // Nanoseconds from `now_ns` until the bucket has a token (0 when it has one).
    int64_t wait_ns(uint64_t rate, uint64_t capacity, int64_t now_ns) const {
        const int64_t t = interval_ns(rate);
        const int64_t tolerance = static_cast<int64_t>(capacity - 1) * t;
        int64_t ahead = due(tat_.load(std::memory_order_relaxed), t, capacity, now_ns) - now_ns;
        return std::max<int64_t>(0, ahead - tolerance);
    }

    // The bucket's tat as of `now_ns` under interval `t` and `capacity`: at least now
    // (a full bucket), at most capacity * t ahead (an empty one).
    static int64_t due(int64_t tat, int64_t t, uint64_t capacity, int64_t now_ns) {
        return std::clamp(tat, now_ns, now_ns + static_cast<int64_t>(capacity) * t);
    }

  private:
    // Starts far in the past: a full bucket at any `now`, including now = 0.
    std::atomic<int64_t> tat_{INT64_MIN / 2};
};

}  // namespace sb::limits
