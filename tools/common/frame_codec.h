// WebSocket framing for the tools' own endpoints (RFC 6455 §5): header encoding,
// masking, and FrameReader, an incremental decoder that unmasks payloads in place.
//
// The proxy's ws::FrameScanner deliberately never touches payloads; the tools are
// the endpoints, so they must unmask, inspect and answer them. FrameReader therefore
// reuses the proxy's FrameHeader and its header decoding (ws::decode_frame_header) but
// hands each payload slice to its sink, already unmasked, without copying it.
//
// Pure code, no I/O and no allocation; one FrameReader per connection, single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ws/frame_scanner.h"

namespace sb::tools {

using ws::FrameHeader;

// The longest frame header: 2 bytes, a 64-bit length and a 4-byte mask.
inline constexpr size_t kMaxFrameHeader = 14;

// Writes a frame header for a payload of `payload_length` bytes into `out` (at least
// kMaxFrameHeader bytes) and returns its length. `mask` is null for an unmasked frame
// (server to client) or points at the 4-byte masking key (client to server).
size_t encode_frame_header(uint8_t* out, bool fin, uint8_t opcode, uint64_t payload_length,
                           const uint8_t* mask);

// XORs `n` bytes with the masking key, as §5.3 defines: byte i of the payload uses
// mask[i % 4], where `offset` is the payload position of data[0]. `dst` may equal `src`.
void mask_copy(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t mask[4], uint64_t offset);

// Follows the frames of one byte stream as chunks arrive, in any split.
class FrameReader {
  public:
    // Feeds data[0..len). The payload is unmasked in place, so `data` must be writable.
    // For every frame the sink gets, in order:
    //     bool on_frame_header(const FrameHeader&)
    //     bool on_frame_payload(uint8_t* bytes, size_t n)   zero or more times, n > 0
    //     bool on_frame_end(const FrameHeader&)
    // A callback returning false stops the feed (the connection is closing); feed()
    // then returns false and the rest of the chunk is dropped.
    template <class Sink>
    bool feed(uint8_t* data, size_t len, Sink& sink);

    // True between frames (used to know where a frame of our own may be inserted).
    bool at_boundary() const { return have_ == 0 && remaining_ == 0; }

  private:
    FrameHeader header_;
    uint64_t remaining_ = 0;             // payload bytes of the current frame still to come
    uint64_t offset_ = 0;                // payload bytes of the current frame already passed on
    uint8_t buf_[kMaxFrameHeader] = {};  // a header split across chunks
    uint8_t have_ = 0;                   // bytes in buf_
};

// ---- inline definitions: this runs for every chunk read ----

template <class Sink>
bool FrameReader::feed(uint8_t* data, size_t len, Sink& sink) {
    size_t pos = 0;
    while (pos < len) {
        if (remaining_ > 0) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, len - pos));
            if (header_.masked) mask_copy(data + pos, data + pos, take, header_.mask, offset_);
            offset_ += take;
            remaining_ -= take;
            if (!sink.on_frame_payload(data + pos, take)) return false;
            pos += take;
            if (remaining_ == 0 && !sink.on_frame_end(header_)) return false;
            continue;
        }
        // A header starts here, or continues one buffered from the previous chunk.
        if (have_ == 0 && len - pos >= 2 && len - pos >= ws::frame_header_size(data[pos + 1])) {
            ws::decode_frame_header(data + pos,
                                    header_);  // the common case: the whole header is here
            pos += header_.header_length;
        } else {
            buf_[have_++] = data[pos++];
            while (pos < len && (have_ < 2 || have_ < ws::frame_header_size(buf_[1]))) {
                buf_[have_++] = data[pos++];
            }
            if (have_ < 2 || have_ < ws::frame_header_size(buf_[1])) return true;  // still partial
            ws::decode_frame_header(buf_, header_);
            have_ = 0;
        }
        remaining_ = header_.payload_length;
        offset_ = 0;
        if (!sink.on_frame_header(header_)) return false;
        if (remaining_ == 0 && !sink.on_frame_end(header_)) return false;
    }
    return true;
}

}  // namespace sb::tools
