#include "metrics/worker_stats.h"

namespace sb::metrics {

ListenerStats& WorkerStats::listener(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto& slot = listeners_[name];
    if (!slot) slot = std::make_unique<ListenerStats>();
    return *slot;
}

PoolStats& WorkerStats::pool(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto& slot = pools_[name];
    if (!slot) slot = std::make_unique<PoolStats>();
    return *slot;
}

void WorkerStats::count_close(uint16_t code, Side side) {
    // Taken once per finished connection; the admin thread holds it only to scrape.
    std::lock_guard lock(mutex_);
    auto& slot = closes_[CloseKey{code, side}];
    if (!slot) slot = std::make_unique<Counter>();
    slot->add();
}

}  // namespace sb::metrics
