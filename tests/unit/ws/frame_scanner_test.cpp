// ws::FrameScanner: the three length forms, masked and unmasked frames, empty frames,
// control frames inside fragmented messages, the captured (unmasked) start of control
// payloads, a stream of many frames split at every byte position, every pair of
// positions and one byte at a time (same headers, same ends, same absolute offsets),
// stopping from either callback and resuming, skip_payload and the state accessors.
#include "ws/frame_scanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ws/protocol.h"
#include "ws_test_util.h"

namespace sb::ws {
namespace {

using test::bytes;
using test::describe;
using test::FrameSpec;
using test::LengthForm;
using test::make_frame;
using test::RecordingSink;
using test::scan_in_chunks;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::array<uint8_t, 4> kMask = {0x37, 0xFA, 0x21, 0x3D};
constexpr std::array<uint8_t, 4> kMask2 = {0xFF, 0x00, 0x80, 0x01};

// The header FrameScanner should decode for `f`.
FrameHeader header_of(const FrameSpec& f) {
    FrameHeader h;
    h.fin = f.fin;
    h.rsv = f.rsv & 0x7;
    h.opcode = f.opcode & 0x0F;
    h.masked = f.mask.has_value();
    h.payload_length = f.payload.size();
    auto n = f.payload.size();
    LengthForm form = f.form;
    if (form == LengthForm::Minimal) {
        form = n < 126 ? LengthForm::Minimal : n < 65536 ? LengthForm::Bits16 : LengthForm::Bits64;
    }
    h.header_length = static_cast<uint8_t>((form == LengthForm::Minimal  ? 2
                                            : form == LengthForm::Bits16 ? 4
                                                                         : 10) +
                                           (h.masked ? 4 : 0));
    if (f.mask) std::copy(f.mask->begin(), f.mask->end(), h.mask);
    h.bad_length =
        (form == LengthForm::Bits16 && n < 126) || (form == LengthForm::Bits64 && n < 65536);
    return h;
}

// The events a correct scanner reports for `frames` laid end to end, worked out from
// the specs alone.
std::vector<test::Event> expected_events(const std::vector<FrameSpec>& frames) {
    std::vector<test::Event> out;
    uint64_t at = 0;
    for (const auto& f : frames) {
        FrameHeader h = header_of(f);
        at += h.header_length;
        out.push_back({true, at, h, {}, 0});
        at += f.payload.size();
        test::Event end{false, at, h, {}, 0};
        if (h.is_control()) {
            end.capture_len = std::min(f.payload.size(), FrameScanner::kCaptureBytes);
            std::copy_n(f.payload.begin(), end.capture_len, end.capture.begin());
        }
        out.push_back(end);
    }
    return out;
}

std::string stream_of(const std::vector<FrameSpec>& frames) {
    std::string out;
    for (const auto& f : frames)
        out += make_frame(f);
    return out;
}

std::string close_payload(uint16_t code, std::string_view reason) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p += reason;
    return p;
}

// A little of everything: every length form, masked and not, empty frames, a
// fragmented message with control frames in between, reserved bits and opcodes.
std::vector<FrameSpec> mixed_frames() {
    return {
        {kText, "hello", true, 0, std::nullopt},
        {kBinary, "masked payload", true, 0, kMask},
        {kText, "", true, 0, std::nullopt},
        {kBinary, "", true, 0, kMask2},
        {kText, std::string(200, 'a'), true, 0, std::nullopt},  // 16-bit length
        {kBinary, std::string(130, 'b'), true, 0, kMask},       // 16-bit, masked
        {kText, "short", true, 0, std::nullopt, LengthForm::Bits16},
        {kBinary, "tiny", true, 0, kMask2, LengthForm::Bits64},
        {kText, "", true, 0, std::nullopt, LengthForm::Bits64},
        {kText, "frag1-", false, 0, kMask},
        {kPing, "ping!", true, 0, kMask2},
        {kContinuation, "frag2-", false, 0, kMask},
        {kPong, "0123456789", true, 0, kMask},  // longer than the capture
        {kClose, "", true, 0, std::nullopt},
        {kContinuation, "frag3", true, 0, kMask2},
        {kText, "compressed", true, 4, std::nullopt},  // RSV1, as permessage-deflate
        {0x3, "reserved", true, 0, std::nullopt},      // reported, not rejected
        {kClose, close_payload(1001, "going away"), true, 0, kMask},
    };
}

// ---- single frames ----

TEST(FrameScannerTest, SevenBitLengthUnmasked) {
    auto frame = make_frame({kText, "hello"});
    ASSERT_EQ(frame, std::string("\x81\x05hello"));
    EXPECT_THAT(
        describe(scan_in_chunks(frame, {})),
        ElementsAre("H@2 fin=1 rsv=0 op=1 masked=0 len=5 hl=2 mask=00000000", "E@7 op=1 capture="));
}

TEST(FrameScannerTest, SevenBitLengthMasked) {
    auto frame = make_frame({kBinary, "hello", true, 0, kMask});
    EXPECT_THAT(describe(scan_in_chunks(frame, {})),
                ElementsAre("H@6 fin=1 rsv=0 op=2 masked=1 len=5 hl=6 mask=37fa213d",
                            "E@11 op=2 capture="));
}

TEST(FrameScannerTest, LargestSevenBitLength) {
    std::vector<FrameSpec> frames = {{kText, std::string(125, 'x')}};
    EXPECT_EQ(scan_in_chunks(stream_of(frames), {}), expected_events(frames));
    EXPECT_EQ(header_of(frames[0]).header_length, 2);
}

TEST(FrameScannerTest, SixteenBitLength) {
    std::vector<FrameSpec> frames = {{kText, std::string(126, 'x')},
                                     {kBinary, std::string(65535, 'y'), true, 0, kMask}};
    auto events = scan_in_chunks(stream_of(frames), {});
    EXPECT_EQ(events, expected_events(frames));
    auto text = describe(events);
    EXPECT_EQ(text[0], "H@4 fin=1 rsv=0 op=1 masked=0 len=126 hl=4 mask=00000000");
    EXPECT_EQ(text[2], "H@138 fin=1 rsv=0 op=2 masked=1 len=65535 hl=8 mask=37fa213d");
    EXPECT_EQ(text[3], "E@65673 op=2 capture=");
}

TEST(FrameScannerTest, SixtyFourBitLength) {
    std::vector<FrameSpec> frames = {{kBinary, std::string(65536, 'x')},
                                     {kBinary, std::string(70000, 'y'), true, 0, kMask2}};
    auto events = scan_in_chunks(stream_of(frames), {});
    EXPECT_EQ(events, expected_events(frames));
    auto text = describe(events);
    EXPECT_EQ(text[0], "H@10 fin=1 rsv=0 op=2 masked=0 len=65536 hl=10 mask=00000000");
    EXPECT_EQ(text[1], "E@65546 op=2 capture=");
    EXPECT_EQ(text[2], "H@65560 fin=1 rsv=0 op=2 masked=1 len=70000 hl=14 mask=ff008001");
}

TEST(FrameScannerTest, NonMinimalLengthFormsAreFollowed) {
    std::vector<FrameSpec> frames = {{kText, "abc", true, 0, std::nullopt, LengthForm::Bits16},
                                     {kText, "abc", true, 0, kMask, LengthForm::Bits64}};
    EXPECT_EQ(scan_in_chunks(stream_of(frames), {}), expected_events(frames));
}

TEST(FrameScannerTest, HugeLengthHasItsTopBitCleared) {
    // RFC 6455 requires the most significant bit to be 0; a hostile length must not
    // wrap any arithmetic downstream.
    std::string header = "\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff";
    FrameScanner scanner;
    RecordingSink sink;
    EXPECT_EQ(scanner.scan(bytes(header), header.size(), sink), header.size());
    ASSERT_EQ(sink.events.size(), 1u);
    EXPECT_EQ(scanner.current().payload_length, 0x7FFFFFFFFFFFFFFFull);
    EXPECT_EQ(scanner.payload_remaining(), 0x7FFFFFFFFFFFFFFFull);
}

TEST(FrameScannerTest, ZeroLengthFrameReportsHeaderAndEndAtTheSameOffset) {
    EXPECT_THAT(
        describe(scan_in_chunks(make_frame({kText, ""}), {})),
        ElementsAre("H@2 fin=1 rsv=0 op=1 masked=0 len=0 hl=2 mask=00000000", "E@2 op=1 capture="));
    EXPECT_THAT(describe(scan_in_chunks(make_frame({kPong, "", true, 0, kMask}), {})),
                ElementsAre("H@6 fin=1 rsv=0 op=10 masked=1 len=0 hl=6 mask=37fa213d",
                            "E@6 op=10 capture="));
}

TEST(FrameScannerTest, ReportsReservedBitsAndOpcodes) {
    auto events = describe(scan_in_chunks(make_frame({0xB, "x", false, 7, std::nullopt}), {}));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0], "H@2 fin=0 rsv=7 op=11 masked=0 len=1 hl=2 mask=00000000");
}

