// sb-balance-bench: Google Benchmark micro-benchmarks of one lookup, first(hash), on a
// Ring and a Maglev table of 10 and 1,000 backends (BM_RingFirst/1000 …). The keys are
// the simulator's ("key-0" … , XXH64 seed 0), precomputed, so only the lookup is timed.
#include <benchmark/benchmark.h>

#include "balance/maglev.h"
#include "balance/ring.h"
#include "balance_sim/sim.h"

namespace {

// Enough distinct keys that the table, not one cache line, is measured.
constexpr uint64_t kKeys = 1 << 20;

const std::vector<uint64_t>& hashes() {
    static const std::vector<uint64_t> h = sb::tools::key_hashes(kKeys);
    return h;
}

template <class Table>
void lookup(benchmark::State& state) {
    const auto nodes = sb::tools::make_nodes(static_cast<size_t>(state.range(0)));
    const Table table(nodes);
    const auto& h = hashes();
    size_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(table.first(h[i]));
        i = (i + 1) & (kKeys - 1);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_RingFirst(benchmark::State& state) {
    lookup<sb::balance::Ring>(state);
}
void BM_MaglevFirst(benchmark::State& state) {
    lookup<sb::balance::Maglev>(state);
}

BENCHMARK(BM_RingFirst)->Arg(10)->Arg(1000);
BENCHMARK(BM_MaglevFirst)->Arg(10)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();
