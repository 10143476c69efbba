// FrameScanner: follows the WebSocket frame structure (RFC 6455 §5.2) of one byte
// stream as it passes through, without copying or unmasking payloads.
//
// It reports each frame header and each frame end with the byte offset inside the
// chunk being scanned, which is what lets a Pipe count messages, enforce limits and
// insert its own control frames exactly at frame boundaries. Headers may arrive split
// across chunks at any byte; the scanner keeps at most 14 header bytes of state.
//
// For control frames it also keeps the first kCaptureBytes of payload, unmasked, so
// the close code of a Close frame and the token of a Pong can be read.
//
// One scanner per direction, owned by its Pipe; single-threaded; no allocation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace sb::ws {

enum Opcode : uint8_t {
    kContinuation = 0x0,
    kText = 0x1,
    kBinary = 0x2,
    kClose = 0x8,
    kPing = 0x9,
    kPong = 0xA,
};

struct FrameHeader {
    uint64_t payload_length = 0;
    uint8_t mask[4] = {0, 0, 0, 0};
    uint8_t header_length = 0;  // 2..14
    // Bit fields: two of these live in every session (one per direction's scanner).
    bool fin : 1 = false;
    bool masked : 1 = false;
    uint8_t rsv : 3 = 0;     // RSV1..3 as the top three bits of byte 0, shifted down (0..7)
    uint8_t opcode : 4 = 0;  // raw 4-bit opcode; reserved values are reported, not rejected
    // The length is not in its shortest form, or its 64-bit form has the top bit set
    // (RFC 6455 §5.2: "the minimal number of bytes MUST be used"; "the most
    // significant bit MUST be 0"). Reported, not rejected: MessageState judges.
    bool bad_length : 1 = false;

    bool is_control() const { return (opcode & 0x8) != 0; }
};

// The length of the header whose second byte is `byte1` (2..14): all it takes to
// know is the mask bit and the 7-bit length.
inline uint8_t frame_header_size(uint8_t byte1) {
    uint8_t len7 = byte1 & 0x7F;
    uint8_t size = 2 + ((byte1 & 0x80) ? 4 : 0);
    if (len7 == 126) size += 2;
    if (len7 == 127) size += 8;
    return size;
}

// Decodes a complete header from `p` (at least frame_header_size(p[1]) bytes).
inline void decode_frame_header(const uint8_t* p, FrameHeader& h) {
    h.fin = (p[0] & 0x80) != 0;
    h.rsv = static_cast<uint8_t>((p[0] >> 4) & 0x7);
    h.opcode = p[0] & 0x0F;
    h.masked = (p[1] & 0x80) != 0;
    uint8_t len7 = p[1] & 0x7F;
    size_t at = 2;
    h.bad_length = false;
    if (len7 < 126) {
        h.payload_length = len7;
    } else if (len7 == 126) {
        h.payload_length = (uint64_t{p[2]} << 8) | p[3];
        h.bad_length = h.payload_length < 126;
        at = 4;
    } else {
        uint64_t n = 0;
        for (size_t i = 0; i < 8; ++i)
            n = (n << 8) | p[2 + i];
        // RFC 6455 requires the top bit clear; mask it so a hostile length cannot wrap
        // any arithmetic. The reader still sees a huge length and applies its limits.
        h.bad_length = n > 0x7FFFFFFFFFFFFFFFull || n <= 0xFFFF;
        h.payload_length = n & 0x7FFFFFFFFFFFFFFFull;
        at = 10;
    }
    if (h.masked) {
        std::memcpy(h.mask, p + at, 4);
        at += 4;
    } else {
        std::memset(h.mask, 0, 4);
    }
    h.header_length = static_cast<uint8_t>(at);
}

class FrameScanner {
  public:
    static constexpr size_t kCaptureBytes = 8;

    // Scans data[0..len). For each complete header calls
    //     bool sink.on_header(const FrameHeader&, size_t end)
    // where `end` is the offset just past the header (the header may have started in
    // an earlier chunk), and for each complete frame calls
    //     bool sink.on_frame_end(const FrameHeader&, size_t end, std::span<const uint8_t> capture)
    // where `end` is the offset just past the frame's last byte. A callback returning
    // false stops the scan; the return value is the offset reached, and scanning may
    // resume from there with the rest of the chunk.
    template <class Sink>
    size_t scan(const uint8_t* data, size_t len, Sink& sink);

