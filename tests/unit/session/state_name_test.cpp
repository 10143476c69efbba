// session::state_name: every SessionState has its own name, the one log lines carry
// as the session's current action (STYLE §6), and none falls through to "unknown".
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

#include "session/session.h"

namespace sb::session {
namespace {

TEST(StateNameTest, EveryStateHasTheNameLogLinesShow) {
    EXPECT_EQ(state_name(SessionState::ReadingRequest), "reading request");
    EXPECT_EQ(state_name(SessionState::ConnectingBackend), "connecting to backend");
    EXPECT_EQ(state_name(SessionState::AwaitingResponse), "awaiting backend answer");
    EXPECT_EQ(state_name(SessionState::Relaying), "relaying");
    EXPECT_EQ(state_name(SessionState::Closing), "closing");
    EXPECT_EQ(state_name(SessionState::Closed), "closed");
}

TEST(StateNameTest, NamesAreDistinctAndNoneIsUnknown) {
    std::set<std::string_view> names;
    // The six states, first to last (session.h lists them in this order).
    for (int s = static_cast<int>(SessionState::ReadingRequest);
         s <= static_cast<int>(SessionState::Closed); ++s) {
        std::string_view name = state_name(static_cast<SessionState>(s));
        EXPECT_NE(name, "unknown") << "state " << s;
        EXPECT_FALSE(name.empty()) << "state " << s;
        names.insert(name);
    }
    EXPECT_EQ(names.size(), 6u);
}

TEST(StateNameTest, AValueOutsideTheEnumIsUnknownNotACrash) {
    EXPECT_EQ(state_name(static_cast<SessionState>(200)), "unknown");
}

}  // namespace
}  // namespace sb::session
