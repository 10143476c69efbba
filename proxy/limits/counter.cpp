#include "limits/counter.h"

namespace sb::limits {

bool PerKeyCounter::try_acquire(std::string_view key, uint64_t limit) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.counts.find(key);
    uint64_t current = it == shard.counts.end() ? 0 : it->second;
    if (limit > 0 && current >= limit) return false;
    if (it == shard.counts.end()) {
        shard.counts.emplace(std::string(key), 1);
    } else {
        ++it->second;
    }
    return true;
}

void PerKeyCounter::release(std::string_view key) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.counts.find(key);
    if (it == shard.counts.end()) return;
    // A key leaves the table with its last connection, so the table holds only the
    // addresses that are connected now.
    if (--it->second == 0) shard.counts.erase(it);
}

uint64_t PerKeyCounter::count(std::string_view key) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.counts.find(key);
    return it == shard.counts.end() ? 0 : it->second;
}

}  // namespace sb::limits
