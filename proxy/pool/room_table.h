// RoomTable: the keys of one pool that have live connections ("rooms"), and the
// backend each room is on (SPEC §3 "Keys are rooms").
//
// Shared by every worker, so that one room lands on one backend whichever worker
// accepts its connections; kept across configuration generations by pool name, so a
// reload never splits a room. A room leaves the table with its last connection.
//
// Thread-safe: the table is split into shards by key hash, each with its own mutex,
// held only for a lookup or an update, once per connection (never per message).
// Entries are nodes of std::unordered_map and never move, so a session may keep a
// pointer to its room until it releases it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pool/backend.h"

namespace sb::pool {

struct Room {
    std::shared_ptr<Backend> backend;
    const std::string* key = nullptr;  // the table entry's own key
    uint32_t connections = 0;
    uint64_t id = 0;  // unique per room instance, so a worker can find its sessions
    // Placed away from its first choice because that was over the bounded-load cap
    // or full: rehoming leaves it where the load rules put it.
    bool displaced_by_load = false;
};

class RoomTable {
  public:
    static constexpr size_t kShards = 64;

    class Shard {
      public:
        std::mutex mutex;
        // Guarded by mutex. Transparent lookup avoids building a std::string per find.
        struct Hash {
            using is_transparent = void;
            size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
        };
        std::unordered_map<std::string, Room, Hash, std::equal_to<>> rooms;
    };

    Shard& shard_for(uint64_t key_hash) { return shards_[key_hash % kShards]; }
    uint64_t next_room_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

    // Visits every room under its shard's lock: f(key, room).
    template <class F>
    void for_each(F f) {
        for (auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            for (auto& [key, room] : shard.rooms)
                f(key, room);
        }
    }
    size_t size();

  private:
    std::array<Shard, kShards> shards_;
    std::atomic<uint64_t> next_id_{1};
};

}  // namespace sb::pool
