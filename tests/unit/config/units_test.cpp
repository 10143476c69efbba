// config/units.h: duration strings ("250ms", "1h30m"), sizes (16384, "16KiB", "1MiB")
// and format_duration, the spelling logs and /status use.
#include "config/units.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace sb::config {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The parsed duration, or a failure naming the error message.
::testing::AssertionResult parses_to(std::string_view text, Duration expected) {
    auto parsed = parse_duration(text);
    if (auto* message = std::get_if<std::string>(&parsed)) {
        return ::testing::AssertionFailure() << "\"" << text << "\" failed: " << *message;
    }
    if (std::get<Duration>(parsed) != expected) {
        return ::testing::AssertionFailure()
               << "\"" << text << "\" gave " << std::get<Duration>(parsed).count() << "ms";
    }
    return ::testing::AssertionSuccess();
}

std::string duration_error(std::string_view text) {
    auto parsed = parse_duration(text);
    auto* message = std::get_if<std::string>(&parsed);
    return message ? *message : "(accepted)";
}

std::string size_error(std::string_view text) {
    auto parsed = parse_size(text);
    auto* message = std::get_if<std::string>(&parsed);
    return message ? *message : "(accepted)";
}

uint64_t size_of(std::string_view text) {
    auto parsed = parse_size(text);
    auto* n = std::get_if<uint64_t>(&parsed);
    EXPECT_NE(n, nullptr) << "\"" << text << "\" failed: " << std::get<std::string>(parsed);
    return n ? *n : 0;
}

// ---- durations ----

TEST(ParseDurationTest, AcceptsEachUnit) {
    EXPECT_TRUE(parses_to("250ms", 250ms));
    EXPECT_TRUE(parses_to("10s", 10s));
    EXPECT_TRUE(parses_to("5m", 5min));
    EXPECT_TRUE(parses_to("1h", 1h));
}

TEST(ParseDurationTest, AcceptsZero) {
    EXPECT_TRUE(parses_to("0s", 0ms));
    EXPECT_TRUE(parses_to("0ms", 0ms));
}

TEST(ParseDurationTest, AcceptsSeveralGroups) {
    EXPECT_TRUE(parses_to("1h30m", 90min));
    EXPECT_TRUE(parses_to("1m30s", 90s));
    EXPECT_TRUE(parses_to("1s500ms", 1500ms));
    EXPECT_TRUE(parses_to("1h1m1s1ms", 1h + 1min + 1s + 1ms));
}

TEST(ParseDurationTest, AcceptsMultiDigitNumbers) {
    EXPECT_TRUE(parses_to("90s", 90s));
    EXPECT_TRUE(parses_to("1500ms", 1500ms));
}

TEST(ParseDurationTest, AcceptsExactlyAYear) {
    EXPECT_TRUE(parses_to("8760h", 8760h));
}

TEST(ParseDurationTest, RejectsABareNumber) {
    EXPECT_EQ(duration_error("10"), "duration \"10\" needs a unit (ms, s, m or h)");
    EXPECT_EQ(duration_error("5ms10"), "duration \"5ms10\" needs a unit (ms, s, m or h)");
}

TEST(ParseDurationTest, RejectsUnknownUnits) {
    EXPECT_EQ(duration_error("3d"), "unknown duration unit \"d\" (use ms, s, m or h)");
    EXPECT_EQ(duration_error("1H"), "unknown duration unit \"H\" (use ms, s, m or h)");
    EXPECT_EQ(duration_error("10sec"), "unknown duration unit \"sec\" (use ms, s, m or h)");
    EXPECT_EQ(duration_error("10us"), "unknown duration unit \"us\" (use ms, s, m or h)");
}

TEST(ParseDurationTest, RejectsEmptyText) {
    EXPECT_THAT(duration_error(""), HasSubstr("expected"));
}

TEST(ParseDurationTest, RejectsSigns) {
    EXPECT_THAT(duration_error("-5s"), HasSubstr("expected a duration"));
    EXPECT_THAT(duration_error("+5s"), HasSubstr("expected a duration"));
}

