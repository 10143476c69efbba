#include "net/proxy_header.h"

#include <arpa/inet.h>

#include <cstring>

namespace sb::net::proxy_header {

namespace {

// An address in the form the header carries: IPv4 as 4 bytes, IPv6 as 16.
struct Wire {
    int family = AF_UNSPEC;
    unsigned char bytes[16] = {};
    uint16_t port = 0;  // host order
};

Wire to_wire(const config::SocketAddress& a) {
    Wire w;
    w.port = a.port();
    if (a.family() == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
        w.family = AF_INET;
        std::memcpy(w.bytes, &sin->sin_addr, 4);
    } else if (a.family() == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr());
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            w.family = AF_INET;
            std::memcpy(w.bytes, &sin6->sin6_addr.s6_addr[12], 4);
        } else {
            w.family = AF_INET6;
            std::memcpy(w.bytes, &sin6->sin6_addr, 16);
        }
    }
    return w;
}

// IPv4 widened to ::ffff:a.b.c.d.
void widen(Wire& w) {
    if (w.family != AF_INET) return;
    unsigned char v4[4];
    std::memcpy(v4, w.bytes, 4);
    std::memset(w.bytes, 0, 10);
    w.bytes[10] = 0xff;
    w.bytes[11] = 0xff;
    std::memcpy(w.bytes + 12, v4, 4);
    w.family = AF_INET6;
}

std::string text(const Wire& w) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(w.family, w.bytes, buf, sizeof buf);
    return buf;
}

void put16(std::string& out, uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

std::string encode_local(config::ProxyProtocol version) {
    switch (version) {
        case config::ProxyProtocol::Off:
            return {};
        case config::ProxyProtocol::V1:
            return "PROXY UNKNOWN\r\n";
        case config::ProxyProtocol::V2: {
            std::string out(kV2Signature, sizeof kV2Signature);
            out.push_back('\x20');  // version 2, LOCAL
            out.push_back('\x00');  // AF_UNSPEC, UNSPEC
            put16(out, 0);
            return out;
        }
    }
    return {};
}

std::string encode(config::ProxyProtocol version, const config::SocketAddress& source,
                   const config::SocketAddress& destination) {
    if (version == config::ProxyProtocol::Off) return {};
    Wire src = to_wire(source);
    Wire dst = to_wire(destination);
    if (src.family == AF_UNSPEC || dst.family == AF_UNSPEC) return encode_local(version);
    if (src.family != dst.family) {
        widen(src);
        widen(dst);
    }
    if (version == config::ProxyProtocol::V1) {
        std::string out = src.family == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ";
        out += text(src);
        out += ' ';
        out += text(dst);
        out += ' ';
        out += std::to_string(src.port);
        out += ' ';
        out += std::to_string(dst.port);
        out += "\r\n";
        return out;
    }
    const size_t address_bytes = src.family == AF_INET ? 4 : 16;
    std::string out(kV2Signature, sizeof kV2Signature);
    out.push_back('\x21');                                   // version 2, PROXY
    out.push_back(src.family == AF_INET ? '\x11' : '\x21');  // TCP over IPv4 / IPv6
    put16(out, static_cast<uint16_t>(2 * address_bytes + 4));
    out.append(reinterpret_cast<const char*>(src.bytes), address_bytes);
    out.append(reinterpret_cast<const char*>(dst.bytes), address_bytes);
    put16(out, src.port);
    put16(out, dst.port);
    return out;
}

}  // namespace sb::net::proxy_header
