// The WebSocket opening handshake (RFC 6455 §4) from both ends, for the tools: the
// server side of sb-echo-backend and the client side of sb-load.
//
// Heads are parsed by the proxy's strict http::MessageParser; this file only applies
// the WebSocket rules on top and builds the few heads the tools send. The server
// checks are deliberately minimal (GET, Upgrade: websocket, a Sec-WebSocket-Key) so
// that the backend accepts whatever a proxy under test forwards; the client checks
// are complete, since a wrong answer from a proxy is exactly what sb-load must catch.
//
// Pure functions; no I/O.
#pragma once

#include <string>
#include <string_view>

#include "common/rng.h"
#include "http/message_parser.h"

namespace sb::tools {

// Largest request or response head the tools accept.
inline constexpr size_t kMaxHeadBytes = 16 * 1024;

// base64(SHA-1(key + the RFC 6455 GUID)): the Sec-WebSocket-Accept for `key`.
std::string accept_key(std::string_view key);

// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string random_key(Rng& rng);

// ---- server side ----

struct UpgradeRequestCheck {
    bool ok = false;
    std::string_view key;  // Sec-WebSocket-Key, a view into the head buffer
    std::string reason;    // why not, for the 400 body
};

// Checks a complete request head: method GET, an Upgrade header naming websocket and
// a non-empty Sec-WebSocket-Key. Anything else is refused with 400.
UpgradeRequestCheck check_upgrade_request(std::string_view head, const http::MessageParser& parser);

// The 101 answer to an accepted upgrade, naming the backend in `X-Backend`.
std::string switching_protocols_response(std::string_view key, std::string_view backend_name);

// The 400 answer (with `Connection: close`) to anything else.
std::string bad_request_response(std::string_view reason);

// ---- client side ----

// The upgrade request head for `path` on `host` (the Host header, with its port).
std::string upgrade_request(std::string_view host, std::string_view path, std::string_view key);

enum class ResponseVerdict {
    Accepted,   // 101 with a matching Sec-WebSocket-Accept
    Refused,    // a well-formed answer other than 101 (status says which)
    Malformed,  // a 101 breaking the rules (wrong accept, missing Upgrade, ...)
};

struct UpgradeResponseCheck {
    ResponseVerdict verdict = ResponseVerdict::Malformed;
    int status = 0;
    std::string reason;
};

// Checks a complete response head against the key the request carried.
UpgradeResponseCheck check_upgrade_response(std::string_view head,
                                            const http::MessageParser& parser,
                                            std::string_view key);

}  // namespace sb::tools
