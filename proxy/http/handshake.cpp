#include "http/handshake.h"

#include <arpa/inet.h>

#include <array>

namespace sb::http {

namespace {

bool is_base64_char(char c) {
    return ascii_alnum(c) || c == '+' || c == '/';
}

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 reg-name characters other than '%': unreserved and sub-delims.
constexpr std::array<bool, 256> kRegNameChars = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[c] = ascii_alnum(static_cast<char>(c));
    for (char c : std::string_view("-._~!$&'()*+,;="))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}();

bool valid_reg_name(std::string_view name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '%') {
            if (i + 2 >= name.size()) return false;
            if (!is_hex_digit(name[i + 1]) || !is_hex_digit(name[i + 2])) return false;
            i += 2;
        } else if (!kRegNameChars[static_cast<unsigned char>(name[i])]) {
            return false;
        }
    }
    return true;
}

// "[" IPv6address "]", checked by inet_pton, which takes no zone and no IPvFuture.
bool valid_ip_literal(std::string_view literal) {
    if (literal.size() < 3 || literal.front() != '[' || literal.back() != ']') return false;
    char text[64];  // the longest IPv6 text is 45 characters
    std::string_view inner = literal.substr(1, literal.size() - 2);
    if (inner.size() >= sizeof text) return false;
    inner.copy(text, inner.size());
    text[inner.size()] = '\0';
    unsigned char address[16];
    return inet_pton(AF_INET6, text, address) == 1;
}

bool valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5) return false;
    unsigned value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= 65535;
}

// The Transfer-Encoding or a non-zero Content-Length that makes an upgrade request
// carry a body, or an empty view. (MessageParser has already refused malformed and
// conflicting values.)
std::string_view body_header(std::string_view buffer, const std::vector<HeaderSpan>& headers) {
    for (const auto& h : headers) {
        auto name = h.name.in(buffer);
        if (iequals(name, "transfer-encoding")) return "Transfer-Encoding";
        if (iequals(name, "content-length")) {
            auto value = h.value.in(buffer);
            if (value.find_first_not_of("0 \t") != std::string_view::npos) return "Content-Length";
        }
    }
    return {};
}

HandshakeResult fail(Status status, std::string reason) {
    return {status, std::move(reason)};
}

}  // namespace

bool valid_websocket_key(std::string_view key) {
    // 16 bytes encode to 22 significant characters and "==" (RFC 6455 §4.1 step 7). The
    // last significant character carries 2 bits, so it must be one of "AQgw".
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (size_t i = 0; i < 22; ++i) {
        if (!is_base64_char(key[i])) return false;
    }
    return std::string_view("AQgw").find(key[21]) != std::string_view::npos;
}

bool valid_host(std::string_view host) {
    std::string_view name = host;
    std::string_view rest;
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        if (close == std::string_view::npos) return false;
        name = host.substr(0, close + 1);
        rest = host.substr(close + 1);
        if (!valid_ip_literal(name)) return false;
    } else {
        auto colon = host.find(':');
        name = host.substr(0, colon);
        if (colon != std::string_view::npos) rest = host.substr(colon);
        if (!valid_reg_name(name)) return false;
    }
    return rest.empty() || (rest.front() == ':' && valid_port(rest.substr(1)));
}

std::string host_without_port(std::string_view host) {
    std::string_view name = host;
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        name = close == std::string_view::npos ? host : host.substr(0, close + 1);
    } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
        name = host.substr(0, colon);
    }
    std::string out(name);
    for (auto& c : out)
        c = ascii_lower(c);
    // A fully qualified name may end in a dot; it names the same host.
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

bool wants_websocket(std::string_view buffer, const MessageParser& parser) {
    for (const auto& h : parser.headers()) {
        if (iequals(h.name.in(buffer), "upgrade") && has_token(h.value.in(buffer), "websocket"))
            return true;
    }
    return false;
}

namespace {

void split_target(UpgradeRequest& out) {
    auto question = out.target.find('?');
    out.path = out.target.substr(0, question);
    out.query =
        question == std::string_view::npos ? std::string_view() : out.target.substr(question + 1);
}

}  // namespace

