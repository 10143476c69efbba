#include "common/histogram.h"

#include <cmath>

namespace sb::tools {

void Histogram::bucket_range(size_t index, uint64_t& low, uint64_t& width) {
    if (index < kSub) {
        low = index;
        width = 1;
        return;
    }
    size_t shift = (index - kSub) / kSub;
    uint64_t sub = (index - kSub) % kSub;
    low = (kSub + sub) << shift;
    width = uint64_t{1} << shift;
}

uint64_t Histogram::quantile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
    if (rank < 1) rank = 1;
    if (rank > count_) rank = count_;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            uint64_t low = 0;
            uint64_t width = 0;
            bucket_range(i, low, width);
            uint64_t middle = low + width / 2;
            return middle < max_ ? middle : max_;
        }
    }
    return max_;
}

}  // namespace sb::tools
