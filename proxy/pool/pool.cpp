#include "pool/pool.h"

#include <algorithm>
#include <cmath>

#include "balance/hash.h"

namespace sb::pool {

Pool::Pool(const config::PoolConfig& config, std::vector<std::shared_ptr<Backend>> backends,
           std::shared_ptr<RoomTable> rooms, std::shared_ptr<const balance::Table> table,
           std::shared_ptr<tls::ClientContext> tls, std::vector<std::string> sources,
           std::shared_ptr<AdmissionState> admission)
    : config_(config),
      backends_(std::move(backends)),
      rooms_(std::move(rooms)),
      table_(std::move(table)),
      tls_(std::move(tls)),
      sources_(std::move(sources)),
      admission_(admission ? std::move(admission) : std::make_shared<AdmissionState>()) {
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

Backend* Pool::choose(uint64_t hash, const std::vector<uint32_t>& tried, bool* displaced,
                      const AdmissionRates* rates, Backend** rate_limited) const {
    const Loads l = loads();
    const int64_t cap = l.cap;
    const uint64_t limit = config_.max_connections_per_backend;
    const auto now = l.now;
    const bool slow_start = config_.slow_start.count() > 0;
    const bool tokens = rates != nullptr && rates->backend_rate > 0;
    uint64_t where = table_->algorithm() == balance::Algorithm::RoundRobin
                         ? turn_.fetch_add(1, std::memory_order_relaxed)
                         : hash;
    Backend* chosen = nullptr;
    bool over_cap = false;  // a backend that is up was over the cap
    bool pushed = false;
    // A slot, then a token (SPEC §3 Admission): a backend without one is walked past
    // like one over the cap, and gives its slot back.
    bool limited_here = false;  // the last take() failed for want of a token
    auto take = [&](Backend* b) {
        limited_here = false;
        if (!b->try_acquire(limit)) return false;  // full
        if (tokens && !b->admission_bucket().take(rates->backend_rate, rates->backend_capacity,
                                                  rates->now_ns)) {
            b->release();
            limited_here = true;
            if (rate_limited != nullptr && *rate_limited == nullptr) *rate_limited = b;
            return false;
        }
        return true;
    };
    auto past_cap = [&](const Backend& b) {
        if (cap > 0 && b.active() >= cap) return true;
        if (!slow_start) return false;
        double slow = slow_start_cap(b, l);
        return slow >= 0 && static_cast<double>(b.active()) >= slow;
    };
    walk_preference(where, [&](uint32_t node) {
        if (was_tried(node, tried)) return true;
        Backend* b = backends_[node].get();
        if (!b->is_up(now)) return true;
        if (past_cap(*b)) {
            // Over the bounded-load cap, or past its slow-start cap: walks on.
            over_cap = true;
            pushed = true;
            return true;
        }
        if (!take(b)) {
            // Full: the load rules pushed the key on. Out of tokens is not a load
            // rule: a room placed further on for want of one is not displaced, and
            // `rehome` may bring it home at the next change like any other.
            if (!limited_here) pushed = true;
            return true;
        }
        chosen = b;
        return false;
    });
    if (displaced != nullptr) *displaced = pushed && chosen != nullptr;
    if (chosen != nullptr || !over_cap) return chosen;
    // Every backend is over a cap: the key goes to its first choice that is up (and,
    // under admission, has a token), as if there were no cap.
    walk_preference(where, [&](uint32_t node) {
        if (was_tried(node, tried)) return true;
        Backend* b = backends_[node].get();
        if (!b->is_up(now) || !past_cap(*b) || !take(b)) return true;
        chosen = b;
        return false;
    });
    return chosen;
}

AdmissionRates Pool::admission_rates(bool take_tokens) const {
    AdmissionRates r;
    if (!take_tokens || !config_.admission) return r;
    const auto& a = *config_.admission;
    r.pool_rate = a.new_connections_per_second;
    r.pool_capacity = a.capacity(r.pool_rate);
    r.backend_rate = a.backend_new_connections_per_second;
    r.backend_capacity = a.capacity(r.backend_rate);
    r.now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   Backend::Clock::now().time_since_epoch())
                   .count();
    return r;
}

bool Pool::take_pool_token(const AdmissionRates& rates) const {
    if (rates.pool_rate == 0) return true;
    if (admission_->bucket.take(rates.pool_rate, rates.pool_capacity, rates.now_ns)) return true;
    admission_->shed.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void Pool::give_back_pool_token() const {
    AdmissionRates rates = admission_rates();
    if (rates.pool_rate > 0) admission_->bucket.give_back(rates.pool_rate, rates.now_ns);
}

Pool::Outcome Pool::settle_pool_token(Outcome outcome, const AdmissionRates& rates) const {
    bool placed = outcome == Outcome::Placed || outcome == Outcome::Joined;
    if (!placed && rates.pool_rate > 0) admission_->bucket.give_back(rates.pool_rate, rates.now_ns);
    return outcome;
}

Pool::Outcome Pool::place(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                          Placement& out, bool take_tokens) const {
    const AdmissionRates rates = admission_rates(take_tokens);
    if (!take_pool_token(rates)) return Outcome::ShedPool;
    return settle_pool_token(place_room(key, hash, tried, out, rates), rates);
}

Pool::Outcome Pool::place_room(std::string_view key, uint64_t hash,
                               const std::vector<uint32_t>& tried, Placement& out,
                               const AdmissionRates& rates) const {
    // A new room that finds no backend with a token is shed; the shed is counted on
    // the first backend that had none (its first choice under admission).
    auto choose_for_room = [&](bool& displaced, Outcome& why) -> Backend* {
        Backend* limited = nullptr;
        Backend* b = choose(hash, tried, &displaced, &rates, &limited);
        if (b == nullptr) {
            why = limited != nullptr ? Outcome::ShedBackend : Outcome::NoBackend;
            if (limited != nullptr) limited->count_shed();
        }
        return b;
    };
    if (!keyed()) {
        // No room to join or make: the algorithm alone picks, connection by connection.
        bool displaced = false;
        Outcome why = Outcome::NoBackend;
        Backend* b = choose_for_room(displaced, why);
        if (b == nullptr) return why;
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
            // An active room: join it. Its backend being full, or out of tokens, refuses
            // the connection rather than splitting the room.
            if (!current->try_acquire(config_.max_connections_per_backend)) return Outcome::Full;
            if (rates.backend_rate > 0 &&
                !current->admission_bucket().take(rates.backend_rate, rates.backend_capacity,
                                                  rates.now_ns)) {
                current->release();
                current->count_shed();
                return Outcome::ShedBackend;
            }
            ++room.connections;
            out = {&room, current};
            return Outcome::Joined;
        }
        // The room's backend is down or gone from the pool: the room moves.
        bool displaced = false;
        Outcome why = Outcome::NoBackend;
        Backend* b = choose_for_room(displaced, why);
        if (b == nullptr) return why;
        room.backend = backends_[index_.at(b)];
        room.displaced_by_load = displaced;
        ++room.connections;
        out = {&room, b};
        return Outcome::Placed;
    }
    bool displaced = false;
    Outcome why = Outcome::NoBackend;
    Backend* b = choose_for_room(displaced, why);
    if (b == nullptr) return why;
    auto [inserted, fresh] = shard.rooms.emplace(
        std::string(key),
        Room{backends_[index_.at(b)], nullptr, 1, rooms_->next_room_id(), displaced});
    inserted->second.key = &inserted->first;
    out = {&inserted->second, b};
    return Outcome::Placed;
}

Pool::Outcome Pool::pick(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                         Placement& out, bool take_tokens) const {
    const AdmissionRates rates = admission_rates(take_tokens);
    if (!take_pool_token(rates)) return Outcome::ShedPool;
    return settle_pool_token(pick_backend(key, hash, tried, out, rates), rates);
}

Pool::Outcome Pool::pick_backend(std::string_view key, uint64_t hash,
                                 const std::vector<uint32_t>& tried, Placement& out,
                                 const AdmissionRates& rates) const {
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
                if (rates.backend_rate > 0 &&
                    !current->admission_bucket().take(rates.backend_rate, rates.backend_capacity,
                                                      rates.now_ns)) {
                    current->release();
                    current->count_shed();
                    return Outcome::ShedBackend;
                }
                out = {nullptr, current};
                return Outcome::Joined;
            }
        }
    }
    Backend* limited = nullptr;
    Backend* b = choose(hash, tried, nullptr, &rates, &limited);
    if (b == nullptr) {
        if (limited == nullptr) return Outcome::NoBackend;
        limited->count_shed();
        return Outcome::ShedBackend;
    }
    out = {nullptr, b};
    return Outcome::Placed;
}

