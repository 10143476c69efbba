#include <gtest/gtest.h>

#include <string>

#include "net/proxy_header.h"

namespace sb::net::proxy_header {
namespace {

using config::ProxyProtocol;
using config::SocketAddress;
using Status = Parser::Status;

SocketAddress addr(const char* text) {
    auto a = SocketAddress::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(SocketAddress{});
}

std::string v2(std::string_view rest) {
    return std::string(kV2Signature, sizeof kV2Signature) + std::string(rest);
}

// Feeds `bytes` in one chunk.
Parser::Outcome parse(Parser& p, const std::string& bytes) {
    return p.feed(bytes.data(), bytes.size());
}

// Feeds one byte at a time; returns the first answer that is not NeedMore, and the
// total consumed.
Parser::Outcome parse_bytewise(Parser& p, const std::string& bytes) {
    size_t total = 0;
    for (char c : bytes) {
        auto o = p.feed(&c, 1);
        total += o.consumed;
        if (o.status != Status::NeedMore) return {o.status, total, o.error};
    }
    return {Status::NeedMore, total, nullptr};
}

void expect_error(const std::string& bytes) {
    Parser whole;
    auto o = parse(whole, bytes);
    EXPECT_EQ(o.status, Status::Error) << testing::PrintToString(bytes);
    EXPECT_NE(o.error, nullptr);
    Parser split;
    EXPECT_EQ(parse_bytewise(split, bytes).status, Status::Error) << testing::PrintToString(bytes);
}

TEST(ProxyHeaderParse, V1Tcp4) {
    Parser p;
    std::string h = "PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n";
    auto o = parse(p, h + "GET / HTTP/1.1\r\n");
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, h.size());
    EXPECT_EQ(p.header().version, 1);
    EXPECT_FALSE(p.header().local);
    EXPECT_EQ(p.header().source, addr("192.168.0.1:56324"));
    EXPECT_EQ(p.header().destination, addr("10.0.0.2:443"));
}

TEST(ProxyHeaderParse, V1Tcp6) {
    Parser p;
    std::string h = "PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 0 65535\r\n";
    auto o = parse_bytewise(p, h);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, h.size());
    EXPECT_EQ(p.header().source, addr("[2001:db8::1]:0"));
    EXPECT_EQ(p.header().source.ip_string(), "2001:db8::1");
    EXPECT_EQ(p.header().destination.ip_string(), "1.2.3.4");
}

TEST(ProxyHeaderParse, V1Unknown) {
    for (std::string h : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n"}) {
        Parser p;
        auto o = parse(p, h + "x");
        ASSERT_EQ(o.status, Status::Done) << h;
        EXPECT_EQ(o.consumed, h.size());
        EXPECT_TRUE(p.header().local);
    }
}

TEST(ProxyHeaderParse, V1LongestLineIsAccepted) {
    std::string h =
        // proxy-protocol.txt's worst case.
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(h.size(), kV1MaxBytes);
    Parser p;
    auto o = parse(p, h);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, kV1MaxBytes);
}

TEST(ProxyHeaderParse, V1OverlongLineIsRefused) {
    std::string h = "PROXY UNKNOWN " + std::string(200, 'a') + "\r\n";
    Parser p;
    auto o = parse(p, h);
    ASSERT_EQ(o.status, Status::Error);
    EXPECT_LE(o.consumed, kV1MaxBytes);
    // 106 bytes of line without CR: the 107th cannot be the CR and the LF both.
    expect_error("PROXY UNKNOWN " + std::string(92, 'a') + "\r\n");
}

TEST(ProxyHeaderParse, V1Malformed) {
    expect_error("GET / HTTP/1.1\r\n");
    expect_error("PROXY\r\n");
    expect_error("PROXY \r\n");
    expect_error("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");        // LF without CR
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx");       // CR without LF
    expect_error("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n");     // double space
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");     // trailing space
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");        // missing port
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");    // extra field
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n");  // port range
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n");
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n");  // leading zero
    expect_error("PROXY TCP4 1.2.3.4 5.6.7.8 8x 2\r\n");
    expect_error("PROXY TCP4 ::1 5.6.7.8 1 2\r\n");  // family mismatch
    expect_error("PROXY TCP6 1.2.3.4 ::1 1 2\r\n");
    expect_error("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n");
    expect_error("PROXY TCP4 host 5.6.7.8 1 2\r\n");
    expect_error("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n");
    expect_error("PROXY UNKNOWNX\r\n");
    expect_error(std::string("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33));
}

TEST(ProxyHeaderParse, V1NeedsMoreUntilCrlf) {
    Parser p;
    std::string h = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r";
    auto o = parse(p, h);
    EXPECT_EQ(o.status, Status::NeedMore);
    EXPECT_EQ(o.consumed, h.size());
    o = parse(p, "\nrest");
    EXPECT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, 1u);
}

TEST(ProxyHeaderParse, V2Ipv4) {
    std::string h = encode(ProxyProtocol::V2, addr("1.2.3.4:56324"), addr("10.0.0.2:443"));
    Parser p;
    auto o = parse(p, h + "\x16\x03\x01");
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, h.size());
    EXPECT_EQ(p.header().version, 2);
    EXPECT_FALSE(p.header().local);
    EXPECT_EQ(p.header().source, addr("1.2.3.4:56324"));
    EXPECT_EQ(p.header().destination, addr("10.0.0.2:443"));
}

