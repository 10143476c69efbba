#include "balance/table.h"

namespace sb::balance {

Table::Table(Algorithm algorithm, std::vector<Node> nodes)
    : algorithm_(algorithm), nodes_(std::move(nodes)) {
    switch (algorithm_) {
        case Algorithm::Ring:
            impl_.emplace<Ring>(nodes_);
            break;
        case Algorithm::Maglev:
            impl_.emplace<Maglev>(nodes_);
            break;
        case Algorithm::RoundRobin:
            impl_.emplace<RoundRobin>(nodes_);
            break;
        case Algorithm::LeastConnections:
            break;
    }
}

bool Table::same_as(Algorithm algorithm, const std::vector<Node>& nodes) const {
    if (algorithm != algorithm_ || nodes.size() != nodes_.size()) return false;
    for (size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].id != nodes_[i].id || nodes[i].weight != nodes_[i].weight) return false;
    }
    return true;
}

std::vector<double> Table::shares() const {
    if (const auto* ring = std::get_if<Ring>(&impl_)) return ring->shares();
    if (const auto* maglev = std::get_if<Maglev>(&impl_)) return maglev->shares();
    if (const auto* rr = std::get_if<RoundRobin>(&impl_)) {
        std::vector<double> out(nodes_.size(), 0.0);
        for (uint32_t n : rr->schedule())
            out[n] += 1.0 / static_cast<double>(rr->schedule().size());
        return out;
    }
    return {};
}

}  // namespace sb::balance
