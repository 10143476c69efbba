// Rng: a small, fast pseudo-random generator (splitmix64) for masking keys,
// handshake keys and test payloads.
//
// It is seeded from the operating system (uv_random) once per process. It is not a
// cryptographic generator: RFC 6455 §5.3 asks for unpredictable masking keys so that
// a hostile page cannot steer the bytes an intermediary sees; a load generator that
// sends its own fixed payloads has no such attacker, and must not spend a syscall or
// a CSPRNG call per frame. One instance per loop; single-threaded.
#pragma once

#include <uv.h>

#include <cstdint>
#include <cstring>

namespace sb::tools {

// The splitmix64 finaliser: a good 64-bit mixing function on its own.
inline uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

class Rng {
  public:
    // Seeds from the OS; falls back to the clock if uv_random fails (it should not).
    Rng() {
        if (uv_random(nullptr, nullptr, &state_, sizeof state_, 0, nullptr) != 0) {
            state_ = uv_hrtime();
        }
    }
    explicit Rng(uint64_t seed) : state_(seed) {}

    uint64_t next() {
        state_ += 0x9E3779B97F4A7C15ull;
        return mix64(state_);
    }
    void fill(uint8_t* out, size_t n) {
        while (n > 0) {
            uint64_t word = next();
            size_t take = n < 8 ? n : 8;
            std::memcpy(out, &word, take);
            out += take;
            n -= take;
        }
    }

  private:
    uint64_t state_ = 0;
};

}  // namespace sb::tools