TEST(ProxyHeaderParse, V2Ipv6Bytewise) {
    std::string h = encode(ProxyProtocol::V2, addr("[2001:db8::5]:1"), addr("[::1]:2"));
    Parser p;
    auto o = parse_bytewise(p, h);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, h.size());
    EXPECT_EQ(p.header().source, addr("[2001:db8::5]:1"));
    EXPECT_EQ(p.header().destination, addr("[::1]:2"));
}

TEST(ProxyHeaderParse, V2LocalKeepsSocketAddress) {
    Parser p;
    std::string h = encode_local(ProxyProtocol::V2);
    auto o = parse(p, h + "GET");
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, 16u);
    EXPECT_TRUE(p.header().local);
    // LOCAL with an address block: the block is skipped, the addresses not used.
    std::string with_block = encode(ProxyProtocol::V2, addr("1.2.3.4:1"), addr("5.6.7.8:2"));
    with_block[12] = '\x20';
    Parser q;
    o = parse(q, with_block);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, with_block.size());
    EXPECT_TRUE(q.header().local);
}

TEST(ProxyHeaderParse, V2TlvsAreSkipped) {
    std::string h = encode(ProxyProtocol::V2, addr("1.2.3.4:1"), addr("5.6.7.8:2"));
    std::string tlvs = std::string(
                           "\x04\x00\x03"
                           "abc",
                           6) +
                       std::string("\x01\x00\x02h2", 5);
    h[15] = static_cast<char>(12 + tlvs.size());
    h += tlvs;
    Parser p;
    auto o = parse_bytewise(p, h);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, h.size());
    EXPECT_EQ(p.header().source, addr("1.2.3.4:1"));
}

TEST(ProxyHeaderParse, V2UnspecAndUnixAreLocal) {
    // PROXY over AF_UNSPEC, no addresses.
    Parser p;
    auto o = parse(p, v2(std::string("\x21\x00\x00\x00", 4)));
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_TRUE(p.header().local);
    // PROXY over AF_UNIX stream, 216 bytes of paths.
    Parser q;
    std::string unix_header = v2(std::string("\x21\x31\x00\xd8", 4)) + std::string(216, 'p');
    o = parse(q, unix_header);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, unix_header.size());
    EXPECT_TRUE(q.header().local);
}

TEST(ProxyHeaderParse, V2SizeBound) {
    std::string ok = v2(std::string("\x20\x00\x0f\xf0", 4)) + std::string(4096 - 16, 't');
    Parser p;
    auto o = parse(p, ok);
    ASSERT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, kV2MaxBytes);
    Parser q;
    o = parse(q, v2(std::string("\x20\x00\x0f\xf1", 4)));
    EXPECT_EQ(o.status, Status::Error);
    EXPECT_EQ(o.consumed, 16u);
}

TEST(ProxyHeaderParse, V2Malformed) {
    std::string sig(kV2Signature, sizeof kV2Signature);
    expect_error("\r\n\r\n\0\r\nQUIX\n" + std::string(20, '\0'));
    expect_error(v2(std::string("\x11\x11\x00\x0c", 4)) + std::string(12, '\0'));  // version 1
    expect_error(v2(std::string("\x31\x11\x00\x0c", 4)) + std::string(12, '\0'));  // version 3
    expect_error(v2(std::string("\x22\x11\x00\x0c", 4)) + std::string(12, '\0'));  // command 2
    expect_error(v2(std::string("\x21\x12\x00\x0c", 4)) + std::string(12, '\0'));  // UDP
    expect_error(v2(std::string("\x21\x10\x00\x0c", 4)) + std::string(12, '\0'));  // no transport
    expect_error(v2(std::string("\x21\x41\x00\x0c", 4)) + std::string(12, '\0'));  // family 4
    expect_error(v2(std::string("\x21\x11\x00\x0b", 4)) + std::string(11, '\0'));  // short
    expect_error(v2(std::string("\x21\x21\x00\x0c", 4)) + std::string(12, '\0'));  // short v6
}

TEST(ProxyHeaderParse, AfterTheAnswerFeedsConsumeNothing) {
    Parser p;
    std::string h = "PROXY UNKNOWN\r\n";
    ASSERT_EQ(parse(p, h).status, Status::Done);
    auto o = parse(p, "more");
    EXPECT_EQ(o.status, Status::Done);
    EXPECT_EQ(o.consumed, 0u);
    Parser q;
    ASSERT_EQ(parse(q, "x").status, Status::Error);
    o = parse(q, "more");
    EXPECT_EQ(o.status, Status::Error);
    EXPECT_EQ(o.consumed, 0u);
}

TEST(ProxyHeaderParse, EncodedHeadersRoundTrip) {
    const char* pairs[][2] = {
        {"1.2.3.4:1", "5.6.7.8:2"}, {"[::1]:3", "[2001:db8::]:4"}, {"1.2.3.4:5", "[::1]:6"}};
    for (auto version : {ProxyProtocol::V1, ProxyProtocol::V2}) {
        for (auto& pair : pairs) {
            std::string h = encode(version, addr(pair[0]), addr(pair[1]));
            Parser p;
            auto o = parse(p, h);
            ASSERT_EQ(o.status, Status::Done) << h;
            EXPECT_EQ(o.consumed, h.size());
            EXPECT_FALSE(p.header().local);
            EXPECT_EQ(p.header().source.ip_string(), addr(pair[0]).ip_string());
            EXPECT_EQ(p.header().source.port(), addr(pair[0]).port());
            EXPECT_EQ(p.header().destination.ip_string(), addr(pair[1]).ip_string());
        }
        Parser p;
        std::string local = encode_local(version);
        ASSERT_EQ(parse(p, local).status, Status::Done);
        EXPECT_TRUE(p.header().local);
    }
}

}  // namespace
}  // namespace sb::net::proxy_header
