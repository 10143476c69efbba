// Connections placed through pool::Pool, the placement code the proxy runs: one
// connection per key with and without bounded loads, and the rooms scenario of issue 3
// (Zipf-sized rooms whose connections arrive interleaved), beside per-connection
// capping as HAProxy and Envoy do it, which this file implements on its own.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>

#include "balance/hash.h"
#include "balance/table.h"
#include "balance_sim/sim.h"
#include "config/config.h"
#include "pool/pool.h"

namespace sb::tools {
namespace {

// A Pool built without the rest of the proxy, as the unit tests build one: every
// backend up, no connection limit.
struct PoolHarness {
    PoolHarness(SimAlgorithm algorithm, size_t n, double load_factor) {
        config.name = "sim";
        config.algorithm =
            algorithm == SimAlgorithm::Ring ? config::Algorithm::Ring : config::Algorithm::Maglev;
        config.load_factor = load_factor;
        auto nodes = make_nodes(n);
        for (const auto& node : nodes) {
            auto address = config::SocketAddress::parse(node.id);
            if (!address) {
                std::fprintf(stderr, "sb-balance-sim: bad backend address %s\n", node.id.c_str());
                std::abort();  // backend_id() is wrong: cannot happen
            }
            backends.push_back(std::make_shared<pool::Backend>(node.id, *address));
        }
        auto kind =
            algorithm == SimAlgorithm::Ring ? balance::Algorithm::Ring : balance::Algorithm::Maglev;
        pool = std::make_unique<pool::Pool>(config, backends, std::make_shared<pool::RoomTable>(),
                                            std::make_shared<balance::Table>(kind, nodes));
    }

    int64_t peak() const {
        int64_t most = 0;
        for (const auto& b : backends)
            most = std::max(most, b->active());
        return most;
    }

    // Gives every placement back; true when no slot and no room is left over.
    bool release_all(std::vector<pool::Placement>& placements) {
        for (auto& p : placements)
            pool->release(p);
        bool idle = pool->rooms()->size() == 0;
        for (const auto& b : backends)
            idle = idle && b->active() == 0;
        return idle;
    }

    config::PoolConfig config;  // outlives pool, which keeps a reference
    std::vector<std::shared_ptr<pool::Backend>> backends;
    std::unique_ptr<pool::Pool> pool;
};

const std::vector<uint32_t> kNothingTried;

// Rooms seen so far: each room's first backend, and whether another connection of it
// landed elsewhere.
class SplitTracker {
  public:
    explicit SplitTracker(size_t rooms) : first_(rooms, -1), split_(rooms, 0) {}
    void record(uint32_t room, int backend) {
        if (first_[room] < 0) {
            first_[room] = backend;
        } else if (first_[room] != backend) {
            split_[room] = 1;
        }
    }
    void mark_split(uint32_t room) { split_[room] = 1; }
    size_t split() const {
        return static_cast<size_t>(std::count(split_.begin(), split_.end(), uint8_t{1}));
    }

