// The client side of the WebSocket opening handshake (RFC 6455 §4.2.1): checks a
// parsed request head against every rule SPEC §3 lists and extracts what routing,
// balancing and logging need. Pure; no I/O.
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

// True if `key` is base64 of exactly 16 bytes (24 characters, "==" padded).
bool valid_websocket_key(std::string_view key);

// "Host: Chat.Example.com:8080" → "chat.example.com"; "[::1]:80" → "[::1]".
std::string host_without_port(std::string_view host);

}  // namespace sb::http
