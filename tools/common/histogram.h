// Histogram: a latency histogram with log-linear buckets, in the manner of
// HdrHistogram: values below 128 are exact; above, each power of two is split into
// 128 buckets, so any recorded value is known to within 1/128 (0.8%). Memory is fixed
// (about 60 KiB) whatever the number of samples, and record() is a few instructions.
//
// Values are unsigned integers in whatever unit the caller picks (sb-load records
// nanoseconds). Owned by its user; single-threaded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace sb::tools {

class Histogram {
  public:
    void record(uint64_t value) {
        ++counts_[index_of(value)];
        ++count_;
        if (value > max_) max_ = value;
        sum_ += value;
    }

    uint64_t count() const { return count_; }
    uint64_t max() const { return max_; }
    double mean() const {
        return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
    }
    // The value at quantile q (0 < q <= 1): the middle of the bucket holding the
    // ceil(q * count)-th smallest sample, never above max(). 0 when empty.
    uint64_t quantile(double q) const;

  private:
    static constexpr unsigned kSubBits = 7;
    static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // 128
    // Exact buckets for 0..127, then 128 per power of two from 2^7 up to 2^63.
    static constexpr size_t kBuckets = kSub + (64 - kSubBits) * kSub;

    static size_t index_of(uint64_t value) {
        if (value < kSub) return static_cast<size_t>(value);
        unsigned top = 63u - static_cast<unsigned>(__builtin_clzll(value));  // >= 7
        unsigned shift = top - kSubBits;
        uint64_t sub = (value >> shift) - kSub;  // 0..127
        return static_cast<size_t>(kSub + shift * kSub + sub);
    }
    // The smallest value of bucket `index` and the bucket's width.
    static void bucket_range(size_t index, uint64_t& low, uint64_t& width);

    std::array<uint64_t, kBuckets> counts_{};
    uint64_t count_ = 0;
    uint64_t max_ = 0;
    uint64_t sum_ = 0;
};

}  // namespace sb::tools
