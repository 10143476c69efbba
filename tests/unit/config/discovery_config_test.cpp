// The configuration of DNS discovery (SPEC §2 `[server] resolvers`, backends by
// `address = "name:port"` or `srv`, `resolve_interval`; SPEC §3 Health "Discovery"):
// what loads, what is refused and where. Names are checked for syntax only: nothing
// here resolves anything.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "config/validate.h"
#include "config_test_util.h"

namespace sb::config {
namespace {

using namespace std::chrono_literals;
using test::dump;
using test::ErrorAt;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string with_backends(const std::string& backends, const std::string& extra = "") {
    return R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = )" +
           backends + "\n" + extra;
}

TEST(DiscoveryConfigTest, ResolversDefaultToTheSystem) {
    auto result = test::load(with_backends(R"([{ address = "10.0.0.1:80" }])"));
    ASSERT_TRUE(result.ok()) << dump(result);
    EXPECT_THAT(result.config->server.resolvers, IsEmpty());
}

TEST(DiscoveryConfigTest, ResolversAreIpPortAddresses) {
    auto result = test::load(R"(
[server]
resolvers = ["127.0.0.1:5353", "[::1]:53"]
)" + with_backends(R"([{ address = "10.0.0.1:80" }])"));
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& r = result.config->server.resolvers;
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].to_string(), "127.0.0.1:5353");
    EXPECT_EQ(r[1].to_string(), "[::1]:53");
}

TEST(DiscoveryConfigTest, ResolverNamesAndPortZeroAreRefused) {
    auto result = test::load(R"(
[server]
resolvers = ["dns.internal:53", "127.0.0.1:0"]
)" + with_backends(R"([{ address = "10.0.0.1:80" }])"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 14, HasSubstr("is not an address")),
                                           ErrorAt(2, 33, HasSubstr("a port other than 0"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, ResolversMustBeAnArray) {
    auto result = test::load(R"(
[server]
resolvers = "127.0.0.1:53"
)" + with_backends(R"([{ address = "10.0.0.1:80" }])"));
    EXPECT_FALSE(result.ok());
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 13, HasSubstr("array")))) << dump(result);
}

TEST(DiscoveryConfigTest, ANameWithAPortIsADiscoveredBackend) {
    auto result = test::load(with_backends(R"([{ address = "Chat.Internal:8080", weight = 3 }])"));
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& b = result.config->pools.at("chat").backends.at(0);
    EXPECT_EQ(b.kind, BackendConfig::Kind::Name);
    EXPECT_TRUE(b.discovered());
    EXPECT_EQ(b.address, "Chat.Internal:8080");  // as written, for /status
    EXPECT_EQ(b.host, "chat.internal");          // DNS names compare in lower case
    EXPECT_EQ(b.port, 8080);
    EXPECT_EQ(b.weight, 3u);  // applies to each record
    EXPECT_FALSE(b.resolved.is_set());
    EXPECT_EQ(b.source(), "Chat.Internal:8080");
}

TEST(DiscoveryConfigTest, AnSrvNameIsADiscoveredBackend) {
    auto result = test::load(
        with_backends(R"([{ srv = "_ws._tcp.chat.internal" }])", "resolve_interval = \"5s\""));
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& pool = result.config->pools.at("chat");
    const auto& b = pool.backends.at(0);
    EXPECT_EQ(b.kind, BackendConfig::Kind::Srv);
    EXPECT_EQ(b.srv, "_ws._tcp.chat.internal");
    EXPECT_EQ(b.source(), "_ws._tcp.chat.internal");
    EXPECT_EQ(b.address, "");
    EXPECT_EQ(pool.resolve_interval, 5s);
}

TEST(DiscoveryConfigTest, LiteralsNamesAndSrvMixInOnePool) {
    auto result = test::load(with_backends(
        R"([{ address = "10.0.0.1:80" }, { address = "chat.internal:80" }, { srv = "_ws._tcp.chat.internal" }])"));
    ASSERT_TRUE(result.ok()) << dump(result);
    const auto& b = result.config->pools.at("chat").backends;
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(b[0].kind, BackendConfig::Kind::Literal);
    EXPECT_EQ(b[1].kind, BackendConfig::Kind::Name);
    EXPECT_EQ(b[2].kind, BackendConfig::Kind::Srv);
}

