// sb-balance-sim's model: the parameters of one run, the figures each scenario
// measures, and the scenarios themselves (key_sim.cpp: hashing keys onto tables;
// pool_sim.cpp: placing connections through pool::Pool and the rooms scenario).
//
// Every figure but the timings is deterministic: keys are "key-0" … "key-<K-1>",
// backends are 10.0.x.y:8080 in a fixed order, and the rooms scenario shuffles its
// arrivals with a fixed seed. Each run_* call builds and owns everything it uses, so
// calls may run on different threads (main.cpp runs the pool scenarios on two).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "balance/node.h"

namespace sb::tools {

enum class SimAlgorithm { Ring, Maglev };
std::string_view sim_algorithm_name(SimAlgorithm a);

struct SimParams {
    uint64_t keys = 1'000'000;
    std::vector<size_t> backend_counts = {1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000};
    double load_factor = 1.25;
    unsigned lookup_runs = 5;  // timed runs of the lookup loop; the median is kept
    uint64_t lookups_per_run = 2'000'000;
    unsigned build_runs = 3;  // timed table builds; the median is kept
    // The rooms scenario of issue 3.
    size_t room_backends = 20;
    size_t rooms = 20'000;
    uint64_t room_connections = 200'000;  // the Zipf sizes are scaled to sum to about this
    double zipf_s = 0.8;
    uint64_t seed = 1;  // the order in which the rooms' connections arrive
    // Balance over other address sets: this many sets of address_set_backends.
    size_t address_sets = 500;
    size_t address_set_backends = 10;
    bool quick = false;
};

// One algorithm at one backend count, keys hashed straight onto its table.
struct KeyResult {
    SimAlgorithm algorithm;
    size_t backends = 0;
    size_t table_entries = 0;  // ring points or maglev slots
    double peak_to_mean = 0;   // the busiest backend's keys over keys / N
    // Removing the last backend (N > 1 only; has_remove is false for N = 1).
    bool has_remove = false;
    double moved_remove = 0;           // fraction of all keys whose backend changed
    bool remove_only_removed = false;  // every moved key was on the removed backend
    // Adding a backend after the last one.
    double moved_add = 0;
    bool add_only_to_added = false;  // every moved key went to the added backend
    // Thread CPU time: the median ns per first(hash) over the precomputed key hashes,
    // and the median time to build the table.
    double lookup_ns = 0;
    double build_ms = 0;
};

// One table shape over many address sets of the same size: how much the busiest
// backend's share of the hash space (times N) depends on the addresses.
struct AddressSetResult {
    SimAlgorithm algorithm;
    unsigned vnodes_per_weight = 0;  // ring only
    size_t sets = 0;
    double median = 0;
    double p90 = 0;
    double max = 0;
    double target = 0;       // issue 3's target for this algorithm at 10 backends
    double over_target = 0;  // fraction of the sets above it
};

// Connections placed one per key through pool::Pool (every key is a room of one).
struct BoundedResult {
    SimAlgorithm algorithm;
    size_t backends = 0;
    double load_factor = 0;
    double peak_to_mean = 0;  // the busiest backend's connections over connections / N
    int64_t peak = 0;
    int64_t cap_at_end = 0;      // ceil(c * K / N): no backend may exceed it (c > 0)
    bool accounting_ok = false;  // every slot and room given back after release
};

enum class RoomStrategy { PlainHash, RoomBoundedLoads, ConnectionCap };
std::string_view room_strategy_name(RoomStrategy s);

struct RoomsResult {
    RoomStrategy strategy;
    SimAlgorithm algorithm;
    double peak_to_mean = 0;
    double bound = 0;        // c + largest room / mean connections per backend
    size_t rooms_split = 0;  // rooms whose connections landed on more than one backend
};

// The room sizes and the arrivals shared by every strategy of the rooms scenario.
struct RoomsWorkload {
    std::vector<uint64_t> sizes;     // connections per room, largest first
    std::vector<uint32_t> arrivals;  // room index of each connection, in arrival order
    uint64_t connections = 0;        // sum of sizes
    uint64_t largest = 0;
    double mean_per_backend = 0;
};

// The identity of backend i ("10.0.0.1:8080" for i = 0), valid for i < 62,500.
std::string backend_id(size_t i);
std::vector<balance::Node> make_nodes(size_t count);
// XXH64 (seed 0) of "key-0" … "key-<count-1>".
std::vector<uint64_t> key_hashes(uint64_t count);
std::string key_name(uint64_t i);

KeyResult run_key_sim(SimAlgorithm algorithm, size_t backends, const std::vector<uint64_t>& hashes,
                      const SimParams& params);
// Sets s = 0, 1, … of backends 10.<s/250>.<s%250>.<i+1>:8080 (set 0 is the keys'
// set at 10 backends), for ring at several vnode counts and for maglev.
std::vector<AddressSetResult> run_address_sets(const SimParams& params);
BoundedResult run_bounded_sim(SimAlgorithm algorithm, size_t backends, double load_factor,
                              uint64_t keys);

RoomsWorkload make_rooms_workload(const SimParams& params);
RoomsResult run_rooms_sim(RoomStrategy strategy, SimAlgorithm algorithm,
                          const RoomsWorkload& workload, const SimParams& params);

}  // namespace sb::tools
