// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header an
// L4 balancer puts in front of a connection's first bytes to say whose connection it
// really is.
//
// Pure code (no libuv, no sockets): encoders for the header switchboard sends to a
// pool's backends, and the strict incremental Parser for the header a listener reads.
//
// Mixed families. A header carries one family for both addresses, but a client and
// the address it reached can differ (an IPv4 client on a dual-stack [::] listener is
// an IPv4-mapped IPv6 address). The encoders first turn IPv4-mapped IPv6 addresses
// back into IPv4; if the two still differ, the IPv4 one is written as its IPv4-mapped
// IPv6 form (::ffff:a.b.c.d) and the header is TCP6 / AF_INET6, as HAProxy does. The
// client's address is therefore never lost or rewritten, only widened.
#pragma once

#include <cstddef>
#include <cstdint>
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

// The most a v2 header may take, fixed part, addresses and TLVs together. A longer
// one is refused: switchboard reads no TLV, so it has no use for big ones.
inline constexpr size_t kV2MaxBytes = 4096;

// What a received header says.
struct Header {
    int version = 0;  // 1 or 2
    // The connection's own addresses stand: v1 UNKNOWN, v2 LOCAL (a balancer's health
    // check), and v2 PROXY over AF_UNSPEC or AF_UNIX (no IP address to carry).
    bool local = true;
    // The client's address and the address it connected to, set when !local.
    config::SocketAddress source;
    config::SocketAddress destination;
};

// A strict incremental parser: feed() it the connection's bytes as they arrive, and
// it answers after each chunk. It never reads past the header: on Done, `consumed`
// says how much of that chunk was header, and the rest belongs to whatever comes next
// (a TLS ClientHello, an HTTP request). On Error the connection is to be closed;
// `error` says why, for the log.
//
// v1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" exactly (single spaces,
// addresses of the named family, decimal ports 0-65535 without leading zeros), or
// "PROXY UNKNOWN" followed by anything up to CRLF; at most 107 bytes.
// v2: the signature, version 2, command LOCAL or PROXY, TCP over IPv4 or IPv6 (or
// AF_UNSPEC / AF_UNIX, kept as local), a length that covers the address block and
// keeps the whole header within 4 KiB; TLVs after the addresses are skipped unread.
// The first byte decides the version; anything else is an error at once.
//
// No allocation; about 110 bytes of state, the longest v1 line.
class Parser {
  public:
    enum class Status : uint8_t { NeedMore, Done, Error };
    struct Outcome {
        Status status;
        size_t consumed;    // bytes of this chunk that were header (<= its size)
        const char* error;  // a static string on Error, else nullptr
    };

    Outcome feed(const char* data, size_t size);
    // Valid once feed() returned Done.
    const Header& header() const { return header_; }
    // Some byte has been fed (a connection that closes before is no header at all).
    bool started() const { return phase_ != Phase::Start; }

  private:
    enum class Phase : uint8_t { Start, V1, V2Fixed, V2Address, V2Skip, Done, Failed };

    Outcome fail(const char* why, size_t consumed);
    // Handles one byte of a v1 line; returns an error or nullptr.
    const char* v1_byte(char c, bool& done);
    const char* v1_line();
    const char* v2_fixed();
    void v2_addresses();

    Header header_;
    const char* error_ = nullptr;
    uint16_t have_ = 0;   // bytes in buf_
    uint16_t need_ = 0;   // V2Address: the address block's size
    uint16_t skip_ = 0;   // V2Skip: bytes left to skip (TLVs, AF_UNIX addresses)
    uint8_t family_ = 0;  // V2: the family/protocol byte
    Phase phase_ = Phase::Start;
    char buf_[kV1MaxBytes];
};

}  // namespace sb::net::proxy_header
