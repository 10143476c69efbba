// config::SocketAddress: parsing "a.b.c.d:port" and "[v6]:port", printing them back,
// wrapping kernel sockaddrs (IPv4-mapped IPv6 shown as IPv4) and equality.
#include "config/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace sb::config {
namespace {

TEST(SocketAddressTest, ParsesIpv4) {
    auto a = SocketAddress::parse("1.2.3.4:80");
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->is_set());
    EXPECT_EQ(a->family(), AF_INET);
    EXPECT_EQ(a->port(), 80);
    EXPECT_EQ(a->ip_string(), "1.2.3.4");
    EXPECT_EQ(a->to_string(), "1.2.3.4:80");
    EXPECT_EQ(a->sockaddr_len(), sizeof(sockaddr_in));
}

TEST(SocketAddressTest, Ipv4PrintsEveryOctetWidthAsInetNtopDoes) {
    // ip_string formats IPv4 by hand: it must agree with inet_ntop on every width.
    for (const char* text :
         {"0.0.0.0", "255.255.255.255", "9.10.99.100", "1.20.100.0", "200.7.250.19", "127.0.0.1"}) {
        auto a = SocketAddress::parse(std::string(text) + ":1");
        ASSERT_TRUE(a.has_value()) << text;
        EXPECT_EQ(a->ip_string(), text);
    }
    for (unsigned v = 0; v < 256; ++v) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(v << 24 | v << 16 | (255 - v) << 8 | v);
        char expected[INET_ADDRSTRLEN];
        ASSERT_NE(inet_ntop(AF_INET, &sin.sin_addr, expected, sizeof expected), nullptr);
        auto a = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin));
        EXPECT_EQ(a.ip_string(), expected);
    }
}

TEST(SocketAddressTest, ParsesIpv6InBrackets) {
    auto a = SocketAddress::parse("[::1]:80");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->family(), AF_INET6);
    EXPECT_EQ(a->port(), 80);
    EXPECT_EQ(a->ip_string(), "::1");
    EXPECT_EQ(a->to_string(), "[::1]:80");
    EXPECT_EQ(a->sockaddr_len(), sizeof(sockaddr_in6));
}

TEST(SocketAddressTest, PrintsIpv6InCanonicalForm) {
    auto a = SocketAddress::parse("[FD00:0:0::1]:8080");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->to_string(), "[fd00::1]:8080");
}

TEST(SocketAddressTest, AcceptsPortZeroAndTheLargestPort) {
    auto any = SocketAddress::parse("[::]:0");
    ASSERT_TRUE(any.has_value());
    EXPECT_EQ(any->port(), 0);
    EXPECT_EQ(any->to_string(), "[::]:0");
    auto top = SocketAddress::parse("0.0.0.0:65535");
    ASSERT_TRUE(top.has_value());
    EXPECT_EQ(top->port(), 65535);
}

TEST(SocketAddressTest, PortIsInNetworkOrderInTheSockaddr) {
    auto a = SocketAddress::parse("10.0.0.1:8080");
    ASSERT_TRUE(a.has_value());
    sockaddr_in sin;
    std::memcpy(&sin, a->sockaddr_ptr(), sizeof(sin));
    EXPECT_EQ(sin.sin_port, htons(8080));
    EXPECT_EQ(sin.sin_addr.s_addr, htonl(0x0A000001));
}

TEST(SocketAddressTest, RejectsHostNames) {
    EXPECT_FALSE(SocketAddress::parse("localhost:80").has_value());
    EXPECT_FALSE(SocketAddress::parse("chat.internal:8080").has_value());
}

TEST(SocketAddressTest, RejectsMissingOrBadPorts) {
    for (auto text : {"1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:-1",
                      "1.2.3.4:+80", "1.2.3.4:80x", "1.2.3.4:0x50", "1.2.3.4:123456", "[::1]",
                      "[::1]:", "[::1]80", "[::1]:65536"}) {
        EXPECT_FALSE(SocketAddress::parse(text).has_value()) << text;
    }
}

TEST(SocketAddressTest, RejectsMalformedAddresses) {
    for (auto text :
         {"", ":80", "1.2.3:80", "1.2.3.4.5:80", "256.0.0.1:80", " 1.2.3.4:80", "1.2.3.4 :80",
          "::1:80", "[::1:80", "[1.2.3.4]:80", "[::1]]:80", "[:::1]:80"}) {
        EXPECT_FALSE(SocketAddress::parse(text).has_value()) << text;
    }
}

TEST(SocketAddressTest, DefaultIsUnset) {
    SocketAddress a;
    EXPECT_FALSE(a.is_set());
    EXPECT_EQ(a.family(), AF_UNSPEC);
}

TEST(SocketAddressTest, FromSockaddrIpv4) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(4242);
    inet_pton(AF_INET, "192.168.1.7", &sin.sin_addr);
    auto a = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin));
    EXPECT_EQ(a.to_string(), "192.168.1.7:4242");
    EXPECT_EQ(a, *SocketAddress::parse("192.168.1.7:4242"));
}

TEST(SocketAddressTest, FromSockaddrIpv6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
    auto a = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6));
    EXPECT_EQ(a.to_string(), "[2001:db8::5]:443");
    EXPECT_EQ(a.ip_string(), "2001:db8::5");
}

