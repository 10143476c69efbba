#include "net/proxy_header.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string_view>

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

// ---- Parser ----

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";

// A decimal port: 1-5 digits, no leading zero (but "0"), at most 65535.
bool parse_port(std::string_view text, uint16_t& out) {
    if (text.empty() || text.size() > 5) return false;
    if (text.size() > 1 && text[0] == '0') return false;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    out = static_cast<uint16_t>(value);
    return true;
}

// An address of `family` in text form, with its port, as a SocketAddress.
bool parse_address(int family, std::string_view text, uint16_t port, config::SocketAddress& out) {
    char host[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof host) return false;
    std::memcpy(host, text.data(), text.size());
    host[text.size()] = '\0';
    if (family == AF_INET) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) return false;
        out = config::SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin));
        return true;
    }
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1) return false;
    out = config::SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6));
    return true;
}

// Splits `line` at single spaces into exactly `n` non-empty fields.
bool split(std::string_view line, std::string_view* fields, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        size_t space = line.find(' ');
        if (i + 1 == n) {
            if (space != std::string_view::npos) return false;
            fields[i] = line;
        } else {
            if (space == std::string_view::npos) return false;
            fields[i] = line.substr(0, space);
            line.remove_prefix(space + 1);
        }
        if (fields[i].empty()) return false;
    }
    return true;
}

uint16_t get16(const char* p) {
    return static_cast<uint16_t>(static_cast<unsigned char>(p[0]) << 8 |
                                 static_cast<unsigned char>(p[1]));
}

}  // namespace

Parser::Outcome Parser::fail(const char* why, size_t consumed) {
    phase_ = Phase::Failed;
    error_ = why;
    return {Status::Error, consumed, why};
}

Parser::Outcome Parser::feed(const char* data, size_t size) {
    if (phase_ == Phase::Done) return {Status::Done, 0, nullptr};
    if (phase_ == Phase::Failed) return {Status::Error, 0, error_};
    size_t used = 0;
    while (used < size) {
        switch (phase_) {
            case Phase::Start: {
                char c = data[used];
                if (c == 'P') {
                    phase_ = Phase::V1;
                    header_.version = 1;
                } else if (c == '\r') {
                    phase_ = Phase::V2Fixed;
                    header_.version = 2;
                } else {
                    return fail("no PROXY protocol header", used + 1);
                }
                break;
            }
            case Phase::V1: {
                bool done = false;
                const char* error = v1_byte(data[used++], done);
                if (error) return fail(error, used);
                if (done) {
                    phase_ = Phase::Done;
                    return {Status::Done, used, nullptr};
                }
                break;
            }
            case Phase::V2Fixed: {
                char c = data[used++];
                if (have_ < sizeof kV2Signature && c != kV2Signature[have_]) {
                    return fail("bad PROXY v2 signature", used);
                }
                buf_[have_++] = c;
                if (have_ == kV2FixedBytes) {
                    if (const char* error = v2_fixed()) return fail(error, used);
                }
                break;
            }
            case Phase::V2Address: {
                size_t take = std::min<size_t>(size - used, kV2FixedBytes + need_ - have_);
                std::memcpy(buf_ + have_, data + used, take);
                have_ = static_cast<uint16_t>(have_ + take);
                used += take;
                if (have_ == kV2FixedBytes + need_) v2_addresses();
                break;
            }
            case Phase::V2Skip: {
                size_t take = std::min<size_t>(size - used, skip_);
                skip_ = static_cast<uint16_t>(skip_ - take);
                used += take;
                break;
            }
            case Phase::Done:
            case Phase::Failed:
                break;
        }
        if (phase_ == Phase::V2Skip && skip_ == 0) {
            phase_ = Phase::Done;
            return {Status::Done, used, nullptr};
        }
    }
    return {Status::NeedMore, used, nullptr};
}

const char* Parser::v1_byte(char c, bool& done) {
    if (have_ < kV1Prefix.size()) {
        if (c != kV1Prefix[have_]) return "bad PROXY v1 header";
        buf_[have_++] = c;
        return nullptr;
    }
    if (have_ > 0 && buf_[have_ - 1] == '\r') {
        if (c != '\n') return "bad PROXY v1 header (CR without LF)";
        done = true;
        return v1_line();
    }
    if (c == '\n') return "bad PROXY v1 header (LF without CR)";
    // Printable ASCII and the final CR only.
    if (c != '\r' && (c < 0x20 || c > 0x7e)) return "bad PROXY v1 header (control byte)";
    // The CR takes the 106th byte at the latest, so the LF is the 107th.
    if (have_ + 1u >= kV1MaxBytes) return "PROXY v1 header over 107 bytes";
    buf_[have_++] = c;
    return nullptr;
}

