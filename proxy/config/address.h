// SocketAddress: an IPv4 or IPv6 address with a port, parsed from the configuration's
// "a.b.c.d:port" / "[v6]:port" notation and printed back the same way.
//
// A plain value type (copyable, no I/O), used by the loader to validate `listen` and
// backend `address` values and by net/ to bind and connect.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sb::config {

class SocketAddress {
  public:
    SocketAddress() = default;

    // Accepts "1.2.3.4:80" and "[::1]:80". Rejects host names, missing or
    // out-of-range ports, and anything with extra characters. Port 0 is allowed
    // (the kernel picks a free port when binding).
    static std::optional<SocketAddress> parse(std::string_view text);

    // Wraps an address the kernel returned (accept, getsockname).
    static SocketAddress from_sockaddr(const sockaddr* sa);

    const sockaddr* sockaddr_ptr() const { return &storage_.any; }
    socklen_t sockaddr_len() const;
    int family() const { return storage_.any.sa_family; }
    uint16_t port() const;
    bool is_set() const { return storage_.any.sa_family != AF_UNSPEC; }

    // "1.2.3.4:80" or "[::1]:80".
    std::string to_string() const;
    // "1.2.3.4" or "::1": the form used for X-Forwarded-For and per-client limits.
    std::string ip_string() const;

    // 0.0.0.0 or [::]: every address of its family.
    bool is_wildcard() const;
    // [::ffff:a.b.c.d]: an IPv4 address in IPv6 form, which an IPv6-only socket cannot bind.
    bool is_v4_mapped() const;

    friend bool operator==(const SocketAddress& a, const SocketAddress& b);

  private:
    // 28 bytes rather than sockaddr_storage's 128: every session keeps its client's.
    union Storage {
        sockaddr any;
        sockaddr_in v4;
        sockaddr_in6 v6;
    };
    Storage storage_{};
};

// Whether listening on `a` and on `b` would fight over one port on Linux, as bind(2)
// with SO_REUSEADDR decides: the same port (0 never conflicts: the kernel picks a free
// one for each), and the same address or a wildcard of the same family. An IPv6 socket
// that is not IPv6-only (`dual_stack`, as libuv binds without UV_TCP_IPV6ONLY) also
// takes the IPv4 side: [::] every IPv4 address, [::ffff:a.b.c.d] that one.
bool listen_overlap(const SocketAddress& a, bool a_dual_stack, const SocketAddress& b,
                    bool b_dual_stack);

}  // namespace sb::config
