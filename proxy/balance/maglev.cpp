#include "balance/maglev.h"

#include <algorithm>

#include "balance/hash.h"

namespace sb::balance {

uint32_t Maglev::table_size_for(size_t nodes) {
    // Primes near powers of two; the paper uses 65537 for small pools.
    static constexpr uint32_t kPrimes[] = {65537,   131071,  262139, 524287,
                                           1048573, 2097143, 4194301};
    for (uint32_t p : kPrimes) {
        if (p >= 100 * nodes) return p;
    }
    return kPrimes[std::size(kPrimes) - 1];
}

Maglev::Maglev(std::span<const Node> nodes) : node_count_(nodes.size()) {
    if (nodes.empty()) return;  // a discovered pool with no records yet: nothing to place
    const uint32_t m = table_size_for(nodes.size());
    const size_t n = nodes.size();
    std::vector<uint64_t> offset(n), skip(n), next(n, 0);
    unsigned max_weight = 1;
    for (size_t i = 0; i < n; ++i) {
        offset[i] = hash_bytes(nodes[i].id, kMaglevOffsetSeed) % m;
        skip[i] = hash_bytes(nodes[i].id, kMaglevSkipSeed) % (m - 1) + 1;
        max_weight = std::max(max_weight, nodes[i].weight);
    }
    constexpr uint32_t kEmpty = 0xFFFFFFFF;
    table_.assign(m, kEmpty);
    // Weighted turns: in each round a node earns weight/max_weight of a turn and takes
    // a turn whenever it has earned a whole one, so claims follow the weights.
    std::vector<double> credit(n, 0.0);
    uint32_t filled = 0;
    while (filled < m) {
        for (size_t i = 0; i < n && filled < m; ++i) {
            credit[i] += static_cast<double>(nodes[i].weight) / max_weight;
            while (credit[i] >= 1.0 && filled < m) {
                credit[i] -= 1.0;
                uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
                while (table_[slot] != kEmpty) {
                    ++next[i];
                    slot = (offset[i] + next[i] * skip[i]) % m;
                }
                table_[slot] = static_cast<uint32_t>(i);
                ++next[i];
                ++filled;
            }
        }
    }
}

std::vector<double> Maglev::shares() const {
    std::vector<double> out(node_count_, 0.0);
    for (uint32_t node : table_)
        out[node] += 1.0 / static_cast<double>(table_.size());
    return out;
}

}  // namespace sb::balance
