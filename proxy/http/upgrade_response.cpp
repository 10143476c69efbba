#include "http/upgrade_response.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <iterator>
#include <vector>

namespace sb::http {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

HandshakeResult bad_gateway(std::string reason) {
    return {Status::BadGateway, std::move(reason)};
}

// Whether any header named `name` lists `token`: a header that is a list may come in
// several fields, read as one (RFC 9110 §5.3).
bool any_has_token(std::string_view buffer, const std::vector<HeaderSpan>& headers,
                   std::string_view name, std::string_view token) {
    for (const auto& h : headers) {
        if (iequals(h.name.in(buffer), name) && has_token(h.value.in(buffer), token)) return true;
    }
    return false;
}

}  // namespace

std::string websocket_accept(std::string_view client_key) {
    std::string input;
    input.reserve(client_key.size() + kGuid.size());
    input.append(client_key).append(kGuid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    // One-shot SHA-1 of memory; EVP_Digest fails only when allocation does, and then
    // an accept value of zeros matches no key: the handshake fails, nothing crashes.
    unsigned int length = 0;
    // Fetched once per process: OpenSSL 3 otherwise looks the algorithm up again on
    // every call (an implicit fetch), which is slow.
    static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    const EVP_MD* md = sha1 != nullptr ? sha1 : EVP_sha1();
    if (EVP_Digest(input.data(), input.size(), digest, &length, md, nullptr) != 1 ||
        length != SHA_DIGEST_LENGTH) {
        std::fill(std::begin(digest), std::end(digest), 0);
    }
    // 20 bytes are 28 base64 characters; EVP_EncodeBlock adds a NUL.
    unsigned char text[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int written = EVP_EncodeBlock(text, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(written));
}

HandshakeResult check_upgrade_response(std::string_view buffer, const MessageParser& parser,
                                       std::string_view client_key) {
    if (parser.status_code() != 101) {
        return bad_gateway("backend's answer is not a 101 (" +
                           std::to_string(parser.status_code()) + ")");
    }
    if (parser.http_major() != 1 || parser.http_minor() != 1) {
        return bad_gateway("backend's 101 is not HTTP/1.1");
    }
    const auto& headers = parser.headers();
    std::string_view value;
    if (count_headers(headers, buffer, "upgrade") != 1 ||
        !find_header(buffer, headers, "upgrade", value) || !iequals(value, "websocket")) {
        return bad_gateway("backend's 101 has no Upgrade: websocket");
    }
    if (!any_has_token(buffer, headers, "connection", "upgrade")) {
        return bad_gateway("backend's 101 has no Connection: upgrade");
    }
    if (count_headers(headers, buffer, "sec-websocket-accept") > 1) {
        return bad_gateway("backend's 101 has more than one Sec-WebSocket-Accept");
    }
    if (!find_header(buffer, headers, "sec-websocket-accept", value) ||
        value != websocket_accept(client_key)) {
        return bad_gateway("backend's 101 has no matching Sec-WebSocket-Accept");
    }
    // What follows a 101 is frames; a 101 announcing a body is confused about framing.
    // (has_body() is false for every 1xx, so the headers are read here.)
    for (const auto& h : headers) {
        auto name = h.name.in(buffer);
        if (iequals(name, "transfer-encoding") ||
            (iequals(name, "content-length") &&
             h.value.in(buffer).find_first_not_of("0 \t") != std::string_view::npos)) {
            return bad_gateway("backend's 101 announces a body");
        }
    }
    return {Status::Ok, {}};
}

std::string own_upgrade_response(std::string_view client_key, std::string_view subprotocol) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    out += websocket_accept(client_key);
    out += "\r\n";
    if (!subprotocol.empty()) {
        out += "Sec-WebSocket-Protocol: ";
        out += subprotocol;
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

std::string_view first_subprotocol(std::string_view buffer, const MessageParser& parser) {
    std::string_view offered;
    if (!find_header(buffer, parser.headers(), "sec-websocket-protocol", offered)) return {};
    std::string_view first = offered.substr(0, offered.find(','));
    while (!first.empty() && (first.front() == ' ' || first.front() == '\t'))
        first.remove_prefix(1);
    while (!first.empty() && (first.back() == ' ' || first.back() == '\t'))
        first.remove_suffix(1);
    // RFC 9110 §5.6.2 tchar: anything else is not a subprotocol name, and is never
    // written back into a header.
    auto tchar = [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    };
    if (first.empty() || first.size() > 256 || !std::all_of(first.begin(), first.end(), tchar))
        return {};
    return first;
}

}  // namespace sb::http
