#include "health/probe_request.h"

#include <openssl/evp.h>

#include "http/upgrade_response.h"

namespace sb::health {

std::string probe_request(const config::HealthCheckConfig& check, std::string_view host,
                          std::string_view key) {
    using Kind = config::HealthCheckConfig::Kind;
    if (check.kind == Kind::Tcp) return {};
    std::string out;
    out.reserve(256);
    out.append("GET ").append(check.path).append(" HTTP/1.1\r\nHost: ").append(host);
    out.append("\r\nUser-Agent: switchboard-health-check\r\n");
    if (check.kind == Kind::Http) {
        out.append("Connection: close\r\n\r\n");
        return out;
    }
    out.append("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.append(key).append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
    return out;
}

std::string random_websocket_key(std::mt19937_64& rng) {
    unsigned char raw[16];
    uint64_t a = rng(), b = rng();
    for (int i = 0; i < 8; ++i) {
        raw[i] = static_cast<unsigned char>(a >> (8 * i));
        raw[8 + i] = static_cast<unsigned char>(b >> (8 * i));
    }
    unsigned char text[25];  // 24 characters and EVP_EncodeBlock's NUL
    int n = EVP_EncodeBlock(text, raw, sizeof(raw));
    return std::string(reinterpret_cast<char*>(text), static_cast<size_t>(n));
}

std::string close_frame_1000(uint32_t mask) {
    const unsigned char m[4] = {
        static_cast<unsigned char>(mask >> 24), static_cast<unsigned char>(mask >> 16),
        static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
    const unsigned char code[2] = {0x03, 0xe8};  // 1000, network order
    std::string frame;
    frame.push_back(static_cast<char>(0x88));  // FIN, opcode 8 (Close)
    frame.push_back(static_cast<char>(0x82));  // masked, 2 bytes of payload
    for (unsigned char c : m)
        frame.push_back(static_cast<char>(c));
    frame.push_back(static_cast<char>(code[0] ^ m[0]));
    frame.push_back(static_cast<char>(code[1] ^ m[1]));
    return frame;
}

Verdict check_answer(const config::HealthCheckConfig& check, std::string_view buffer,
                     http::MessageParser& parser, std::string_view key, size_t max_head) {
    using Kind = config::HealthCheckConfig::Kind;
    Verdict v;
    for (;;) {
        auto status = parser.parse(buffer);
        if (status == http::MessageParser::Status::Error) {
            v.state = Verdict::State::Failed;
            v.error = "bad response: " + parser.error();
            return v;
        }
        if (status == http::MessageParser::Status::NeedMore) {
            if (buffer.size() - parser.head_begin() > max_head) {
                v.state = Verdict::State::Failed;
                v.error = "response head too large";
            }
            return v;
        }
        if (!parser.is_interim()) break;
        parser.start_next();  // 100 Continue, 103 Early Hints: the answer follows
    }
    int code = parser.status_code();
    if (check.kind == Kind::WebSocket) {
        if (code != 101) {
            v.state = Verdict::State::Failed;
            v.error = "status " + std::to_string(code) + " (expected 101)";
            return v;
        }
        auto result = http::check_upgrade_response(buffer, parser, key);
        if (result.status != http::Status::Ok) {
            v.state = Verdict::State::Failed;
            v.error = result.reason;
            return v;
        }
        v.state = Verdict::State::Ok;
        return v;
    }
    if (code < 200 || code > 299) {
        v.state = Verdict::State::Failed;
        v.error = "status " + std::to_string(code);
        return v;
    }
    v.state = Verdict::State::Ok;
    return v;
}

}  // namespace sb::health