Pool::Outcome Pool::retry(uint64_t hash, const std::vector<uint32_t>& tried, Placement& p,
                          bool take_tokens) const {
    // The pool's token was taken once, by place(): a retry takes only the next
    // backend's.
    AdmissionRates rates = admission_rates(take_tokens);
    rates.pool_rate = 0;
    Backend* limited = nullptr;
    auto none_left = [&] {
        if (limited == nullptr) return Outcome::NoBackend;
        limited->count_shed();
        return Outcome::ShedBackend;
    };
    if (p.room == nullptr) {
        if (p.backend != nullptr) p.backend->release();
        p.backend = choose(hash, tried, nullptr, &rates, &limited);
        if (p.backend == nullptr) return none_left();  // p is empty
        return Outcome::Placed;
    }
    RoomTable::Shard& shard = rooms_->shard_for(hash);
    std::unique_lock lock(shard.mutex);
    p.backend->release();
    Room& room = *p.room;
    bool others_there = room.connections > 1 && room.backend.get() == p.backend;
    Backend* next = others_there ? nullptr : choose(hash, tried, nullptr, &rates, &limited);
    if (next == nullptr) {
        lock.unlock();
        p.backend = nullptr;  // the slot is already given back
        release(p);
        return none_left();
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
    const AdmissionRates rates = admission_rates();
    uint64_t where = table_->algorithm() == balance::Algorithm::RoundRobin
                         ? turn_.load(std::memory_order_relaxed)
                         : r.hash;
    walk_preference(where, [&](uint32_t node) {
        const Backend* b = backends_[node].get();
        Skip skip = skip_reason(*b, l);
        // A backend whose bucket is empty is walked past as one over the cap.
        if (skip == Skip::None && !rates.backend_has_token(*b)) skip = Skip::RateLimited;
        r.preference.push_back({b, skip});
        return true;
    });
    r.pool_rate_limited =
        rates.pool_rate > 0 &&
        !admission_->bucket.has_token(rates.pool_rate, rates.pool_capacity, rates.now_ns);
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
            // A room is never split: without a token its connections are shed.
            r.rate_limited = !rates.backend_has_token(*r.room_backend);
        }
        return r;
    }
    for (const auto& c : r.preference) {
        if (c.skip == Skip::None) {
            r.chosen = c.backend;
            return r;
        }
        // The key's first choice is out of tokens: it is placed further on, or shed.
        if (c.skip == Skip::RateLimited) r.rate_limited = true;
    }
    for (const auto& c : r.preference) {
        if (c.skip != Skip::OverCap && c.skip != Skip::SlowStart) continue;
        if (rates.backend_has_token(*c.backend)) {
            r.chosen = c.backend;
            return r;
        }
        r.rate_limited = true;  // the fallback past the caps finds no token either
    }
    // Nothing would take it: shed (not 503) when rate_limited, else 503.
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
