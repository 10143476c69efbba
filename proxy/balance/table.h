// Table: the immutable balancing table of one pool for one backend set and weights:
// a Ring, a Maglev table, a round-robin schedule, or nothing (least_connections reads
// live counters instead). Built off the hot path when a configuration is loaded, and
// reused by the next generation when the pool's backends and weights are unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <variant>
#include <vector>

#include "balance/maglev.h"
#include "balance/ring.h"
#include "balance/round_robin.h"

namespace sb::balance {

enum class Algorithm { Ring, Maglev, LeastConnections, RoundRobin };

class Table {
  public:
    Table(Algorithm algorithm, std::vector<Node> nodes);

    Algorithm algorithm() const { return algorithm_; }
    const std::vector<Node>& nodes() const { return nodes_; }
    // Same algorithm, identities and weights: the table can be reused.
    bool same_as(Algorithm algorithm, const std::vector<Node>& nodes) const;

    // Preference order for `hash` (a key hash, or a turn counter for round robin).
    // Not for least_connections, whose order depends on live counts.
    template <class Visit>
    void walk(uint64_t hash, Visit&& visit) const {
        std::visit(
            [&](const auto& t) {
                if constexpr (!std::is_same_v<std::decay_t<decltype(t)>, std::monostate>) {
                    t.walk(hash, visit);
                }
            },
            impl_);
    }

    // Fraction of the hash space (or of the turns) each node owns; empty for
    // least_connections.
    std::vector<double> shares() const;

  private:
    Algorithm algorithm_;
    std::vector<Node> nodes_;
    std::variant<std::monostate, Ring, Maglev, RoundRobin> impl_;
};

}  // namespace sb::balance
