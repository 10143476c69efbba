// Pool: one configured pool of one generation: its settings, its backends, its
// balancing table, and its rooms.
//
// Built by the main thread when a configuration is loaded, then shared read-only by
// every worker through the Generation. Live state survives reloads: Backend objects
// are reused for every address a pool keeps, and the RoomTable is the same for every
// generation of a pool name, so rooms are never split by a reload.
//
// Placement (SPEC §3 Balancing), for the hashing algorithms (ring, maglev): a
// connection whose key is an active room joins the room's backend while that backend
// is up; a new key walks its preference order,
// skipping backends that are down, full, already tried, or (with load_factor c > 0)
// at ceil(c * (A + 1) / N) connections, and falls back to its first choice that is up
// when every backend is over the cap. With `slow_start`, a backend in its window is
// also skipped for new rooms once its connections reach
// weight_share * (A + 1) * (load_factor or 1) * elapsed fraction (Skip::SlowStart);
// joining an active room is never refused by it. least_connections and round_robin give a key no
// home, so they make no rooms: each connection is placed by the algorithm alone (its
// Placement has no room) and the room table is never consulted. Thread-safe: placement holds the
// key's room shard lock, so one room gets one backend whichever worker places it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "balance/table.h"
#include "config/config.h"
#include "pool/backend.h"
#include "pool/room_table.h"
#include "tls/context.h"

namespace sb::pool {

// A session's hold on a room and on a backend connection slot (16 bytes: every
// session keeps one). `room` is null under least_connections and round_robin, which
// make no rooms; a placement holds something while it holds either.
struct Placement {
    Room* room = nullptr;
    Backend* backend = nullptr;

    explicit operator bool() const { return room != nullptr || backend != nullptr; }
};

// Why a backend was not taken, as /route reports it.
enum class Skip { None, Down, Full, OverCap, Tried, SlowStart, RateLimited };

// Admission (SPEC §3): the pool's bucket of new connections and the connections it
// shed, shared by every worker and kept across generations by pool name (like the
// RoomTable). Each backend keeps its own bucket (Backend::admission_bucket).
struct AdmissionState {
    limits::SharedBucket bucket;
    std::atomic<uint64_t> shed{0};  // shed because the pool's bucket was empty
};

// The buckets one placement draws from, read once from the pool's admission table:
// a rate of 0 takes nothing from that bucket.
struct AdmissionRates {
    uint64_t pool_rate = 0;
    uint64_t pool_capacity = 0;
    uint64_t backend_rate = 0;
    uint64_t backend_capacity = 0;
    int64_t now_ns = 0;  // steady clock

    bool backend_has_token(const Backend& b) const {
        return backend_rate == 0 ||
               b.admission_bucket().has_token(backend_rate, backend_capacity, now_ns);
    }
};

// The pool-wide numbers placement's caps are computed from, read once per placement
// (and only when load_factor or slow_start is set: otherwise only `now` is filled in).
struct Loads {
    int64_t active = 0;      // A: the pool's connections
    int64_t up = 0;          // N: its backends that are up
    uint64_t up_weight = 0;  // the sum of their weights
    int64_t cap = 0;         // the bounded-load cap (0 = none)
    std::chrono::steady_clock::time_point now;
};

class Pool {
  public:
    enum class Outcome {
        Placed,       // a backend was chosen for a new (or moved) room
        Joined,       // the connection joined its active room's backend
        NoBackend,    // nothing up and free: 503
        Full,         // the room's backend is full; the room is not split: 503
        ShedPool,     // admission: the pool's bucket is empty (nothing is held)
        ShedBackend,  // admission: the room's backend, or every backend that is up and
                      // free, has no token (nothing is held)
    };

    // `sources` names, per backend, the entry it came from (the literal address, the
    // "name:port" or the SRV name); absent = each backend's own address.
    Pool(const config::PoolConfig& config, std::vector<std::shared_ptr<Backend>> backends,
         std::shared_ptr<RoomTable> rooms, std::shared_ptr<const balance::Table> table,
         std::shared_ptr<tls::ClientContext> tls = nullptr, std::vector<std::string> sources = {},
         std::shared_ptr<AdmissionState> admission = nullptr);
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    const config::PoolConfig& config() const { return config_; }
    const std::string& name() const { return config_.name; }
    // The backends of this generation: the literal entries and every record the
    // discovered entries resolved to, one per "ip:port". May be empty (a name that has
    // not resolved yet): placement then answers NoBackend.
    const std::vector<std::shared_ptr<Backend>>& backends() const { return backends_; }
    // Backend i's weight in the balancing table (the entry's, the SRV record's, or
    // either scaled down to fit the ring) and the entry it came from.
    unsigned weight(size_t i) const { return table_->nodes()[i].weight; }
    const std::string& source(size_t i) const {
        return i < sources_.size() ? sources_[i] : backends_[i]->address();
    }
    const std::shared_ptr<RoomTable>& rooms() const { return rooms_; }
    const std::shared_ptr<AdmissionState>& admission() const { return admission_; }
    // The rates a placement that takes tokens draws with now (all 0 without an
    // [admission] table, or when `take_tokens` is false).
    AdmissionRates admission_rates(bool take_tokens = true) const;
    const std::shared_ptr<const balance::Table>& table() const { return table_; }
    // Whether the algorithm places by key (ring, maglev), which is what makes rooms.
    bool keyed() const;
    // TLS to backends (null = plain TCP).
    const tls::ClientContext* tls() const { return tls_.get(); }
    const std::shared_ptr<tls::ClientContext>& shared_tls() const { return tls_; }
    std::shared_ptr<Backend> find(const std::string& address) const;
    // Index of `b` in backends(), or -1 when the backend is not in this pool.
    int index_of(const Backend* b) const;

