// http::Router: routes tried in order (first match wins), exact and wildcard hosts,
// path prefixes, the listener's default pool, and nullptr when nothing matches.
#include "http/router.h"

#include <gtest/gtest.h>

#include <string>

namespace sb::http {
namespace {

config::ListenerConfig listener(std::vector<config::Route> routes, std::string pool = {}) {
    config::ListenerConfig l;
    l.name = "public";
    l.routes = std::move(routes);
    l.pool = std::move(pool);
    return l;
}

// The pool chosen, or "(none)".
std::string pool_for(const Router& router, std::string_view host, std::string_view path) {
    const std::string* pool = router.route(host, path);
    return pool ? *pool : "(none)";
}

TEST(RouterTest, FirstMatchWins) {
    Router router(listener({
        {"chat.example.com", "/ws", "first"},
        {"chat.example.com", "/", "second"},
        {"", "/ws", "third"},
    }));
    EXPECT_EQ(pool_for(router, "chat.example.com", "/ws/room"), "first");
    EXPECT_EQ(pool_for(router, "chat.example.com", "/other"), "second");
    EXPECT_EQ(pool_for(router, "game.example.com", "/ws"), "third");
}

TEST(RouterTest, EarlierBroadRouteShadowsLaterNarrowOne) {
    Router router(listener({{"", "/", "any"}, {"chat.example.com", "/ws", "chat"}}));
    EXPECT_EQ(pool_for(router, "chat.example.com", "/ws"), "any");
}

TEST(RouterTest, ExactHostMatchesOnlyItself) {
    Router router(listener({{"example.com", "/", "exact"}}));
    EXPECT_EQ(pool_for(router, "example.com", "/"), "exact");
    EXPECT_EQ(pool_for(router, "a.example.com", "/"), "(none)");
    EXPECT_EQ(pool_for(router, "example.com.evil", "/"), "(none)");
    EXPECT_EQ(pool_for(router, "xexample.com", "/"), "(none)");
}

TEST(RouterTest, AbsentHostMatchesAnyHost) {
    Router router(listener({{"", "/game", "game"}}));
    EXPECT_EQ(pool_for(router, "anything.example", "/game"), "game");
    EXPECT_EQ(pool_for(router, "", "/game"), "game");
}

TEST(RouterTest, WildcardMatchesOneOrMoreLabels) {
    Router router(listener({{"*.example.com", "/", "wild"}}));
    EXPECT_EQ(pool_for(router, "a.example.com", "/"), "wild");
    EXPECT_EQ(pool_for(router, "a.b.example.com", "/"), "wild");
}

TEST(RouterTest, WildcardDoesNotMatchTheBareDomain) {
    Router router(listener({{"*.example.com", "/", "wild"}}));
    EXPECT_EQ(pool_for(router, "example.com", "/"), "(none)");
    EXPECT_EQ(pool_for(router, ".example.com", "/"), "(none)");
    EXPECT_EQ(pool_for(router, "aexample.com", "/"), "(none)");
    EXPECT_EQ(pool_for(router, "a.example.com.evil", "/"), "(none)");
}

TEST(RouterTest, HostMatchesStatic) {
    EXPECT_TRUE(Router::host_matches("", "a.example.com"));
    EXPECT_TRUE(Router::host_matches("a.example.com", "a.example.com"));
    EXPECT_FALSE(Router::host_matches("a.example.com", "b.example.com"));
    EXPECT_TRUE(Router::host_matches("*.example.com", "x.example.com"));
    EXPECT_TRUE(Router::host_matches("*.example.com", "x.y.example.com"));
    EXPECT_FALSE(Router::host_matches("*.example.com", "example.com"));
    EXPECT_FALSE(Router::host_matches("*.example.com", "xexample.com"));
}

TEST(RouterTest, PathPrefixIsAPlainStringPrefix) {
    // Like nginx `location /ws` and HAProxy `path_beg /ws`: "/wsx" matches too.
    Router router(listener({{"", "/ws", "ws"}}));
    EXPECT_EQ(pool_for(router, "h", "/ws"), "ws");
    EXPECT_EQ(pool_for(router, "h", "/ws/room/1"), "ws");
    EXPECT_EQ(pool_for(router, "h", "/wsx"), "ws");
    EXPECT_EQ(pool_for(router, "h", "/w"), "(none)");
    EXPECT_EQ(pool_for(router, "h", "/"), "(none)");
    EXPECT_EQ(pool_for(router, "h", "/WS"), "(none)");
}

TEST(RouterTest, HostAndPathMustBothMatch) {
    Router router(listener({{"chat.example.com", "/ws", "chat"}}, "fallback"));
    EXPECT_EQ(pool_for(router, "chat.example.com", "/ws"), "chat");
    EXPECT_EQ(pool_for(router, "chat.example.com", "/api"), "fallback");
    EXPECT_EQ(pool_for(router, "game.example.com", "/ws"), "fallback");
}

TEST(RouterTest, DefaultPoolWhenNoRouteMatches) {
    Router router(listener({{"chat.example.com", "/", "chat"}}, "default"));
    EXPECT_EQ(pool_for(router, "other.example.com", "/"), "default");
}

TEST(RouterTest, DefaultPoolWithoutRoutes) {
    Router router(listener({}, "default"));
    EXPECT_EQ(pool_for(router, "any", "/any"), "default");
}

TEST(RouterTest, NoMatchAndNoDefaultIsNull) {
    Router router(listener({{"chat.example.com", "/", "chat"}}));
    EXPECT_EQ(router.route("other.example.com", "/"), nullptr);
    Router empty(listener({}));
    EXPECT_EQ(empty.route("any", "/"), nullptr);
}

TEST(RouterTest, KeepsItsOwnCopyOfTheRoutes) {
    auto config = listener({{"", "/", "chat"}});
    Router router(config);
    config.routes.clear();
    config.routes.push_back({"", "/", "changed"});
    EXPECT_EQ(pool_for(router, "h", "/"), "chat");
}

}  // namespace
}  // namespace sb::http
