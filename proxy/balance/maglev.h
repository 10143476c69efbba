// Maglev: the lookup table of Maglev hashing (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, §3.4), with weights.
//
// Each node walks its own permutation of the M table slots (offset and skip from
// XXH64 of its identity) and claims the next free slot on its turn; a node of weight
// w takes w turns for every turn of a weight-1 node. M is a prime at least 100 times
// the number of nodes, which keeps every node within about 1% of its fair share and
// moves little more than 1/N of the keys when a node leaves.
//
// Immutable once built; lookup is one table read, O(1), no allocation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "balance/node.h"

namespace sb::balance {

class Maglev {
  public:
    explicit Maglev(std::span<const Node> nodes);

    uint32_t first(uint64_t hash) const { return table_[hash % table_.size()]; }

    // Preference order: the key's slot, then the following slots, each new node in the
    // order met (the table is a pseudo-random arrangement of nodes, so this order is
    // spread evenly and depends on the key).
    template <class Visit>
    void walk(uint64_t hash, Visit&& visit) const;

    size_t node_count() const { return node_count_; }
    size_t table_size() const { return table_.size(); }
    std::vector<double> shares() const;

    // The smallest prime in the fixed list below that is >= 100 * nodes.
    static uint32_t table_size_for(size_t nodes);

  private:
    std::vector<uint32_t> table_;
    size_t node_count_ = 0;
};

template <class Visit>
void Maglev::walk(uint64_t hash, Visit&& visit) const {
    if (table_.empty()) return;  // a pool whose names have not resolved yet
    SeenSet seen;
    size_t found = 0;
    size_t start = hash % table_.size();
    for (size_t step = 0; step < table_.size() && found < node_count_; ++step) {
        uint32_t node = table_[(start + step) % table_.size()];
        if (!seen.insert(node)) continue;
        ++found;
        if (!visit(node)) return;
    }
}

}  // namespace sb::balance
