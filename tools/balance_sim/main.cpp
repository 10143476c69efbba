// sb-balance-sim: measures switchboard's balancing (issue 3, item 7). For ring and
// maglev at 1 to 1,000 backends it prints keys per backend, keys moved when a backend
// is removed or added, lookup and build times, peak-to-mean connections with and
// without bounded loads, and the rooms scenario beside plain hashing and per-connection
// capping. argv → SimParams → scenarios → Markdown on stdout (and --json FILE).
//
// Exit codes: 0 after a run whose correctness checks hold (timings are never checked),
// 1 when a check fails or the JSON file cannot be written, 2 on bad usage.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "balance_sim/report.h"
#include "balance_sim/sim.h"
#include "common/cli.h"

namespace {

using sb::tools::SimAlgorithm;

constexpr const char* kUsage =
    "usage: sb-balance-sim [--keys N] [--quick] [--seed N] [--json FILE]\n"
    "\n"
    "  --keys N     keys hashed and connections placed per backend count (default\n"
    "               1000000; --quick: 50000)\n"
    "  --quick      fewer backend counts, a rooms scenario a tenth the size, fewer\n"
    "               timing runs: for tests\n"
    "  --seed N     order of the rooms scenario's arrivals (default 1)\n"
    "  --json FILE  also write every figure to FILE as one JSON object\n";

int usage_error(const std::string& message) {
    std::fprintf(stderr, "sb-balance-sim: %s\n%s", message.c_str(), kUsage);
    return 2;
}

struct Cli {
    sb::tools::SimParams params;
    std::string json_path;
};

// Returns 0 to run, -1 after --help, 2 after a usage error.
int parse(int argc, char** argv, Cli& cli) {
    sb::tools::ArgReader args(argc, argv);
    std::string_view name;
    std::string_view value;
    bool keys_given = false;
    while (args.next(name)) {
        if (name == "--help" || name == "-h") {
            std::fputs(kUsage, stdout);
            return -1;
        }
        if (name == "--quick") {
            cli.params.quick = true;
            continue;
        }
        if (!args.value(value)) return usage_error(args.error());
        std::string bad = "bad value for " + std::string(name) + ": '" + std::string(value) + "'";
        uint64_t number = 0;
        if (name == "--keys") {
            // Bounded so that one run stays within memory (a room table entry per key).
            if (!sb::tools::parse_u64(value, number) || number < 1 || number > 10'000'000) {
                return usage_error(bad + " (1 to 10000000)");
            }
            cli.params.keys = number;
            keys_given = true;
        } else if (name == "--seed") {
            if (!sb::tools::parse_u64(value, number)) return usage_error(bad);
            cli.params.seed = number;
        } else if (name == "--json") {
            cli.json_path = std::string(value);
        } else {
            return usage_error("unknown option " + std::string(name));
        }
    }
    if (cli.params.quick) {
        auto& p = cli.params;
        if (!keys_given) p.keys = 50'000;
        p.backend_counts = {1, 2, 10, 100};
        p.lookup_runs = 3;
        p.lookups_per_run = p.keys;
        p.build_runs = 1;
        p.rooms = 2'000;
        p.room_connections = 20'000;
        p.address_sets = 20;
    }
    return 0;
}

// The correctness properties the figures must show (SPEC §3 Balancing); a failure is
// printed and makes the exit code 1. Timings are reported, never checked.
bool check(const sb::tools::SimReport& r) {
    bool ok = true;
    auto fail = [&](const std::string& what) {
        std::fprintf(stderr, "sb-balance-sim: check failed: %s\n", what.c_str());
        ok = false;
    };
    for (const auto& k : r.keys) {
        if (k.algorithm != SimAlgorithm::Ring) continue;
        std::string at = " (ring, N = " + std::to_string(k.backends) + ")";
        if (k.has_remove && !k.remove_only_removed) {
            fail("removing a backend moved other keys" + at);
        }
        if (!k.add_only_to_added) fail("adding a backend moved keys between others" + at);
    }
    for (const auto& b : r.bounded) {
        std::string at = " (" + std::string(sb::tools::sim_algorithm_name(b.algorithm)) +
                         ", N = " + std::to_string(b.backends) +
                         ", c = " + std::to_string(b.load_factor) + ")";
        if (!b.accounting_ok) fail("a placement failed or was not given back" + at);
        if (b.load_factor > 0 && b.peak > b.cap_at_end) fail("a backend went over the cap" + at);
        if (b.load_factor == 0) {
            // Without a cap, a new room goes to its first choice: the keys' own figure.
            for (const auto& k : r.keys) {
                if (k.algorithm == b.algorithm && k.backends == b.backends &&
                    std::fabs(k.peak_to_mean - b.peak_to_mean) > 1e-9) {
                    fail("pool placement differs from the table's first choice" + at);
                }
            }
        }
    }
    for (const auto& room : r.rooms) {
        if (room.strategy != sb::tools::RoomStrategy::ConnectionCap && room.rooms_split > 0) {
            fail(std::string(sb::tools::room_strategy_name(room.strategy)) + " split rooms (" +
                 std::string(sb::tools::sim_algorithm_name(room.algorithm)) + ")");
        }
    }
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace sb::tools;
    Cli cli;
    if (int rc = parse(argc, argv, cli); rc != 0) return rc < 0 ? 0 : rc;
    const auto start = std::chrono::steady_clock::now();
    auto lap = start;
    auto phase_done = [&lap](double& seconds) {
        auto now = std::chrono::steady_clock::now();
        seconds = std::chrono::duration<double>(now - lap).count();
        lap = now;
    };

    SimReport report;
    report.params = cli.params;
    const auto& p = report.params;
    const auto hashes = key_hashes(p.keys);
    constexpr SimAlgorithm kAlgorithms[] = {SimAlgorithm::Ring, SimAlgorithm::Maglev};
    for (SimAlgorithm a : kAlgorithms) {
        for (size_t n : p.backend_counts)
            report.keys.push_back(run_key_sim(a, n, hashes, p));
    }
    phase_done(report.phase_seconds.keys);
    report.address_sets = run_address_sets(p);
    phase_done(report.phase_seconds.address_sets);
    // The pool runs are most of the run time (a room table entry per key). Each builds
    // its own Pool and backends, so ring and maglev run side by side on two threads;
    // nothing is timed in this phase.
    auto bounded_for = [&p](SimAlgorithm a) {
        std::vector<BoundedResult> rows;
        for (size_t n : p.backend_counts) {
            rows.push_back(run_bounded_sim(a, n, 0.0, p.keys));
            rows.push_back(run_bounded_sim(a, n, p.load_factor, p.keys));
        }
        return rows;
    };
    std::vector<BoundedResult> maglev_rows;
    std::thread maglev_thread([&] { maglev_rows = bounded_for(SimAlgorithm::Maglev); });
    report.bounded = bounded_for(SimAlgorithm::Ring);
    maglev_thread.join();
    report.bounded.insert(report.bounded.end(), maglev_rows.begin(), maglev_rows.end());
    phase_done(report.phase_seconds.bounded);
    report.workload = make_rooms_workload(p);
    constexpr RoomStrategy kStrategies[] = {RoomStrategy::PlainHash, RoomStrategy::RoomBoundedLoads,
                                            RoomStrategy::ConnectionCap};
    for (RoomStrategy s : kStrategies) {
        for (SimAlgorithm a : kAlgorithms)
            report.rooms.push_back(run_rooms_sim(s, a, report.workload, p));
    }
    phase_done(report.phase_seconds.rooms);
    report.seconds = std::chrono::duration<double>(lap - start).count();

    print_markdown(report, stdout);
    std::fflush(stdout);
    int rc = check(report) ? 0 : 1;
    if (!cli.json_path.empty()) {
        std::ofstream file(cli.json_path);
        file << report_json(report).dump(2) << '\n';
        if (!file) {
            std::fprintf(stderr, "sb-balance-sim: cannot write %s\n", cli.json_path.c_str());
            rc = 1;
        }
    }
    return rc;
}
