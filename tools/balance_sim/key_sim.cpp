// Keys hashed straight onto a Ring or a Maglev table: keys per backend, the keys that
// move when the last backend is removed or one is added, lookup time and build time;
// and the busiest backend's share of the hash space over many address sets.
#include <time.h>
#include <algorithm>

#include <memory>

#include "balance/hash.h"
#include "balance/maglev.h"
#include "balance/ring.h"
#include "balance_sim/sim.h"

namespace sb::tools {
namespace {

// Timings are this thread's CPU time, not wall time: on a shared machine the time the
// thread spends descheduled is not counted (cache contention from other processes
// still is).
uint64_t thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The lookup loop's results go here so the compiler cannot drop the loop.
volatile uint64_t g_sink = 0;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double elapsed_ns(uint64_t start) {
    return static_cast<double>(thread_cpu_ns() - start);
}

size_t entries(const balance::Ring& t) {
    return t.point_count();
}
size_t entries(const balance::Maglev& t) {
    return t.table_size();
}

// The backend index of every key.
template <class T>
std::vector<uint32_t> owners(const T& table, const std::vector<uint64_t>& hashes) {
    std::vector<uint32_t> out(hashes.size());
    for (size_t i = 0; i < hashes.size(); ++i)
        out[i] = table.first(hashes[i]);
    return out;
}

template <class T>
double time_lookups(const T& table, const std::vector<uint64_t>& hashes, const SimParams& p) {
    // Whole passes over the key hashes, enough for about lookups_per_run lookups: each
    // lookup is independent, so this is the throughput of a worker placing keys.
    uint64_t passes = std::max<uint64_t>(1, p.lookups_per_run / hashes.size());
    std::vector<double> per_op;
    for (unsigned run = 0; run < std::max(1u, p.lookup_runs); ++run) {
        uint64_t sum = 0;
        auto start = thread_cpu_ns();
        for (uint64_t pass = 0; pass < passes; ++pass) {
            for (uint64_t h : hashes)
                sum += table.first(h);
        }
        double ns = elapsed_ns(start);
        g_sink = g_sink + sum;
        per_op.push_back(ns / static_cast<double>(passes * hashes.size()));
    }
    return median(per_op);
}

template <class T>
KeyResult simulate(SimAlgorithm algorithm, size_t n, const std::vector<uint64_t>& hashes,
                   const SimParams& p) {
    KeyResult r{};
    r.algorithm = algorithm;
    r.backends = n;
    const auto nodes = make_nodes(n);

    std::vector<double> build_ms;
    std::unique_ptr<T> table;
    for (unsigned run = 0; run < std::max(1u, p.build_runs); ++run) {
        auto start = thread_cpu_ns();
        table = std::make_unique<T>(nodes);
        build_ms.push_back(elapsed_ns(start) / 1e6);
    }
    r.build_ms = median(build_ms);
    r.table_entries = entries(*table);

    const auto before = owners(*table, hashes);
    std::vector<uint64_t> counts(n, 0);
    for (uint32_t o : before)
        ++counts[o];
    double mean = static_cast<double>(hashes.size()) / static_cast<double>(n);
    r.peak_to_mean = static_cast<double>(*std::max_element(counts.begin(), counts.end())) / mean;

    // Remove the last backend: the others keep their indexes, so owners compare directly.
    if (n > 1) {
        std::vector<balance::Node> fewer(nodes.begin(), nodes.end() - 1);
        const auto after = owners(T(fewer), hashes);
        const auto removed = static_cast<uint32_t>(n - 1);
        uint64_t moved = 0;
        bool only_removed = true;
        for (size_t i = 0; i < hashes.size(); ++i) {
            if (after[i] == before[i]) continue;
            ++moved;
            if (before[i] != removed) only_removed = false;
        }
        r.has_remove = true;
        r.moved_remove = static_cast<double>(moved) / static_cast<double>(hashes.size());
        // A key on the removed backend must move; "only" also needs all of them moved.
        r.remove_only_removed = only_removed && moved == counts[removed];
    }

    // Add a backend after the last one.
    {
        auto more = nodes;
        more.push_back({backend_id(n), 1});
        const auto after = owners(T(more), hashes);
        const auto added = static_cast<uint32_t>(n);
        uint64_t moved = 0;
        bool only_to_added = true;
        for (size_t i = 0; i < hashes.size(); ++i) {
            if (after[i] == before[i]) continue;
            ++moved;
            if (after[i] != added) only_to_added = false;
        }
        r.moved_add = static_cast<double>(moved) / static_cast<double>(hashes.size());
        r.add_only_to_added = only_to_added;
    }

    r.lookup_ns = time_lookups(*table, hashes, p);
    return r;
}

// Summary of peak shares (times N) over address sets.
AddressSetResult summarize(SimAlgorithm algorithm, unsigned vnodes, double target,
                           std::vector<double> peaks) {
    std::sort(peaks.begin(), peaks.end());
    AddressSetResult r{};
    r.algorithm = algorithm;
    r.vnodes_per_weight = vnodes;
    r.sets = peaks.size();
    r.median = median(peaks);
    r.p90 = peaks[std::min(peaks.size() - 1, peaks.size() * 9 / 10)];
    r.max = peaks.back();
    r.target = target;
    auto over = std::count_if(peaks.begin(), peaks.end(), [&](double x) { return x > target; });
    r.over_target = static_cast<double>(over) / static_cast<double>(peaks.size());
    return r;
}

double peak_share(const std::vector<double>& shares) {
    return *std::max_element(shares.begin(), shares.end()) * static_cast<double>(shares.size());
}

}  // namespace

std::vector<AddressSetResult> run_address_sets(const SimParams& params) {
    const size_t sets = std::max<size_t>(1, params.address_sets);
    std::vector<std::vector<balance::Node>> all(sets);
    for (size_t s = 0; s < sets; ++s) {
        for (size_t i = 0; i < params.address_set_backends; ++i) {
            all[s].push_back({"10." + std::to_string(s / 250) + "." + std::to_string(s % 250) +
                                  "." + std::to_string(i + 1) + ":8080",
                              1});
        }
    }
    std::vector<AddressSetResult> out;
    for (unsigned vnodes : {balance::Ring::kDefaultVnodesPerWeight, 320u, 640u, 1280u}) {
        std::vector<double> peaks;
        for (const auto& nodes : all)
            peaks.push_back(peak_share(balance::Ring(nodes, vnodes).shares()));
        out.push_back(summarize(SimAlgorithm::Ring, vnodes, 1.10, std::move(peaks)));
    }
    std::vector<double> peaks;
    for (const auto& nodes : all)
        peaks.push_back(peak_share(balance::Maglev(nodes).shares()));
    out.push_back(summarize(SimAlgorithm::Maglev, 0, 1.02, std::move(peaks)));
    return out;
}

std::string_view sim_algorithm_name(SimAlgorithm a) {
    return a == SimAlgorithm::Ring ? "ring" : "maglev";
}

std::string backend_id(size_t i) {
    return "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8080";
}

std::vector<balance::Node> make_nodes(size_t count) {
    std::vector<balance::Node> nodes;
    nodes.reserve(count);
    for (size_t i = 0; i < count; ++i)
        nodes.push_back({backend_id(i), 1});
    return nodes;
}

std::string key_name(uint64_t i) {
    return "key-" + std::to_string(i);
}

std::vector<uint64_t> key_hashes(uint64_t count) {
    std::vector<uint64_t> out;
    out.reserve(count);
    for (uint64_t i = 0; i < count; ++i)
        out.push_back(balance::hash_key(key_name(i)));
    return out;
}

KeyResult run_key_sim(SimAlgorithm algorithm, size_t backends, const std::vector<uint64_t>& hashes,
                      const SimParams& params) {
    if (algorithm == SimAlgorithm::Ring) {
        return simulate<balance::Ring>(algorithm, backends, hashes, params);
    }
    return simulate<balance::Maglev>(algorithm, backends, hashes, params);
}

}  // namespace sb::tools
