// Node: what a balancing table knows of a backend: its identity (the address string
// as configured) and its weight. Tables refer to nodes by their index in the list
// they were built from.
#pragma once

#include <cstdint>
#include <string>

namespace sb::balance {

struct Node {
    std::string id;
    unsigned weight = 1;
};

// Distinct node indexes seen while walking a preference order; sized for the
// largest pool the configuration allows, on the stack (no allocation per lookup).
class SeenSet {
  public:
    static constexpr uint32_t kMaxNodes = 4096;
    bool insert(uint32_t i) {
        uint64_t bit = uint64_t{1} << (i & 63);
        if (words_[i >> 6] & bit) return false;
        words_[i >> 6] |= bit;
        return true;
    }

  private:
    uint64_t words_[kMaxNodes / 64] = {};
};

}  // namespace sb::balance
