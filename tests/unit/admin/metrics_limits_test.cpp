// The configured limits and the descriptor counts in /metrics: what the alerting rules
// divide by to say "connections near their limit" (packaging/prometheus).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>

#include "admin/views.h"
#include "admin_test_util.h"

namespace sb::admin {
namespace {

constexpr std::string_view kLimits = R"(
[server]
max_connections = 5000

[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
max_connections = 4000

[[listeners]]
name = "internal"
listen = "127.0.0.1:0"
pool = "game"

[pools.chat]
backends = [ { address = "127.0.0.1:7001" }, { address = "127.0.0.1:7002" } ]
max_connections_per_backend = 1500

[pools.game]
backends = [ { address = "127.0.0.1:7003" } ]
)";

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsLimits, ConfiguredLimitsAreGaugesWithZeroForNone) {
    auto state = std::make_shared<test::State>();
    auto text = metrics_text(test::make_sources(state, kLimits));
    EXPECT_TRUE(has_line(text, "# TYPE switchboard_server_max_connections gauge")) << text;
    EXPECT_TRUE(has_line(text, "switchboard_server_max_connections 5000"));
    EXPECT_TRUE(has_line(text, "# TYPE switchboard_listener_max_connections gauge"));
    EXPECT_TRUE(has_line(text, "switchboard_listener_max_connections{listener=\"public\"} 4000"));
    EXPECT_TRUE(has_line(text, "switchboard_listener_max_connections{listener=\"internal\"} 0"));
    EXPECT_TRUE(has_line(text, "# TYPE switchboard_backend_max_connections gauge"));
    EXPECT_TRUE(has_line(text, "switchboard_backend_max_connections{pool=\"chat\"} 1500"));
    EXPECT_TRUE(has_line(text, "switchboard_backend_max_connections{pool=\"game\"} 0"));
}

TEST(MetricsLimits, NoLimitsConfiguredReadsZero) {
    auto state = std::make_shared<test::State>();
    auto text = metrics_text(test::make_sources(state));
    EXPECT_TRUE(has_line(text, "switchboard_server_max_connections 0")) << text;
    EXPECT_TRUE(has_line(text, "switchboard_listener_max_connections{listener=\"public\"} 0"));
    EXPECT_TRUE(has_line(text, "switchboard_backend_max_connections{pool=\"chat\"} 0"));
}

TEST(MetricsLimits, DescriptorsOpenAndTheirLimit) {
    auto state = std::make_shared<test::State>();
    auto text = metrics_text(test::make_sources(state));
    EXPECT_TRUE(has_line(text, "# TYPE switchboard_open_fds gauge")) << text;
    EXPECT_TRUE(has_line(text, "# TYPE switchboard_max_fds gauge"));
    rlimit limit{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    EXPECT_TRUE(has_line(text, "switchboard_max_fds " + std::to_string(limit.rlim_cur)));
    EXPECT_NE(text.find("\nswitchboard_open_fds "), std::string::npos);
}

}  // namespace
}  // namespace sb::admin
