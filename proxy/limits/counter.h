// Counter limits, exact under concurrency across workers.
//
// SlotCounter: how many connections hold a slot (a listener's, the server's); a slot
// is taken with a compare-and-swap only while the count is under the limit, so two
// workers can never both take the last one.
//
// PerKeyCounter: the same per key (a client address), in a table split into shards
// with a mutex each, touched once when a connection opens and once when it ends.
//
// Both are shared by every worker and kept across reloads (by listener name), so a
// reload that changes a limit applies it to the connections already counted.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sb::limits {

class SlotCounter {
  public:
    // Takes a slot unless `limit` (> 0) are taken; 0 means no limit.
    bool try_acquire(uint64_t limit) {
        uint64_t current = count_.load(std::memory_order_relaxed);
        do {
            if (limit > 0 && current >= limit) return false;
        } while (!count_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
        return true;
    }
    void release() { count_.fetch_sub(1, std::memory_order_relaxed); }
    uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> count_{0};
};

class PerKeyCounter {
  public:
    static constexpr size_t kShards = 32;

    // Takes a slot for `key` unless `limit` (> 0) are taken by it.
    bool try_acquire(std::string_view key, uint64_t limit);
    void release(std::string_view key);
    uint64_t count(std::string_view key);

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Shard {
        std::mutex mutex;
        std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>> counts;
    };
    Shard& shard_for(std::string_view key) { return shards_[Hash{}(key) % kShards]; }

    std::array<Shard, kShards> shards_;
};

}  // namespace sb::limits