const char* Parser::v1_line() {
    // buf_ holds "PROXY " + fields + "\r".
    std::string_view line(buf_ + kV1Prefix.size(), have_ - kV1Prefix.size() - 1);
    constexpr std::string_view kUnknown = "UNKNOWN";
    if (line.substr(0, kUnknown.size()) == kUnknown &&
        (line.size() == kUnknown.size() || line[kUnknown.size()] == ' ')) {
        // The receiver ignores whatever follows UNKNOWN (proxy-protocol.txt §2.1).
        header_.local = true;
        return nullptr;
    }
    std::string_view f[5];
    if (!split(line, f, 5)) return "bad PROXY v1 header (fields)";
    int family;
    if (f[0] == "TCP4") {
        family = AF_INET;
    } else if (f[0] == "TCP6") {
        family = AF_INET6;
    } else {
        return "bad PROXY v1 header (protocol)";
    }
    uint16_t sport, dport;
    if (!parse_port(f[3], sport) || !parse_port(f[4], dport)) {
        return "bad PROXY v1 header (port)";
    }
    if (!parse_address(family, f[1], sport, header_.source) ||
        !parse_address(family, f[2], dport, header_.destination)) {
        return "bad PROXY v1 header (address)";
    }
    header_.local = false;
    return nullptr;
}

const char* Parser::v2_fixed() {
    unsigned char ver_cmd = static_cast<unsigned char>(buf_[12]);
    family_ = static_cast<uint8_t>(buf_[13]);
    uint16_t length = get16(buf_ + 14);
    if (ver_cmd >> 4 != 2) return "bad PROXY v2 header (version)";
    unsigned command = ver_cmd & 0x0f;
    if (command > 1) return "bad PROXY v2 header (command)";
    if (kV2FixedBytes + size_t{length} > kV2MaxBytes) return "PROXY v2 header over 4 KiB";
    header_.local = true;
    need_ = 0;
    if (command == 1) {
        unsigned af = family_ >> 4, transport = family_ & 0x0f;
        if (af > 3 || transport > 2) return "bad PROXY v2 header (family)";
        if (transport == 2) return "bad PROXY v2 header (datagram on a stream)";
        if (af == 1 || af == 2) {
            if (transport != 1) return "bad PROXY v2 header (family)";
            need_ = af == 1 ? 12 : 36;
            if (length < need_) return "bad PROXY v2 header (length under the addresses)";
            header_.local = false;
        }
        // AF_UNSPEC and AF_UNIX carry no IP address: the socket's own stands, as for
        // LOCAL. Their address block (if any) is skipped with the TLVs.
    }
    skip_ = static_cast<uint16_t>(length - need_);
    phase_ = need_ > 0 ? Phase::V2Address : Phase::V2Skip;
    return nullptr;
}

void Parser::v2_addresses() {
    const auto* p = reinterpret_cast<const unsigned char*>(buf_ + kV2FixedBytes);
    if (need_ == 12) {
        sockaddr_in src{}, dst{};
        src.sin_family = dst.sin_family = AF_INET;
        std::memcpy(&src.sin_addr, p, 4);
        std::memcpy(&dst.sin_addr, p + 4, 4);
        std::memcpy(&src.sin_port, p + 8, 2);  // both in network order already
        std::memcpy(&dst.sin_port, p + 10, 2);
        header_.source = config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&src));
        header_.destination =
            config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&dst));
    } else {
        sockaddr_in6 src{}, dst{};
        src.sin6_family = dst.sin6_family = AF_INET6;
        std::memcpy(&src.sin6_addr, p, 16);
        std::memcpy(&dst.sin6_addr, p + 16, 16);
        std::memcpy(&src.sin6_port, p + 32, 2);
        std::memcpy(&dst.sin6_port, p + 34, 2);
        header_.source = config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&src));
        header_.destination =
            config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&dst));
    }
    phase_ = Phase::V2Skip;
}

}  // namespace sb::net::proxy_header