TEST(FrameScannerTest, EmptyChunkReportsNothing) {
    FrameScanner scanner;
    RecordingSink sink;
    EXPECT_EQ(scanner.scan(nullptr, 0, sink), 0u);
    EXPECT_THAT(describe(sink.events), IsEmpty());
    EXPECT_TRUE(scanner.at_boundary());
}

// ---- control frames ----

TEST(FrameScannerTest, ControlFramesInsideAFragmentedMessage) {
    std::vector<FrameSpec> frames = {
        {kText, "Hel", false, 0, kMask},         {kPing, "p", true, 0, kMask2},
        {kContinuation, "lo ", false, 0, kMask}, {kPong, "", true, 0, kMask},
        {kClose, "\x03\xe8", true, 0, kMask2},   {kContinuation, "world", true, 0, kMask},
    };
    auto events = scan_in_chunks(stream_of(frames), {});
    EXPECT_EQ(events, expected_events(frames));
    auto text = describe(events);
    EXPECT_EQ(text[3], "E@16 op=9 capture=70");
    EXPECT_EQ(text[9], "E@39 op=8 capture=03e8");
}

TEST(FrameScannerTest, CapturesTheCloseCodeUnmasked) {
    auto frame = make_frame({kClose, close_payload(1001, "going away"), true, 0, kMask});
    FrameScanner scanner;
    RecordingSink sink;
    scanner.scan(bytes(frame), frame.size(), sink);
    ASSERT_EQ(sink.events.size(), 2u);
    auto capture = sink.events[1].captured();
    // Only the first kCaptureBytes: the code and "going ".
    EXPECT_EQ(std::vector<uint8_t>(capture.begin(), capture.end()),
              (std::vector<uint8_t>{0x03, 0xE9, 'g', 'o', 'i', 'n', 'g', ' '}));
    EXPECT_EQ(close_code_of(capture), 1001);
}

