#include "app/rehome.h"

#include <algorithm>

#include "balance/hash.h"
#include "log/logger.h"

namespace sb::app {

Rehomer::Rehomer(uv_loop_t* loop, CloseRoom close_room)
    : loop_(loop), close_room_(std::move(close_room)) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
}

void Rehomer::close() {
    batches_.clear();
    auto* handle = reinterpret_cast<uv_handle_t*>(&timer_);
    if (!uv_is_closing(handle)) uv_close(handle, nullptr);
}

size_t Rehomer::pending() const {
    size_t n = 0;
    for (const auto& [name, batch] : batches_)
        n += batch.moves.size() + batch.deferred.size();
    return n;
}

void Rehomer::scan(const pool::GenerationPtr& generation, const std::string& name) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) return;
    const pool::Pool* pool = generation->pool(name);
    if (pool == nullptr || !pool->config().rehome) return;
    Batch batch{generation, pool, {}, 0, 0, {}, 0};
    pool->rooms()->for_each([&](const std::string& key, const pool::Room& room) {
        // A room the load rules placed away from home stays: rehoming undoes moves
        // caused by backend changes, never the bounded-load placement.
        if (room.displaced_by_load) return;
        uint64_t hash = balance::hash_key(key);
        const pool::Backend* home = pool->home(hash);
        if (home != nullptr && home != room.backend.get()) batch.moves.push_back({key, hash});
    });
    if (batch.moves.empty()) {
        batches_.erase(name);
        return;
    }
    auto spread = static_cast<uint64_t>(generation->config().server.close_spread.count());
    batch.interval_ms = std::max<uint64_t>(1, spread / batch.moves.size());
    batch.next_ms = uv_now(loop_);
    log::info("rehoming rooms", {{"pool", name},
                                 {"rooms", std::to_string(batch.moves.size())},
                                 {"spread", std::to_string(spread) + "ms"}});
    batches_[name] = std::move(batch);
    schedule();
}

uint64_t Rehomer::move(const pool::Pool& pool, const Move& m, uint64_t& wait_ms) {
    wait_ms = 0;
    pool::Backend* home = pool.home(m.hash);
    if (home == nullptr) return 0;
    auto& shard = pool.rooms()->shard_for(m.hash);
    std::lock_guard lock(shard.mutex);
    auto it = shard.rooms.find(m.key);
    if (it == shard.rooms.end() || it->second.backend.get() == home) return 0;
    // Moving must not overload the home: not past the bounded-load cap, not past
    // max_connections_per_backend.
    int64_t cap = pool.load_cap();
    int64_t after = home->active() + it->second.connections;
    uint64_t limit = pool.config().max_connections_per_backend;
    if ((cap > 0 && after > cap) || (limit > 0 && after > static_cast<int64_t>(limit))) return 0;
    // Nor past its slow-start cap: a backend that just came up fills gradually.
    if (!pool.slow_start_allows(*home, it->second.connections)) {
        double left = 1.0 - home->slow_start_fraction(pool.config().slow_start);
        wait_ms =
            1 + static_cast<uint64_t>(left * static_cast<double>(pool.config().slow_start.count()));
        return 0;
    }
    // The entry moves first: connections of this room from now on join the new home.
    it->second.backend = pool.backends()[static_cast<size_t>(pool.index_of(home))];
    return it->second.id;
}

void Rehomer::step() {
    uint64_t now = uv_now(loop_);
    for (auto it = batches_.begin(); it != batches_.end();) {
        Batch& batch = it->second;
        if (!batch.deferred.empty() && batch.retry_ms <= now) {
            // The homes' slow start is over: the refused moves get their turn again,
            // paced like the others.
            for (auto& m : batch.deferred)
                batch.moves.push_back(std::move(m));
            batch.deferred.clear();
            batch.next_ms = std::max(batch.next_ms, now);
        }
        while (!batch.moves.empty() && batch.next_ms <= now) {
            Move m = std::move(batch.moves.front());
            batch.moves.pop_front();
            batch.next_ms += batch.interval_ms;
            uint64_t wait_ms = 0;
            if (uint64_t id = move(*batch.pool, m, wait_ms)) {
                close_room_(id);
            } else if (wait_ms > 0) {
                batch.retry_ms = std::max(batch.retry_ms, now + wait_ms);
                batch.deferred.push_back(std::move(m));
            }
        }
        bool done = batch.moves.empty() && batch.deferred.empty();
        it = done ? batches_.erase(it) : std::next(it);
    }
    schedule();
}

void Rehomer::schedule() {
    uint64_t next = 0;
    for (const auto& [name, batch] : batches_) {
        uint64_t due = batch.moves.empty() ? batch.retry_ms : batch.next_ms;
        if (!batch.moves.empty() && !batch.deferred.empty()) due = std::min(due, batch.retry_ms);
        if (next == 0 || due < next) next = due;
    }
    if (next == 0) {
        uv_timer_stop(&timer_);
        return;
    }
    uint64_t now = uv_now(loop_);
    uv_timer_start(&timer_, &Rehomer::on_timer, next > now ? next - now : 0, 0);
}

void Rehomer::on_timer(uv_timer_t* timer) noexcept {
    static_cast<Rehomer*>(timer->data)->step();
}

}  // namespace sb::app
