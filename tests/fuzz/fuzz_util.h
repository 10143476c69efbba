// Helpers shared by the fuzzers: a CHECK that reports and aborts (libFuzzer then saves
// the input), and Choices, the fuzzer-controlled decisions that steer a run (where a
// stream is cut into chunks, when a callback stops a scan).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

// An invariant of the code under test. Unlike assert() it stays on whatever the build
// type, and says which invariant broke before libFuzzer's stack trace.
#define SB_FUZZ_CHECK(cond, ...)                                                          \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, "" __VA_ARGS__);                                         \
            std::fprintf(stderr, "\n");                                                   \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)

namespace sb::fuzz {

// Whether the check for defect `name` is to be skipped, because SB_FUZZ_KNOWN_DEFECTS
// (a comma-separated list) names it. A defect found and reported but not yet fixed
// would otherwise stop every run at once, on its seed or its regression input, and
// hide everything behind it. Never set by ctest: there a known defect still fails.
inline bool known_defect(const char* name) {
    const char* list = std::getenv("SB_FUZZ_KNOWN_DEFECTS");
    if (list == nullptr) return false;
    std::string items = std::string(",") + list + ",";
    return items.find(std::string(",") + name + ",") != std::string::npos;
}

// Decisions read from a slice of the input while it lasts, then from a small generator
// seeded by that slice. The slice lets libFuzzer steer the first decisions exactly;
// the generator keeps cutting a long stream finely when the slice is spent, instead of
// falling back to one chunk for the whole rest.
class Choices {
  public:
    Choices(const uint8_t* data, size_t size) : provider_(data, size) {
        for (size_t i = 0; i < size; ++i)
            state_ = (state_ ^ data[i]) * 0x100000001B3ull;  // FNV-1a: any spread will do
    }

    // A value in [lo, hi].
    uint64_t in_range(uint64_t lo, uint64_t hi) {
        if (lo >= hi) return lo;
        if (provider_.remaining_bytes() > 0) return provider_.ConsumeIntegralInRange(lo, hi);
        uint64_t span = hi - lo;
        return lo + (span == UINT64_MAX ? next() : next() % (span + 1));
    }
    // True about once in `n` times.
    bool one_in(uint64_t n) { return in_range(0, n - 1) == 0; }

  private:
    uint64_t next() {  // splitmix64
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

    FuzzedDataProvider provider_;
    uint64_t state_ = 0xCBF29CE484222325ull;
};

// A chunk size for the rest of a stream of `left` bytes: mostly the small cuts that
// split headers at every byte (one byte at a time included), sometimes everything.
inline size_t chunk_size(Choices& choices, size_t left) {
    size_t n = 0;
    switch (choices.in_range(0, 3)) {
        case 0:
            n = 1;
            break;
        case 1:
            n = choices.in_range(1, 16);
            break;
        case 2:
            n = choices.in_range(1, 512);
            break;
        default:
            n = left;
            break;
    }
    return n < left ? n : left;
}

// Splits an input into the decision bytes and the subject: the first byte says how many
// decision bytes follow it, and the subject is everything after them. Seeds are then
// easy to write by hand: one byte 0 and a real stream.
struct Split {
    const uint8_t* choices = nullptr;
    size_t choices_size = 0;
    const uint8_t* subject = nullptr;
    size_t subject_size = 0;
};

inline Split split_input(const uint8_t* data, size_t size) {
    Split s;
    if (size == 0) return s;
    size_t n = data[0];
    if (n > size - 1) n = size - 1;
    s.choices = data + 1;
    s.choices_size = n;
    s.subject = data + 1 + n;
    s.subject_size = size - 1 - n;
    return s;
}

}  // namespace sb::fuzz
