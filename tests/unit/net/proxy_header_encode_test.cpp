#include <gtest/gtest.h>

#include <string>

#include "net/proxy_header.h"

namespace sb::net::proxy_header {
namespace {

using config::ProxyProtocol;
using config::SocketAddress;

SocketAddress addr(const char* text) {
    auto a = SocketAddress::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(SocketAddress{});
}

std::string v2(std::string_view rest) {
    return std::string(kV2Signature, sizeof kV2Signature) + std::string(rest);
}

TEST(ProxyHeaderEncode, OffIsEmpty) {
    EXPECT_EQ(encode(ProxyProtocol::Off, addr("1.2.3.4:5"), addr("6.7.8.9:10")), "");
    EXPECT_EQ(encode_local(ProxyProtocol::Off), "");
}

TEST(ProxyHeaderEncode, V1Ipv4) {
    EXPECT_EQ(encode(ProxyProtocol::V1, addr("192.168.0.1:56324"), addr("10.0.0.2:443")),
              "PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n");
}

TEST(ProxyHeaderEncode, V1Ipv6) {
    EXPECT_EQ(encode(ProxyProtocol::V1, addr("[2001:db8::1]:1"), addr("[::1]:65535")),
              "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
}

TEST(ProxyHeaderEncode, V1MappedAddressesAreIpv4) {
    EXPECT_EQ(encode(ProxyProtocol::V1, addr("[::ffff:127.0.0.2]:7"), addr("127.0.0.1:8")),
              "PROXY TCP4 127.0.0.2 127.0.0.1 7 8\r\n");
}

TEST(ProxyHeaderEncode, V1MixedFamiliesWidenIpv4) {
    EXPECT_EQ(encode(ProxyProtocol::V1, addr("1.2.3.4:7"), addr("[::1]:8")),
              "PROXY TCP6 ::ffff:1.2.3.4 ::1 7 8\r\n");
}

TEST(ProxyHeaderEncode, V1Local) {
    EXPECT_EQ(encode_local(ProxyProtocol::V1), "PROXY UNKNOWN\r\n");
    EXPECT_EQ(encode(ProxyProtocol::V1, SocketAddress{}, addr("1.2.3.4:5")), "PROXY UNKNOWN\r\n");
}

TEST(ProxyHeaderEncode, V2Local) {
    EXPECT_EQ(encode_local(ProxyProtocol::V2), v2(std::string("\x20\x00\x00\x00", 4)));
    EXPECT_EQ(encode_local(ProxyProtocol::V2).size(), 16u);
}

TEST(ProxyHeaderEncode, V2Ipv4) {
    std::string want =
        v2(std::string("\x21\x11\x00\x0c"
                       "\x01\x02\x03\x04"
                       "\x0a\x00\x00\x02"
                       "\xdc\x04"
                       "\x01\xbb",
                       16));
    EXPECT_EQ(encode(ProxyProtocol::V2, addr("1.2.3.4:56324"), addr("10.0.0.2:443")), want);
}

TEST(ProxyHeaderEncode, V2Ipv6AndMixed) {
    std::string h = encode(ProxyProtocol::V2, addr("1.2.3.4:1"), addr("[::1]:2"));
    ASSERT_EQ(h.size(), 16u + 36u);
    EXPECT_EQ(h.substr(12, 4), std::string("\x21\x21\x00\x24", 4));
    EXPECT_EQ(h.substr(16, 16), std::string("\0\0\0\0\0\0\0\0\0\0\xff\xff\x01\x02\x03\x04", 16));
    EXPECT_EQ(h.substr(32, 16), std::string("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
    EXPECT_EQ(h.substr(48, 4), std::string("\x00\x01\x00\x02", 4));
}

}  // namespace
}  // namespace sb::net::proxy_header
