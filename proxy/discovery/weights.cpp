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
    // Weights that would round below 1 are held at 1; the rest share what is left of the
    // limit in proportion. Each round holds at least one more weight or ends, so there
    // are at most n + 1 rounds.
    std::vector<bool> held(weights.size(), false);
    size_t held_count = 0;
    for (size_t round = 0; round <= weights.size(); ++round) {
        uint64_t budget = limit > held_count ? limit - held_count : 0;
        uint64_t rest = 0;
        for (size_t i = 0; i < weights.size(); ++i) {
            if (!held[i]) rest += original[i];
        }
        double factor = rest > 0 ? static_cast<double>(budget) / static_cast<double>(rest) : 0;
        bool more_held = false;
        for (size_t i = 0; i < weights.size(); ++i) {
            if (held[i]) {
                weights[i] = 1;
                continue;
            }
            double scaled = std::floor(static_cast<double>(original[i]) * factor);
            if (scaled < 1.0) {
                held[i] = true;
                ++held_count;
                more_held = true;
                weights[i] = 1;
            } else {
                weights[i] = static_cast<unsigned>(scaled);
            }
        }
        if (!more_held) break;
    }
    return true;
}

}  // namespace sb::discovery
