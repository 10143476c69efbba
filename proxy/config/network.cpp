#include "config/network.h"

#include <arpa/inet.h>

#include <cstring>

namespace sb::config {

namespace {

// Whether the first `bits` bits of a and b agree.
bool prefix_equal(const unsigned char* a, const unsigned char* b, unsigned bits) {
    unsigned whole = bits / 8;
    if (std::memcmp(a, b, whole) != 0) return false;
    unsigned rest = bits % 8;
    if (rest == 0) return true;
    auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Network::Parsed Network::parse(std::string_view text) {
    auto slash = text.find('/');
    std::string host(text.substr(0, slash));
    Network n;
    // inet_pton reads up to the first NUL: "10.0.0.1\0junk" must not pass as 10.0.0.1.
    if (host.find('\0') != std::string::npos) {
        // Falls through to the error below: neither family parses an empty string.
        host.clear();
    }
    if (inet_pton(AF_INET, host.c_str(), n.bytes_.data()) == 1) {
        n.family_ = AF_INET;
    } else if (inet_pton(AF_INET6, host.c_str(), n.bytes_.data()) == 1) {
        n.family_ = AF_INET6;
    } else {
        return {std::nullopt, "\"" + std::string(text) +
                                  "\" is not a network of the form \"10.0.0.0/8\" or "
                                  "\"fd00::/8\" (or a single address)"};
    }
    const unsigned max = n.family_ == AF_INET ? 32 : 128;
    n.prefix_ = max;
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        unsigned value = 0;
        bool ok = !digits.empty() && digits.size() <= 3 && (digits == "0" || digits[0] != '0');
        for (char c : digits) {
            ok = ok && c >= '0' && c <= '9';
            if (ok) value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (!ok || value > max) {
            return {std::nullopt, "\"" + std::string(text) + "\": the prefix length must be 0 to " +
                                      std::to_string(max)};
        }
        n.prefix_ = value;
    }
    // No bits past the prefix.
    Network masked = n;
    for (unsigned bit = n.prefix_; bit < max; ++bit)
        masked.bytes_[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
    if (masked.bytes_ != n.bytes_) {
        return {std::nullopt, "\"" + std::string(text) + "\" has bits set past its /" +
                                  std::to_string(n.prefix_) + " (did you mean \"" +
                                  masked.to_string() + "\"?)"};
    }
    // "::ffff:10.0.0.0/104" is 10.0.0.0/8 spelled as IPv4-mapped IPv6. Kept as IPv6 it
    // would match no peer at all (listeners are IPv6-only: an IPv4 balancer always
    // arrives as plain IPv4), and a trusted balancer would be refused.
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (n.family_ == AF_INET6 && n.prefix_ >= 96 &&
        std::memcmp(n.bytes_.data(), kMapped, sizeof kMapped) == 0) {
        Network v4;
        v4.family_ = AF_INET;
        v4.prefix_ = n.prefix_ - 96;
        std::memcpy(v4.bytes_.data(), n.bytes_.data() + 12, 4);
        return {v4, {}};
    }
    return {n, {}};
}

bool Network::contains(const SocketAddress& address) const {
    const sockaddr* sa = address.sockaddr_ptr();
    if (address.family() == AF_INET) {
        if (family_ != AF_INET) return false;
        const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
        return prefix_equal(reinterpret_cast<const unsigned char*>(&sin->sin_addr), bytes_.data(),
                            prefix_);
    }
    if (address.family() != AF_INET6) return false;
    const auto* addr = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr;
    if (family_ == AF_INET6) return prefix_equal(addr, bytes_.data(), prefix_);
    return address.is_v4_mapped() && prefix_equal(addr + 12, bytes_.data(), prefix_);
}

std::string Network::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family_, bytes_.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(prefix_);
}

}  // namespace sb::config
