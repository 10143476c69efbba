// SRV weights brought to 1-1000 and a pool's weights brought under the ring's limit
// (SPEC §3 Health, Discovery), keeping ratios.
#include "discovery/weights.h"

#include <gtest/gtest.h>

#include <numeric>

#include "balance/ring.h"

namespace sb::discovery {
namespace {

TEST(ScaleSrvWeightsTest, WeightsWithinRangeAreKept) {
    EXPECT_EQ(scale_srv_weights({10, 20, 1000}), (std::vector<unsigned>{10, 20, 1000}));
    EXPECT_EQ(scale_srv_weights({1}), (std::vector<unsigned>{1}));
}

TEST(ScaleSrvWeightsTest, ZeroCountsAsOne) {
    EXPECT_EQ(scale_srv_weights({0, 0}), (std::vector<unsigned>{1, 1}));
    EXPECT_EQ(scale_srv_weights({0, 5}), (std::vector<unsigned>{1, 5}));
}

TEST(ScaleSrvWeightsTest, LargeWeightsAreScaledDownKeepingRatios) {
    EXPECT_EQ(scale_srv_weights({65535, 32768, 0}), (std::vector<unsigned>{1000, 500, 1}));
    EXPECT_EQ(scale_srv_weights({2000, 1000, 10}), (std::vector<unsigned>{1000, 500, 5}));
    // A tiny weight next to a huge one keeps weight 1, never 0.
    EXPECT_EQ(scale_srv_weights({60000, 1}), (std::vector<unsigned>{1000, 1}));
}

TEST(ScaleSrvWeightsTest, EmptyIsEmpty) {
    EXPECT_TRUE(scale_srv_weights({}).empty());
}

TEST(FitWeightsTest, WeightsUnderTheLimitAreUnchanged) {
    std::vector<unsigned> w{1000, 1000, 3000};
    EXPECT_FALSE(fit_weights(w, balance::Ring::kMaxTotalWeight));
    EXPECT_EQ(w, (std::vector<unsigned>{1000, 1000, 3000}));
}

TEST(FitWeightsTest, WeightsOverTheLimitScaleDownProportionally) {
    std::vector<unsigned> w{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
    EXPECT_TRUE(fit_weights(w, 5000));
    EXPECT_EQ(w, std::vector<unsigned>(10, 500));
    std::vector<unsigned> mixed{1000, 500, 250, 6000};
    EXPECT_TRUE(fit_weights(mixed, 5000));
    EXPECT_LE(std::accumulate(mixed.begin(), mixed.end(), 0u), 5000u);
    // Ratios kept to within the rounding down of each weight.
    EXPECT_NEAR(mixed[0], 2.0 * mixed[1], 2.0);
    EXPECT_NEAR(mixed[1], 2.0 * mixed[2], 2.0);
    EXPECT_NEAR(mixed[3], 6.0 * mixed[0], 6.0);
}

TEST(FitWeightsTest, TheFloorOfOneStillFits) {
    // 4,000 backends of weight 1 and one of weight 1000: the ones cannot shrink, the
    // big one does.
    std::vector<unsigned> w(4000, 1);
    w.push_back(1000);
    EXPECT_TRUE(fit_weights(w, 4500));
    EXPECT_LE(std::accumulate(w.begin(), w.end(), 0u), 4500u);
    EXPECT_EQ(w.front(), 1u);
    EXPECT_EQ(w.back(), 500u) << "the ones keep 4000 of the 4500; the big one gets the rest";
}

}  // namespace
}  // namespace sb::discovery
