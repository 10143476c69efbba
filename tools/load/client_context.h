// ClientContext: what every sb-load Client of one run shares: the target, the message
// size, the timeouts, the TLS settings, the random generator, the payload pattern, and
// the buffers a client borrows while one of its callbacks runs (read, decrypted and
// transmit scratch).
//
// Payloads are not stored per message. Message `seq` of client `id` is the slice of a
// random pattern starting at pattern_start(id, seq); the pattern is kept twice over so
// that any slice of up to kPatternPeriod bytes is contiguous. A sender generates
// chunks from it and a receiver compares chunks with it, so an echo is checked byte
// for byte at any size without keeping a copy, and an echo of another connection's or
// another message's payload (cross-talk, reordering) shows up as a mismatch.
//
// Created by main() before the loop runs; outlives every Client; single-threaded.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "common/frame_codec.h"
#include "common/rng.h"
#include "load/tls_context.h"

namespace sb::tools {

struct ClientContext {
    static constexpr size_t kPatternPeriod = 64 * 1024;  // a power of two
    static constexpr size_t kChunkBytes = 64 * 1024;     // generation and read unit

    explicit ClientContext(uv_loop_t* l) : loop(l) {
        read_buffer.reset(new uint8_t[kChunkBytes]);
        plain_buffer.reset(new uint8_t[kChunkBytes]);
        tx_buffer.reset(new uint8_t[kMaxFrameHeader + kChunkBytes]);
        pattern.reset(new uint8_t[2 * kPatternPeriod]);
        Rng pattern_rng(0x5B10AD);  // fixed: runs are reproducible byte for byte
        pattern_rng.fill(pattern.get(), kPatternPeriod);
        std::memcpy(pattern.get() + kPatternPeriod, pattern.get(), kPatternPeriod);
    }

    // Where message `seq` of client `id` starts in the pattern.
    static size_t pattern_start(uint32_t id, uint64_t seq) {
        return static_cast<size_t>(mix64((uint64_t{id} << 40) ^ seq) & (kPatternPeriod - 1));
    }
    // `n` (<= kPatternPeriod) pattern bytes for payload offset `offset` of a message
    // starting at `start`.
    const uint8_t* pattern_at(size_t start, uint64_t offset) const {
        return pattern.get() + ((start + offset) & (kPatternPeriod - 1));
    }

    uv_loop_t* loop;
    sockaddr_storage address{};
    std::string host_header;  // Host header value
    std::string path;         // request target
    uint64_t message_size = 64;
    uint64_t connect_timeout_ns = 10'000'000'000;  // TCP connect + handshake
    uint64_t close_timeout_ns = 5'000'000'000;     // our Close until the server's answer
    TlsContext* tls = nullptr;                     // --tls: owned by main(); null = plain TCP
    Rng rng;
    std::unique_ptr<uint8_t[]> read_buffer;   // kChunkBytes: what the socket gave
    std::unique_ptr<uint8_t[]> plain_buffer;  // kChunkBytes: what TLS decrypted from it
    std::unique_ptr<uint8_t[]> tx_buffer;     // a frame header + kChunkBytes
    std::unique_ptr<uint8_t[]> pattern;       // 2 * kPatternPeriod
};

}  // namespace sb::tools
