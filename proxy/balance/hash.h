// The one hash function of switchboard's balancing: XXH64 (xxHash, 64-bit, seed 0)
// of the key's bytes. Its output is specified by the xxHash format and identical on
// every machine and compiler, so two switchboard instances (or one after a restart)
// with the same backend list send the same key to the same backend. Never std::hash.
//
// Backends are placed by hashing their identity (the address as written in the
// configuration) with the same function and a few fixed seeds, listed here.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <string_view>

namespace sb::balance {

// Seeds for the different uses of XXH64; changing one moves keys between backends,
// which the golden-vector unit tests catch.
inline constexpr uint64_t kKeySeed = 0;
inline constexpr uint64_t kRingSeed = 0x7269'6e67;          // "ring"
inline constexpr uint64_t kMaglevOffsetSeed = 0x6f66'6673;  // "offs"
inline constexpr uint64_t kMaglevSkipSeed = 0x736b'6970;    // "skip"

inline uint64_t hash_bytes(std::string_view bytes, uint64_t seed) {
    return XXH64(bytes.data(), bytes.size(), seed);
}

// The hash of a request's balancing key (a room name, a path, a client address).
inline uint64_t hash_key(std::string_view key) {
    return hash_bytes(key, kKeySeed);
}

}  // namespace sb::balance
