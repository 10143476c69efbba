// Network: an IPv4 or IPv6 network in CIDR notation ("10.0.0.0/8", "::1/128"), for
// `proxy_protocol_from`: the sources a listener trusts to send a PROXY header.
//
// A plain address without "/len" is a host route (/32 or /128). Bits set past the
// prefix length ("10.0.0.1/8") are refused rather than masked away: such a value is
// more likely a typo than a network. An IPv4 network written in IPv4-mapped form
// ("::ffff:10.0.0.0/104") is that IPv4 network ("10.0.0.0/8").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/address.h"

namespace sb::config {

class Network {
  public:
    // The network, or the reason `text` is not one (for the loader's error).
    struct Parsed;
    static Parsed parse(std::string_view text);

    // Whether `address` lies in this network. An IPv4-mapped IPv6 address
    // (::ffff:a.b.c.d, an IPv4 client on a dual-stack socket) counts as its IPv4
    // address for IPv4 networks.
    bool contains(const SocketAddress& address) const;

    int family() const { return family_; }
    unsigned prefix_length() const { return prefix_; }
    // "10.0.0.0/8", "::1/128".
    std::string to_string() const;

  private:
    int family_ = AF_UNSPEC;
    unsigned prefix_ = 0;
    std::array<unsigned char, 16> bytes_{};
};

struct Network::Parsed {
    std::optional<Network> network;
    std::string error;
};

}  // namespace sb::config
