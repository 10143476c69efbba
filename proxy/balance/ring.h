// Ring: a consistent-hash ring with virtual nodes in proportion to weight.
//
// Each node owns `weight * vnodes_per_weight` points at XXH64(id + "#" + i), so a
// node's points depend on its own identity only: removing a node moves exactly the
// keys it owned (to the next point clockwise) and adding it back returns them. A key
// belongs to the first point at or after its hash, clockwise.
//
// Immutable once built; shared read-only by every worker. Lookup is a table jump on
// the hash's top bits then a short binary search: O(log n), no allocation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "balance/node.h"

namespace sb::balance {

class Ring {
  public:
    // 160 points per unit of weight keeps 10 equal nodes within ~10% of the mean
    // (see tools/balance-sim and docs/balancing.md).
    static constexpr unsigned kDefaultVnodesPerWeight = 160;

    explicit Ring(std::span<const Node> nodes,
                  unsigned vnodes_per_weight = kDefaultVnodesPerWeight);

    // The node owning `hash`.
    uint32_t first(uint64_t hash) const { return points_[position(hash)].node; }

    // Calls visit(node) for each distinct node in the key's preference order (walking
    // clockwise from the key's point) until visit returns false or all were visited.
    template <class Visit>
    void walk(uint64_t hash, Visit&& visit) const;

    size_t node_count() const { return node_count_; }
    size_t point_count() const { return points_.size(); }
    // Fraction of the hash space node i owns (for /status and the simulator).
    std::vector<double> shares() const;

  private:
    struct Point {
        uint64_t hash;
        uint32_t node;
    };
    static constexpr unsigned kIndexBits = 16;

    size_t position(uint64_t hash) const;

    std::vector<Point> points_;    // sorted by hash
    std::vector<uint32_t> index_;  // index_[top bits] = first point with those top bits or more
    size_t node_count_ = 0;
};

template <class Visit>
void Ring::walk(uint64_t hash, Visit&& visit) const {
    SeenSet seen;
    size_t found = 0;
    size_t start = position(hash);
    for (size_t step = 0; step < points_.size() && found < node_count_; ++step) {
        uint32_t node = points_[(start + step) % points_.size()].node;
        if (!seen.insert(node)) continue;
        ++found;
        if (!visit(node)) return;
    }
}

}  // namespace sb::balance