TEST(FrameScannerTest, CapturesUnmaskedWhenThePayloadArrivesByteByByte) {
    // The mask index must follow the payload position across chunks.
    auto frame = make_frame({kClose, close_payload(4000, "bye"), true, 0, kMask2});
    std::vector<size_t> cuts;
    for (size_t i = 1; i < frame.size(); ++i)
        cuts.push_back(i);
    EXPECT_THAT(describe(scan_in_chunks(frame, cuts)),
                ElementsAre("H@6 fin=1 rsv=0 op=8 masked=1 len=5 hl=6 mask=ff008001",
                            "E@11 op=8 capture=0fa0627965"));
}

TEST(FrameScannerTest, CapturesAShortControlPayloadWhole) {
    auto frame = make_frame({kPing, "ab", true, 0, std::nullopt});
    EXPECT_THAT(describe(scan_in_chunks(frame, {})),
                ElementsAre(::testing::_, "E@4 op=9 capture=6162"));
}

TEST(FrameScannerTest, DataFramesCaptureNothing) {
    auto frame = make_frame({kText, "abcdefghij", true, 0, kMask});
    EXPECT_THAT(describe(scan_in_chunks(frame, {})),
                ElementsAre(::testing::_, "E@16 op=1 capture="));
}

TEST(FrameScannerTest, CaptureDoesNotLeakIntoTheNextControlFrame) {
    std::vector<FrameSpec> frames = {{kPing, "12345678", true, 0, kMask},
                                     {kPong, "x", true, 0, kMask2}};
    EXPECT_EQ(scan_in_chunks(stream_of(frames), {}), expected_events(frames));
}

// ---- a stream split anywhere ----

TEST(FrameScannerTest, MixedStreamInOneChunk) {
    auto frames = mixed_frames();
    EXPECT_EQ(scan_in_chunks(stream_of(frames), {}), expected_events(frames));
}

TEST(FrameScannerTest, MixedStreamSplitAtEveryPosition) {
    auto frames = mixed_frames();
    auto stream = stream_of(frames);
    auto expected = expected_events(frames);
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
        ASSERT_EQ(scan_in_chunks(stream, {cut}), expected) << "split at " << cut;
    }
}

