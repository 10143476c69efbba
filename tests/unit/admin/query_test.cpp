// Query-string decoding for /route (keys may hold any byte, percent-encoded).
#include "admin/admin_request.h"

#include <gtest/gtest.h>

namespace sb::admin {
namespace {

TEST(DecodeQueryValue, PercentEscapesAndPlus) {
    EXPECT_EQ(decode_query_value("room%2042"), "room 42");
    EXPECT_EQ(decode_query_value("a+b"), "a b");
    EXPECT_EQ(decode_query_value("%2Fws%2f1"), "/ws/1");
    EXPECT_EQ(decode_query_value("plain"), "plain");
}

TEST(DecodeQueryValue, BrokenEscapesStayAsSent) {
    EXPECT_EQ(decode_query_value("100%"), "100%");
    EXPECT_EQ(decode_query_value("%zz"), "%zz");
    EXPECT_EQ(decode_query_value("%4"), "%4");
}

}  // namespace
}  // namespace sb::admin
