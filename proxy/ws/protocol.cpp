#include "ws/protocol.h"

#include <algorithm>

namespace sb::ws {

std::string_view violation_text(Violation v) {
    switch (v) {
        case Violation::None:
            return "none";
        case Violation::UnmaskedClientFrame:
            return "unmasked client frame";
        case Violation::MaskedServerFrame:
            return "masked server frame";
        case Violation::ReservedOpcode:
            return "reserved opcode";
        case Violation::ControlTooLong:
            return "control frame over 125 bytes";
        case Violation::ControlFragmented:
            return "fragmented control frame";
        case Violation::UnexpectedContinuation:
            return "continuation frame outside a message";
        case Violation::ExpectedContinuation:
            return "new message inside a fragmented message";
        case Violation::BadLength:
            return "payload length not in its shortest form, or with its top bit set";
    }
    return "unknown";
}

Violation MessageState::on_header(const FrameHeader& h, bool from_client) {
    if (from_client && !h.masked) return Violation::UnmaskedClientFrame;
    if (!from_client && h.masked) return Violation::MaskedServerFrame;
    if (h.bad_length) return Violation::BadLength;
    switch (h.opcode) {
        case kClose:
        case kPing:
        case kPong:
            if (h.payload_length > 125) return Violation::ControlTooLong;
            if (!h.fin) return Violation::ControlFragmented;
            return Violation::None;  // control frames may sit inside a fragmented message
        case kContinuation:
            if (!in_message_) return Violation::UnexpectedContinuation;
            message_bytes_ =
                std::min(kMaxCount, message_bytes_ + std::min(kMaxCount, h.payload_length)) & kMask;
            break;
        case kText:
        case kBinary:
            if (in_message_) return Violation::ExpectedContinuation;
            in_message_ = true;
            message_bytes_ = std::min(kMaxCount, h.payload_length) & kMask;
            break;
        default:
            return Violation::ReservedOpcode;
    }
    if (h.fin) in_message_ = false;
    return Violation::None;
}

namespace {

std::string frame(uint8_t opcode, std::string_view payload, bool masked, uint32_t mask_key) {
    std::string out;
    out.reserve(2 + 4 + payload.size());
    out.push_back(static_cast<char>(0x80 | opcode));
    out.push_back(static_cast<char>((masked ? 0x80 : 0) | payload.size()));
    uint8_t mask[4] = {static_cast<uint8_t>(mask_key >> 24), static_cast<uint8_t>(mask_key >> 16),
                       static_cast<uint8_t>(mask_key >> 8), static_cast<uint8_t>(mask_key)};
    if (masked) out.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < payload.size(); ++i) {
        uint8_t byte = static_cast<uint8_t>(payload[i]);
        out.push_back(static_cast<char>(masked ? byte ^ mask[i & 3] : byte));
    }
    return out;
}

}  // namespace

std::string close_frame(uint16_t code, std::string_view reason, bool masked, uint32_t mask_key) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    // Cut the reason to fit, but never inside a UTF-8 character: a reason that is not
    // valid UTF-8 obliges the peer to fail the connection (RFC 6455 §8.1).
    size_t n = std::min<size_t>(reason.size(), 123);
    while (n > 0 && n < reason.size() && (static_cast<uint8_t>(reason[n]) & 0xC0) == 0x80)
        --n;
    payload.append(reason.substr(0, n));
    return frame(kClose, payload, masked, mask_key);
}

std::string ping_frame(std::string_view payload, bool masked, uint32_t mask_key) {
    return frame(kPing, payload.substr(0, 125), masked, mask_key);
}

uint16_t close_code_of(std::span<const uint8_t> payload) {
    if (payload.size() < 2) return 1005;
    return static_cast<uint16_t>((payload[0] << 8) | payload[1]);
}

}  // namespace sb::ws