    // Places a connection with `key` (hash `hash`), never on a backend in `tried`.
    // With `take_tokens` (a new client connection, SPEC §3 Admission) it also takes a
    // token from the pool's bucket and from the chosen backend's: a room whose backend
    // has none is shed, never split; a new room walks past backends without one.
    Outcome place(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                  Placement& out, bool take_tokens = false) const;
    // Places a plain HTTP request (SPEC §3 HTTP requests): as place() would, but it
    // never makes or moves a room. A key whose room is active goes to the room's
    // backend (so a room's REST calls reach the server that holds it); otherwise the
    // key's preference order decides. `out.room` stays null: the request holds only a
    // backend slot, for as long as it runs.
    Outcome pick(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                 Placement& out, bool take_tokens = false) const;
    // After a failed connect to out.backend: gives up the slot and, unless the room
    // has other connections on that backend (it is not split for one failure), moves
    // the room to the next backend not in `tried`. Returns Placed, or NoBackend or
    // ShedBackend (the placement is then released). With `take_tokens` the next backend
    // gives a token (the pool's was taken by place()).
    Outcome retry(uint64_t hash, const std::vector<uint32_t>& tried, Placement& p,
                  bool take_tokens = false) const;
    // Gives back the pool's admission token of a connection placed with tokens that
    // then reached no backend (every connect attempt failed): it never came in.
    void give_back_pool_token() const;
    // Gives up the slot and the room (the room leaves the table with its last connection).
    // Leaves `p` empty.
    void release(Placement& p) const;

    // Where a connection with `key` would go now, and why, from the same table, room
    // table and checks placement uses (for /route). Places nothing.
    struct Route {
        uint64_t hash = 0;
        // False for least_connections and round_robin: the key plays no part, there is
        // no room, and `chosen` is only where the next connection would go.
        bool keyed = true;
        bool room_active = false;
        uint32_t room_connections = 0;
        const Backend* room_backend = nullptr;
        const Backend* chosen = nullptr;  // null: no backend would take it (503)
        // Admission: the pool's bucket is empty now, or the backend the key would go
        // to (its room's, or its first choice that is up and free) has no token.
        bool pool_rate_limited = false;
        bool rate_limited = false;
        struct Candidate {
            const Backend* backend;
            Skip skip;
        };
        std::vector<Candidate> preference;
    };
    Route describe(std::string_view key) const;

    // The key's preference order as placement walks it (lazily, no allocation).
    template <class Visit>
    void walk_preference(uint64_t hash, Visit&& visit) const;
    Skip skip_reason(const Backend& b, int64_t cap) const;
    Skip skip_reason(const Backend& b, const Loads& loads) const;
    // The bounded-load cap now (0 = no cap).
    int64_t load_cap() const;
    Loads loads() const;
    // The slow-start cap of `b` (connections it may hold and still take a new room),
    // or a negative value when `b` is not in slow start.
    double slow_start_cap(const Backend& b, const Loads& loads) const;
    // Whether `b` may take a room of `connections` connections under its slow-start
    // cap now (the rehomer's check; always true outside slow start).
    bool slow_start_allows(const Backend& b, int64_t connections) const;
    // The key's hash home: its first backend that is up, ignoring caps (rehome target).
    Backend* home(uint64_t hash) const;

  private:
    // The first acceptable backend (its slot taken), and whether load rules (the cap,
    // a full backend) pushed the key past a backend that was up.
    // With admission rates, a backend without a token is walked past as one over the
    // cap is; `rate_limited` (when given) is set to the first such backend.
    Backend* choose(uint64_t hash, const std::vector<uint32_t>& tried, bool* displaced = nullptr,
                    const AdmissionRates* rates = nullptr, Backend** rate_limited = nullptr) const;
    // place() and pick() once the pool's token is taken.
    Outcome place_room(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                       Placement& out, const AdmissionRates& rates) const;
    Outcome pick_backend(std::string_view key, uint64_t hash, const std::vector<uint32_t>& tried,
                         Placement& out, const AdmissionRates& rates) const;
    // Takes the pool's token for a placement (true without a pool rate); a refusal
    // is counted as shed.
    bool take_pool_token(const AdmissionRates& rates) const;
    // Whatever the placement's outcome, the pool token goes back when nothing was
    // placed.
    Outcome settle_pool_token(Outcome outcome, const AdmissionRates& rates) const;
    bool was_tried(uint32_t node, const std::vector<uint32_t>& tried) const;

    const config::PoolConfig& config_;  // owned by the generation's Config
    std::vector<std::shared_ptr<Backend>> backends_;
    std::unordered_map<const Backend*, uint32_t> index_;
    std::shared_ptr<RoomTable> rooms_;
    std::shared_ptr<const balance::Table> table_;
    std::shared_ptr<tls::ClientContext> tls_;
    std::vector<std::string> sources_;
    std::shared_ptr<AdmissionState> admission_;
    mutable std::atomic<uint64_t> turn_{0};  // round robin's counter
};

template <class Visit>
void Pool::walk_preference(uint64_t hash, Visit&& visit) const {
    if (table_->algorithm() == balance::Algorithm::LeastConnections) {
        // Least connections: ascending live connection counts, ties by position.
        std::vector<uint32_t> order(backends_.size());
        for (uint32_t i = 0; i < order.size(); ++i)
            order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
            return backends_[a]->active() < backends_[b]->active();
        });
        for (uint32_t i : order) {
            if (!visit(i)) return;
        }
        return;
    }
    table_->walk(hash, visit);
}

}  // namespace sb::pool
