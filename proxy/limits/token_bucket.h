// TokenBucket: a message-rate limit for one connection (max_messages_per_second).
//
// The bucket holds up to `rate` tokens (one second's worth, so short bursts pass) and
// refills continuously at `rate` tokens per second; each message takes one. Time is
// the loop's millisecond clock, passed in, so the bucket is pure and testable.
// Tokens are kept in thousandths so refills of a few milliseconds are not lost.
#pragma once

#include <algorithm>
#include <cstdint>

namespace sb::limits {

class TokenBucket {
  public:
    // Starts full at `now_ms`.
    void reset(uint64_t rate, uint64_t now_ms) {
        milli_tokens_ = rate * 1000;
        last_ms_ = now_ms;
    }

    // Takes one token for a message at `now_ms`; false when the rate is exceeded.
    bool take(uint64_t rate, uint64_t now_ms) {
        if (now_ms > last_ms_) {
            // rate tokens per 1000 ms = rate milli-tokens per ms.
            milli_tokens_ = std::min(rate * 1000, milli_tokens_ + (now_ms - last_ms_) * rate);
            last_ms_ = now_ms;
        }
        if (milli_tokens_ < 1000) return false;
        milli_tokens_ -= 1000;
        return true;
    }

  private:
    uint64_t milli_tokens_ = 0;
    uint64_t last_ms_ = 0;
};

}  // namespace sb::limits