TEST(ParseDurationTest, RejectsFractions) {
    EXPECT_NE(duration_error("1.5s"), "(accepted)");
}

TEST(ParseDurationTest, RejectsSpaces) {
    EXPECT_NE(duration_error(" 10s"), "(accepted)");
    EXPECT_NE(duration_error("10s "), "(accepted)");
    EXPECT_NE(duration_error("10 s"), "(accepted)");
}

TEST(ParseDurationTest, RejectsAUnitWithoutANumber) {
    EXPECT_THAT(duration_error("s"), HasSubstr("expected a duration"));
    EXPECT_THAT(duration_error("1hm"), HasSubstr("unknown duration unit \"hm\""));
}

TEST(ParseDurationTest, RejectsMoreThanAYear) {
    EXPECT_EQ(duration_error("8761h"), "duration \"8761h\" is longer than a year");
    EXPECT_EQ(duration_error("8760h1ms"), "duration \"8760h1ms\" is longer than a year");
    EXPECT_EQ(duration_error("9999999999999999h"),
              "duration \"9999999999999999h\" is longer than a year");
}

TEST(ParseDurationTest, RejectsNumbersThatOverflow) {
    EXPECT_NE(duration_error("99999999999999999999999s"), "(accepted)");
}

// ---- sizes ----

TEST(ParseSizeTest, AcceptsPlainBytes) {
    EXPECT_EQ(size_of("16384"), 16384u);
    EXPECT_EQ(size_of("0"), 0u);
    EXPECT_EQ(size_of("100B"), 100u);
}

TEST(ParseSizeTest, AcceptsBinaryMultiples) {
    EXPECT_EQ(size_of("16KiB"), 16u * 1024);
    EXPECT_EQ(size_of("1MiB"), 1024u * 1024);
    EXPECT_EQ(size_of("2GiB"), 2ull * 1024 * 1024 * 1024);
}

TEST(ParseSizeTest, RejectsAmbiguousDecimalUnits) {
    for (auto text : {"16KB", "16kB", "1MB", "1GB", "16k", "16K", "1M", "1G"}) {
        EXPECT_THAT(size_error(text), HasSubstr("is ambiguous: use KiB, MiB or GiB")) << text;
    }
}

TEST(ParseSizeTest, RejectsUnknownUnits) {
    EXPECT_EQ(size_error("16XiB"), "unknown size unit \"XiB\" (use B, KiB, MiB or GiB)");
    EXPECT_EQ(size_error("16kib"), "unknown size unit \"kib\" (use B, KiB, MiB or GiB)");
}

TEST(ParseSizeTest, RejectsMalformedText) {
    for (auto text : {"", "KiB", "-1", "+1", "1.5MiB", "16 KiB", " 16KiB", "16KiB ", "1KiB1"}) {
        EXPECT_THAT(size_error(text), HasSubstr("expected a size")) << "\"" << text << "\"";
    }
}

TEST(ParseSizeTest, RejectsOverflow) {
    // 2^34 GiB is 2^64 bytes, one past the largest uint64_t.
    EXPECT_EQ(size_error("17179869184GiB"), "size \"17179869184GiB\" is too large");
    EXPECT_EQ(size_of("17179869183GiB"), 17179869183ull << 30);
    EXPECT_NE(size_error("99999999999999999999999"), "(accepted)");
}

// ---- format_duration ----

TEST(FormatDurationTest, UsesTheLargestExactUnit) {
    EXPECT_EQ(format_duration(0ms), "0s");
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(10s), "10s");
    EXPECT_EQ(format_duration(90s), "90s");
    EXPECT_EQ(format_duration(5min), "5m");
    EXPECT_EQ(format_duration(90min), "90m");
    EXPECT_EQ(format_duration(1h), "1h");
    EXPECT_EQ(format_duration(48h), "48h");
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
    for (Duration d : {Duration(0), Duration(1), Duration(999), Duration(61'000),
                       Duration(3'600'000), Duration(5'401'000)}) {
        EXPECT_TRUE(parses_to(format_duration(d), d)) << d.count();
    }
}

}  // namespace
}  // namespace sb::config
