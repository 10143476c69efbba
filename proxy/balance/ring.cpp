#include "balance/ring.h"

#include <algorithm>
#include <string>

#include "balance/hash.h"

namespace sb::balance {

Ring::Ring(std::span<const Node> nodes, unsigned vnodes_per_weight) : node_count_(nodes.size()) {
    struct Point {
        uint64_t hash;
        uint32_t node;
    };
    std::vector<Point> points;
    size_t total = 0;
    for (const auto& n : nodes)
        total += size_t{n.weight} * vnodes_per_weight;
    points.reserve(total);
    std::string label;
    for (uint32_t i = 0; i < nodes.size(); ++i) {
        for (unsigned v = 0; v < nodes[i].weight * vnodes_per_weight; ++v) {
            label = nodes[i].id;
            label += '#';
            label += std::to_string(v);
            points.push_back({hash_bytes(label, kRingSeed), i});
        }
    }
    // Ties (astronomically rare) are broken by node index so the order is total.
    std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
        return a.hash != b.hash ? a.hash < b.hash : a.node < b.node;
    });
    hashes_.reserve(points.size());
    owners_.reserve(points.size());
    for (const auto& p : points) {
        hashes_.push_back(p.hash);
        owners_.push_back(p.node);
    }
    while (index_bits_ < 24 && (size_t{1} << index_bits_) * 4 < hashes_.size())
        ++index_bits_;
    const size_t buckets = size_t{1} << index_bits_;
    index_.assign(buckets + 1, static_cast<uint32_t>(hashes_.size()));
    size_t p = 0;
    for (size_t bucket = 0; bucket <= buckets; ++bucket) {
        uint64_t low = bucket == buckets ? ~uint64_t{0} : uint64_t{bucket} << (64 - index_bits_);
        while (p < hashes_.size() && hashes_[p] < low)
            ++p;
        index_[bucket] = static_cast<uint32_t>(p);
    }
}

size_t Ring::position(uint64_t hash) const {
    // The first point with hash >= the key's lies in [index_[b], index_[b + 1]] for the
    // key's bucket b; past the last point the ring wraps to point 0.
    size_t bucket = static_cast<size_t>(hash >> (64 - index_bits_));
    auto begin = hashes_.begin() + index_[bucket];
    auto end = hashes_.begin() + index_[bucket + 1];
    // Not found in the bucket: the first point of a later bucket (index_[bucket + 1])
    // is the answer, which `it == end` already is.
    size_t at = static_cast<size_t>(std::lower_bound(begin, end, hash) - hashes_.begin());
    return at >= hashes_.size() ? 0 : at;
}

std::vector<double> Ring::shares() const {
    std::vector<double> out(node_count_, 0.0);
    if (hashes_.empty()) return out;
    if (hashes_.size() == 1) {
        out[owners_[0]] = 1.0;
        return out;
    }
    // Point i owns the arc from the previous point (exclusive) to itself (inclusive).
    constexpr double kSpace = 18446744073709551616.0;  // 2^64
    for (size_t i = 0; i < hashes_.size(); ++i) {
        uint64_t prev = hashes_[(i + hashes_.size() - 1) % hashes_.size()];
        uint64_t arc = hashes_[i] - prev;  // wraps correctly for i == 0
        out[owners_[i]] += static_cast<double>(arc) / kSpace;
    }
    return out;
}

}  // namespace sb::balance
