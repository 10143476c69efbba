// The client side of the WebSocket opening handshake (RFC 6455 §4.2.1): checks a
// parsed request head against every rule SPEC §3 lists and extracts what routing,
// balancing and logging need. Pure; no I/O.
//
// Accepted: GET, HTTP/1.1, an origin-form target (RFC 9112 §3.2.1: a path, optional
// query, no fragment), exactly one Host that is a valid host[:port] (valid_host), an
// Upgrade header naming websocket, a Connection header with the upgrade token,
// exactly one Sec-WebSocket-Key that is base64 of 16 bytes, exactly one
// Sec-WebSocket-Version: 13, at most one Origin, and no body: no Transfer-Encoding at
// all and no Content-Length but 0 (RFC 9112 §6.3; SPEC §3 Handshake).
// Refused with 400: anything else, except a Sec-WebSocket-Version other than one 13,
// which gets 426 (RFC 6455 §4.4). The head itself has already passed MessageParser's
// strict checks (CRLF only, no folding, token header names, sane framing headers).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/message_parser.h"
#include "http/replies.h"

namespace sb::http {

struct UpgradeRequest {
    std::string_view method;
    std::string_view target;  // request target as sent: path and query
    std::string_view path;    // target without the query
    std::string_view query;   // after '?', without it
    std::string_view host;    // Host header as sent
    std::string host_name;    // lower-cased Host without the port, for routing
    std::string_view origin;  // empty when absent
};

struct HandshakeResult {
    Status status = Status::Ok;  // Ok, or the answer to send
    std::string reason;          // why, for the reply body and the access log
};

// Validates the head in `buffer` described by `parser`. On success fills `out`
// (views into `buffer`).
HandshakeResult check_upgrade(std::string_view buffer, const MessageParser& parser,
                              UpgradeRequest& out);

// Whether the request asks for a WebSocket upgrade (an Upgrade header naming
// websocket): it is then held to check_upgrade's rules; any other request is plain
// HTTP (SPEC §3 HTTP requests), whose other Upgrade offers (h2c...) are hop-by-hop and
// dropped.
bool wants_websocket(std::string_view buffer, const MessageParser& parser);

// Validates a plain HTTP request head (SPEC §3 HTTP requests; RFC 9112 §3.2): an
// origin-form target, HTTP/1.0 or 1.1, no CONNECT, and for HTTP/1.1 exactly one Host
// that is a valid host[:port] (HTTP/1.0 may omit it: host_name is then empty). Fills
// `out` as check_upgrade does (origin stays empty). Refusals are 400.
HandshakeResult check_http_request(std::string_view buffer, const MessageParser& parser,
                                   UpgradeRequest& out);

// True if `key` is base64 of exactly 16 bytes (24 characters, "==" padded).
bool valid_websocket_key(std::string_view key);

// True if `host` is a valid Host value, uri-host [ ":" port ] (RFC 9112 §3.2, RFC 9110
// §7.2), read strictly by RFC 3986 §3.2.2:
//   - a reg-name: one or more unreserved, pct-encoded (%XX) or sub-delims characters
//     (this covers dotted IPv4 and names with a trailing dot); raw non-ASCII bytes,
//     whitespace, controls and "@/?#[]\" and the like are refused;
//   - or a bracketed IPv6 address ("[::1]"). IPvFuture ("[v1.x]") and zone
//     identifiers are refused: RFC 9110 §4.2.3 keeps zones out of Host, and nothing
//     could route an IPvFuture;
//   - then optionally ':' and 1 to 5 digits whose value is at most 65535. An empty
//     port ("a:"), which the grammar allows, is refused: no client sends one.
// An empty value is refused too: a WebSocket URI always has an authority (RFC 9112
// §3.2 allows an empty Host only for a target without one).
bool valid_host(std::string_view host);

// "Host: Chat.Example.com:8080" → "chat.example.com"; "[::1]:80" → "[::1]".
std::string host_without_port(std::string_view host);

}  // namespace sb::http
