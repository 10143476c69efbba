#include "balance/ring.h"

#include <algorithm>
#include <string>

#include "balance/hash.h"

namespace sb::balance {

Ring::Ring(std::span<const Node> nodes, unsigned vnodes_per_weight) : node_count_(nodes.size()) {
    size_t total = 0;
    for (const auto& n : nodes)
        total += size_t{n.weight} * vnodes_per_weight;
    points_.reserve(total);
    std::string label;
    for (uint32_t i = 0; i < nodes.size(); ++i) {
        for (unsigned v = 0; v < nodes[i].weight * vnodes_per_weight; ++v) {
            label = nodes[i].id;
            label += '#';
            label += std::to_string(v);
            points_.push_back({hash_bytes(label, kRingSeed), i});
        }
    }
    // Ties (astronomically rare) are broken by node index so the order is total.
    std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
        return a.hash != b.hash ? a.hash < b.hash : a.node < b.node;
    });
    index_.assign((size_t{1} << kIndexBits) + 1, static_cast<uint32_t>(points_.size()));
    size_t p = 0;
    for (size_t bucket = 0; bucket <= (size_t{1} << kIndexBits); ++bucket) {
        uint64_t low = bucket == (size_t{1} << kIndexBits) ? ~uint64_t{0}
                                                           : uint64_t{bucket} << (64 - kIndexBits);
        while (p < points_.size() && points_[p].hash < low)
            ++p;
        index_[bucket] = static_cast<uint32_t>(p);
    }
}

size_t Ring::position(uint64_t hash) const {
    // The first point with point.hash >= hash lies in [index_[b], index_[b + 1]] for
    // the key's bucket b; past the last point the ring wraps to point 0.
    size_t bucket = static_cast<size_t>(hash >> (64 - kIndexBits));
    auto begin = points_.begin() + index_[bucket];
    auto end = points_.begin() + index_[bucket + 1];
    auto it =
        std::lower_bound(begin, end, hash, [](const Point& p, uint64_t h) { return p.hash < h; });
    // Not found in the bucket: the first point of a later bucket (index_[bucket + 1])
    // is the answer, which `it == end` already is.
    size_t at = static_cast<size_t>(it - points_.begin());
    return at >= points_.size() ? 0 : at;
}

std::vector<double> Ring::shares() const {
    std::vector<double> out(node_count_, 0.0);
    if (points_.empty()) return out;
    // Point i owns the arc from the previous point (exclusive) to itself (inclusive).
    constexpr double kSpace = 18446744073709551616.0;  // 2^64
    for (size_t i = 0; i < points_.size(); ++i) {
        uint64_t prev = points_[(i + points_.size() - 1) % points_.size()].hash;
        uint64_t arc = points_[i].hash - prev;  // wraps correctly for i == 0
        out[points_[i].node] += static_cast<double>(arc) / kSpace;
    }
    if (points_.size() == 1) out[points_[0].node] = 1.0;
    return out;
}

}  // namespace sb::balance
