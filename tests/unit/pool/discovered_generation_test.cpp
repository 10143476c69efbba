// Generation::build with discovered records (SPEC §3 Health, Discovery): every backend
// is an "ip:port" with its own weight and source, merged across entries, kept across
// generations, and a pool without records is safe for placement and /route under every
// algorithm.
#include <gtest/gtest.h>

#include <string>

#include "balance/hash.h"
#include "config/loader.h"
#include "pool/generation.h"

namespace sb::pool {
namespace {

config::ConfigPtr load(const std::string& backends, const std::string& extra = "") {
    auto loaded = config::load_string(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = )" + backends + "\n" + extra,
                                      "t.toml");
    EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    return loaded.config;
}

discovery::Record rec(const char* address, unsigned weight = 1, const char* host = "chat.test") {
    return {*config::SocketAddress::parse(address), weight, host};
}

GenerationPtr build(const config::ConfigPtr& config, const discovery::Discovered* found,
                    const Generation* previous = nullptr) {
    std::vector<config::ConfigError> errors;
    auto g = Generation::build(config, 1, previous, errors, found);
    EXPECT_TRUE(errors.empty());
    return g;
}

std::vector<std::string> addresses(const Pool& p) {
    std::vector<std::string> out;
    for (const auto& b : p.backends())
        out.push_back(b->address());
    return out;
}

TEST(DiscoveredGenerationTest, RecordsAreBackendsByIpPortWithTheEntrysWeight) {
    auto config = load(R"([{ address = "chat.test:80", weight = 3 }])");
    discovery::Discovered found{{"chat", {{rec("127.0.0.2:80"), rec("127.0.0.1:80")}}}};
    auto g = build(config, &found);
    const Pool& p = *g->pool("chat");
    EXPECT_EQ(addresses(p), (std::vector<std::string>{"127.0.0.1:80", "127.0.0.2:80"}));
    EXPECT_EQ(p.weight(0), 3u);
    EXPECT_EQ(p.weight(1), 3u);
    EXPECT_EQ(p.source(0), "chat.test:80");
    EXPECT_EQ(p.backends()[0]->host(), "chat.test");
    EXPECT_EQ(p.table()->nodes()[0].id, "127.0.0.1:80");
}

TEST(DiscoveredGenerationTest, SrvRecordsKeepTheirOwnWeights) {
    auto config = load(R"([{ srv = "_ws._tcp.chat.test" }])");
    discovery::Discovered found{
        {"chat", {{rec("127.0.0.1:9001", 10, "a.test"), rec("127.0.0.2:9002", 30, "b.test")}}}};
    auto g = build(config, &found);
    const Pool& p = *g->pool("chat");
    ASSERT_EQ(p.backends().size(), 2u);
    EXPECT_EQ(p.weight(0), 10u);
    EXPECT_EQ(p.weight(1), 30u);
    EXPECT_EQ(p.source(1), "_ws._tcp.chat.test");
}

TEST(DiscoveredGenerationTest, AnAddressTwoEntriesGiveIsOneBackend) {
    auto config = load(
        R"([{ address = "127.0.0.1:80", weight = 5 }, { address = "chat.test:80" }, { address = "other.test:80" }])");
    discovery::Discovered found{
        {"chat", {{}, {rec("127.0.0.1:80"), rec("127.0.0.3:80")}, {rec("127.0.0.3:80")}}}};
    auto g = build(config, &found);
    const Pool& p = *g->pool("chat");
    EXPECT_EQ(addresses(p), (std::vector<std::string>{"127.0.0.1:80", "127.0.0.3:80"}));
    EXPECT_EQ(p.weight(0), 5u) << "the first entry's weight";
    EXPECT_EQ(p.source(0), "127.0.0.1:80");
    EXPECT_EQ(p.source(1), "chat.test:80");
}

TEST(DiscoveredGenerationTest, BackendsAreKeptAcrossGenerationsByIpPort) {
    auto config = load(R"([{ address = "chat.test:80" }])");
    discovery::Discovered first{{"chat", {{rec("127.0.0.1:80"), rec("127.0.0.2:80")}}}};
    auto g1 = build(config, &first);
    discovery::Discovered second{{"chat", {{rec("127.0.0.2:80"), rec("127.0.0.3:80")}}}};
    auto g2 = build(config, &second, g1.get());
    const Pool& p1 = *g1->pool("chat");
    const Pool& p2 = *g2->pool("chat");
    EXPECT_EQ(p2.backends()[0].get(), p1.backends()[1].get()) << "127.0.0.2:80 is the same";
    EXPECT_EQ(p2.index_of(p1.backends()[0].get()), -1) << "127.0.0.1:80 is removed";
    EXPECT_EQ(p2.rooms(), p1.rooms());
    EXPECT_NE(p2.table(), p1.table());
    // The same records again: the table is shared, so nothing is rehomed.
    auto g3 = build(config, &second, g2.get());
    EXPECT_EQ(g3->pool("chat")->table(), p2.table());
}

TEST(DiscoveredGenerationTest, ARingPoolOverItsWeightLimitIsScaledDown) {
    auto config = load(R"([{ address = "chat.test:80", weight = 1000 }])");
    discovery::RecordSet many;
    for (int i = 1; i <= 10; ++i)
        many.push_back(rec(("127.0.0." + std::to_string(i) + ":80").c_str()));
    discovery::canonicalize(many);
    discovery::Discovered found{{"chat", {many}}};
    auto g = build(config, &found);
    const Pool& p = *g->pool("chat");
    ASSERT_EQ(p.backends().size(), 10u);
    unsigned total = 0;
    for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(p.weight(i), 500u);
        total += p.weight(i);
    }
    EXPECT_EQ(total, 5000u);
}

TEST(DiscoveredGenerationTest, APoolWithoutRecordsIsSafeUnderEveryAlgorithm) {
    for (const char* algorithm : {"ring", "maglev", "least_connections", "round_robin"}) {
        SCOPED_TRACE(algorithm);
        auto config = load(R"([{ srv = "_ws._tcp.chat.test" }])",
                           std::string("algorithm = \"") + algorithm + "\"\nload_factor = 1.5");
        auto g = build(config, nullptr);  // as --check, or before the first answer
        const Pool& p = *g->pool("chat");
        EXPECT_TRUE(p.backends().empty());
        Placement placement;
        EXPECT_EQ(p.place("room", balance::hash_key("room"), {}, placement),
                  Pool::Outcome::NoBackend);
        EXPECT_FALSE(placement);
        auto r = p.describe("room");
        EXPECT_EQ(r.chosen, nullptr);
        EXPECT_TRUE(r.preference.empty());
        EXPECT_EQ(p.home(balance::hash_key("room")), nullptr);
        EXPECT_EQ(p.load_cap(), 0);
        EXPECT_TRUE(p.table()->shares().empty());
    }
}

TEST(DiscoveredGenerationTest, ARebuildFromTheSameConfigKeepsTheCertificates) {
    // A pool with TLS to backends: its client context is loaded once per Config.
    auto config = load(R"([{ address = "chat.test:80" }])", "[pools.chat.tls]\nverify = false");
    auto g1 = build(config, nullptr);
    discovery::Discovered found{{"chat", {{rec("127.0.0.1:80")}}}};
    auto g2 = build(config, &found, g1.get());
    EXPECT_EQ(g2->pool("chat")->shared_tls(), g1->pool("chat")->shared_tls());
}

}  // namespace
}  // namespace sb::pool
