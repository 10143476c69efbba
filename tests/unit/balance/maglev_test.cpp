// Maglev: golden placements, balance, disruption bounded near 1/N, weights.
#include "balance/maglev.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "balance/hash.h"

namespace sb::balance {
namespace {

std::vector<Node> backends(int n) {
    std::vector<Node> nodes;
    for (int i = 1; i <= n; ++i)
        nodes.push_back({"10.0.0." + std::to_string(i) + ":8080", 1});
    return nodes;
}

TEST(Maglev, GoldenPlacements) {
    Maglev m(backends(5));
    std::vector<uint32_t> got;
    for (int k = 0; k < 12; ++k)
        got.push_back(m.first(hash_key("room-" + std::to_string(k))));
    EXPECT_EQ(got, (std::vector<uint32_t>{0, 0, 0, 4, 4, 3, 0, 1, 0, 1, 4, 1}));
}

TEST(Maglev, TableSizeIsAPrimeAtLeast100TimesTheBackends) {
    EXPECT_EQ(Maglev::table_size_for(10), 65537u);
    EXPECT_EQ(Maglev::table_size_for(1000), 131071u);
    Maglev m(backends(10));
    EXPECT_EQ(m.table_size(), 65537u);
}

TEST(Maglev, TenEqualBackendsPeakToMeanAtMost102) {
    Maglev m(backends(10));
    std::vector<int> load(10, 0);
    const int n = 1'000'000;
    for (int i = 0; i < n; ++i)
        ++load[m.first(hash_key("k" + std::to_string(i)))];
    double peak = *std::max_element(load.begin(), load.end());
    EXPECT_LE(peak / (n / 10.0), 1.02);
}

TEST(Maglev, RemovingOneOfTenMovesAtMost12PercentOfKeys) {
    auto all = backends(10);
    auto fewer = all;
    fewer.erase(fewer.begin() + 3);
    Maglev before(all), after(fewer);
    const int n = 200'000;
    int moved = 0;
    for (int i = 0; i < n; ++i) {
        uint64_t h = hash_key("k" + std::to_string(i));
        if (all[before.first(h)].id != fewer[after.first(h)].id) ++moved;
    }
    EXPECT_LE(static_cast<double>(moved) / n, 1.2 / 10);
}

TEST(Maglev, WeightsShareTheTable) {
    auto nodes = backends(3);
    nodes[2].weight = 3;
    Maglev m(nodes);
    auto shares = m.shares();
    EXPECT_NEAR(shares[2], 0.6, 0.01);
    EXPECT_NEAR(shares[0], 0.2, 0.01);
}

TEST(Maglev, PreferenceVisitsEveryBackendOnce) {
    Maglev m(backends(8));
    std::vector<uint32_t> order;
    m.walk(hash_key("room"), [&](uint32_t n) {
        order.push_back(n);
        return true;
    });
    ASSERT_EQ(order.size(), 8u);
    EXPECT_EQ(order.front(), m.first(hash_key("room")));
    std::sort(order.begin(), order.end());
    EXPECT_EQ(std::unique(order.begin(), order.end()), order.end());
}

}  // namespace
}  // namespace sb::balance
