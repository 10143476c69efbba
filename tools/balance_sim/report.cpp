// Formats a SimReport: Markdown tables in the order the scenarios ran, and the same
// figures as one JSON object. No state of its own.
#include "balance_sim/report.h"

#include <fmt/core.h>

#include <cmath>
#include <string>

#include "balance/ring.h"

namespace sb::tools {
namespace {

// 1234567 → "1,234,567".
std::string grouped(uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

const char* yes_no(bool b) {
    return b ? "yes" : "no";
}

const BoundedResult* find_bounded(const SimReport& r, SimAlgorithm a, size_t n, double c) {
    for (const auto& b : r.bounded) {
        if (b.algorithm == a && b.backends == n && b.load_factor == c) return &b;
    }
    return nullptr;
}

std::string bounded_cell(const BoundedResult* b) {
    return b == nullptr ? "—" : fmt::format("{:.4f}", b->peak_to_mean);
}

void print_key_table(const SimReport& r, SimAlgorithm a, std::FILE* out) {
    if (a == SimAlgorithm::Ring) {
        fmt::print(out, "### ring ({} points per unit of weight)\n\n",
                   balance::Ring::kDefaultVnodesPerWeight);
    } else {
        fmt::print(out, "### maglev (table: smallest listed prime ≥ 100 × N)\n\n");
    }
    fmt::print(out,
               "| N | {} | peak/mean | moved, 1 removed | ideal 1/N | × ideal | only its keys "
               "| moved, 1 added | ideal 1/(N+1) | only to it | lookup ns/op | build ms |\n",
               a == SimAlgorithm::Ring ? "points" : "slots");
    fmt::print(out, "|--:|--:|--:|--:|--:|--:|:-:|--:|--:|:-:|--:|--:|\n");
    for (const auto& k : r.keys) {
        if (k.algorithm != a) continue;
        double n = static_cast<double>(k.backends);
        std::string removed = "—", ideal = "—", ratio = "—", only = "—";
        if (k.has_remove) {
            removed = fmt::format("{:.5f}", k.moved_remove);
            ideal = fmt::format("{:.5f}", 1.0 / n);
            ratio = fmt::format("{:.3f}", k.moved_remove * n);
            only = yes_no(k.remove_only_removed);
        }
        fmt::print(
            out,
            "| {} | {} | {:.4f} | {} | {} | {} | {} | {:.5f} | {:.5f} | {} | {:.1f} | {:.2f} |\n",
            k.backends, grouped(k.table_entries), k.peak_to_mean, removed, ideal, ratio, only,
            k.moved_add, 1.0 / (n + 1), yes_no(k.add_only_to_added), k.lookup_ns, k.build_ms);
    }
    fmt::print(out, "\n");
}

void print_address_sets(const SimReport& r, std::FILE* out) {
    if (r.address_sets.empty()) return;
    fmt::print(out,
               "### Balance over {} address sets of {} backends\n\n"
               "The figures above are for one address list. Here: the busiest backend's share "
               "of the hash space times N (exact, no key sampling), for sets s = 0 … {} of "
               "backends 10.<s/250>.<s%250>.<i+1>:8080 (set 0 is the list above).\n\n",
               r.address_sets.front().sets, r.params.address_set_backends,
               r.address_sets.front().sets - 1);
    fmt::print(out, "| algorithm | median | p90 | max | target | sets over target |\n");
    fmt::print(out, "|---|--:|--:|--:|--:|--:|\n");
    for (const auto& a : r.address_sets) {
        std::string name = a.algorithm == SimAlgorithm::Ring
                               ? fmt::format("ring, {} points per weight", a.vnodes_per_weight)
                               : std::string(sim_algorithm_name(a.algorithm));
        fmt::print(out, "| {} | {:.4f} | {:.4f} | {:.4f} | {:.2f} | {:.1f}% |\n", name, a.median,
                   a.p90, a.max, a.target, 100.0 * a.over_target);
    }
    fmt::print(out, "\n");
}

void print_bounded_table(const SimReport& r, std::FILE* out) {
    const double c = r.params.load_factor;
    fmt::print(out,
               "## Connections through pool::Pool, one room per key ({} connections, none "
               "closed)\n\n",
               grouped(r.params.keys));
    fmt::print(out,
               "Peak-to-mean connections without (c = 0) and with bounded loads (c = {}). "
               "With c = 0 it equals the keys' peak-to-mean above.\n\n",
               c);
    fmt::print(out,
               "| N | ring, c = 0 | ring, c = {0} | maglev, c = 0 | maglev, c = {0} | "
               "limit ceil(c·K/N)/(K/N) |\n",
               c);
    fmt::print(out, "|--:|--:|--:|--:|--:|--:|\n");
    for (size_t n : r.params.backend_counts) {
        double mean = static_cast<double>(r.params.keys) / static_cast<double>(n);
        double limit = std::ceil(c * static_cast<double>(r.params.keys) / static_cast<double>(n));
        fmt::print(out, "| {} | {} | {} | {} | {} | {:.4f} |\n", n,
                   bounded_cell(find_bounded(r, SimAlgorithm::Ring, n, 0.0)),
                   bounded_cell(find_bounded(r, SimAlgorithm::Ring, n, c)),
                   bounded_cell(find_bounded(r, SimAlgorithm::Maglev, n, 0.0)),
                   bounded_cell(find_bounded(r, SimAlgorithm::Maglev, n, c)), limit / mean);
    }
    fmt::print(out, "\n");
}

void print_rooms_table(const SimReport& r, std::FILE* out) {
    const auto& p = r.params;
    const auto& w = r.workload;
    double bound = p.load_factor + static_cast<double>(w.largest) / w.mean_per_backend;
    fmt::print(out,
               "## Rooms: {} backends, {} rooms with Zipf(s = {}) sizes, {} connections, c = "
               "{}\n\n",
               p.room_backends, grouped(p.rooms), p.zipf_s, grouped(w.connections), p.load_factor);
    fmt::print(out,
               "Connections arrive interleaved in a random order (seed {}) and none closes. "
               "Largest room: {} connections; mean per backend: {:.1f}; bound c + largest / mean "
               "= {:.4f}.\n\n",
               p.seed, grouped(w.largest), w.mean_per_backend, bound);
    fmt::print(out, "| strategy | algorithm | peak/mean | within bound | rooms split |\n");
    fmt::print(out, "|---|---|--:|:-:|--:|\n");
    for (const auto& room : r.rooms) {
        fmt::print(out, "| {} | {} | {:.4f} | {} | {} |\n", room_strategy_name(room.strategy),
                   sim_algorithm_name(room.algorithm), room.peak_to_mean,
                   yes_no(room.peak_to_mean <= room.bound), grouped(room.rooms_split));
    }
    fmt::print(out, "\n");
}

}  // namespace

void print_markdown(const SimReport& r, std::FILE* out) {
    const auto& p = r.params;
    fmt::print(out, "# sb-balance-sim{}\n\n", p.quick ? " (--quick)" : "");
    fmt::print(out,
               "Keys \"key-0\" … \"key-{}\" hashed with XXH64 (seed 0); backends 10.0.x.y:8080 "
               "of weight 1; \"removed\" is the last backend of the list, \"added\" a new one "
               "after it. Lookup: median of {} runs of about {} `first(hash)` calls over the "
               "precomputed key hashes; build: median of {} builds; both in thread CPU time.\n\n",
               p.keys - 1, p.lookup_runs, grouped(p.lookups_per_run), p.build_runs);
    fmt::print(out, "## Keys on the table ({} keys)\n\n", grouped(p.keys));
    print_key_table(r, SimAlgorithm::Ring, out);
    print_key_table(r, SimAlgorithm::Maglev, out);
    print_address_sets(r, out);
    print_bounded_table(r, out);
    print_rooms_table(r, out);
    const auto& t = r.phase_seconds;
    fmt::print(out,
               "Run time: {:.1f} s (keys {:.1f} s, address sets {:.1f} s, pool {:.1f} s, rooms "
               "{:.1f} s).\n",
               r.seconds, t.keys, t.address_sets, t.bounded, t.rooms);
}

nlohmann::json report_json(const SimReport& r) {
    using nlohmann::json;
    const auto& p = r.params;
    json out;
    out["parameters"] = {
        {"keys", p.keys},
        {"backend_counts", p.backend_counts},
        {"load_factor", p.load_factor},
        {"lookup_runs", p.lookup_runs},
        {"lookups_per_run", p.lookups_per_run},
        {"build_runs", p.build_runs},
        {"ring_vnodes_per_weight", balance::Ring::kDefaultVnodesPerWeight},
        {"quick", p.quick},
    };
    json keys = json::array();
    for (const auto& k : r.keys) {
        json row = {{"algorithm", sim_algorithm_name(k.algorithm)},
                    {"backends", k.backends},
                    {"table_entries", k.table_entries},
                    {"peak_to_mean", k.peak_to_mean},
                    {"moved_add", k.moved_add},
                    {"ideal_add", 1.0 / static_cast<double>(k.backends + 1)},
                    {"add_only_to_added", k.add_only_to_added},
                    {"lookup_ns", k.lookup_ns},
                    {"build_ms", k.build_ms}};
        if (k.has_remove) {
            row["moved_remove"] = k.moved_remove;
            row["ideal_remove"] = 1.0 / static_cast<double>(k.backends);
            row["remove_only_removed"] = k.remove_only_removed;
        }
        keys.push_back(row);
    }
    out["keys"] = keys;
    json sets = json::array();
    for (const auto& a : r.address_sets) {
        json row = {{"algorithm", sim_algorithm_name(a.algorithm)},
                    {"backends", p.address_set_backends},
                    {"sets", a.sets},
                    {"median", a.median},
                    {"p90", a.p90},
                    {"max", a.max},
                    {"target", a.target},
                    {"over_target", a.over_target}};
        if (a.algorithm == SimAlgorithm::Ring) row["vnodes_per_weight"] = a.vnodes_per_weight;
        sets.push_back(row);
    }
    out["address_sets"] = sets;
    json bounded = json::array();
    for (const auto& b : r.bounded) {
        bounded.push_back({{"algorithm", sim_algorithm_name(b.algorithm)},
                           {"backends", b.backends},
                           {"load_factor", b.load_factor},
                           {"peak", b.peak},
                           {"cap_at_end", b.cap_at_end},
                           {"peak_to_mean", b.peak_to_mean}});
    }
    out["bounded_loads"] = bounded;
    const auto& w = r.workload;
    json rooms = {{"backends", p.room_backends},  {"rooms", p.rooms},
                  {"zipf_s", p.zipf_s},           {"connections", w.connections},
                  {"largest_room", w.largest},    {"mean_per_backend", w.mean_per_backend},
                  {"load_factor", p.load_factor}, {"seed", p.seed},
                  {"results", json::array()}};
    for (const auto& room : r.rooms) {
        rooms["results"].push_back({{"strategy", room_strategy_name(room.strategy)},
                                    {"algorithm", sim_algorithm_name(room.algorithm)},
                                    {"peak_to_mean", room.peak_to_mean},
                                    {"bound", room.bound},
                                    {"rooms_split", room.rooms_split}});
    }
    out["rooms"] = rooms;
    out["seconds"] = r.seconds;
    out["phase_seconds"] = {{"keys", r.phase_seconds.keys},
                            {"address_sets", r.phase_seconds.address_sets},
                            {"pool", r.phase_seconds.bounded},
                            {"rooms", r.phase_seconds.rooms}};
    return out;
}

}  // namespace sb::tools
