#include "pool/pool.h"

#include <algorithm>
#include <cmath>

#include "balance/hash.h"

namespace sb::pool {

Pool::Pool(const config::PoolConfig& config, std::vector<std::shared_ptr<Backend>> backends,
           std::shared_ptr<RoomTable> rooms, std::shared_ptr<const balance::Table> table,
           std::shared_ptr<tls::ClientContext> tls, std::vector<std::string> sources)
    : config_(config),
      backends_(std::move(backends)),
      rooms_(std::move(rooms)),
      table_(std::move(table)),
      tls_(std::move(tls)),
      sources_(std::move(sources)) {
    for (uint32_t i = 0; i < backends_.size(); ++i)
        index_[backends_[i].get()] = i;
}

std::shared_ptr<Backend> Pool::find(const std::string& address) const {
    for (const auto& b : backends_) {
        if (b->address() == address) return b;
    }
    return nullptr;
}

int Pool::index_of(const Backend* b) const {
    auto it = index_.find(b);
    return it == index_.end() ? -1 : static_cast<int>(it->second);
}

bool Pool::keyed() const {
    auto a = table_->algorithm();
    return a != balance::Algorithm::LeastConnections && a != balance::Algorithm::RoundRobin;
}

bool Pool::was_tried(uint32_t node, const std::vector<uint32_t>& tried) const {
    return std::find(tried.begin(), tried.end(), node) != tried.end();
}

int64_t Pool::load_cap() const {
    if (config_.load_factor <= 0.0) return 0;
    // ceil(c * (A + 1) / N): A = the pool's connections, N = its backends that are up.
    // Reading every backend's counters is O(N), paid only when a new room is placed.
    auto now = Backend::Clock::now();
    int64_t active = 0;
    int64_t up = 0;
    for (const auto& b : backends_) {
        active += b->active();
        up += b->is_up(now) ? 1 : 0;
    }
    if (up == 0) return 0;
    return static_cast<int64_t>(
        std::ceil(config_.load_factor * static_cast<double>(active + 1) / static_cast<double>(up)));
}

Skip Pool::skip_reason(const Backend& b, int64_t cap) const {
    if (!b.is_up()) return Skip::Down;
    uint64_t limit = config_.max_connections_per_backend;
    if (limit > 0 && b.active() >= static_cast<int64_t>(limit)) return Skip::Full;
    if (cap > 0 && b.active() >= cap) return Skip::OverCap;
    return Skip::None;
}

Backend* Pool::choose(uint64_t hash, const std::vector<uint32_t>& tried, bool* displaced) const {
    const int64_t cap = load_cap();
    const uint64_t limit = config_.max_connections_per_backend;
    const auto now = Backend::Clock::now();
    uint64_t where = table_->algorithm() == balance::Algorithm::RoundRobin
                         ? turn_.fetch_add(1, std::memory_order_relaxed)
                         : hash;
    Backend* chosen = nullptr;
    int over_cap = -1;  // the first backend that is up but over the cap
    bool pushed = false;
    walk_preference(where, [&](uint32_t node) {
        if (was_tried(node, tried)) return true;
        Backend* b = backends_[node].get();
        if (!b->is_up(now)) return true;
        if (cap > 0 && b->active() >= cap) {
            if (over_cap < 0) over_cap = static_cast<int>(node);
            pushed = true;
            return true;
        }
        if (!b->try_acquire(limit)) {  // full
            pushed = true;
            return true;
        }
        chosen = b;
        return false;
    });
    if (displaced != nullptr) *displaced = pushed && chosen != nullptr;
    // Every backend is over the cap: the key goes to its first choice that is up.
    if (chosen == nullptr && over_cap >= 0 &&
        backends_[static_cast<size_t>(over_cap)]->try_acquire(limit)) {
        chosen = backends_[static_cast<size_t>(over_cap)].get();
    }
    return chosen;
}

Pool::Outcome Pool::place(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                          Placement& out) const {
    if (!keyed()) {
        // No room to join or make: the algorithm alone picks, connection by connection.
        Backend* b = choose(hash, tried);
        if (b == nullptr) return Outcome::NoBackend;
        out = {nullptr, b};
        return Outcome::Placed;
    }
    RoomTable::Shard& shard = rooms_->shard_for(hash);
    std::lock_guard lock(shard.mutex);
    auto it = shard.rooms.find(key);
    if (it != shard.rooms.end()) {
        Room& room = it->second;
        Backend* current = room.backend.get();
        int index = index_of(current);
        if (index >= 0 && current->is_up() && !was_tried(static_cast<uint32_t>(index), tried)) {
            // An active room: join it. Its backend being full refuses the connection
            // rather than splitting the room.
            if (!current->try_acquire(config_.max_connections_per_backend)) return Outcome::Full;
            ++room.connections;
            out = {&room, current};
            return Outcome::Joined;
        }
        // The room's backend is down or gone from the pool: the room moves.
        bool displaced = false;
        Backend* b = choose(hash, tried, &displaced);
        if (b == nullptr) return Outcome::NoBackend;
        room.backend = backends_[index_.at(b)];
        room.displaced_by_load = displaced;
        ++room.connections;
        out = {&room, b};
        return Outcome::Placed;
    }
    bool displaced = false;
    Backend* b = choose(hash, tried, &displaced);
    if (b == nullptr) return Outcome::NoBackend;
    auto [inserted, fresh] = shard.rooms.emplace(
        std::string(key),
        Room{backends_[index_.at(b)], nullptr, 1, rooms_->next_room_id(), displaced});
    inserted->second.key = &inserted->first;
    out = {&inserted->second, b};
    return Outcome::Placed;
}

Pool::Outcome Pool::retry(uint64_t hash, const std::vector<uint32_t>& tried, Placement& p) const {
    if (p.room == nullptr) {
        if (p.backend != nullptr) p.backend->release();
        p.backend = choose(hash, tried);
        if (p.backend == nullptr) return Outcome::NoBackend;  // p is empty
        return Outcome::Placed;
    }
    RoomTable::Shard& shard = rooms_->shard_for(hash);
    std::unique_lock lock(shard.mutex);
    p.backend->release();
    Room& room = *p.room;
    bool others_there = room.connections > 1 && room.backend.get() == p.backend;
    Backend* next = others_there ? nullptr : choose(hash, tried);
    if (next == nullptr) {
        lock.unlock();
        p.backend = nullptr;  // the slot is already given back
        release(p);
        return Outcome::NoBackend;
    }
    room.backend = backends_[index_.at(next)];
    p.backend = next;
    return Outcome::Placed;
}

void Pool::release(Placement& p) const {
    if (p.room == nullptr) {  // keyless algorithms: a slot and no room
        if (p.backend != nullptr) p.backend->release();
        p = Placement{};
        return;
    }
    // The shard is found again from the key rather than kept by every session.
    RoomTable::Shard& shard = rooms_->shard_for(balance::hash_key(*p.room->key));
    std::lock_guard lock(shard.mutex);
    if (p.backend != nullptr) p.backend->release();
    if (--p.room->connections == 0) {
        // Find first: the key string lives in the node that erase() destroys.
        auto it = shard.rooms.find(*p.room->key);
        if (it != shard.rooms.end()) shard.rooms.erase(it);
    }
    p = Placement{};
}

Pool::Route Pool::describe(std::string_view key) const {
    Route r;
    r.hash = balance::hash_key(key);
    const int64_t cap = load_cap();
    uint64_t where = table_->algorithm() == balance::Algorithm::RoundRobin
                         ? turn_.load(std::memory_order_relaxed)
                         : r.hash;
    walk_preference(where, [&](uint32_t node) {
        const Backend* b = backends_[node].get();
        r.preference.push_back({b, skip_reason(*b, cap)});
        return true;
    });
    r.keyed = keyed();
    if (r.keyed) {
        RoomTable::Shard& shard = rooms_->shard_for(r.hash);
        std::lock_guard lock(shard.mutex);
        auto it = shard.rooms.find(key);
        if (it != shard.rooms.end()) {
            r.room_active = true;
            r.room_connections = it->second.connections;
            r.room_backend = it->second.backend.get();
        }
    }
    // The same decisions as place(): an active room on a backend that is up is joined
    // (unless full: then refused); otherwise the first candidate nothing skips, or the
    // first that is up when all are over the cap.
    if (r.room_active && index_of(r.room_backend) >= 0 && r.room_backend->is_up()) {
        if (skip_reason(*r.room_backend, 0) == Skip::None) r.chosen = r.room_backend;
        return r;
    }
    for (const auto& c : r.preference) {
        if (c.skip == Skip::None) {
            r.chosen = c.backend;
            return r;
        }
    }
    for (const auto& c : r.preference) {
        if (c.skip == Skip::OverCap) {
            r.chosen = c.backend;
            return r;
        }
    }
    return r;
}

Backend* Pool::home(uint64_t hash) const {
    if (!keyed()) return nullptr;  // only hashing algorithms give a key a home
    auto now = Backend::Clock::now();
    Backend* found = nullptr;
    table_->walk(hash, [&](uint32_t node) {
        if (!backends_[node]->is_up(now)) return true;
        found = backends_[node].get();
        return false;
    });
    return found;
}

}  // namespace sb::pool
