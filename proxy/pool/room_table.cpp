#include "pool/room_table.h"

namespace sb::pool {

size_t RoomTable::size() {
    size_t n = 0;
    for (auto& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        n += shard.rooms.size();
    }
    return n;
}

}  // namespace sb::pool
