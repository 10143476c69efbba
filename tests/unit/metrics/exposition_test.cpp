// The Prometheus text exposition writer: HELP/TYPE lines, label escaping, values,
// and histograms with cumulative buckets ending in +Inf.
#include "metrics/exposition.h"
#include "metrics/counters.h"

#include <gtest/gtest.h>

namespace sb::metrics {
namespace {

TEST(Exposition, FamilyHeaderThenSamples) {
    Exposition e;
    e.family("sb_things_total", "counter", "Things seen.");
    e.sample("sb_things_total", {{"kind", "a"}}, uint64_t{3});
    e.sample("sb_things_total", {}, uint64_t{5});
    EXPECT_EQ(e.text(),
              "# HELP sb_things_total Things seen.\n"
              "# TYPE sb_things_total counter\n"
              "sb_things_total{kind=\"a\"} 3\n"
              "sb_things_total 5\n");
}

TEST(Exposition, LabelValuesAreEscaped) {
    EXPECT_EQ(Exposition::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    Exposition e;
    e.sample("m", {{"backend", "x\"y"}}, int64_t{-2});
    EXPECT_EQ(e.text(), "m{backend=\"x\\\"y\"} -2\n");
}

TEST(Exposition, HelpEscapesBackslashAndNewline) {
    Exposition e;
    e.family("m", "gauge", "a\\b\nc \"quoted\"");
    EXPECT_EQ(e.text(), "# HELP m a\\\\b\\nc \"quoted\"\n# TYPE m gauge\n");
}

TEST(Exposition, ValuesFormat) {
    EXPECT_EQ(Exposition::format_value(1.0), "1");
    EXPECT_EQ(Exposition::format_value(0.25), "0.25");
    EXPECT_EQ(Exposition::format_value(1.0 / 0.0), "+Inf");
    EXPECT_EQ(Exposition::format_value(0.0 / 0.0), "NaN");
}

TEST(Exposition, HistogramBucketsAreCumulativeAndEndWithInf) {
    Exposition e;
    e.histogram("h_seconds", {{"pool", "p"}}, {0.1, 1.0}, {2, 3, 1}, 4.5);
    EXPECT_EQ(e.text(),
              "h_seconds_bucket{pool=\"p\",le=\"0.1\"} 2\n"
              "h_seconds_bucket{pool=\"p\",le=\"1\"} 5\n"
              "h_seconds_bucket{pool=\"p\",le=\"+Inf\"} 6\n"
              "h_seconds_sum{pool=\"p\"} 4.5\n"
              "h_seconds_count{pool=\"p\"} 6\n");
}

TEST(Histogram, ObservesIntoTheRightBucket) {
    Histogram h;
    h.observe(0.0004);  // first bucket (<= 0.0005)
    h.observe(0.0005);  // still the first: bounds are inclusive
    h.observe(0.003);   // <= 0.005
    h.observe(100.0);   // overflow
    EXPECT_EQ(h.bucket(0), 2u);
    EXPECT_EQ(h.bucket(3), 1u);
    EXPECT_EQ(h.bucket(Histogram::kBounds.size()), 1u);
    EXPECT_NEAR(h.sum(), 100.0039, 1e-6);
}

}  // namespace
}  // namespace sb::metrics