  private:
    std::vector<int> first_;
    std::vector<uint8_t> split_;
};

int64_t cap_for(double load_factor, int64_t active, size_t backends) {
    return static_cast<int64_t>(
        std::ceil(load_factor * static_cast<double>(active) / static_cast<double>(backends)));
}

}  // namespace

std::string_view room_strategy_name(RoomStrategy s) {
    switch (s) {
        case RoomStrategy::PlainHash:
            return "plain hashing of rooms";
        case RoomStrategy::RoomBoundedLoads:
            return "switchboard: bounded loads by room";
        case RoomStrategy::ConnectionCap:
            return "per-connection cap (HAProxy/Envoy)";
    }
    return "?";
}

BoundedResult run_bounded_sim(SimAlgorithm algorithm, size_t backends, double load_factor,
                              uint64_t keys) {
    BoundedResult r{};
    r.algorithm = algorithm;
    r.backends = backends;
    r.load_factor = load_factor;
    PoolHarness h(algorithm, backends, load_factor);
    std::vector<pool::Placement> placements(keys);
    bool placed_all = true;
    for (uint64_t i = 0; i < keys; ++i) {
        std::string key = key_name(i);
        auto outcome = h.pool->place(key, balance::hash_key(key), kNothingTried, placements[i]);
        placed_all = placed_all && outcome == pool::Pool::Outcome::Placed;
    }
    r.peak = h.peak();
    double mean = static_cast<double>(keys) / static_cast<double>(backends);
    r.peak_to_mean = static_cast<double>(r.peak) / mean;
    r.cap_at_end = load_factor > 0 ? cap_for(load_factor, static_cast<int64_t>(keys), backends) : 0;
    r.accounting_ok = h.release_all(placements) && placed_all;
    return r;
}

RoomsWorkload make_rooms_workload(const SimParams& params) {
    RoomsWorkload w;
    // Room of rank k (from 1) gets C * k^-s connections, C scaled so the sizes sum to
    // about room_connections; every room has at least one.
    double harmonic = 0;
    for (size_t k = 1; k <= params.rooms; ++k)
        harmonic += std::pow(static_cast<double>(k), -params.zipf_s);
    double scale = static_cast<double>(params.room_connections) / harmonic;
    w.sizes.reserve(params.rooms);
    for (size_t k = 1; k <= params.rooms; ++k) {
        double size = scale * std::pow(static_cast<double>(k), -params.zipf_s);
        w.sizes.push_back(std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(size))));
        w.connections += w.sizes.back();
    }
    w.largest = w.sizes.empty() ? 0 : w.sizes.front();
    w.mean_per_backend =
        static_cast<double>(w.connections) / static_cast<double>(params.room_backends);
    w.arrivals.reserve(w.connections);
    for (uint32_t room = 0; room < w.sizes.size(); ++room)
        w.arrivals.insert(w.arrivals.end(), w.sizes[room], room);
    // Fisher–Yates with mt19937_64 (fully specified by the standard), so the order is
    // the same with every standard library; the modulo bias is below 2^-40.
    std::mt19937_64 rng(params.seed);
    for (size_t i = w.arrivals.size(); i > 1; --i) {
        size_t j = static_cast<size_t>(rng() % i);
        std::swap(w.arrivals[i - 1], w.arrivals[j]);
    }
    return w;
}

RoomsResult run_rooms_sim(RoomStrategy strategy, SimAlgorithm algorithm,
                          const RoomsWorkload& workload, const SimParams& params) {
    RoomsResult r{};
    r.strategy = strategy;
    r.algorithm = algorithm;
    const size_t n = params.room_backends;
    const double c = params.load_factor;
    r.bound = c + static_cast<double>(workload.largest) / workload.mean_per_backend;

    std::vector<std::string> keys;
    std::vector<uint64_t> hashes;
    keys.reserve(workload.sizes.size());
    for (size_t room = 0; room < workload.sizes.size(); ++room) {
        keys.push_back("room-" + std::to_string(room));
        hashes.push_back(balance::hash_key(keys.back()));
    }
    SplitTracker tracker(workload.sizes.size());
    int64_t peak = 0;

    if (strategy == RoomStrategy::ConnectionCap) {
        // Each connection on its own: the first backend in the room's preference order
        // under ceil(c * (A + 1) / N), else the room's first choice.
        auto kind =
            algorithm == SimAlgorithm::Ring ? balance::Algorithm::Ring : balance::Algorithm::Maglev;
        balance::Table table(kind, make_nodes(n));
        std::vector<int64_t> counts(n, 0);
        int64_t active = 0;
        for (uint32_t room : workload.arrivals) {
            const int64_t cap = cap_for(c, active + 1, n);
            int chosen = -1;
            int first = -1;
            table.walk(hashes[room], [&](uint32_t node) {
                if (first < 0) first = static_cast<int>(node);
                if (counts[node] < cap) {
                    chosen = static_cast<int>(node);
                    return false;
                }
                return true;
            });
            if (chosen < 0) chosen = first;
            ++counts[static_cast<size_t>(chosen)];
            ++active;
            tracker.record(room, chosen);
        }
        peak = *std::max_element(counts.begin(), counts.end());
    } else {
        PoolHarness h(algorithm, n, strategy == RoomStrategy::PlainHash ? 0.0 : c);
        std::vector<pool::Placement> placements(workload.arrivals.size());
        for (size_t i = 0; i < workload.arrivals.size(); ++i) {
            uint32_t room = workload.arrivals[i];
            auto outcome = h.pool->place(keys[room], hashes[room], kNothingTried, placements[i]);
            bool ok =
                outcome == pool::Pool::Outcome::Placed || outcome == pool::Pool::Outcome::Joined;
            // Every backend is up and unlimited: a refusal would be a placement bug,
            // counted as a split so the run fails its check.
            if (ok) {
                tracker.record(room, h.pool->index_of(placements[i].backend));
            } else {
                tracker.mark_split(room);
            }
        }
        peak = h.peak();
        h.release_all(placements);
    }
    r.peak_to_mean = static_cast<double>(peak) / workload.mean_per_backend;
    r.rooms_split = tracker.split();
    return r;
}

}  // namespace sb::tools
