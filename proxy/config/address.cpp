#include "config/address.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstring>
#include <vector>

namespace sb::config {

namespace {

std::optional<uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
        return std::nullopt;
    }
    return static_cast<uint16_t>(value);
}

}  // namespace

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
    SocketAddress out;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        std::string host(text.substr(1, close - 1));
        auto port = parse_port(text.substr(close + 2));
        if (!port) return std::nullopt;
        auto* sin6 = &out.storage_.v6;
        if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) return std::nullopt;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(*port);
        return out;
    }
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string host(text.substr(0, colon));
    auto port = parse_port(text.substr(colon + 1));
    if (!port) return std::nullopt;
    auto* sin = &out.storage_.v4;
    if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) return std::nullopt;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(*port);
    return out;
}

SocketAddress SocketAddress::from_sockaddr(const sockaddr* sa) {
    SocketAddress out;
    if (sa->sa_family == AF_INET) {
        std::memcpy(&out.storage_.v4, sa, sizeof(sockaddr_in));
    } else if (sa->sa_family == AF_INET6) {
        std::memcpy(&out.storage_.v6, sa, sizeof(sockaddr_in6));
    }
    return out;
}

socklen_t SocketAddress::sockaddr_len() const {
    return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

uint16_t SocketAddress::port() const {
    return ntohs(family() == AF_INET6 ? storage_.v6.sin6_port : storage_.v4.sin_port);
}

namespace {

// Dotted-quad by hand: glibc's inet_ntop formats IPv4 with sprintf, about 1,500
// instructions, and every connection needs its client's address several times
// (per-address counting, X-Forwarded-For, the balancing key).
std::string ipv4_string(const unsigned char* octets) {
    char buf[INET_ADDRSTRLEN];
    char* out = buf;
    for (int i = 0; i < 4; ++i) {
        if (i > 0) *out++ = '.';
        unsigned v = octets[i];
        if (v >= 100) *out++ = static_cast<char>('0' + v / 100);
        if (v >= 10) *out++ = static_cast<char>('0' + v / 10 % 10);
        *out++ = static_cast<char>('0' + v % 10);
    }
    return std::string(buf, out);
}

}  // namespace

std::string SocketAddress::ip_string() const {
    if (family() == AF_INET) {
        return ipv4_string(reinterpret_cast<const unsigned char*>(&storage_.v4.sin_addr));
    }
    if (family() != AF_INET6) return {};
    const auto* sin6 = &storage_.v6;
    // An IPv4 client on a dual-stack socket is shown as plain IPv4, as every log
    // reader and X-Forwarded-For consumer expects.
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) return ipv4_string(&sin6->sin6_addr.s6_addr[12]);
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    return buf;
}

std::string SocketAddress::to_string() const {
    if (family() == AF_INET6) {
        const auto* sin6 = &storage_.v6;
        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            return "[" + ip_string() + "]:" + std::to_string(port());
        }
    }
    return ip_string() + ":" + std::to_string(port());
}

bool SocketAddress::is_wildcard() const {
    if (family() == AF_INET) return storage_.v4.sin_addr.s_addr == htonl(INADDR_ANY);
    return family() == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&storage_.v6.sin6_addr);
}

bool SocketAddress::is_v4_mapped() const {
    return family() == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&storage_.v6.sin6_addr);
}

namespace {

// One family's view of what a listening socket takes: its address bytes, or every
// address when `wildcard`.
struct Claim {
    int family = AF_UNSPEC;
    bool wildcard = false;
    std::array<unsigned char, 16> bytes{};
};

// The one or two claims of a socket bound to `a`.
std::vector<Claim> claims(const SocketAddress& a, bool dual_stack) {
    std::vector<Claim> out;
    const sockaddr* sa = a.sockaddr_ptr();
    if (a.family() == AF_INET) {
        Claim c{AF_INET, a.is_wildcard(), {}};
        std::memcpy(c.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
        out.push_back(c);
        return out;
    }
    const auto& addr = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (a.is_v4_mapped()) {
        // Bindable only dual-stack; an IPv6-only socket fails (EINVAL) and claims nothing.
        if (dual_stack) {
            Claim c{AF_INET, false, {}};
            std::memcpy(c.bytes.data(), &addr.s6_addr[12], 4);
            out.push_back(c);
        }
        return out;
    }
    Claim c{AF_INET6, a.is_wildcard(), {}};
    std::memcpy(c.bytes.data(), &addr, 16);
    out.push_back(c);
    if (dual_stack && a.is_wildcard()) out.push_back({AF_INET, true, {}});
    return out;
}

}  // namespace

bool listen_overlap(const SocketAddress& a, bool a_dual_stack, const SocketAddress& b,
                    bool b_dual_stack) {
    if (a.port() == 0 || b.port() == 0 || a.port() != b.port()) return false;
    for (const auto& x : claims(a, a_dual_stack)) {
        for (const auto& y : claims(b, b_dual_stack)) {
            if (x.family != y.family) continue;
            if (x.wildcard || y.wildcard || x.bytes == y.bytes) return true;
        }
    }
    return false;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
    if (a.family() != b.family()) return false;
    return std::memcmp(&a.storage_, &b.storage_, a.sockaddr_len()) == 0;
}

}  // namespace sb::config
