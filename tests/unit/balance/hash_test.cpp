// The balancing hash is fixed and documented (XXH64, seed 0): these golden values
// catch any change that would move keys between backends across versions.
#include "balance/hash.h"

#include <gtest/gtest.h>

namespace sb::balance {
namespace {

TEST(Hash, IsXxh64WithSeedZero) {
    // XXH64 of the empty input with seed 0, from the xxHash specification's test vectors.
    EXPECT_EQ(hash_key(""), 0xEF46DB3751D8E999ull);
    EXPECT_EQ(hash_key("room-42"), 0xCEAF3CE645B4C937ull);
}

TEST(Hash, SeedsAreFixed) {
    EXPECT_EQ(kKeySeed, 0u);
    EXPECT_NE(hash_bytes("10.0.0.1:80", kRingSeed), hash_bytes("10.0.0.1:80", kKeySeed));
}

}  // namespace
}  // namespace sb::balance
