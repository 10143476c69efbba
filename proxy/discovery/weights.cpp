#include "discovery/weights.h"

#include <algorithm>
#include <cmath>

namespace sb::discovery {

std::vector<unsigned> scale_srv_weights(const std::vector<uint16_t>& raw) {
    std::vector<unsigned> out;
    out.reserve(raw.size());
    unsigned largest = 1;
    for (uint16_t w : raw)
        largest = std::max<unsigned>(largest, w);
    for (uint16_t w : raw) {
        unsigned weight = std::max<unsigned>(1, w);
        if (largest > kMaxWeight) {
            double scaled = std::round(static_cast<double>(weight) * kMaxWeight / largest);
            weight = std::max(1u, static_cast<unsigned>(scaled));
        }
        out.push_back(weight);
    }
    return out;
}

bool fit_weights(std::vector<unsigned>& weights, unsigned limit) {
    uint64_t total = 0;
    for (unsigned w : weights)
        total += w;
    if (total <= limit || weights.empty()) return false;
    const std::vector<unsigned> original = weights;
    double factor = static_cast<double>(limit) / static_cast<double>(total);
    // Rounding down and the floor of 1 can leave the sum a little over: shrink the
    // factor by the overshoot and try again (a few rounds at most).
    for (int round = 0; round < 32; ++round) {
        uint64_t sum = 0;
        for (size_t i = 0; i < weights.size(); ++i) {
            double scaled = std::floor(static_cast<double>(original[i]) * factor);
            weights[i] = std::max(1u, static_cast<unsigned>(scaled));
            sum += weights[i];
        }
        if (sum <= limit) break;
        factor *= static_cast<double>(limit) / static_cast<double>(sum);
    }
    return true;
}

}  // namespace sb::discovery
