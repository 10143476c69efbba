// WebSocket protocol vocabulary shared by the relay: close codes, the message-level
// checks a proxy can make from frame headers alone, and builders for the few control
// frames switchboard writes itself (Close and Ping).
//
// Pure functions and small value types; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ws/frame_scanner.h"

namespace sb::ws {

// Close codes (RFC 6455 §7.4.1) that switchboard sends or reports.
enum CloseCode : uint16_t {
    kNormalClosure = 1000,
    kGoingAway = 1001,
    kProtocolError = 1002,
    kPolicyViolation = 1008,
    kMessageTooBig = 1009,
    kServiceRestart = 1012,
    kTryAgainLater = 1013,
};

// Why a frame is not acceptable from its sender.
enum class Violation : uint8_t {
    None,
    UnmaskedClientFrame,     // client frames must be masked (§5.1)
    MaskedServerFrame,       // server frames must not be
    ReservedOpcode,          // opcodes 3-7 and 11-15
    ControlTooLong,          // control payload over 125 bytes (§5.5)
    ControlFragmented,       // control frame without FIN (§5.5)
    UnexpectedContinuation,  // continuation with no message in progress
    ExpectedContinuation,    // new data frame while a fragmented message is open
    BadLength,               // length not in its shortest form, or top bit set (§5.2)
};

std::string_view violation_text(Violation v);

// Message-level state of one direction, fed with every frame header in order.
// Tracks fragmentation so it can count whole messages and their sizes.
class MessageState {
  public:
    // Checks `h` against RFC 6455 framing rules for a sender of the given role and
    // advances the state. On a violation, the state is left unchanged.
    Violation on_header(const FrameHeader& h, bool from_client);

    // True when `h` completed a data message (its final frame).
    static bool ends_message(const FrameHeader& h) { return h.fin && !h.is_control(); }
    // Payload bytes of the data message in progress, including `h` once on_header ran.
    uint64_t message_bytes() const { return message_bytes_; }
    bool in_message() const { return in_message_; }

  private:
    // One word: a Pipe holds one per direction. The count saturates at 2^62, far
    // beyond any max_message_bytes.
    static constexpr uint64_t kMaxCount = uint64_t{1} << 62;
    static constexpr uint64_t kMask = kMaxCount * 2 - 1;  // the field's 63 bits
    uint64_t message_bytes_ : 63 = 0;
    bool in_message_ : 1 = false;
};

// Builds a complete Close frame with `code` and a short UTF-8 `reason` (truncated to
// fit 125 bytes). Frames for a backend are masked (`masked`), with `mask_key`.
std::string close_frame(uint16_t code, std::string_view reason, bool masked, uint32_t mask_key);
// Builds a Ping frame carrying `payload` (at most 125 bytes).
std::string ping_frame(std::string_view payload, bool masked, uint32_t mask_key);

// The close code in a Close frame payload's first two bytes, or 1005 (no status) when
// the payload is shorter (RFC 6455 §7.1.5).
uint16_t close_code_of(std::span<const uint8_t> payload);

}  // namespace sb::ws
