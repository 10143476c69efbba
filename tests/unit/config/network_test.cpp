#include "config/network.h"

#include <gtest/gtest.h>

namespace sb::config {
namespace {

SocketAddress addr(const char* text) {
    auto a = SocketAddress::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(SocketAddress{});
}

Network net(const char* text) {
    auto parsed = Network::parse(text);
    EXPECT_TRUE(parsed.network.has_value()) << text << ": " << parsed.error;
    return parsed.network.value_or(Network{});
}

TEST(NetworkTest, Parses) {
    EXPECT_EQ(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
    EXPECT_EQ(net("127.0.0.1").to_string(), "127.0.0.1/32");
    EXPECT_EQ(net("::1").to_string(), "::1/128");
    EXPECT_EQ(net("::/0").to_string(), "::/0");
    EXPECT_EQ(net("2001:db8::/32").prefix_length(), 32u);
}

TEST(NetworkTest, Refuses) {
    for (const char* bad :
         {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8",
          "10.0.0.1/8", "::1/127", "10/8", "host/8", "[::1]/128", "10.0.0.0/008", "1.2.3.4:80"}) {
        auto parsed = Network::parse(bad);
        EXPECT_FALSE(parsed.network.has_value()) << bad;
        EXPECT_FALSE(parsed.error.empty()) << bad;
    }
    // A NUL inside the text (TOML "\u0000") must not cut it short for inet_pton.
    using namespace std::string_view_literals;
    for (auto bad : {"10.0.0.1\0junk"sv, "10.0.0.0\0/8"sv, "::1\0x/128"sv}) {
        EXPECT_FALSE(Network::parse(bad).network.has_value()) << bad.size();
    }
}

TEST(NetworkTest, Contains) {
    EXPECT_TRUE(net("10.0.0.0/8").contains(addr("10.200.3.4:1")));
    EXPECT_FALSE(net("10.0.0.0/8").contains(addr("11.0.0.0:1")));
    EXPECT_TRUE(net("127.0.0.2").contains(addr("127.0.0.2:5")));
    EXPECT_FALSE(net("127.0.0.2").contains(addr("127.0.0.3:5")));
    EXPECT_TRUE(net("0.0.0.0/0").contains(addr("255.255.255.255:5")));
    EXPECT_TRUE(net("192.168.0.0/23").contains(addr("192.168.1.255:5")));
    EXPECT_FALSE(net("192.168.0.0/23").contains(addr("192.168.2.0:5")));
    EXPECT_TRUE(net("::1/128").contains(addr("[::1]:5")));
    EXPECT_FALSE(net("::1/128").contains(addr("127.0.0.1:5")));
    EXPECT_FALSE(net("10.0.0.0/8").contains(addr("[::1]:5")));
    EXPECT_TRUE(net("fd00::/8").contains(addr("[fdab::1]:5")));
    // An IPv4 client on a dual-stack socket.
    EXPECT_TRUE(net("10.0.0.0/8").contains(addr("[::ffff:10.1.2.3]:5")));
    EXPECT_FALSE(net("10.0.0.0/8").contains(addr("[::ffff:11.1.2.3]:5")));
    EXPECT_FALSE(net("10.0.0.0/8").contains(SocketAddress{}));
}

// An IPv4 network written in its IPv4-mapped IPv6 form (::ffff:10.0.0.0/104) is the
// IPv4 network it maps: it must admit the IPv4 balancers it names (listeners are
// IPv6-only, so an IPv4 peer always arrives as plain IPv4), not silently none.
TEST(NetworkTest, Ipv4MappedNetworkIsItsIpv4Network) {
    EXPECT_TRUE(net("::ffff:10.0.0.0/104").contains(addr("10.1.2.3:5")));
    EXPECT_FALSE(net("::ffff:10.0.0.0/104").contains(addr("11.1.2.3:5")));
    EXPECT_TRUE(net("::ffff:10.0.0.0/104").contains(addr("[::ffff:10.1.2.3]:5")));
    EXPECT_TRUE(net("::ffff:127.0.0.1").contains(addr("127.0.0.1:5")));
    EXPECT_TRUE(net("::ffff:0.0.0.0/96").contains(addr("192.0.2.1:5")));
    EXPECT_EQ(net("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
    // Wider than the mapped block: an IPv6 network, as written.
    EXPECT_EQ(net("::/80").family(), AF_INET6);
    EXPECT_FALSE(net("::/80").contains(addr("10.1.2.3:5")));
}

}  // namespace
}  // namespace sb::config
