// session::Carry, the only bytes a Pipe holds back from one delivery to the next:
// hold() keeps a copy of a run up to its capacity and refuses a longer one, keeping
// nothing; put_before() writes exactly the held bytes in the headroom in front of the
// next delivery and forgets them; and the capacity is what the headroom guarantees
// and what the relay needs (an incomplete header, or a masked Pong header and its
// 8-byte token).
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>

#include "session/endpoint.h"
#include "session/pipe.h"
#include "ws/frame_scanner.h"

namespace sb::session {
namespace {

// What the headroom must take, and what the Carry must hold.
static_assert(Endpoint::kHeadroom >= Carry::kCapacity,
              "put_before() writes up to kCapacity bytes into a delivery's headroom");
// The longest header is 14 bytes (masked, 64-bit length); an incomplete one is 13.
static_assert(Carry::kCapacity >= 14 - 1, "an incomplete frame header fits");
// A client's Pong that may answer our Ping: 6-byte masked header and the token.
static_assert(Carry::kCapacity >= 6 + ws::FrameScanner::kCaptureBytes,
              "a held Pong header and its token fit");
// A Carry is a member of each Pipe, twice per session: it must stay small.
static_assert(sizeof(Carry) <= Carry::kCapacity + 2);

TEST(CarryTest, TheHeaderSizesTheCapacityCoversAreTheLongestTheScannerKnows) {
    EXPECT_EQ(ws::frame_header_size(0x80 | 127), 14u);  // masked, 64-bit length
    EXPECT_EQ(ws::frame_header_size(0x80 | 8), 6u);     // masked, a Pong's 8-byte token
    EXPECT_GE(Carry::kCapacity, ws::frame_header_size(0x80 | 127) - 1u);
}

TEST(CarryTest, StartsEmpty) {
    Carry c;
    EXPECT_EQ(c.size(), 0u);
}

TEST(CarryTest, HoldsARunUpToItsCapacity) {
    Carry c;
    std::string run(Carry::kCapacity, '\0');
    for (size_t i = 0; i < run.size(); ++i)
        run[i] = static_cast<char>(0xF0 + i);
    ASSERT_TRUE(c.hold(run.data(), run.size()));
    EXPECT_EQ(c.size(), Carry::kCapacity);
    EXPECT_EQ(std::memcmp(c.data(), run.data(), run.size()), 0);
}

TEST(CarryTest, HoldsAnEmptyRunAsNothing) {
    Carry c;
    EXPECT_TRUE(c.hold("", 0));
    EXPECT_EQ(c.size(), 0u);
}

TEST(CarryTest, RefusesARunOverItsCapacityAndKeepsNothing) {
    Carry c;
    std::string run(Carry::kCapacity + 1, 'x');
    EXPECT_FALSE(c.hold(run.data(), run.size()));
    EXPECT_EQ(c.size(), 0u);
    std::string huge(64 * 1024, 'y');
    EXPECT_FALSE(c.hold(huge.data(), huge.size()));
    EXPECT_EQ(c.size(), 0u);
}

TEST(CarryTest, ARefusedRunLeavesNothingOfAnEarlierHold) {
    // "false, keeping nothing": after a refusal the carry holds nothing, so a caller
    // that forwards the refused run cannot also put older bytes in front of the next.
    Carry c;
    ASSERT_TRUE(c.hold("\x81\xFE", 2));
    std::string run(Carry::kCapacity + 1, 'x');
    EXPECT_FALSE(c.hold(run.data(), run.size()));
    EXPECT_EQ(c.size(), 0u) << "the earlier 2 bytes are still held";
}

TEST(CarryTest, ASecondHoldReplacesTheFirst) {
    Carry c;
    ASSERT_TRUE(c.hold("abcdefgh", 8));
    ASSERT_TRUE(c.hold("XY", 2));
    EXPECT_EQ(c.size(), 2u);
    EXPECT_EQ(std::memcmp(c.data(), "XY", 2), 0);
}

TEST(CarryTest, HoldCopiesSoTheBlockMayGoBack) {
    Carry c;
    char source[4] = {'\x89', '\x88', 'a', 'b'};
    ASSERT_TRUE(c.hold(source, sizeof(source)));
    std::memset(source, 0, sizeof(source));  // the block is reused for other bytes
    EXPECT_EQ(std::memcmp(c.data(),
                          "\x89\x88"
                          "ab",
                          4),
              0);
}

// A delivery as an Endpoint makes it: kHeadroom bytes free in front of the data.
struct Delivery {
    static constexpr char kFree = '.';
    std::array<char, Endpoint::kHeadroom + 16> block{};
    Delivery() {
        block.fill(kFree);
        std::memcpy(data(), "NEW-BYTES", 9);
    }
    char* data() { return block.data() + Endpoint::kHeadroom; }
};

TEST(CarryTest, PutBeforeRestoresExactlyTheHeldBytesInFrontOfThePointer) {
    Carry c;
    ASSERT_TRUE(c.hold("\x82\xFE\x01", 3));  // a header cut inside its 16-bit length
    Delivery d;
    char* start = c.put_before(d.data());
    EXPECT_EQ(start, d.data() - 3);
    EXPECT_EQ(std::string(start, 3 + 9), std::string("\x82\xFE\x01"
                                                     "NEW-BYTES"));
    // Nothing before the held bytes was touched.
    for (char* p = d.block.data(); p < start; ++p)
        EXPECT_EQ(*p, Delivery::kFree) << "headroom byte " << (p - d.block.data());
    EXPECT_EQ(c.size(), 0u);
}

TEST(CarryTest, PutBeforeAFullCarryStaysInsideTheHeadroom) {
    Carry c;
    std::string run(Carry::kCapacity, '\0');
    for (size_t i = 0; i < run.size(); ++i)
        run[i] = static_cast<char>('a' + i);
    ASSERT_TRUE(c.hold(run.data(), run.size()));
    Delivery d;
    char* start = c.put_before(d.data());
    EXPECT_GE(start, d.block.data());
    EXPECT_EQ(d.data() - start, static_cast<std::ptrdiff_t>(Carry::kCapacity));
    EXPECT_EQ(std::string(start, run.size()), run);
    EXPECT_EQ(std::string(d.data(), 9), "NEW-BYTES");
}

TEST(CarryTest, PutBeforeWithNothingHeldLeavesTheRunAsItIs) {
    Carry c;
    Delivery d;
    EXPECT_EQ(c.put_before(d.data()), d.data());
    for (size_t i = 0; i < Endpoint::kHeadroom; ++i)
        EXPECT_EQ(d.block[i], Delivery::kFree);
}

TEST(CarryTest, PutBeforeForgetsSoTheBytesGoInFrontOnlyOnce) {
    Carry c;
    ASSERT_TRUE(c.hold("ab", 2));
    Delivery first;
    EXPECT_EQ(c.put_before(first.data()), first.data() - 2);
    Delivery second;
    EXPECT_EQ(c.put_before(second.data()), second.data());
}

TEST(CarryTest, ClearForgetsTheHeldBytes) {
    Carry c;
    ASSERT_TRUE(c.hold("abc", 3));
    c.clear();
    EXPECT_EQ(c.size(), 0u);
    Delivery d;
    EXPECT_EQ(c.put_before(d.data()), d.data());
}

}  // namespace
}  // namespace sb::session
