#include "balance/round_robin.h"

#include <numeric>

namespace sb::balance {

RoundRobin::RoundRobin(std::span<const Node> nodes) : node_count_(nodes.size()) {
    if (nodes.empty()) return;
    // Weights divided by their gcd give the shortest schedule with the same shares.
    unsigned g = 0;
    for (const auto& n : nodes)
        g = std::gcd(g, n.weight);
    std::vector<int64_t> weight(nodes.size()), current(nodes.size(), 0);
    int64_t total = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
        weight[i] = nodes[i].weight / g;
        total += weight[i];
    }
    schedule_.reserve(static_cast<size_t>(total));
    for (int64_t turn = 0; turn < total; ++turn) {
        size_t best = 0;
        for (size_t i = 0; i < nodes.size(); ++i) {
            current[i] += weight[i];
            if (current[i] > current[best]) best = i;
        }
        current[best] -= total;
        schedule_.push_back(static_cast<uint32_t>(best));
    }
}

}  // namespace sb::balance