    // True between frames: no partial header is buffered and no payload is pending.
    bool at_boundary() const { return have_ == 0 && remaining_ == 0 && !end_pending_; }
    // Bytes of the current frame's payload not yet seen.
    uint64_t payload_remaining() const { return remaining_; }
    // Header bytes of an incomplete header seen in earlier chunks (0..13).
    size_t partial_header_bytes() const { return have_; }
    const FrameHeader& current() const { return current_; }

    // Skips `n` payload bytes that the caller moved without scanning them (splice).
    // Requires n <= payload_remaining() and n < payload_remaining() (the frame end
    // is always scanned, so its callback fires).
    void skip_payload(uint64_t n) {
        remaining_ -= n;
        payload_seen_ = saturating_add(payload_seen_, n);
    }

  private:
    void capture(const uint8_t* p, size_t n);
    static uint8_t saturating_add(uint8_t a, uint64_t n) {
        return static_cast<uint8_t>(std::min<uint64_t>(255, a + n));
    }
    std::span<const uint8_t> captured() const { return {capture_, capture_len_}; }

    FrameHeader current_;
    uint64_t remaining_ = 0;  // payload bytes left in the current frame
    // Payload bytes of the current frame already passed, counted up to 255: only the
    // first kCaptureBytes matter (for the capture and its mask index).
    uint8_t payload_seen_ = 0;
    uint8_t buf_[14] = {};  // a header split across chunks
    uint8_t have_ = 0;      // bytes in buf_
    uint8_t capture_[kCaptureBytes] = {};
    uint8_t capture_len_ = 0;
    bool end_pending_ = false;  // on_header stopped the scan of a frame with no payload
};

// ---- inline definitions: this loop runs for every relayed chunk ----

inline void FrameScanner::capture(const uint8_t* p, size_t n) {
    // Only the first kCaptureBytes of a control frame's payload are kept.
    while (n > 0 && capture_len_ < kCaptureBytes) {
        uint8_t byte = *p++;
        if (current_.masked) byte ^= current_.mask[payload_seen_ & 3];
        capture_[capture_len_++] = byte;
        ++payload_seen_;
        --n;
    }
    payload_seen_ = saturating_add(payload_seen_, n);
}

template <class Sink>
size_t FrameScanner::scan(const uint8_t* data, size_t len, Sink& sink) {
    size_t pos = 0;
    if (end_pending_) {
        end_pending_ = false;
        if (!sink.on_frame_end(current_, pos, captured())) return pos;
    }
    while (pos < len) {
        if (remaining_ > 0) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, len - pos));
            if (current_.is_control()) {
                capture(data + pos, take);
            } else {
                payload_seen_ = saturating_add(payload_seen_, take);
            }
            pos += take;
            remaining_ -= take;
            if (remaining_ == 0 && !sink.on_frame_end(current_, pos, captured())) return pos;
            continue;
        }
        // A header starts here, or continues one buffered from an earlier chunk.
        if (have_ == 0 && len - pos >= 2 && len - pos >= frame_header_size(data[pos + 1])) {
            decode_frame_header(data + pos, current_);  // the common case: the whole header is here
            pos += current_.header_length;
        } else {
            buf_[have_++] = data[pos++];
            while (pos < len && (have_ < 2 || have_ < frame_header_size(buf_[1]))) {
                buf_[have_++] = data[pos++];
            }
            if (have_ < 2 || have_ < frame_header_size(buf_[1])) break;  // still incomplete
            decode_frame_header(buf_, current_);
            have_ = 0;
        }
        remaining_ = current_.payload_length;
        payload_seen_ = 0;
        capture_len_ = 0;
        if (!sink.on_header(current_, pos)) {
            end_pending_ = remaining_ == 0;
            return pos;
        }
        if (remaining_ == 0 && !sink.on_frame_end(current_, pos, captured())) return pos;
    }
    return pos;
}

}  // namespace sb::ws
