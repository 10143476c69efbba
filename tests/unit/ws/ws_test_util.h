// Helpers shared by the ws tests: a frame builder that can write every length form
// (including non-minimal ones, which the scanner must follow too) and a Sink that
// records FrameScanner callbacks with absolute stream offsets.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ws/frame_scanner.h"

namespace sb::ws::test {

enum class LengthForm { Minimal, Bits16, Bits64 };

struct FrameSpec {
    uint8_t opcode = kText;
    std::string payload;
    bool fin = true;
    uint8_t rsv = 0;                                            // 0..7, RSV1 is 4
    std::optional<std::array<uint8_t, 4>> mask = std::nullopt;  // set = masked
    LengthForm form = LengthForm::Minimal;
};

// The wire bytes of one frame; a masked frame's payload is masked with its key.
inline std::string make_frame(const FrameSpec& f) {
    std::string out;
    out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode));
    uint8_t mask_bit = f.mask ? 0x80 : 0;
    uint64_t n = f.payload.size();
    LengthForm form = f.form;
    if (form == LengthForm::Minimal) {
        form = n < 126 ? LengthForm::Minimal : n < 65536 ? LengthForm::Bits16 : LengthForm::Bits64;
    }
    if (form == LengthForm::Minimal) {
        out.push_back(static_cast<char>(mask_bit | n));
    } else if (form == LengthForm::Bits16) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.push_back(static_cast<char>((n >> shift) & 0xFF));
        }
    }
    if (f.mask) out.append(reinterpret_cast<const char*>(f.mask->data()), 4);
    for (size_t i = 0; i < f.payload.size(); ++i) {
        auto byte = static_cast<uint8_t>(f.payload[i]);
        if (f.mask) byte = static_cast<uint8_t>(byte ^ (*f.mask)[i & 3]);
        out.push_back(static_cast<char>(byte));
    }
    return out;
}

inline const uint8_t* bytes(std::string_view s) {
    return reinterpret_cast<const uint8_t*>(s.data());
}

inline std::string hex(std::span<const uint8_t> data) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint8_t b : data) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xF]);
    }
    return out;
}

// "H@6 fin=1 rsv=0 op=1 masked=1 len=5 hl=6 mask=01020304" for a header ending at
// absolute offset 6; "E@11 op=1 capture=" for the end of that frame.
inline std::string describe_header(const FrameHeader& h, uint64_t at) {
    return "H@" + std::to_string(at) + " fin=" + std::to_string(h.fin) +
           " rsv=" + std::to_string(h.rsv) + " op=" + std::to_string(h.opcode) +
           " masked=" + std::to_string(h.masked) + " len=" + std::to_string(h.payload_length) +
           " hl=" + std::to_string(h.header_length) + " mask=" + hex(h.mask) +
           (h.bad_length ? " bad_length" : "");
}

inline std::string describe_end(const FrameHeader& h, uint64_t at,
                                std::span<const uint8_t> capture) {
    return "E@" + std::to_string(at) + " op=" + std::to_string(h.opcode) +
           " capture=" + hex(capture);
}

// One FrameScanner callback, with its offset made absolute in the stream. Compared
// as a value (string descriptions are kept for failure messages and for tests that
// spell out the events they expect).
struct Event {
    bool is_header = false;
    uint64_t at = 0;
    FrameHeader header;
    std::array<uint8_t, FrameScanner::kCaptureBytes> capture{};
    size_t capture_len = 0;

    std::span<const uint8_t> captured() const { return {capture.data(), capture_len}; }
    std::string describe() const {
        return is_header ? describe_header(header, at) : describe_end(header, at, captured());
    }
    friend bool operator==(const Event& a, const Event& b) {
        const auto& x = a.header;
        const auto& y = b.header;
        return a.is_header == b.is_header && a.at == b.at && x.fin == y.fin && x.rsv == y.rsv &&
               x.opcode == y.opcode && x.masked == y.masked &&
               x.payload_length == y.payload_length && x.header_length == y.header_length &&
               x.bad_length == y.bad_length && std::equal(x.mask, x.mask + 4, y.mask) &&
               a.capture_len == b.capture_len &&
               std::equal(a.capture.begin(), a.capture.begin() + a.capture_len, b.capture.begin());
    }
    friend void PrintTo(const Event& e, std::ostream* os) { *os << e.describe(); }
};

inline std::vector<std::string> describe(const std::vector<Event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events)
        out.push_back(e.describe());
    return out;
}

// Records every callback. The test sets `base` to the absolute offset of the chunk
// before each scan() call. `stop_after_headers` / `stop_after_ends` make the matching
// callback return false.
struct RecordingSink {
    uint64_t base = 0;
    bool stop_after_headers = false;
    bool stop_after_ends = false;
    std::vector<Event> events;

    bool on_header(const FrameHeader& h, size_t end) {
        events.push_back({true, base + end, h, {}, 0});
        return !stop_after_headers;
    }
    bool on_frame_end(const FrameHeader& h, size_t end, std::span<const uint8_t> capture) {
        Event e{false, base + end, h, {}, capture.size()};
        std::copy(capture.begin(), capture.end(), e.capture.begin());
        events.push_back(e);
        return !stop_after_ends;
    }
};

// Scans `chunk`, which starts at absolute offset `base`, to its end, resuming after
// every stop. Returns the number of scan() calls it took.
inline size_t scan_chunk(FrameScanner& scanner, RecordingSink& sink, std::string_view chunk,
                         uint64_t base) {
    size_t pos = 0;
    size_t calls = 0;
    do {
        sink.base = base + pos;
        size_t reached = scanner.scan(bytes(chunk) + pos, chunk.size() - pos, sink);
        pos += reached;
        ++calls;
    } while (pos < chunk.size());
    return calls;
}

// Scans `stream` cut into chunks at `cuts` (ascending offsets) and returns the events.
inline std::vector<Event> scan_in_chunks(std::string_view stream, const std::vector<size_t>& cuts) {
    FrameScanner scanner;
    RecordingSink sink;
    size_t start = 0;
    for (size_t cut : cuts) {
        scan_chunk(scanner, sink, stream.substr(start, cut - start), start);
        start = cut;
    }
    scan_chunk(scanner, sink, stream.substr(start), start);
    return sink.events;
}

}  // namespace sb::ws::test
