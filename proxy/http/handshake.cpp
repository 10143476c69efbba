#include "http/handshake.h"

namespace sb::http {

namespace {

bool is_base64_char(char c) {
    return ascii_alnum(c) || c == '+' || c == '/';
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

HandshakeResult check_upgrade(std::string_view buffer, const MessageParser& parser,
                              UpgradeRequest& out) {
    const auto& headers = parser.headers();
    out.method = parser.method().in(buffer);
    out.target = parser.target().in(buffer);

    std::string_view upgrade, connection, key, version, host;
    bool has_upgrade = find_header(buffer, headers, "upgrade", upgrade);
    if (!has_upgrade || !has_token(upgrade, "websocket")) {
        return fail(Status::BadRequest,
                    has_upgrade ? "Upgrade header does not name websocket"
                                : "not a WebSocket upgrade request (plain HTTP proxying comes "
                                  "in a later release)");
    }
    if (out.method != "GET") return fail(Status::BadRequest, "WebSocket upgrade must use GET");
    if (parser.http_major() != 1 || parser.http_minor() != 1) {
        return fail(Status::BadRequest, "WebSocket upgrade must use HTTP/1.1");
    }
    if (out.target.empty() || out.target.front() != '/') {
        return fail(Status::BadRequest, "request target must be a path starting with /");
    }
    size_t hosts = count_headers(headers, buffer, "host");
    if (hosts != 1 || !find_header(buffer, headers, "host", host) || host.empty()) {
        return fail(Status::BadRequest,
                    hosts > 1 ? "more than one Host header" : "missing Host header");
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
    if (parser.has_body()) {
        return fail(Status::BadRequest, "WebSocket upgrade request must not have a body");
    }
    if (count_headers(headers, buffer, "origin") > 1) {
        return fail(Status::BadRequest, "more than one Origin header");
    }
    find_header(buffer, headers, "origin", out.origin);

    out.host = host;
    out.host_name = host_without_port(host);
    auto question = out.target.find('?');
    out.path = out.target.substr(0, question);
    out.query =
        question == std::string_view::npos ? std::string_view() : out.target.substr(question + 1);
    return {Status::Ok, {}};
}

}  // namespace sb::http
