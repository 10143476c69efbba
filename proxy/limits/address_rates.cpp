#include "limits/address_rates.h"

#include <algorithm>

#include "limits/shared_bucket.h"

namespace sb::limits {

bool AddressRates::try_take(std::string_view address, uint64_t rate, int64_t now_ns,
                            int64_t& retry_after_ns) {
    // The same rule as SharedBucket, with capacity = rate: admitted while
    // max(tat, now) - now <= (rate - 1) * T, and then tat = max(tat, now) + T.
    const int64_t t = SharedBucket::interval_ns(rate);
    const int64_t tolerance = static_cast<int64_t>(rate - 1) * t;
    Shard& shard = shard_for(address);
    std::lock_guard lock(shard.mutex);
    auto it = shard.tat.find(address);
    int64_t from = it == shard.tat.end() ? now_ns : std::max(it->second, now_ns);
    if (from - now_ns > tolerance) {
        retry_after_ns = from - now_ns - tolerance;
        return false;
    }
    if (it != shard.tat.end()) {
        it->second = from + t;
        return true;
    }
    if (shard.tat.size() >= kShardCapacity) make_room(shard, now_ns);
    shard.tat.emplace(std::string(address), from + t);
    return true;
}

void AddressRates::make_room(Shard& shard, int64_t now_ns) {
    // An entry at or before now is a full bucket: the same as no entry.
    std::erase_if(shard.tat, [now_ns](const auto& entry) { return entry.second <= now_ns; });
    if (shard.tat.size() < kShardCapacity) return;
    auto oldest =
        std::min_element(shard.tat.begin(), shard.tat.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    shard.tat.erase(oldest);
}

size_t AddressRates::size() {
    size_t n = 0;
    for (auto& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        n += shard.tat.size();
    }
    return n;
}

}  // namespace sb::limits
