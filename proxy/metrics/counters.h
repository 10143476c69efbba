// Counters, gauges and histograms written by one thread and read by another.
//
// Each worker owns its own instances and is their only writer; the admin thread sums
// them at scrape time. A single writer needs no atomic read-modify-write: a relaxed
// load and store compile to plain moves, so counting costs the hot path nothing more
// than an add, and readers still never see a torn value.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace sb::metrics {

class Counter {
  public:
    void add(uint64_t n = 1) {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> value_{0};
};

class Gauge {
  public:
    void add(int64_t n) {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    int64_t value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<int64_t> value_{0};
};

// Latency histogram with fixed bucket bounds in seconds (cumulative on output).
class Histogram {
  public:
    static constexpr std::array<double, 14> kBounds = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};

    void observe(double seconds) {
        size_t i = 0;
        while (i < kBounds.size() && seconds > kBounds[i])
            ++i;
        buckets_[i].add();
        // Sum kept in microseconds so it stays an integer counter.
        sum_us_.add(static_cast<uint64_t>(seconds * 1e6));
    }
    // Non-cumulative count of bucket i (i == kBounds.size() is the +Inf overflow).
    uint64_t bucket(size_t i) const { return buckets_[i].value(); }
    double sum() const { return static_cast<double>(sum_us_.value()) / 1e6; }

  private:
    std::array<Counter, kBounds.size() + 1> buckets_;
    Counter sum_us_;
};

}  // namespace sb::metrics
