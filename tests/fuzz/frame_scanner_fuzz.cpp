// Fuzzer: ws::FrameScanner and ws::MessageState against an independent reading of
// RFC 6455 §5.2 (differential).
//
// Proves, for any byte stream cut into any chunks (one byte at a time, empty chunks,
// everything at once), with callbacks that stop the scan at any event and resume from
// the offset returned (as the relay does to insert its own frames), and with payload
// bytes skipped unscanned (as the splice path does), that the scanner reports exactly
// the frames a straightforward decoder of the whole stream finds: the same header
// fields at the same absolute offsets, the same frame ends, the same unmasked start of
// every control payload, and the same state when the stream stops mid-frame. Then that
// MessageState's verdict on each header, for a client and for a backend sender, is one
// the RFC's rules allow, and that it tracks fragmented messages and their size.
//
// Input: one byte N, N decision bytes (fuzz_util.h Choices), then the stream.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "ws/frame_scanner.h"
#include "ws/protocol.h"

namespace {

using sb::fuzz::Choices;

constexpr size_t kCapture = 8;  // FrameScanner::kCaptureBytes, restated from its contract

// One event, in absolute stream offsets: a header ends, or a frame ends.
struct Event {
    bool is_header = false;
    uint64_t at = 0;
    bool fin = false;
    uint8_t rsv = 0;
    uint8_t opcode = 0;
    bool masked = false;
    std::array<uint8_t, 4> mask{};
    uint64_t payload_length = 0;  // as sent, all 64 bits
    uint8_t header_length = 0;
    bool bad_length = false;
    std::vector<uint8_t> capture;  // frame ends of control frames: payload start, unmasked

