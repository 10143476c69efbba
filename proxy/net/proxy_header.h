// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header an
// L4 balancer puts in front of a connection's first bytes to say whose connection it
// really is.
//
// Pure code (no libuv, no sockets): encoders for the header switchboard sends to a
// pool's backends, and later a parser for the header a listener reads.
//
// Mixed families. A header carries one family for both addresses, but a client and
// the address it reached can differ (an IPv4 client on a dual-stack [::] listener is
// an IPv4-mapped IPv6 address). The encoders first turn IPv4-mapped IPv6 addresses
// back into IPv4; if the two still differ, the IPv4 one is written as its IPv4-mapped
// IPv6 form (::ffff:a.b.c.d) and the header is TCP6 / AF_INET6, as HAProxy does. The
// client's address is therefore never lost or rewritten, only widened.
#pragma once

#include <string>

#include "config/address.h"
#include "config/config.h"

namespace sb::net::proxy_header {

// The v2 signature: the first 12 bytes of every v2 header.
inline constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                                          '\n', 'Q',  'U',  'I',  'T',  '\n'};
// A v1 header is at most 107 bytes, CRLF included (proxy-protocol.txt §2.1).
inline constexpr size_t kV1MaxBytes = 107;
// The v2 fixed part: signature, version/command, family/protocol, length.
inline constexpr size_t kV2FixedBytes = 16;

// The header for a connection from `source` to `destination` ("PROXY TCP4 ..." or
// the binary v2 PROXY header). An unset address on either side gives
// encode_local(version): there is nothing true to carry. Empty for Off.
std::string encode(config::ProxyProtocol version, const config::SocketAddress& source,
                   const config::SocketAddress& destination);

// The header of a connection made by the proxy itself (health checks): "PROXY
// UNKNOWN\r\n" for v1, the 16-byte v2 LOCAL header for v2, empty for Off. The
// receiver keeps the connection's own addresses.
std::string encode_local(config::ProxyProtocol version);

}  // namespace sb::net::proxy_header
