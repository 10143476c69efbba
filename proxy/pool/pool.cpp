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

Loads Pool::loads() const {
    // Reading every backend's counters is O(N), paid only when a new room is placed.
    Loads l;
    l.now = Backend::Clock::now();
    // Neither cap in use: nothing to read (the common case costs nothing).
    if (config_.load_factor <= 0.0 && config_.slow_start.count() <= 0) return l;
    const auto& nodes = table_->nodes();
    for (size_t i = 0; i < backends_.size(); ++i) {
        const auto& b = backends_[i];
        l.active += b->active();
        if (b->is_up(l.now)) {
            ++l.up;
            l.up_weight += i < nodes.size() ? nodes[i].weight : 1;
        }
    }
    // ceil(c * (A + 1) / N): A = the pool's connections, N = its backends that are up.
    if (config_.load_factor > 0.0 && l.up > 0) {
        l.cap = static_cast<int64_t>(std::ceil(
            config_.load_factor * static_cast<double>(l.active + 1) / static_cast<double>(l.up)));
    }
    return l;
}

int64_t Pool::load_cap() const {
    return loads().cap;
}

double Pool::slow_start_cap(const Backend& b, const Loads& l) const {
    if (config_.slow_start.count() <= 0) return -1;
    double fraction = b.slow_start_fraction(config_.slow_start, l.now);
    if (fraction >= 1.0 || l.up_weight == 0) return -1;
    int index = index_of(&b);
    const auto& nodes = table_->nodes();
    double weight = index >= 0 && static_cast<size_t>(index) < nodes.size()
                        ? nodes[static_cast<size_t>(index)].weight
                        : 1.0;
    // SPEC §3 Health "Slow start": its weighted share of (A + 1), times load_factor
    // when set, times the elapsed fraction of the window.
    double factor = config_.load_factor > 0.0 ? config_.load_factor : 1.0;
    return weight / static_cast<double>(l.up_weight) * static_cast<double>(l.active + 1) * factor *
           fraction;
}

bool Pool::slow_start_allows(const Backend& b, int64_t connections) const {
    Loads l = loads();
    double cap = slow_start_cap(b, l);
    return cap < 0 || static_cast<double>(b.active() + connections) <= cap;
}

Skip Pool::skip_reason(const Backend& b, int64_t cap) const {
    Loads l = loads();
    l.cap = cap;
    return skip_reason(b, l);
}

Skip Pool::skip_reason(const Backend& b, const Loads& l) const {
    if (!b.is_up(l.now)) return Skip::Down;
    uint64_t limit = config_.max_connections_per_backend;
    if (limit > 0 && b.active() >= static_cast<int64_t>(limit)) return Skip::Full;
    if (l.cap > 0 && b.active() >= l.cap) return Skip::OverCap;
    double slow = slow_start_cap(b, l);
    if (slow >= 0 && static_cast<double>(b.active()) >= slow) return Skip::SlowStart;
    return Skip::None;
}

Backend* Pool::choose(uint64_t hash, const std::vector<uint32_t>& tried, bool* displaced) const {
    const Loads l = loads();
    const int64_t cap = l.cap;
    const uint64_t limit = config_.max_connections_per_backend;
    const auto now = l.now;
    const bool slow_start = config_.slow_start.count() > 0;
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
        if (slow_start) {
            double slow = slow_start_cap(*b, l);
            if (slow >= 0 && static_cast<double>(b->active()) >= slow) {
                // Past its slow-start cap: walks on as for the load cap.
                if (over_cap < 0) over_cap = static_cast<int>(node);
                pushed = true;
                return true;
            }
        }
        if (!b->try_acquire(limit)) {  // full
            pushed = true;
            return true;
        }
        chosen = b;
        return false;
    });
    if (displaced != nullptr) *displaced = pushed && chosen != nullptr;
    // Every backend is over a cap: the key goes to its first choice that is up.
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

Pool::Outcome Pool::pick(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                         Placement& out) const {
    if (keyed()) {
        RoomTable::Shard& shard = rooms_->shard_for(hash);
        std::lock_guard lock(shard.mutex);
        auto it = shard.rooms.find(key);
        if (it != shard.rooms.end()) {
            Backend* current = it->second.backend.get();
            int index = index_of(current);
            if (index >= 0 && current->is_up() && !was_tried(static_cast<uint32_t>(index), tried)) {
                if (!current->try_acquire(config_.max_connections_per_backend))
                    return Outcome::Full;
                out = {nullptr, current};
                return Outcome::Joined;
            }
        }
    }
    Backend* b = choose(hash, tried);
    if (b == nullptr) return Outcome::NoBackend;
    out = {nullptr, b};
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
    const Loads l = loads();
    uint64_t where = table_->algorithm() == balance::Algorithm::RoundRobin
                         ? turn_.load(std::memory_order_relaxed)
                         : r.hash;
    walk_preference(where, [&](uint32_t node) {
        const Backend* b = backends_[node].get();
        r.preference.push_back({b, skip_reason(*b, l)});
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
        // Joining is refused only by a full backend, never by the caps.
        uint64_t limit = config_.max_connections_per_backend;
        if (limit == 0 || r.room_backend->active() < static_cast<int64_t>(limit)) {
            r.chosen = r.room_backend;
        }
        return r;
    }
    for (const auto& c : r.preference) {
        if (c.skip == Skip::None) {
            r.chosen = c.backend;
            return r;
        }
    }
    for (const auto& c : r.preference) {
        if (c.skip == Skip::OverCap || c.skip == Skip::SlowStart) {
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
