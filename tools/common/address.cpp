#include "common/address.h"

#include <netdb.h>
#include <netinet/in.h>
#include <uv.h>

#include <charconv>
#include <cstring>

namespace sb::tools {

bool parse_host_port(std::string_view text, HostPort& out, std::string& error) {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = "expected [IPV6]:PORT in '" + std::string(text) + "'";
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) {
            error = "expected HOST:PORT (IPv6 in brackets) in '" + std::string(text) + "'";
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
        value > 65535) {
        error = "bad host or port in '" + std::string(text) + "'";
        return false;
    }
    out.host = std::string(host);
    out.port = static_cast<uint16_t>(value);
    return true;
}

bool parse_ws_url(std::string_view text, WsUrl& out, std::string& error) {
    constexpr std::string_view kScheme = "ws://";
    if (text.substr(0, kScheme.size()) != kScheme) {
        error = "only ws:// URLs are supported, got '" + std::string(text) + "'";
        return false;
    }
    std::string_view rest = text.substr(kScheme.size());
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    // A URL may leave out the port; HOST:PORT parsing needs one.
    bool has_port = authority.empty()          ? false
                    : authority.front() == '[' ? authority.find("]:") != std::string_view::npos
                                               : authority.find(':') != std::string_view::npos;
    std::string with_port(authority);
    if (!has_port) with_port += ":80";
    if (!parse_host_port(with_port, out.endpoint, error)) return false;
    out.host_header = std::string(authority);
    return true;
}

bool resolve(const HostPort& hp, sockaddr_storage& out, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    std::string port = std::to_string(hp.port);
    int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &result);
    if (rc != 0 || result == nullptr) {
        error = "cannot resolve '" + hp.host + "': " + gai_strerror(rc);
        return false;
    }
    std::memset(&out, 0, sizeof out);
    std::memcpy(&out, result->ai_addr, result->ai_addrlen);
    freeaddrinfo(result);
    return true;
}

std::string format_address(const sockaddr* addr) {
    char ip[INET6_ADDRSTRLEN] = {};
    if (addr->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
        uv_ip6_name(in6, ip, sizeof ip);
        return "[" + std::string(ip) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(addr);
    uv_ip4_name(in4, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(in4->sin_port));
}

}  // namespace sb::tools
