// Weights of discovered backends (SPEC §3 Health, Discovery): SRV weights (0-65535)
// brought to the configuration's range 1-1000, and a pool's weights brought under the
// ring's limit. Both keep ratios as closely as whole numbers allow. Pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace sb::discovery {

// The largest weight a backend entry may have (config/loader.cpp).
constexpr unsigned kMaxWeight = 1000;

// SRV weights as backend weights: 0 counts as 1 (RFC 2782 gives weight 0 a small
// chance, not none); weights already within 1-1000 are kept as they are; a set whose
// largest weight is over 1000 is scaled down so that the largest becomes 1000, each
// rounded to the nearest whole number and at least 1.
std::vector<unsigned> scale_srv_weights(const std::vector<uint16_t>& raw);

// Scales `weights` down so their sum is at most `limit` (the ring's total weight,
// balance::Ring::kMaxTotalWeight), keeping ratios, each at least 1. Returns false when
// they already fit (nothing changed). A sum of ones over `limit` cannot fit; the pool's
// backend count is bounded well below it (balance::SeenSet::kMaxNodes).
bool fit_weights(std::vector<unsigned>& weights, unsigned limit);

}  // namespace sb::discovery
