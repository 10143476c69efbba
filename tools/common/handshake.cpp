#include "common/handshake.h"

#include <openssl/evp.h>

#include "http/replies.h"
#include "http/upgrade_response.h"

namespace sb::tools {

namespace {

std::string base64(const unsigned char* data, size_t n) {
    std::string out(4 * ((n + 2) / 3), '\0');
    int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(static_cast<size_t>(written));
    return out;
}

}  // namespace

std::string accept_key(std::string_view key) {
    // The proxy's own computation (RFC 6455 §4.2.2): one definition for both.
    return http::websocket_accept(key);
}

std::string random_key(Rng& rng) {
    unsigned char raw[16];
    rng.fill(raw, sizeof raw);
    return base64(raw, sizeof raw);
}

UpgradeRequestCheck check_upgrade_request(std::string_view head,
                                          const http::MessageParser& parser) {
    UpgradeRequestCheck check;
    if (parser.method().in(head) != "GET") {
        check.reason = "not a GET request";
        return check;
    }
    std::string_view upgrade;
    if (!http::find_header(head, parser.headers(), "Upgrade", upgrade) ||
        !http::has_token(upgrade, "websocket")) {
        check.reason = "not a WebSocket upgrade";
        return check;
    }
    if (!http::find_header(head, parser.headers(), "Sec-WebSocket-Key", check.key) ||
        check.key.empty()) {
        check.reason = "missing Sec-WebSocket-Key";
        return check;
    }
    check.ok = true;
    return check;
}

std::string switching_protocols_response(std::string_view key, std::string_view backend_name) {
    std::string out;
    out.reserve(160 + backend_name.size());
    out.append("HTTP/1.1 101 Switching Protocols\r\n")
        .append("Upgrade: websocket\r\n")
        .append("Connection: Upgrade\r\n")
        .append("Sec-WebSocket-Accept: ")
        .append(accept_key(key))
        .append("\r\nX-Backend: ")
        .append(backend_name)
        .append("\r\n\r\n");
    return out;
}

std::string bad_request_response(std::string_view reason) {
    return http::reply(http::Status::BadRequest, reason);
}

std::string upgrade_request(std::string_view host, std::string_view path, std::string_view key) {
    std::string out;
    out.reserve(160 + host.size() + path.size());
    out.append("GET ")
        .append(path)
        .append(" HTTP/1.1\r\nHost: ")
        .append(host)
        .append("\r\nUpgrade: websocket\r\n")
        .append("Connection: Upgrade\r\n")
        .append("Sec-WebSocket-Version: 13\r\n")
        .append("Sec-WebSocket-Key: ")
        .append(key)
        .append("\r\n\r\n");
    return out;
}

UpgradeResponseCheck check_upgrade_response(std::string_view head,
                                            const http::MessageParser& parser,
                                            std::string_view key) {
    UpgradeResponseCheck check;
    check.status = parser.status_code();
    if (check.status != 101) {
        check.verdict = ResponseVerdict::Refused;
        check.reason = "answered " + std::to_string(check.status) + " instead of 101";
        return check;
    }
    const auto& headers = parser.headers();
    std::string_view value;
    if (!http::find_header(head, headers, "Upgrade", value) ||
        !http::has_token(value, "websocket")) {
        check.reason = "101 without Upgrade: websocket";
        return check;
    }
    if (!http::find_header(head, headers, "Connection", value) ||
        !http::has_token(value, "upgrade")) {
        check.reason = "101 without Connection: upgrade";
        return check;
    }
    if (!http::find_header(head, headers, "Sec-WebSocket-Accept", value) ||
        value != accept_key(key)) {
        check.reason = "wrong or missing Sec-WebSocket-Accept";
        return check;
    }
    // We offered no extension, so a server must not enable one (§4.1, point 5).
    if (http::find_header(head, headers, "Sec-WebSocket-Extensions", value) && !value.empty()) {
        check.reason = "extension enabled that was not offered";
        return check;
    }
    check.verdict = ResponseVerdict::Accepted;
    return check;
}

}  // namespace sb::tools
