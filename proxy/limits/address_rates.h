// AddressRates: new connections per second per client address (a listener's
// max_connects_per_ip_per_second, SPEC §3 Admission), exact across workers.
//
// Each address has a bucket of `rate` tokens (one second's worth) refilled at `rate`
// per second, kept as a GCRA theoretical arrival time (see shared_bucket.h) in a table
// split into shards with a mutex each, touched once per accepted connection. An
// address whose bucket is full again needs no entry: entries are dropped as they
// expire, so the table holds only the addresses that connected in the last second.
//
// Memory is bounded under a flood of distinct addresses: a shard holds at most
// kShardCapacity entries. A full shard first drops its expired entries; if nearly
// every entry is still live, the eighth closest to expiry (the least information
// lost) makes room, so that a flood costs O(1) per connection, amortised. The table
// never refuses for want of room.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sb::limits {

class AddressRates {
  public:
    static constexpr size_t kShards = 32;
    static constexpr size_t kShardCapacity = 2048;  // 65,536 addresses in all

    // Admits a new connection from `address` at `now_ns` unless it has had `rate`
    // (> 0) in the last second's worth of refill; else returns false and sets
    // `retry_after_ns` to the time until it has a token again.
    bool try_take(std::string_view address, uint64_t rate, int64_t now_ns, int64_t& retry_after_ns);

    // Entries kept now (for tests and the status page).
    size_t size();

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct Shard {
        std::mutex mutex;
        std::unordered_map<std::string, int64_t, Hash, std::equal_to<>> tat;  // guarded
    };
    Shard& shard_for(std::string_view key) { return shards_[Hash{}(key) % kShards]; }
    static void make_room(Shard& shard, int64_t now_ns);

    std::array<Shard, kShards> shards_;
};

}  // namespace sb::limits