TEST(FrameScannerTest, MixedStreamSplitAtEveryPairOfPositions) {
    // Three chunks, so that a header can arrive in three pieces. The long payloads are
    // left out to keep this quadratic test fast; non-minimal length forms still put
    // 16-bit and 64-bit headers in the stream.
    auto frames = mixed_frames();
    std::erase_if(frames, [](const FrameSpec& f) { return f.payload.size() > 100; });
    auto stream = stream_of(frames);
    auto expected = expected_events(frames);
    for (size_t a = 1; a < stream.size(); ++a) {
        for (size_t b = a; b < stream.size(); ++b) {
            ASSERT_EQ(scan_in_chunks(stream, {a, b}), expected) << "split at " << a << ", " << b;
        }
    }
}

TEST(FrameScannerTest, MixedStreamOneByteAtATime) {
    auto frames = mixed_frames();
    auto stream = stream_of(frames);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < stream.size(); ++i)
        cuts.push_back(i);
    EXPECT_EQ(scan_in_chunks(stream, cuts), expected_events(frames));
}

TEST(FrameScannerTest, SixtyFourBitMaskedHeaderOneByteAtATime) {
    // The longest header, 14 bytes, arrives in 14 chunks.
    std::vector<FrameSpec> frames = {{kBinary, std::string(65536, 'z'), true, 0, kMask},
                                     {kClose, close_payload(1000, ""), true, 0, kMask2}};
    auto stream = stream_of(frames);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < 14; ++i)
        cuts.push_back(i);
    cuts.push_back(stream.size() - 7);  // splits the close frame's header too
    EXPECT_EQ(scan_in_chunks(stream, cuts), expected_events(frames));
}

// ---- stopping and resuming ----

TEST(FrameScannerTest, StopAtAHeaderReturnsTheOffsetAfterIt) {
    std::string stream = make_frame({kText, "abc"}) + make_frame({kBinary, "de"});
    FrameScanner scanner;
    RecordingSink sink;
    sink.stop_after_headers = true;
    EXPECT_EQ(scanner.scan(bytes(stream), stream.size(), sink), 2u);
    EXPECT_EQ(sink.events.size(), 1u);
    EXPECT_EQ(scanner.payload_remaining(), 3u);
    sink.stop_after_headers = false;
    sink.base = 2;
    EXPECT_EQ(scanner.scan(bytes(stream) + 2, stream.size() - 2, sink), stream.size() - 2);
    EXPECT_THAT(describe(sink.events),
                ElementsAre(::testing::StartsWith("H@2 "), "E@5 op=1 capture=",
                            ::testing::StartsWith("H@7 "), "E@9 op=2 capture="));
}

TEST(FrameScannerTest, StopAtAFrameEndReturnsTheOffsetAfterIt) {
    std::string stream = make_frame({kText, "abc"}) + make_frame({kBinary, "de"});
    FrameScanner scanner;
    RecordingSink sink;
    sink.stop_after_ends = true;
    EXPECT_EQ(scanner.scan(bytes(stream), stream.size(), sink), 5u);
    EXPECT_TRUE(scanner.at_boundary());
    sink.base = 5;
    EXPECT_EQ(scanner.scan(bytes(stream) + 5, stream.size() - 5, sink), 4u);
    EXPECT_EQ(sink.events.back().describe(), "E@9 op=2 capture=");
}

TEST(FrameScannerTest, StopAtTheHeaderOfAnEmptyFrameDefersItsEnd) {
    std::string stream = make_frame({kPing, ""}) + make_frame({kText, "x"});
    FrameScanner scanner;
    RecordingSink sink;
    sink.stop_after_headers = true;
    EXPECT_EQ(scanner.scan(bytes(stream), stream.size(), sink), 2u);
    EXPECT_THAT(describe(sink.events), ElementsAre(::testing::StartsWith("H@2 ")));
    EXPECT_FALSE(scanner.at_boundary());  // its end is still to be reported
    sink.stop_after_headers = false;
    sink.base = 2;
    EXPECT_EQ(scanner.scan(bytes(stream) + 2, stream.size() - 2, sink), 3u);
    EXPECT_THAT(describe(sink.events),
                ElementsAre(::testing::StartsWith("H@2 "), "E@2 op=9 capture=",
                            ::testing::StartsWith("H@4 "), "E@5 op=1 capture="));
}

TEST(FrameScannerTest, DeferredEndFiresOnAnEmptyChunk) {
    std::string frame = make_frame({kClose, ""});
    FrameScanner scanner;
    RecordingSink sink;
    sink.stop_after_headers = true;
    EXPECT_EQ(scanner.scan(bytes(frame), frame.size(), sink), 2u);
    sink.base = 2;
    EXPECT_EQ(scanner.scan(bytes(frame) + 2, 0, sink), 0u);
    EXPECT_THAT(describe(sink.events),
                ElementsAre(::testing::StartsWith("H@2 "), "E@2 op=8 capture="));
    EXPECT_TRUE(scanner.at_boundary());
}

