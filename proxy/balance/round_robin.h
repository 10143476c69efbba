// RoundRobin: a fixed schedule of node indexes in which each node appears as often as
// its weight, interleaved smoothly (nginx's smooth weighted round robin, run once at
// build time), so consecutive placements take turns in proportion to weight.
//
// Immutable once built. The caller supplies a counter (an atomic it increments per
// placement); lookup is one read of the schedule.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "balance/node.h"

namespace sb::balance {

class RoundRobin {
  public:
    explicit RoundRobin(std::span<const Node> nodes);

    uint32_t first(uint64_t counter) const { return schedule_[counter % schedule_.size()]; }

    // Distinct nodes in schedule order from the counter's turn.
    template <class Visit>
    void walk(uint64_t counter, Visit&& visit) const {
        SeenSet seen;
        size_t found = 0;
        for (size_t step = 0; step < schedule_.size() && found < node_count_; ++step) {
            uint32_t node = schedule_[(counter + step) % schedule_.size()];
            if (!seen.insert(node)) continue;
            ++found;
            if (!visit(node)) return;
        }
    }

    size_t node_count() const { return node_count_; }
    const std::vector<uint32_t>& schedule() const { return schedule_; }

  private:
    std::vector<uint32_t> schedule_;
    size_t node_count_ = 0;
};

}  // namespace sb::balance