HandshakeResult check_http_request(std::string_view buffer, const MessageParser& parser,
                                   UpgradeRequest& out) {
    const auto& headers = parser.headers();
    out.method = parser.method().in(buffer);
    out.target = parser.target().in(buffer);
    if (parser.http_major() != 1 || parser.http_minor() > 1) {
        return fail(Status::BadRequest, "only HTTP/1.0 and HTTP/1.1 are proxied");
    }
    // A reverse proxy is no tunnel: CONNECT's authority-form target names no resource.
    if (out.method == "CONNECT") return fail(Status::BadRequest, "CONNECT is not proxied");
    // origin-form (RFC 9112 §3.2.1); "OPTIONS *" (asterisk-form) is the one exception.
    bool asterisk = out.method == "OPTIONS" && out.target == "*";
    if (!asterisk && (out.target.empty() || out.target.front() != '/')) {
        return fail(Status::BadRequest, "request target must be a path starting with /");
    }
    if (out.target.find('#') != std::string_view::npos) {
        return fail(Status::BadRequest, "request target has a fragment");
    }
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly
    // one Host, and to any request with more than one or an invalid one.
    std::string_view host;
    size_t hosts = count_headers(headers, buffer, "host");
    if (hosts > 1) return fail(Status::BadRequest, "more than one Host header");
    if (hosts == 1) {
        find_header(buffer, headers, "host", host);
        if (!valid_host(host)) return fail(Status::BadRequest, "Host is not a valid host[:port]");
    } else if (parser.http_minor() == 1) {
        return fail(Status::BadRequest, "missing Host header");
    }
    for (const auto& h : headers) {
        if (!iequals(h.name.in(buffer), "connection")) continue;
        for (std::string_view name : {"content-length", "transfer-encoding", "host"}) {
            if (has_token(h.value.in(buffer), name)) {
                return fail(Status::BadRequest, "Connection names " + std::string(name));
            }
        }
    }
    out.host = host;
    out.host_name = host.empty() ? std::string() : host_without_port(host);
    out.origin = {};
    split_target(out);
    return {Status::Ok, {}};
}

HandshakeResult check_upgrade(std::string_view buffer, const MessageParser& parser,
                              UpgradeRequest& out) {
    const auto& headers = parser.headers();
    out.method = parser.method().in(buffer);
    out.target = parser.target().in(buffer);

    std::string_view upgrade, connection, key, version, host;
    bool has_upgrade = find_header(buffer, headers, "upgrade", upgrade);
    if (!has_upgrade || !has_token(upgrade, "websocket")) {
        return fail(Status::BadRequest, has_upgrade ? "Upgrade header does not name websocket"
                                                    : "not a WebSocket upgrade request");
    }
    if (out.method != "GET") return fail(Status::BadRequest, "WebSocket upgrade must use GET");
    if (parser.http_major() != 1 || parser.http_minor() != 1) {
        return fail(Status::BadRequest, "WebSocket upgrade must use HTTP/1.1");
    }
    if (out.target.empty() || out.target.front() != '/') {
        return fail(Status::BadRequest, "request target must be a path starting with /");
    }
    // origin-form (RFC 9112 §3.2.1) has no fragment; a client never sends one.
    if (out.target.find('#') != std::string_view::npos) {
        return fail(Status::BadRequest, "request target has a fragment");
    }
    size_t hosts = count_headers(headers, buffer, "host");
    if (hosts != 1 || !find_header(buffer, headers, "host", host) || host.empty()) {
        return fail(Status::BadRequest,
                    hosts > 1 ? "more than one Host header" : "missing Host header");
    }
    if (!valid_host(host)) {
        return fail(Status::BadRequest, "Host is not a valid host[:port]");
    }
    if (!find_header(buffer, headers, "connection", connection) ||
        !has_token(connection, "upgrade")) {
        return fail(Status::BadRequest, "Connection header lacks the upgrade token");
    }
    if (count_headers(headers, buffer, "sec-websocket-key") != 1 ||
        !find_header(buffer, headers, "sec-websocket-key", key)) {
        return fail(Status::BadRequest, "missing or repeated Sec-WebSocket-Key");
    }
    if (!valid_websocket_key(key)) {
        return fail(Status::BadRequest, "Sec-WebSocket-Key is not base64 of 16 bytes");
    }
    if (!find_header(buffer, headers, "sec-websocket-version", version)) {
        return fail(Status::BadRequest, "missing Sec-WebSocket-Version");
    }
    if (version != "13" || count_headers(headers, buffer, "sec-websocket-version") != 1) {
        return fail(Status::UpgradeRequired, "unsupported Sec-WebSocket-Version");
    }
    // RFC 9112 §6.3: any Transfer-Encoding, whatever its codings, or a Content-Length
    // other than 0, and what follows the head would be a body, not frames.
    if (auto what = body_header(buffer, headers); !what.empty() || parser.has_body()) {
        std::string reason = "WebSocket upgrade request must not have a body";
        if (!what.empty()) reason.append(" (").append(what).append(")");
        return fail(Status::BadRequest, std::move(reason));
    }
    if (count_headers(headers, buffer, "origin") > 1) {
        return fail(Status::BadRequest, "more than one Origin header");
    }
    find_header(buffer, headers, "origin", out.origin);

    out.host = host;
    out.host_name = host_without_port(host);
    split_target(out);
    return {Status::Ok, {}};
}

}  // namespace sb::http
