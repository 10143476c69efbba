// Addresses on the tools' command lines: `HOST:PORT` (IPv4 literal, `[IPv6]` literal
// or a host name) and `ws://HOST:PORT/PATH` URLs, resolved once at startup, and the
// printable form of a bound socket address.
//
// Resolution is synchronous (getaddrinfo) because it happens before the event loop
// runs; nothing here is used on a hot path.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace sb::tools {

struct HostPort {
    std::string host;  // without brackets
    uint16_t port = 0;
};

// Splits "127.0.0.1:9001", "[::1]:0" or "localhost:80". Returns false with `error` set
// when the text is not of that form or the port is not 0..65535.
bool parse_host_port(std::string_view text, HostPort& out, std::string& error);

struct WsUrl {
    HostPort endpoint;
    std::string host_header;  // HOST:PORT as written, for the Host header
    std::string path;         // path and query; "/" when the URL has none
};

// Parses "ws://HOST:PORT/PATH" (the port defaults to 80). wss:// is refused: the
// tools speak plain TCP only.
bool parse_ws_url(std::string_view text, WsUrl& out, std::string& error);

// Resolves `hp` to one socket address (the first getaddrinfo answer). Returns false
// with `error` set when it cannot.
bool resolve(const HostPort& hp, sockaddr_storage& out, std::string& error);

// "127.0.0.1:9001" or "[::1]:9001".
std::string format_address(const sockaddr* addr);

}  // namespace sb::tools