TEST(DiscoveryConfigTest, AddressAndSrvTogetherAreRefused) {
    auto result = test::load(
        with_backends(R"([{ address = "chat.internal:80", srv = "_ws._tcp.chat.internal" }])"));
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(6, 51,
                                    Eq("a backend has either \"address\" or \"srv\", not "
                                       "both"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, AWeightOnAnSrvBackendIsRefused) {
    auto result = test::load(with_backends(R"([{ srv = "_ws._tcp.chat.internal", weight = 2 }])"));
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(6, 47, HasSubstr("\"weight\" does not apply to an SRV"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, AnSrvNameWithAPortIsRefused) {
    auto result = test::load(with_backends(R"([{ srv = "_ws._tcp.chat.internal:80" }])"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 21, HasSubstr("the records give the ports"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, NamesAreCheckedForSyntax) {
    for (const auto* bad : {"chat..internal:80", "-chat.internal:80", "chat-.internal:80",
                            "chat!.internal:80", "chat.internal:0", "chat.internal:",
                            "chat.internal:99999", "10.0.0.300:80", "chat.internal"}) {
        SCOPED_TRACE(bad);
        auto result = test::load(with_backends(std::string("[{ address = \"") + bad + "\" }]"));
        EXPECT_FALSE(result.ok());
        ASSERT_EQ(result.errors.size(), 1u) << dump(result);
        EXPECT_EQ(result.errors[0].line, 6u);
    }
}

TEST(DiscoveryConfigTest, ALabelOver63AndANameOver253AreRefused) {
    std::string label(64, 'a');
    auto result = test::load(with_backends("[{ address = \"" + label + ".internal:80\" }]"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 25, HasSubstr("longer than 63"))))
        << dump(result);
    std::string name;
    for (int i = 0; i < 50; ++i)
        name += "abcd.";
    name += "internal";  // 258 characters
    result = test::load(with_backends("[{ srv = \"" + name + "\" }]"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 21, HasSubstr("longer than 253"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, DnsNameRules) {
    EXPECT_EQ(dns_name_problem("chat.internal"), "");
    EXPECT_EQ(dns_name_problem("chat.internal."), "");  // fully qualified
    EXPECT_EQ(dns_name_problem("_ws._tcp.chat.internal"), "");
    EXPECT_EQ(dns_name_problem("localhost"), "");
    EXPECT_EQ(dns_name_problem("a-b.c-d.e"), "");
    EXPECT_NE(dns_name_problem(""), "");
    EXPECT_NE(dns_name_problem("."), "");
    EXPECT_NE(dns_name_problem("a..b"), "");
    EXPECT_NE(dns_name_problem("a b"), "");
    EXPECT_NE(dns_name_problem("1.2.3.4"), "");
    EXPECT_NE(dns_name_problem(std::string(64, 'x')), "");
    EXPECT_EQ(dns_name_problem(std::string(63, 'x')), "");
}

TEST(DiscoveryConfigTest, ADuplicateLiteralIsAnErrorAsBefore) {
    auto result =
        test::load(with_backends(R"([{ address = "10.0.0.1:80" }, { address = "10.0.0.1:80" }])"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 54, HasSubstr("is listed twice"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, TheSameNameTwiceIsAnError) {
    auto result = test::load(
        with_backends(R"([{ address = "chat.internal:80" }, { address = "CHAT.internal:80" }])"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 59, HasSubstr("is listed twice"))))
        << dump(result);
    result = test::load(with_backends(R"([{ srv = "_a._tcp.x" }, { srv = "_a._tcp.x" }])"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 44, HasSubstr("is listed twice"))))
        << dump(result);
}

TEST(DiscoveryConfigTest, OneNameOnTwoPortsIsTwoEntries) {
    auto result = test::load(
        with_backends(R"([{ address = "chat.internal:80" }, { address = "chat.internal:81" }])"));
    EXPECT_TRUE(result.ok()) << dump(result);
}

TEST(DiscoveryConfigTest, ResolveIntervalIsAtLeastOneSecond) {
    auto result = test::load(
        with_backends(R"([{ address = "chat.internal:80" }])", "resolve_interval = \"100ms\""));
    EXPECT_FALSE(result.ok());
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(7, 20, testing::_))) << dump(result);
}

TEST(DiscoveryConfigTest, RingWeightLimitCountsANameOnceAndAnSrvAsOne) {
    // Resolved sets can only be checked at run time (they are scaled down there); the
    // load-time check counts what is known: a name has at least one record.
    auto result = test::load(with_backends(
        R"([{ address = "a.internal:80", weight = 1000 }, { address = "b.internal:80", weight = 1000 }, { address = "c.internal:80", weight = 1000 }, { address = "d.internal:80", weight = 1000 }, { address = "e.internal:80", weight = 1000 }, { srv = "_x._tcp.internal" }])"));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 12, HasSubstr("add up to 5001"))))
        << dump(result);
}

}  // namespace
}  // namespace sb::config