    std::string describe() const {
        char line[200];
        std::snprintf(line, sizeof line,
                      "%s@%llu fin=%d rsv=%d op=%d masked=%d mask=%02x%02x%02x%02x len=%llu "
                      "hl=%d bad_length=%d capture=",
                      is_header ? "H" : "E", static_cast<unsigned long long>(at), fin, rsv, opcode,
                      masked, mask[0], mask[1], mask[2], mask[3],
                      static_cast<unsigned long long>(payload_length), header_length, bad_length);
        std::string out = line;
        for (uint8_t b : capture) {
            std::snprintf(line, sizeof line, "%02x", b);
            out += line;
        }
        return out;
    }
};

// ---- the reference: RFC 6455 §5.2, read afresh, over the whole stream at once ----

// What the reference leaves behind when the stream ends.
struct ReferenceEnd {
    size_t partial_header = 0;       // bytes of a header that is not complete
    uint64_t payload_remaining = 0;  // payload bytes of the last frame not in the stream
};

// Byte 0: FIN, RSV1-3, opcode. Byte 1: MASK and a 7-bit length; 126 means a 16-bit
// length follows, 127 a 64-bit one ("the most significant bit MUST be 0"), each in
// network byte order, and "the minimal number of bytes MUST be used". Then the 4-byte
// masking key if MASK is set, then the payload, masked octet i with key octet i mod 4.
std::vector<Event> reference_decode(const std::vector<uint8_t>& s, ReferenceEnd& end) {
    std::vector<Event> events;
    size_t at = 0;
    end = {};
    while (at < s.size()) {
        size_t left = s.size() - at;
        if (left < 2) {
            end.partial_header = left;
            break;
        }
        Event h;
        h.is_header = true;
        h.fin = (s[at] >> 7) & 1;
        h.rsv = (s[at] >> 4) & 7;
        h.opcode = s[at] & 15;
        h.masked = (s[at + 1] >> 7) & 1;
        unsigned len7 = s[at + 1] & 127;
        size_t length_bytes = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        size_t need = 2 + length_bytes + (h.masked ? 4 : 0);
        if (left < need) {
            end.partial_header = left;
            break;
        }
        if (length_bytes == 0) {
            h.payload_length = len7;
        } else {
            for (size_t i = 0; i < length_bytes; ++i)
                h.payload_length = h.payload_length * 256 + s[at + 2 + i];
        }
        bool top_bit = length_bytes == 8 && (h.payload_length >> 63) != 0;
        bool longer_than_needed = (length_bytes == 2 && h.payload_length < 126) ||
                                  (length_bytes == 8 && h.payload_length < 65536);
        h.bad_length = top_bit || longer_than_needed;
        if (h.masked) {
            for (size_t i = 0; i < 4; ++i)
                h.mask[i] = s[at + 2 + length_bytes + i];
        }
        h.header_length = static_cast<uint8_t>(need);
        at += need;
        h.at = at;
        events.push_back(h);

        // A length with its top bit set breaks the RFC, which then says nothing of where
        // the frame ends. The scanner, which reports it and leaves the verdict to
        // MessageState, goes on with the top bit cleared; so does the reference, to keep
        // comparing past it.
        uint64_t length = h.payload_length & 0x7FFFFFFFFFFFFFFFull;
        uint64_t available = s.size() - at;
        if (length > available) {
            end.payload_remaining = length - available;
            break;
        }
        Event e = h;
        e.is_header = false;
        e.at = at + length;
        if (h.opcode >= 8) {  // control frames: the scanner keeps the payload's start
            for (size_t i = 0; i < length && i < kCapture; ++i)
                e.capture.push_back(s[at + i] ^ (h.masked ? h.mask[i % 4] : 0));
        }
        events.push_back(e);
        at = e.at;
    }
    return events;
}

// ---- the scanner, driven as a Pipe drives it ----

Event event_of(bool is_header, uint64_t at, const sb::ws::FrameHeader& h) {
    Event e;
    e.is_header = is_header;
    e.at = at;
    e.fin = h.fin;
    e.rsv = h.rsv;
    e.opcode = h.opcode;
    e.masked = h.masked;
    std::copy(h.mask, h.mask + 4, e.mask.begin());
    e.payload_length = h.payload_length;
    e.header_length = h.header_length;
    e.bad_length = h.bad_length;
    return e;
}

struct Sink {
    Choices& choices;
    uint64_t base = 0;  // absolute offset of the data given to scan()
    size_t len = 0;     // its length
    std::vector<Event> events;
    std::vector<sb::ws::FrameHeader> headers;

