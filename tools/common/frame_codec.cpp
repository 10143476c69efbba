#include "common/frame_codec.h"

namespace sb::tools {

size_t encode_frame_header(uint8_t* out, bool fin, uint8_t opcode, uint64_t payload_length,
                           const uint8_t* mask) {
    out[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | (opcode & 0x0F));
    size_t at = 2;
    if (payload_length < 126) {
        out[1] = static_cast<uint8_t>(payload_length);
    } else if (payload_length <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<uint8_t>(payload_length >> 8);
        out[3] = static_cast<uint8_t>(payload_length);
        at = 4;
    } else {
        out[1] = 127;
        for (size_t i = 0; i < 8; ++i) {
            out[2 + i] = static_cast<uint8_t>(payload_length >> (56 - 8 * i));
        }
        at = 10;
    }
    if (mask != nullptr) {
        out[1] |= 0x80;
        std::memcpy(out + at, mask, 4);
        at += 4;
    }
    return at;
}

void mask_copy(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t mask[4], uint64_t offset) {
    // Rotate the key so that rotated[0] applies to dst[0]; then eight bytes at a time
    // (the compiler vectorises this loop), and the tail byte by byte. Blocks start at
    // multiples of 8, so rotated[i & 7] stays in phase with the 4-byte key.
    uint8_t rotated[8];
    for (size_t i = 0; i < 8; ++i)
        rotated[i] = mask[(offset + i) & 3];
    uint64_t key;
    std::memcpy(&key, rotated, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        std::memcpy(&word, src + i, 8);
        word ^= key;
        std::memcpy(dst + i, &word, 8);
    }
    for (; i < n; ++i)
        dst[i] = src[i] ^ rotated[i & 7];
}

}  // namespace sb::tools
