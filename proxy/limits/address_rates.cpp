#include "limits/address_rates.h"

#include <algorithm>
#include <iterator>
#include <vector>

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
    int64_t from = it == shard.tat.end() ? now_ns : SharedBucket::due(it->second, t, rate, now_ns);
    if (from - now_ns > tolerance) {
        retry_after_ns = from - now_ns - tolerance;
        // A debt from an older, slower rate is cut to one second's worth.
        if (it != shard.tat.end()) it->second = from;
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
    if (shard.tat.size() < kShardCapacity - kShardCapacity / 8) return;
    // Every entry is live (a flood of addresses): the eighth closest to expiry goes,
    // so that the next kShardCapacity / 8 new addresses insert at no cost and a flood
    // costs O(1) per connection, amortised, rather than a scan each.
    std::vector<int64_t> tats;
    tats.reserve(shard.tat.size());
    for (const auto& entry : shard.tat)
        tats.push_back(entry.second);
    size_t evict = kShardCapacity / 8;
    std::nth_element(tats.begin(), tats.begin() + static_cast<std::ptrdiff_t>(evict - 1),
                     tats.end());
    const int64_t threshold = tats[evict - 1];
    // Below the threshold first, then as many at it as are still needed (ties).
    size_t at_threshold =
        evict - static_cast<size_t>(std::count_if(
                    tats.begin(), tats.end(), [threshold](int64_t t) { return t < threshold; }));
    for (auto it = shard.tat.begin(); it != shard.tat.end();) {
        bool drop = it->second < threshold || (it->second == threshold && at_threshold > 0);
        if (drop && it->second == threshold) --at_threshold;
        it = drop ? shard.tat.erase(it) : std::next(it);
    }
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
