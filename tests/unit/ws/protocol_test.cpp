// ws/protocol.h: MessageState's framing rules for each sender role (one test per
// violation) and its message byte count across fragments; close_frame and ping_frame
// parsed back with FrameScanner and unmasked; close_code_of.
#include "ws/protocol.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "ws/frame_scanner.h"
#include "ws_test_util.h"

namespace sb::ws {
namespace {

using test::bytes;

FrameHeader header(uint8_t opcode, uint64_t length, bool fin = true, bool masked = true) {
    FrameHeader h;
    h.fin = fin;
    h.opcode = opcode & 0x0F;
    h.payload_length = length;
    h.masked = masked;
    return h;
}

// Client frames are masked, server frames are not.
FrameHeader client(uint8_t opcode, uint64_t length, bool fin = true) {
    return header(opcode, length, fin, true);
}
FrameHeader server(uint8_t opcode, uint64_t length, bool fin = true) {
    return header(opcode, length, fin, false);
}

// ---- MessageState: violations ----

TEST(MessageStateTest, UnmaskedClientFrame) {
    MessageState state;
    EXPECT_EQ(state.on_header(server(kText, 5), true), Violation::UnmaskedClientFrame);
    EXPECT_EQ(state.on_header(server(kClose, 2), true), Violation::UnmaskedClientFrame);
}

TEST(MessageStateTest, MaskedServerFrame) {
    MessageState state;
    EXPECT_EQ(state.on_header(client(kBinary, 5), false), Violation::MaskedServerFrame);
    EXPECT_EQ(state.on_header(client(kPing, 0), false), Violation::MaskedServerFrame);
}

TEST(MessageStateTest, EachRoleWithItsOwnMasking) {
    MessageState from_client;
    MessageState from_server;
    EXPECT_EQ(from_client.on_header(client(kText, 5), true), Violation::None);
    EXPECT_EQ(from_server.on_header(server(kText, 5), false), Violation::None);
}

// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length", and
// the 64-bit form's most significant bit MUST be 0. The 14-byte Pong that once overran
// the relay's hold-back was such a frame (8 bytes of payload in the 64-bit form).
TEST(MessageStateTest, LengthNotInItsShortestFormIsAViolation) {
    struct Case {
        std::vector<uint8_t> header;  // complete, masked
        bool bad;
    };
    const std::vector<Case> cases = {
        {{0x8A, 0xFF, 0, 0, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4}, true},        // Pong, 8 in 64 bits
        {{0x82, 0xFE, 0, 125, 1, 2, 3, 4}, true},                        // 125 in 16 bits
        {{0x82, 0xFE, 0, 126, 1, 2, 3, 4}, false},                       // 126 in 16 bits
        {{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4}, true},  // 65535 in 64 bits
        {{0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, false},       // 65536 in 64 bits
        {{0x82, 0xFF, 0x80, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}, true},     // top bit set
        {{0x82, 0x85, 1, 2, 3, 4}, false},                               // 5 in 7 bits
    };
    for (const auto& c : cases) {
        FrameHeader h;
        decode_frame_header(c.header.data(), h);
        EXPECT_EQ(h.bad_length, c.bad) << "header byte 1 = " << int{c.header[1]};
        MessageState state;
        EXPECT_EQ(state.on_header(h, true), c.bad ? Violation::BadLength : Violation::None);
    }
}

TEST(MessageStateTest, ReservedDataOpcodes) {
    for (uint8_t opcode = 3; opcode <= 7; ++opcode) {
        MessageState state;
        EXPECT_EQ(state.on_header(client(opcode, 1), true), Violation::ReservedOpcode) << +opcode;
    }
}

TEST(MessageStateTest, ReservedControlOpcodes) {
    for (uint8_t opcode = 0xB; opcode <= 0xF; ++opcode) {
        MessageState state;
        EXPECT_EQ(state.on_header(server(opcode, 1), false), Violation::ReservedOpcode) << +opcode;
    }
}

TEST(MessageStateTest, ControlPayloadOver125Bytes) {
    for (uint8_t opcode : {kClose, kPing, kPong}) {
        MessageState state;
        EXPECT_EQ(state.on_header(client(opcode, 125), true), Violation::None) << +opcode;
        EXPECT_EQ(state.on_header(client(opcode, 126), true), Violation::ControlTooLong) << +opcode;
    }
}

TEST(MessageStateTest, FragmentedControlFrame) {
    for (uint8_t opcode : {kClose, kPing, kPong}) {
        MessageState state;
        EXPECT_EQ(state.on_header(client(opcode, 1, false), true), Violation::ControlFragmented)
            << +opcode;
    }
}

TEST(MessageStateTest, ContinuationWithoutAMessage) {
    MessageState state;
    EXPECT_EQ(state.on_header(client(kContinuation, 3), true), Violation::UnexpectedContinuation);
    EXPECT_EQ(state.on_header(client(kContinuation, 3, false), true),
              Violation::UnexpectedContinuation);
}

TEST(MessageStateTest, ContinuationAfterAFinishedMessage) {
    MessageState state;
    ASSERT_EQ(state.on_header(client(kText, 3), true), Violation::None);
    EXPECT_EQ(state.on_header(client(kContinuation, 3), true), Violation::UnexpectedContinuation);
}

TEST(MessageStateTest, NewDataFrameInsideAFragmentedMessage) {
    MessageState state;
    ASSERT_EQ(state.on_header(server(kText, 3, false), false), Violation::None);
    EXPECT_EQ(state.on_header(server(kText, 3), false), Violation::ExpectedContinuation);
    EXPECT_EQ(state.on_header(server(kBinary, 3, false), false), Violation::ExpectedContinuation);
}

TEST(MessageStateTest, AViolationLeavesTheStateUnchanged) {
    MessageState state;
    ASSERT_EQ(state.on_header(client(kBinary, 10, false), true), Violation::None);
    EXPECT_EQ(state.on_header(client(kText, 99), true), Violation::ExpectedContinuation);
    EXPECT_EQ(state.on_header(server(kContinuation, 99), true), Violation::UnmaskedClientFrame);
    EXPECT_EQ(state.on_header(client(0x3, 99), true), Violation::ReservedOpcode);
    EXPECT_TRUE(state.in_message());
    EXPECT_EQ(state.message_bytes(), 10u);
    EXPECT_EQ(state.on_header(client(kContinuation, 5), true), Violation::None);
    EXPECT_EQ(state.message_bytes(), 15u);
    EXPECT_FALSE(state.in_message());
}

TEST(MessageStateTest, ViolationTextsAreDistinct) {
    std::set<std::string_view> texts;
    for (auto v :
         {Violation::None, Violation::UnmaskedClientFrame, Violation::MaskedServerFrame,
          Violation::ReservedOpcode, Violation::ControlTooLong, Violation::ControlFragmented,
          Violation::UnexpectedContinuation, Violation::ExpectedContinuation}) {
        EXPECT_FALSE(violation_text(v).empty());
        texts.insert(violation_text(v));
    }
    EXPECT_EQ(texts.size(), 8u);
}

// ---- MessageState: counting ----

TEST(MessageStateTest, SingleFrameMessage) {
    MessageState state;
    ASSERT_EQ(state.on_header(client(kText, 42), true), Violation::None);
    EXPECT_EQ(state.message_bytes(), 42u);
    EXPECT_FALSE(state.in_message());
    EXPECT_TRUE(MessageState::ends_message(client(kText, 42)));
}

TEST(MessageStateTest, CountsBytesAcrossFragmentsAndIgnoresControlFrames) {
    MessageState state;
    std::vector<FrameHeader> frames = {
        client(kBinary, 10, false), client(kPing, 5),  client(kContinuation, 20, false),
        client(kPong, 0),           client(kClose, 2), client(kContinuation, 30, true),
    };
    std::vector<uint64_t> bytes_after = {10, 10, 30, 30, 30, 60};
    std::vector<bool> in_message_after = {true, true, true, true, true, false};
    std::vector<bool> ends = {false, false, false, false, false, true};
    for (size_t i = 0; i < frames.size(); ++i) {
        ASSERT_EQ(state.on_header(frames[i], true), Violation::None) << i;
        EXPECT_EQ(state.message_bytes(), bytes_after[i]) << i;
        EXPECT_EQ(state.in_message(), in_message_after[i]) << i;
        EXPECT_EQ(MessageState::ends_message(frames[i]), ends[i]) << i;
    }
}

TEST(MessageStateTest, NextMessageStartsItsOwnCount) {
    MessageState state;
    ASSERT_EQ(state.on_header(server(kText, 100, false), false), Violation::None);
    ASSERT_EQ(state.on_header(server(kContinuation, 100), false), Violation::None);
    EXPECT_EQ(state.message_bytes(), 200u);
    ASSERT_EQ(state.on_header(server(kBinary, 7), false), Violation::None);
    EXPECT_EQ(state.message_bytes(), 7u);
}

TEST(MessageStateTest, ZeroLengthFragments) {
    MessageState state;
    ASSERT_EQ(state.on_header(client(kText, 0, false), true), Violation::None);
    ASSERT_EQ(state.on_header(client(kContinuation, 0, false), true), Violation::None);
    ASSERT_EQ(state.on_header(client(kContinuation, 0), true), Violation::None);
    EXPECT_EQ(state.message_bytes(), 0u);
    EXPECT_FALSE(state.in_message());
}

TEST(MessageStateTest, HugeMessageCountSaturatesInsteadOfWrapping) {
    // The count saturates at 2^62 (any limit is far below): it never wraps to a small
    // number that would let an oversized message through.
    MessageState state;
    ASSERT_EQ(state.on_header(client(kBinary, uint64_t{1} << 61, false), true), Violation::None);
    ASSERT_EQ(state.on_header(client(kContinuation, uint64_t{1} << 61, false), true),
              Violation::None);
    EXPECT_EQ(state.message_bytes(), uint64_t{1} << 62);
    ASSERT_EQ(state.on_header(client(kContinuation, (uint64_t{1} << 63) - 1, false), true),
              Violation::None);
    ASSERT_EQ(state.on_header(client(kContinuation, (uint64_t{1} << 63) - 1), true),
              Violation::None);
    EXPECT_EQ(state.message_bytes(), uint64_t{1} << 62);
    EXPECT_FALSE(state.in_message());
}

// ---- close_frame and ping_frame, parsed back ----

struct ParsedFrame {
    FrameHeader header;
    std::string payload;  // unmasked
    size_t frames = 0;
};

// Parses `wire` with FrameScanner (which must find exactly one frame covering every
// byte) and unmasks the payload itself.
ParsedFrame parse_back(std::string_view wire) {
    test::RecordingSink sink;
    FrameScanner scanner;
    EXPECT_EQ(scanner.scan(bytes(wire), wire.size(), sink), wire.size());
    EXPECT_TRUE(scanner.at_boundary());
    ParsedFrame out;
    out.frames = sink.events.size() / 2;
    if (sink.events.empty()) return out;
    out.header = sink.events[0].header;
    EXPECT_EQ(sink.events.back().at, wire.size());
    for (size_t i = out.header.header_length; i < wire.size(); ++i) {
        auto byte = static_cast<uint8_t>(wire[i]);
        if (out.header.masked) byte ^= out.header.mask[(i - out.header.header_length) & 3];
        out.payload.push_back(static_cast<char>(byte));
    }
    return out;
}

uint16_t code_in(const std::string& payload) {
    return close_code_of(std::span(bytes(payload), payload.size()));
}

TEST(ControlFrameTest, UnmaskedCloseFrame) {
    auto wire = close_frame(kGoingAway, "shutting down", false, 0);
    auto parsed = parse_back(wire);
    EXPECT_EQ(parsed.frames, 1u);
    EXPECT_TRUE(parsed.header.fin);
    EXPECT_EQ(parsed.header.rsv, 0);
    EXPECT_EQ(parsed.header.opcode, kClose);
    EXPECT_FALSE(parsed.header.masked);
    EXPECT_EQ(parsed.header.payload_length, 2u + 13u);
    EXPECT_EQ(code_in(parsed.payload), 1001);
    EXPECT_EQ(parsed.payload.substr(2), "shutting down");
}

TEST(ControlFrameTest, MaskedCloseFrameForABackend) {
    auto wire = close_frame(kServiceRestart, "backend lost", true, 0xA1B2C3D4);
    auto parsed = parse_back(wire);
    EXPECT_EQ(parsed.frames, 1u);
    EXPECT_TRUE(parsed.header.masked);
    EXPECT_EQ(parsed.header.header_length, 6);
    EXPECT_EQ(test::hex(parsed.header.mask), "a1b2c3d4");
    EXPECT_EQ(code_in(parsed.payload), 1012);
    EXPECT_EQ(parsed.payload.substr(2), "backend lost");
    // Masked on the wire: the reason does not appear in clear.
    EXPECT_EQ(wire.find("backend lost"), std::string::npos);
}

TEST(ControlFrameTest, MaskKeyZeroStillSetsTheMaskBit) {
    auto parsed = parse_back(close_frame(kNormalClosure, "", true, 0));
    EXPECT_TRUE(parsed.header.masked);
    EXPECT_EQ(code_in(parsed.payload), 1000);
}

TEST(ControlFrameTest, CloseFrameWithoutAReason) {
    auto wire = close_frame(kProtocolError, "", false, 0);
    EXPECT_EQ(wire, std::string("\x88\x02\x03\xea"));
}

TEST(ControlFrameTest, EveryCloseCodeRoundTrips) {
    for (uint16_t code : {kNormalClosure, kGoingAway, kProtocolError, kPolicyViolation,
                          kMessageTooBig, kServiceRestart}) {
        auto parsed = parse_back(close_frame(code, "r", true, 0x01020304));
        EXPECT_EQ(code_in(parsed.payload), code);
    }
}

TEST(ControlFrameTest, CloseReasonIsTruncatedToFit125Bytes) {
    std::string reason(200, 'r');
    auto parsed = parse_back(close_frame(kMessageTooBig, reason, true, 0x55AA55AA));
    EXPECT_EQ(parsed.header.payload_length, 125u);
    EXPECT_EQ(parsed.payload.substr(2), std::string(123, 'r'));
    MessageState state;
    EXPECT_EQ(state.on_header(parsed.header, true), Violation::None);
}

TEST(ControlFrameTest, CloseReasonIsNotCutInsideAUtf8Character) {
    // Regression: 122 ASCII bytes and a 2-byte 'é' put the cut after 123 bytes, inside
    // the 'é'; a reason that is not valid UTF-8 obliges the peer to fail the
    // connection (RFC 6455 §8.1).
    std::string reason = std::string(122, 'r') + "\xc3\xa9" + "tail";
    auto parsed = parse_back(close_frame(kGoingAway, reason, false, 0));
    EXPECT_EQ(parsed.payload.substr(2), std::string(122, 'r'));
    std::string fits = std::string(121, 'r') + "\xc3\xa9" + "tail";
    EXPECT_EQ(parse_back(close_frame(kGoingAway, fits, false, 0)).payload.substr(2),
              std::string(121, 'r') + "\xc3\xa9");
}

TEST(ControlFrameTest, UnmaskedPingFrame) {
    auto parsed = parse_back(ping_frame("token-1", false, 0));
    EXPECT_EQ(parsed.frames, 1u);
    EXPECT_TRUE(parsed.header.fin);
    EXPECT_EQ(parsed.header.opcode, kPing);
    EXPECT_FALSE(parsed.header.masked);
    EXPECT_EQ(parsed.payload, "token-1");
}

TEST(ControlFrameTest, MaskedPingFrame) {
    auto wire = ping_frame("token-2", true, 0xDEADBEEF);
    auto parsed = parse_back(wire);
    EXPECT_TRUE(parsed.header.masked);
    EXPECT_EQ(test::hex(parsed.header.mask), "deadbeef");
    EXPECT_EQ(parsed.payload, "token-2");
    EXPECT_EQ(wire.find("token-2"), std::string::npos);
}

TEST(ControlFrameTest, EmptyPing) {
    EXPECT_EQ(ping_frame("", false, 0), std::string("\x89\x00", 2));
    auto parsed = parse_back(ping_frame("", true, 0x11223344));
    EXPECT_EQ(parsed.header.header_length, 6);
    EXPECT_EQ(parsed.payload, "");
}

TEST(ControlFrameTest, PingPayloadIsTruncatedTo125Bytes) {
    auto parsed = parse_back(ping_frame(std::string(300, 'p'), true, 0x01020304));
    EXPECT_EQ(parsed.header.payload_length, 125u);
    EXPECT_EQ(parsed.header.header_length, 6);  // still the 7-bit length form
    EXPECT_EQ(parsed.payload, std::string(125, 'p'));
}

TEST(ControlFrameTest, BuiltFramesPassTheirReceiversChecks) {
    // What switchboard sends a backend must look like a client's frame, and what it
    // sends a client like a server's.
    MessageState to_backend;
    MessageState to_client;
    EXPECT_EQ(to_backend.on_header(parse_back(close_frame(1001, "x", true, 7)).header, true),
              Violation::None);
    EXPECT_EQ(to_backend.on_header(parse_back(ping_frame("x", true, 7)).header, true),
              Violation::None);
    EXPECT_EQ(to_client.on_header(parse_back(close_frame(1001, "x", false, 0)).header, false),
              Violation::None);
    EXPECT_EQ(to_client.on_header(parse_back(ping_frame("x", false, 0)).header, false),
              Violation::None);
}

// ---- close_code_of ----

TEST(CloseCodeOfTest, ReadsTheFirstTwoBytesBigEndian) {
    const uint8_t normal[] = {0x03, 0xE8};
    const uint8_t with_reason[] = {0x03, 0xF1, 'b', 'i', 'g'};
    const uint8_t application[] = {0x0F, 0xA0};
    EXPECT_EQ(close_code_of(normal), 1000);
    EXPECT_EQ(close_code_of(with_reason), 1009);
    EXPECT_EQ(close_code_of(application), 4000);
}

TEST(CloseCodeOfTest, ShortPayloadMeansNoStatus) {
    const uint8_t one[] = {0x03};
    EXPECT_EQ(close_code_of({}), 1005);
    EXPECT_EQ(close_code_of(one), 1005);
}

}  // namespace
}  // namespace sb::ws
