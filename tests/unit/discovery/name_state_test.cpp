// The rules one discovered name follows (SPEC §3 Health, Discovery): errors keep the
// last good set, NXDOMAIN and empty answers remove it only at the third in a row, and
// set comparisons do not depend on record order.
#include "discovery/name_state.h"

#include <gtest/gtest.h>

namespace sb::discovery {
namespace {

Record rec(const char* address, unsigned weight = 1) {
    return Record{*config::SocketAddress::parse(address), weight, "chat.test"};
}

RecordSet set(std::initializer_list<const char*> addresses) {
    RecordSet out;
    for (const auto* a : addresses)
        out.push_back(rec(a));
    canonicalize(out);
    return out;
}

TEST(NameStateTest, ANameNeverResolvedHasNoRecords) {
    NameState s;
    EXPECT_FALSE(s.looked_up());
    EXPECT_TRUE(s.records().empty());
}

TEST(NameStateTest, AnAnswerReplacesTheSet) {
    NameState s;
    EXPECT_TRUE(s.apply(Outcome::Ok, set({"127.0.0.1:80", "127.0.0.2:80"})));
    EXPECT_EQ(s.records().size(), 2u);
    EXPECT_FALSE(s.apply(Outcome::Ok, set({"127.0.0.2:80", "127.0.0.1:80"})))
        << "the same records in another order are the same set";
    EXPECT_TRUE(s.apply(Outcome::Ok, set({"127.0.0.1:80"})));
    EXPECT_EQ(s.records(), set({"127.0.0.1:80"}));
    EXPECT_EQ(s.lookups(Outcome::Ok), 3u);
}

TEST(NameStateTest, ErrorsKeepTheLastGoodSet) {
    NameState s;
    s.apply(Outcome::Ok, set({"127.0.0.1:80"}));
    for (int i = 0; i < 10; ++i)
        EXPECT_FALSE(s.apply(Outcome::Error, {}, "timeout"));
    EXPECT_EQ(s.records(), set({"127.0.0.1:80"}));
    EXPECT_EQ(s.last(), Outcome::Error);
    EXPECT_EQ(s.last_error(), "timeout");
    EXPECT_EQ(s.lookups(Outcome::Error), 10u);
}

TEST(NameStateTest, NxdomainRemovesOnlyAtTheThirdInARow) {
    NameState s;
    s.apply(Outcome::Ok, set({"127.0.0.1:80"}));
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_EQ(s.empty_streak(), 2u);
    EXPECT_EQ(s.records().size(), 1u);
    EXPECT_TRUE(s.apply(Outcome::NxDomain));
    EXPECT_TRUE(s.records().empty());
    EXPECT_FALSE(s.apply(Outcome::NxDomain)) << "already empty";
}

TEST(NameStateTest, EmptyAnswersCountLikeNxdomain) {
    NameState s;
    s.apply(Outcome::Ok, set({"127.0.0.1:80"}));
    EXPECT_FALSE(s.apply(Outcome::Empty));
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_TRUE(s.apply(Outcome::Empty));
    EXPECT_EQ(s.lookups(Outcome::Empty), 2u);
    EXPECT_EQ(s.lookups(Outcome::NxDomain), 1u);
}

TEST(NameStateTest, AnAnswerOrAnErrorBreaksTheStreak) {
    NameState s;
    s.apply(Outcome::Ok, set({"127.0.0.1:80"}));
    s.apply(Outcome::NxDomain);
    s.apply(Outcome::NxDomain);
    s.apply(Outcome::Ok, set({"127.0.0.1:80"}));
    EXPECT_EQ(s.empty_streak(), 0u);
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_FALSE(s.apply(Outcome::Error, {}, "SERVFAIL"));
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_FALSE(s.apply(Outcome::NxDomain));
    EXPECT_EQ(s.records().size(), 1u);
    EXPECT_TRUE(s.apply(Outcome::NxDomain));
}

TEST(NameStateTest, AFirstLookupThatFailsLeavesTheSetEmptyUntilOneSucceeds) {
    NameState s;
    EXPECT_FALSE(s.apply(Outcome::Error, {}, "connection refused"));
    EXPECT_TRUE(s.looked_up());
    EXPECT_TRUE(s.records().empty());
    EXPECT_TRUE(s.apply(Outcome::Ok, set({"127.0.0.3:80"})));
}

TEST(RecordSetTest, CanonicalOrderIsByAddressNotText) {
    RecordSet r{rec("127.0.0.10:80"), rec("[::1]:80"), rec("127.0.0.9:80"), rec("127.0.0.9:79"),
                rec("127.0.0.9:80", 5)};
    canonicalize(r);
    ASSERT_EQ(r.size(), 4u) << "a repeated address is kept once";
    EXPECT_EQ(r[0].address.to_string(), "127.0.0.9:79");
    EXPECT_EQ(r[1].address.to_string(), "127.0.0.9:80");
    EXPECT_EQ(r[1].weight, 1u) << "the first of repeats is kept";
    EXPECT_EQ(r[2].address.to_string(), "127.0.0.10:80");
    EXPECT_EQ(r[3].address.to_string(), "[::1]:80");
}

TEST(RecordSetTest, DiffNamesAddedAndRemovedAddresses) {
    auto d = diff(set({"127.0.0.1:80", "127.0.0.2:80"}), set({"127.0.0.2:80", "127.0.0.3:80"}));
    EXPECT_EQ(d.added, (std::vector<std::string>{"127.0.0.3:80"}));
    EXPECT_EQ(d.removed, (std::vector<std::string>{"127.0.0.1:80"}));
    EXPECT_TRUE(diff(set({"127.0.0.1:80"}), set({"127.0.0.1:80"})).empty());
}

TEST(OutcomeTest, NamesAreTheMetricLabels) {
    EXPECT_STREQ(outcome_name(Outcome::Ok), "ok");
    EXPECT_STREQ(outcome_name(Outcome::Error), "error");
    EXPECT_STREQ(outcome_name(Outcome::NxDomain), "nxdomain");
    EXPECT_STREQ(outcome_name(Outcome::Empty), "empty");
}

}  // namespace
}  // namespace sb::discovery
