#include "pool/backend.h"

namespace sb::pool {

bool Backend::record_failure(unsigned fall, std::chrono::milliseconds interval,
                             Clock::time_point now) {
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    unsigned failures = consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (failures < fall) return false;
    auto retry_at = (now + interval).time_since_epoch().count();
    // Each failure past `fall` (a retry that failed too) pushes the retry time out.
    return down_until_.exchange(retry_at, std::memory_order_relaxed) == 0;
}

bool Backend::record_success() {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    return down_until_.exchange(0, std::memory_order_relaxed) != 0;
}

}  // namespace sb::pool
