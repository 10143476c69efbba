// Ring: a consistent-hash ring with virtual nodes in proportion to weight.
//
// Each node owns `weight * vnodes_per_weight` points at XXH64(id + "#" + i), so a
// node's points depend on its own identity only: removing a node moves exactly the
// keys it owned (to the next point clockwise) and adding it back returns them. A key
// belongs to the first point at or after its hash, clockwise.
//
// Immutable once built; shared read-only by every worker. Lookup is a table jump on
// the hash's top bits then a search among the few points of that bucket: O(1) on
// average, O(log n) at worst, no allocation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "balance/node.h"

namespace sb::balance {

class Ring {
  public:
    // 1,280 points per unit of weight keeps 10 equal nodes within 10% of the mean for
    // every list of addresses the simulator tried (160 did for only a third of them;
    // see tools/balance_sim and docs/balancing.md). 12 bytes a point: 150 KiB for 10
    // backends, 15 MiB for 1,000.
    static constexpr unsigned kDefaultVnodesPerWeight = 1280;
    // The configuration caps a ring pool's total weight so the table stays bounded.
    static constexpr unsigned kMaxTotalWeight = 5000;

    explicit Ring(std::span<const Node> nodes,
                  unsigned vnodes_per_weight = kDefaultVnodesPerWeight);

    // The node owning `hash`.
    uint32_t first(uint64_t hash) const { return owners_[position(hash)]; }

    // Calls visit(node) for each distinct node in the key's preference order (walking
    // clockwise from the key's point) until visit returns false or all were visited.
    template <class Visit>
    void walk(uint64_t hash, Visit&& visit) const;

    size_t node_count() const { return node_count_; }
    size_t point_count() const { return hashes_.size(); }
    // Fraction of the hash space node i owns (for /status and the simulator).
    std::vector<double> shares() const;

  private:
    size_t position(uint64_t hash) const;

    // Top bits of a hash that index_ is keyed by: enough for about four points per
    // bucket, so a lookup reads one index entry and one or two cache lines of hashes.
    unsigned index_bits_ = 16;

    // The points, sorted by hash, in two arrays: the search touches only hashes_.
    std::vector<uint64_t> hashes_;
    std::vector<uint32_t> owners_;
    std::vector<uint32_t> index_;  // index_[top bits] = first point with those top bits or more
    size_t node_count_ = 0;
};

template <class Visit>
void Ring::walk(uint64_t hash, Visit&& visit) const {
    SeenSet seen;
    size_t found = 0;
    size_t start = position(hash);
    for (size_t step = 0; step < owners_.size() && found < node_count_; ++step) {
        uint32_t node = owners_[(start + step) % owners_.size()];
        if (!seen.insert(node)) continue;
        ++found;
        if (!visit(node)) return;
    }
}

}  // namespace sb::balance