    bool on_header(const sb::ws::FrameHeader& h, size_t end) {
        SB_FUZZ_CHECK(end <= len, "on_header end %zu past the chunk (%zu bytes)", end, len);
        events.push_back(event_of(true, base + end, h));
        headers.push_back(h);
        return !choices.one_in(4);
    }
    bool on_frame_end(const sb::ws::FrameHeader& h, size_t end, std::span<const uint8_t> capture) {
        SB_FUZZ_CHECK(end <= len, "on_frame_end end %zu past the chunk (%zu bytes)", end, len);
        SB_FUZZ_CHECK(capture.size() <= kCapture);
        Event e = event_of(false, base + end, h);
        e.capture.assign(capture.begin(), capture.end());
        events.push_back(e);
        return !choices.one_in(4);
    }
};

// Scans data[0..len), which starts at absolute offset `base`, resuming after each stop.
void scan_chunk(sb::ws::FrameScanner& scanner, Sink& sink, const uint8_t* data, size_t len,
                uint64_t base) {
    size_t pos = 0;
    // Every call but the one that delivers a frame end held over from a stopped header
    // makes progress, so 2 * len + 2 calls is more than any chunk needs.
    for (size_t calls = 0;; ++calls) {
        SB_FUZZ_CHECK(calls <= 2 * len + 2, "scan() makes no progress at %zu of %zu", pos, len);
        sink.base = base + pos;
        sink.len = len - pos;
        size_t reached = scanner.scan(data + pos, len - pos, sink);
        SB_FUZZ_CHECK(reached <= len - pos, "scan() returned %zu for %zu bytes", reached,
                      len - pos);
        pos += reached;
        if (pos == len) break;
    }
}

// ---- MessageState against the RFC's rules, re-stated ----

// What a sender may send next (RFC 6455 §5.4, §5.5): a data message in progress takes
// continuations and interleaved control frames until its final frame.
struct MessageModel {
    bool in_message = false;
    uint64_t bytes = 0;  // saturating, as MessageState counts: only limits read it
};

using sb::ws::Violation;

void check_message_state(sb::ws::MessageState& state, MessageModel& model,
                         const sb::ws::FrameHeader& h, bool from_client) {
    constexpr uint64_t kSaturation = uint64_t{1} << 62;
    // Every rule this header breaks, and whether a verdict of None would be wrong.
    std::vector<Violation> broken;
    bool must_reject = false;
    auto breaks = [&](Violation v, bool required) {
        broken.push_back(v);
        must_reject = must_reject || required;
    };
    // §5.1: a client masks every frame; a server masks none.
    if (from_client && !h.masked) breaks(Violation::UnmaskedClientFrame, true);
    if (!from_client && h.masked) breaks(Violation::MaskedServerFrame, true);
    // §5.2: shortest length form, top bit clear. SPEC §3 makes it a 1002 for clients; for
    // a backend the proxy may pass it on or refuse it.
    if (h.bad_length) breaks(Violation::BadLength, from_client);
    bool control = false;
    switch (h.opcode) {
        case 0x8:
        case 0x9:
        case 0xA:
            control = true;
            // §5.5: control payloads are at most 125 bytes and never fragmented.
            if (h.payload_length > 125) breaks(Violation::ControlTooLong, true);
            if (!h.fin) breaks(Violation::ControlFragmented, true);
            break;
        case 0x0:
            if (!model.in_message) breaks(Violation::UnexpectedContinuation, true);
            break;
        case 0x1:
        case 0x2:
            if (model.in_message) breaks(Violation::ExpectedContinuation, true);
            break;
        default:  // 3-7 reserved for data frames, 11-15 for control frames
            breaks(Violation::ReservedOpcode, true);
            break;
    }

    Violation verdict = state.on_header(h, from_client);
    std::string what =
        "opcode " + std::to_string(h.opcode) + (from_client ? " from client" : " from backend");
    if (verdict == Violation::None) {
        SB_FUZZ_CHECK(!must_reject, "MessageState accepts a frame breaking %zu rules (%s)",
                      broken.size(), what.c_str());
        // Accepted: advance the model.
        if (!control) {
            uint64_t len = h.payload_length < kSaturation ? h.payload_length : kSaturation;
            model.bytes = h.opcode == 0 ? std::min(kSaturation, model.bytes + len) : len;
            model.in_message = !h.fin;
        }
    } else {
        bool listed = false;
        for (auto v : broken)
            listed = listed || v == verdict;
        SB_FUZZ_CHECK(listed, "MessageState says '%s' of a frame that does not break it (%s)",
                      std::string(sb::ws::violation_text(verdict)).c_str(), what.c_str());
        // Refused: the state stays as it was (protocol.h).
    }
    SB_FUZZ_CHECK(state.in_message() == model.in_message, "in_message %d, expected %d (%s)",
                  state.in_message(), model.in_message, what.c_str());
    SB_FUZZ_CHECK(state.message_bytes() == model.bytes, "message_bytes %llu, expected %llu",
                  static_cast<unsigned long long>(state.message_bytes()),
                  static_cast<unsigned long long>(model.bytes));
}

void fail_mismatch(const std::vector<Event>& expected, const std::vector<Event>& got, size_t i) {
    std::fprintf(stderr, "events differ at %zu\nreference:\n", i);
    for (const auto& e : expected)
        std::fprintf(stderr, "  %s\n", e.describe().c_str());
    std::fprintf(stderr, "scanner:\n");
    for (const auto& e : got)
        std::fprintf(stderr, "  %s\n", e.describe().c_str());
    std::abort();
}

bool same(const Event& ref, const Event& got) {
    // The scanner clears the top bit of a 64-bit length (frame_scanner.h): it still
    // reports a huge length, and flags bad_length, but no arithmetic on it can wrap.
    uint64_t ref_length = ref.payload_length & 0x7FFFFFFFFFFFFFFFull;
    return ref.is_header == got.is_header && ref.at == got.at && ref.fin == got.fin &&
           ref.rsv == got.rsv && ref.opcode == got.opcode && ref.masked == got.masked &&
           ref.mask == got.mask && ref_length == got.payload_length &&
           ref.header_length == got.header_length && ref.bad_length == got.bad_length &&
           ref.capture == got.capture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto input = sb::fuzz::split_input(data, size);
    Choices choices(input.choices, input.choices_size);
    std::vector<uint8_t> stream(input.subject, input.subject + input.subject_size);

    ReferenceEnd ref_end;
    std::vector<Event> expected = reference_decode(stream, ref_end);

    sb::ws::FrameScanner scanner;
    Sink sink{choices, 0, 0, {}, {}};
    size_t pos = 0;
    while (pos < stream.size()) {
        // The splice path: with a frame's header scanned and part of its payload still to
        // come, move some of that payload past the scanner. Never the frame's last byte
        // (skip_payload's contract) nor a control frame's first bytes, which the scanner
        // would have captured.
        uint64_t remaining = scanner.payload_remaining();
        if (remaining > 1 && scanner.partial_header_bytes() == 0 && choices.one_in(3)) {
            const auto& frame = scanner.current();
            uint64_t into_payload = frame.payload_length - remaining;
            uint64_t most = std::min<uint64_t>(remaining - 1, stream.size() - pos);
            if (most > 0 && (!frame.is_control() || into_payload >= kCapture)) {
                uint64_t n = choices.in_range(1, most);
                scanner.skip_payload(n);
                pos += n;
                continue;
            }
        }
        size_t n = choices.one_in(16) ? 0 : sb::fuzz::chunk_size(choices, stream.size() - pos);
        scan_chunk(scanner, sink, stream.data() + pos, n, pos);
        pos += n;
    }
    // End of stream: one empty scan delivers a frame end held back by a stopped header.
    sink.base = pos;
    sink.len = 0;
    scanner.scan(stream.data() + pos, 0, sink);

    for (size_t i = 0; i < expected.size() || i < sink.events.size(); ++i) {
        if (i >= expected.size() || i >= sink.events.size() || !same(expected[i], sink.events[i]))
            fail_mismatch(expected, sink.events, i);
    }
    // Where the stream stops, the scanner stops too: mid-header, mid-payload or between
    // frames.
    SB_FUZZ_CHECK(scanner.partial_header_bytes() == ref_end.partial_header,
                  "partial header %zu bytes, expected %zu", scanner.partial_header_bytes(),
                  ref_end.partial_header);
    uint64_t ref_remaining = ref_end.payload_remaining;
    SB_FUZZ_CHECK(scanner.payload_remaining() == ref_remaining,
                  "payload remaining %llu, expected %llu",
                  static_cast<unsigned long long>(scanner.payload_remaining()),
                  static_cast<unsigned long long>(ref_remaining));
    SB_FUZZ_CHECK(scanner.at_boundary() == (ref_end.partial_header == 0 && ref_remaining == 0),
                  "at_boundary() is wrong");

    // The same headers, in order, as a client's and as a backend's frames.
    for (bool from_client : {true, false}) {
        sb::ws::MessageState state;
        MessageModel model;
        for (const auto& h : sink.headers)
            check_message_state(state, model, h, from_client);
    }
    return 0;
}