TEST(SocketAddressTest, Ipv4MappedClientIsShownAsIpv4) {
    // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; logs and
    // X-Forwarded-For show the plain IPv4 form.
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(51000);
    inet_pton(AF_INET6, "::ffff:10.0.0.9", &sin6.sin6_addr);
    auto a = SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6));
    EXPECT_EQ(a.family(), AF_INET6);
    EXPECT_EQ(a.ip_string(), "10.0.0.9");
    EXPECT_EQ(a.to_string(), "10.0.0.9:51000");
}

TEST(SocketAddressTest, FromSockaddrOfAnotherFamilyIsUnset) {
    sockaddr sa{};
    sa.sa_family = AF_UNIX;
    EXPECT_FALSE(SocketAddress::from_sockaddr(&sa).is_set());
}

TEST(SocketAddressTest, Equality) {
    EXPECT_EQ(*SocketAddress::parse("1.2.3.4:80"), *SocketAddress::parse("1.2.3.4:80"));
    EXPECT_EQ(*SocketAddress::parse("[::1]:80"), *SocketAddress::parse("[0:0::1]:80"));
    EXPECT_FALSE(*SocketAddress::parse("1.2.3.4:80") == *SocketAddress::parse("1.2.3.4:81"));
    EXPECT_FALSE(*SocketAddress::parse("1.2.3.4:80") == *SocketAddress::parse("1.2.3.5:80"));
    EXPECT_FALSE(*SocketAddress::parse("0.0.0.0:80") == *SocketAddress::parse("[::]:80"));
}

TEST(SocketAddressTest, ToStringRoundTrips) {
    for (auto text : {"127.0.0.1:8080", "0.0.0.0:0", "[::]:443", "[2001:db8::1]:65535"}) {
        auto a = SocketAddress::parse(text);
        ASSERT_TRUE(a.has_value()) << text;
        EXPECT_EQ(a->to_string(), text);
        EXPECT_EQ(*SocketAddress::parse(a->to_string()), *a);
    }
}

// listen_overlap follows what bind(2) said on this kernel (Debian 12, SO_REUSEADDR on
// both sockets): see docs/configuration.md, "Listen addresses".
bool overlap(const char* a, const char* b, bool a_dual = false, bool b_dual = false) {
    return listen_overlap(*SocketAddress::parse(a), a_dual, *SocketAddress::parse(b), b_dual);
}

TEST(ListenOverlapTest, AWildcardTakesItsPortOnEveryAddressOfItsFamily) {
    EXPECT_TRUE(overlap("0.0.0.0:8080", "127.0.0.1:8080"));
    EXPECT_TRUE(overlap("127.0.0.1:8080", "0.0.0.0:8080"));
    EXPECT_TRUE(overlap("0.0.0.0:8080", "0.0.0.0:8080"));
    EXPECT_TRUE(overlap("[::]:8080", "[::1]:8080"));
    EXPECT_TRUE(overlap("[::1]:8080", "[::]:8080"));
}

TEST(ListenOverlapTest, DistinctAddressesAndPortsDoNotOverlap) {
    EXPECT_FALSE(overlap("127.0.0.1:8080", "127.0.0.2:8080"));
    EXPECT_FALSE(overlap("0.0.0.0:8080", "0.0.0.0:8081"));
    EXPECT_FALSE(overlap("[::1]:8080", "[2001:db8::1]:8080"));
}

TEST(ListenOverlapTest, PortZeroNeverOverlaps) {
    EXPECT_FALSE(overlap("0.0.0.0:0", "127.0.0.1:0"));
    EXPECT_FALSE(overlap("127.0.0.1:0", "127.0.0.1:0"));
}

TEST(ListenOverlapTest, IpV6OnlyListenersLeaveIpV4Alone) {
    // Listeners bind IPv6 with IPV6_V6ONLY (net/listen_socket.cpp).
    EXPECT_FALSE(overlap("[::]:8080", "0.0.0.0:8080"));
    EXPECT_FALSE(overlap("0.0.0.0:8080", "[::]:8080"));
    EXPECT_FALSE(overlap("[::]:8080", "127.0.0.1:8080"));
}

TEST(ListenOverlapTest, ADualStackWildcardTakesIpV4Too) {
    // The admin listener binds through libuv without UV_TCP_IPV6ONLY.
    EXPECT_TRUE(overlap("[::]:9901", "127.0.0.1:9901", true, false));
    EXPECT_TRUE(overlap("0.0.0.0:9901", "[::]:9901", false, true));
    EXPECT_TRUE(overlap("[::ffff:127.0.0.1]:9901", "127.0.0.1:9901", true, false));
    EXPECT_FALSE(overlap("[::ffff:127.0.0.1]:9901", "127.0.0.2:9901", true, false));
    EXPECT_FALSE(overlap("[::1]:9901", "127.0.0.1:9901", true, false));
}

TEST(SocketAddressTest, WildcardAndMappedForms) {
    EXPECT_TRUE(SocketAddress::parse("0.0.0.0:1")->is_wildcard());
    EXPECT_TRUE(SocketAddress::parse("[::]:1")->is_wildcard());
    EXPECT_FALSE(SocketAddress::parse("127.0.0.1:1")->is_wildcard());
    EXPECT_TRUE(SocketAddress::parse("[::ffff:10.0.0.1]:1")->is_v4_mapped());
    EXPECT_FALSE(SocketAddress::parse("[::1]:1")->is_v4_mapped());
}

}  // namespace
}  // namespace sb::config
