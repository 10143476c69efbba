// RoundRobin: turns in proportion to weight, interleaved (not in runs).
#include "balance/round_robin.h"

#include <gtest/gtest.h>

#include <vector>

namespace sb::balance {
namespace {

TEST(RoundRobin, EqualWeightsTakeTurns) {
    std::vector<Node> nodes = {{"a", 1}, {"b", 1}, {"c", 1}};
    RoundRobin rr(nodes);
    EXPECT_EQ(rr.schedule(), (std::vector<uint32_t>{0, 1, 2}));
    EXPECT_EQ(rr.first(0), 0u);
    EXPECT_EQ(rr.first(4), 1u);
}

TEST(RoundRobin, WeightsAreSmoothlyInterleaved) {
    std::vector<Node> nodes = {{"a", 5}, {"b", 1}, {"c", 1}};
    RoundRobin rr(nodes);
    // nginx's smooth weighted round robin for 5:1:1.
    EXPECT_EQ(rr.schedule(), (std::vector<uint32_t>{0, 0, 1, 0, 2, 0, 0}));
}

TEST(RoundRobin, WeightsAreReducedByTheirGcd) {
    std::vector<Node> nodes = {{"a", 200}, {"b", 100}};
    RoundRobin rr(nodes);
    EXPECT_EQ(rr.schedule().size(), 3u);
}

TEST(RoundRobin, WalkGivesDistinctBackends) {
    std::vector<Node> nodes = {{"a", 3}, {"b", 1}};
    RoundRobin rr(nodes);
    std::vector<uint32_t> order;
    rr.walk(0, [&](uint32_t n) {
        order.push_back(n);
        return true;
    });
    EXPECT_EQ(order, (std::vector<uint32_t>{0, 1}));
}

}  // namespace
}  // namespace sb::balance