TEST(FrameScannerTest, StoppingAtEveryCallbackGivesTheSameEvents) {
    auto frames = mixed_frames();
    auto stream = stream_of(frames);
    FrameScanner scanner;
    RecordingSink sink;
    sink.stop_after_headers = true;
    sink.stop_after_ends = true;
    size_t calls = test::scan_chunk(scanner, sink, stream, 0);
    sink.base = stream.size();
    scanner.scan(nullptr, 0, sink);  // an empty frame's end may still be pending
    EXPECT_EQ(sink.events, expected_events(frames));
    EXPECT_GE(calls, frames.size() * 2 - 1);
    EXPECT_TRUE(scanner.at_boundary());
}

TEST(FrameScannerTest, StoppingAtEveryCallbackOneByteAtATime) {
    auto frames = mixed_frames();
    auto stream = stream_of(frames);
    FrameScanner scanner;
    RecordingSink sink;
    sink.stop_after_headers = true;
    sink.stop_after_ends = true;
    for (size_t i = 0; i < stream.size(); ++i)
        test::scan_chunk(scanner, sink, stream.substr(i, 1), i);
    sink.base = stream.size();
    scanner.scan(nullptr, 0, sink);
    EXPECT_EQ(sink.events, expected_events(frames));
}

// ---- state accessors and skip_payload ----

TEST(FrameScannerTest, StateBetweenAndInsideFrames) {
    std::string frame = make_frame({kBinary, std::string(300, 'q'), true, 0, kMask});
    FrameScanner scanner;
    RecordingSink sink;
    EXPECT_TRUE(scanner.at_boundary());

    scanner.scan(bytes(frame), 3, sink);  // 3 of 8 header bytes
    EXPECT_FALSE(scanner.at_boundary());
    EXPECT_EQ(scanner.partial_header_bytes(), 3u);
    EXPECT_THAT(describe(sink.events), IsEmpty());

    scanner.scan(bytes(frame) + 3, 5 + 100, sink);  // the rest of the header and 100 bytes
    EXPECT_EQ(scanner.partial_header_bytes(), 0u);
    EXPECT_EQ(scanner.payload_remaining(), 200u);
    EXPECT_EQ(scanner.current().payload_length, 300u);
    EXPECT_TRUE(scanner.current().masked);
    EXPECT_FALSE(scanner.at_boundary());

    scanner.scan(bytes(frame) + 108, 200, sink);
    EXPECT_EQ(scanner.payload_remaining(), 0u);
    EXPECT_TRUE(scanner.at_boundary());
    EXPECT_EQ(sink.events.size(), 2u);
}

TEST(FrameScannerTest, SkipPayloadMovesBytesWithoutScanningThem) {
    std::string stream = make_frame({kBinary, std::string(1000, 's')}) + make_frame({kText, "t"});
    FrameScanner scanner;
    RecordingSink sink;
    ASSERT_EQ(scanner.scan(bytes(stream), 4, sink), 4u);  // the 16-bit header
    EXPECT_EQ(scanner.payload_remaining(), 1000u);
    scanner.skip_payload(990);  // spliced past the scanner
    EXPECT_EQ(scanner.payload_remaining(), 10u);
    sink.base = 994;
    EXPECT_EQ(scanner.scan(bytes(stream) + 994, stream.size() - 994, sink), stream.size() - 994);
    EXPECT_THAT(describe(sink.events),
                ElementsAre(::testing::StartsWith("H@4 "), "E@1004 op=2 capture=",
                            ::testing::StartsWith("H@1006 "), "E@1007 op=1 capture="));
}

TEST(FrameScannerTest, SkipPayloadKeepsTheCaptureMaskAligned) {
    // A skipped control payload byte still advances the mask position.
    std::string frame = make_frame({kPing, "abcdefghij", true, 0, kMask2});
    FrameScanner scanner;
    RecordingSink sink;
    ASSERT_EQ(scanner.scan(bytes(frame), 6, sink), 6u);
    scanner.skip_payload(1);
    sink.base = 7;
    scanner.scan(bytes(frame) + 7, frame.size() - 7, sink);
    ASSERT_EQ(sink.events.size(), 2u);
    auto capture = sink.events[1].captured();
    EXPECT_EQ(std::string(capture.begin(), capture.end()), "bcdefghi");
}

}  // namespace
}  // namespace sb::ws
