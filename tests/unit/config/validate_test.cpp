// config/validate.h: value syntaxes (hash keys, origins, names, host patterns) and,
// through load_string, the rules across sections: unique listener names and
// addresses, pools that exist, backends listed once, routes and websocket limits.
#include "config/validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"
#include "config_test_util.h"

namespace sb::config {
namespace {

using test::dump;
using test::ErrorAt;
using test::load;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;

HashKey hash_key(std::string_view text) {
    auto parsed = parse_hash_key(text);
    EXPECT_TRUE(std::holds_alternative<HashKey>(parsed))
        << text << ": " << std::get<std::string>(parsed);
    return std::holds_alternative<HashKey>(parsed) ? std::get<HashKey>(parsed) : HashKey{};
}

std::string hash_key_error(std::string_view text) {
    auto parsed = parse_hash_key(text);
    auto* message = std::get_if<std::string>(&parsed);
    return message ? *message : "(accepted)";
}

// ---- parse_hash_key ----

TEST(ParseHashKeyTest, ClientIpAndPathTakeNoArgument) {
    EXPECT_EQ(hash_key("client_ip").kind, HashKey::Kind::ClientIp);
    EXPECT_EQ(hash_key("path").kind, HashKey::Kind::Path);
    EXPECT_EQ(hash_key_error("client_ip:x"), "\"client_ip\" takes no argument");
    EXPECT_EQ(hash_key_error("path:"), "\"path\" takes no argument");
}

TEST(ParseHashKeyTest, HeaderNameIsLowerCased) {
    auto key = hash_key("header:X-Room-ID");
    EXPECT_EQ(key.kind, HashKey::Kind::Header);
    EXPECT_EQ(key.name, "x-room-id");
}

TEST(ParseHashKeyTest, CookieAndQueryNamesKeepTheirCase) {
    auto cookie = hash_key("cookie:RoomId");
    EXPECT_EQ(cookie.kind, HashKey::Kind::Cookie);
    EXPECT_EQ(cookie.name, "RoomId");
    auto query = hash_key("query:Room");
    EXPECT_EQ(query.kind, HashKey::Kind::Query);
    EXPECT_EQ(query.name, "Room");
}

TEST(ParseHashKeyTest, NamedKindsNeedAName) {
    EXPECT_EQ(hash_key_error("header:"), "\"header:\" needs a name, e.g. \"header:room\"");
    EXPECT_EQ(hash_key_error("cookie"), "\"cookie:\" needs a name, e.g. \"cookie:room\"");
    EXPECT_EQ(hash_key_error("query:"), "\"query:\" needs a name, e.g. \"query:room\"");
}

TEST(ParseHashKeyTest, NamesMustBeTokens) {
    EXPECT_EQ(hash_key_error("header:X Room"), "\"X Room\" is not a valid header name");
    EXPECT_EQ(hash_key_error("cookie:a;b"), "\"a;b\" is not a valid cookie name");
    EXPECT_EQ(hash_key_error("query:a=b"), "\"a=b\" is not a valid query name");
}

TEST(ParseHashKeyTest, PathSegmentCountsFromOneToSixtyFour) {
    EXPECT_EQ(hash_key("path_segment:1").segment, 1u);
    EXPECT_EQ(hash_key("path_segment:2").kind, HashKey::Kind::PathSegment);
    EXPECT_EQ(hash_key("path_segment:64").segment, 64u);
    for (auto text : {"path_segment:0", "path_segment:65", "path_segment:", "path_segment",
                      "path_segment:x", "path_segment:2x", "path_segment:-1"}) {
        EXPECT_EQ(hash_key_error(text),
                  "path_segment:N needs N between 1 and 64 (segments count from 1)")
            << text;
    }
}

TEST(ParseHashKeyTest, UnknownKindsGetTheUsage) {
    for (auto text : {"", "ip", "Client_IP", "headers:x", "uri"}) {
        EXPECT_THAT(hash_key_error(text), HasSubstr("hash_key must be client_ip, header:NAME"))
            << text;
    }
}

TEST(ParseHashKeyTest, ToStringRoundTrips) {
    for (auto text :
         {"client_ip", "header:x-room", "cookie:Room", "query:room", "path", "path_segment:3"}) {
        EXPECT_EQ(hash_key_to_string(hash_key(text)), text);
    }
}

// ---- normalize_origin ----

TEST(NormalizeOriginTest, KeepsAnOriginAlreadyNormal) {
    EXPECT_EQ(normalize_origin("https://chat.example.com"), "https://chat.example.com");
    EXPECT_EQ(normalize_origin("http://localhost:3000"), "http://localhost:3000");
}

TEST(NormalizeOriginTest, LowerCasesSchemeAndHost) {
    EXPECT_EQ(normalize_origin("HTTPS://Chat.Example.COM"), "https://chat.example.com");
}

TEST(NormalizeOriginTest, DropsTheSchemesDefaultPort) {
    EXPECT_EQ(normalize_origin("https://a.example:443"), "https://a.example");
    EXPECT_EQ(normalize_origin("http://a.example:80"), "http://a.example");
    EXPECT_EQ(normalize_origin("http://a.example:443"), "http://a.example:443");
    EXPECT_EQ(normalize_origin("https://a.example:80"), "https://a.example:80");
}

TEST(NormalizeOriginTest, AcceptsBracketedIpv6) {
    EXPECT_EQ(normalize_origin("http://[::1]:8080"), "http://[::1]:8080");
    EXPECT_EQ(normalize_origin("https://[FD00::1]"), "https://[fd00::1]");
}

TEST(NormalizeOriginTest, RejectsWhatIsNotAnOrigin) {
    for (auto text :
         {"", "chat.example.com", "://a.example", "https://", "https://a.example/",
          "https://a.example/path", "https://a.example?x", "https://user@a.example",
          "https://a.example:", "https://a.example:99999", "https://a.example:x",
          "ht tp://a.example", "https://a example", "https://[::1", "https://[::1]x", "null"}) {
        EXPECT_EQ(normalize_origin(text), "") << "\"" << text << "\"";
    }
}

// ---- names and host patterns ----

TEST(ValidNameTest, LettersDigitsDashAndUnderscore) {
    EXPECT_TRUE(valid_name("public"));
    EXPECT_TRUE(valid_name("chat-1_EU"));
    EXPECT_TRUE(valid_name(std::string(64, 'a')));
}

TEST(ValidNameTest, RejectsOtherCharactersAndLength) {
    for (auto name : {"", "a b", "a.b", "a/b", "a\"b", "caf\xc3\xa9"}) {
        EXPECT_FALSE(valid_name(name)) << name;
    }
    EXPECT_FALSE(valid_name(std::string(65, 'a')));
}

TEST(ValidHostPatternTest, ExactNamesAndLeadingWildcards) {
    EXPECT_TRUE(valid_host_pattern("example.com"));
    EXPECT_TRUE(valid_host_pattern("chat-1.example.com"));
    EXPECT_TRUE(valid_host_pattern("*.example.com"));
    EXPECT_TRUE(valid_host_pattern("localhost"));
}

TEST(ValidHostPatternTest, RejectsOtherShapes) {
    for (auto pattern : {"", "*", "*.", "*example.com", "a.*.com", "exa mple.com", "example.com:80",
                         "example.com/ws", "**.example.com"}) {
        EXPECT_FALSE(valid_host_pattern(pattern)) << pattern;
    }
    EXPECT_FALSE(valid_host_pattern(std::string(254, 'a')));
}

// ---- rules across sections, through the loader ----

TEST(ValidateTest, DuplicateListenerName) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[[listeners]]
name = "public"
listen = "127.0.0.1:8081"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 8, Eq("duplicate listener name \"public\""))))
        << dump(result);
}

TEST(ValidateTest, DuplicateListenAddress) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[[listeners]]
name = "other"
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(
        result.errors,
        ElementsAre(ErrorAt(7, 10, Eq("127.0.0.1:8080 is already used by listener \"public\""))))
        << dump(result);
}

TEST(ValidateTest, ListenerOnTheAdminAddress) {
    SB_SKIP_UNLESS_SUPPORTED("admin");
    auto result = load(R"(
[admin]
listen = "127.0.0.1:9901"

[[listeners]]
name = "public"
listen = "127.0.0.1:9901"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 10,
                                                   Eq("127.0.0.1:9901 is already used by the admin "
                                                      "listener"))))
        << dump(result);
}

TEST(ValidateTest, PortZeroMayRepeat) {
    // Port 0 asks the kernel for a free port, so two such listeners never collide.
    auto result = load(R"(
[[listeners]]
name = "a"
listen = "127.0.0.1:0"

[[listeners]]
name = "b"
listen = "127.0.0.1:0"
)");
    EXPECT_TRUE(result.ok()) << dump(result);
}

// Regression (issue 13): --check passed listeners that startup then failed to bind.
TEST(ValidateTest, WildcardListenerOverlapsASpecificOneOnItsPort) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "0.0.0.0:8080"

[[listeners]]
name = "local"
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(7, 10,
                                    Eq("127.0.0.1:8080 overlaps 0.0.0.0:8080 of listener "
                                       "\"public\" (a wildcard address takes its port on "
                                       "every address of its family)"))))
        << dump(result);
}

TEST(ValidateTest, SpecificListenerThenIpV6Wildcard) {
    auto result = load(R"(
[[listeners]]
name = "local"
listen = "[::1]:8080"

[[listeners]]
name = "public"
listen = "[::]:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(7, 10,
                                    HasSubstr("[::]:8080 overlaps [::1]:8080 of listener "
                                              "\"local\""))))
        << dump(result);
}

TEST(ValidateTest, IpV6WildcardListenerAndIpV4ListenerShareAPort) {
    // Listeners bind IPv6 as IPv6-only, so these are two sockets that both bind.
    auto result = load(R"(
[[listeners]]
name = "v6"
listen = "[::]:8080"

[[listeners]]
name = "v4"
listen = "0.0.0.0:8080"
)");
    EXPECT_TRUE(result.ok()) << dump(result);
}

TEST(ValidateTest, IpV4MappedListenAddressCannotBind) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "[::ffff:127.0.0.1]:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(3, 10, HasSubstr("write \"127.0.0.1:8080\" instead"))))
        << dump(result);
}

TEST(ValidateTest, AdminListenerOverlapsAWildcardListener) {
    SB_SKIP_UNLESS_SUPPORTED("admin");
    auto result = load(R"(
[admin]
listen = "127.0.0.1:9901"

[[listeners]]
name = "public"
listen = "0.0.0.0:9901"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(6, 10,
                                    HasSubstr("0.0.0.0:9901 overlaps 127.0.0.1:9901 of "
                                              "the admin listener"))))
        << dump(result);
}

TEST(ValidateTest, DualStackAdminWildcardOverlapsAnIpV4Listener) {
    SB_SKIP_UNLESS_SUPPORTED("admin");
    auto result = load(R"(
[admin]
listen = "[::]:9901"

[[listeners]]
name = "public"
listen = "127.0.0.1:9901"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(6, 10,
                                    HasSubstr("127.0.0.1:9901 overlaps [::]:9901 of the "
                                              "admin listener"))))
        << dump(result);
}

TEST(ValidateTest, WildcardListenersOnPortZeroNeverOverlap) {
    auto result = load(R"(
[[listeners]]
name = "a"
listen = "0.0.0.0:0"

[[listeners]]
name = "b"
listen = "127.0.0.1:0"
)");
    EXPECT_TRUE(result.ok()) << dump(result);
}

TEST(ValidateTest, ListenerNamedAdminIsReserved) {
    auto result = load(R"(
[[listeners]]
name = "admin"
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(2, 8,
                                    Eq("listener name \"admin\" is reserved for the admin "
                                       "listener"))))
        << dump(result);
}

TEST(ValidateTest, ListenerNameWithInvalidCharacters) {
    auto result = load(R"(
[[listeners]]
name = "public api"
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(2, 8,
                                    Eq("listener name \"public api\" may use only letters, "
                                       "digits, '-' and '_'"))))
        << dump(result);
}

TEST(ValidateTest, PoolNameWithInvalidCharacters) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools."chat room"]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(5, 9,
                                    Eq("pool name \"chat room\" may use only letters, "
                                       "digits, '-' and '_'"))))
        << dump(result);
}

TEST(ValidateTest, ListenerPoolThatDoesNotExist) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
pool = "caht"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 8, Eq("no pool named \"caht\""))))
        << dump(result);
}

TEST(ValidateTest, RoutePoolThatDoesNotExist) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
routes = [
  { path_prefix = "/chat", pool = "chat" },
  { path_prefix = "/game", pool = "game" },
]

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 35, Eq("no pool named \"game\""))))
        << dump(result);
}

TEST(ValidateTest, DuplicateBackendAddress) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [
  { address = "10.0.0.1:8080" },
  { address = "10.0.0.2:8080" },
  { address = "10.0.0.1:8080" },
]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(9, 15,
                                    Eq("backend 10.0.0.1:8080 is listed twice in pool "
                                       "\"chat\""))))
        << dump(result);
}

TEST(ValidateTest, SameBackendInTwoPoolsIsFine) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.game]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_TRUE(result.ok()) << dump(result);
}

TEST(ValidateTest, CrossSectionRulesWaitForAFileThatDecodes) {
    // Duplicate names are only looked for once every section decoded: a type error
    // comes alone rather than with follow-on errors.
    auto result = load(R"(
[server]
workers = "two"

[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 11, HasSubstr("expected an integer"))))
        << dump(result);
}

TEST(ValidateTest, SeveralCrossSectionErrorsSortedByPosition) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
pool = "nope"

[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 8, HasSubstr("no pool named \"nope\"")),
                            ErrorAt(7, 8, HasSubstr("duplicate listener name")),
                            ErrorAt(8, 10, HasSubstr("is already used by listener"))))
        << dump(result);
}

TEST(ValidateTest, RouteHostThatIsNotAHostPattern) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
routes = [{ host = "chat.example.com:443", pool = "chat" }]

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 20,
                                    Eq("\"chat.example.com:443\" is not a host name or a "
                                       "wildcard such as \"*.example.com\""))))
        << dump(result);
}

TEST(ValidateTest, RoutePathPrefixMustStartWithSlash) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
routes = [{ path_prefix = "ws", pool = "chat" }]

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 27, Eq("path_prefix must start with \"/\""))))
        << dump(result);
}

TEST(ValidateTest, AllowedOriginThatIsNotAnOrigin) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.allowed_origins");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
allowed_origins = ["https://a.example", "a.example"]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 41,
                                                   Eq("\"a.example\" is not an origin of the form "
                                                      "\"https://host\" or \"http://host:port\""))))
        << dump(result);
}

TEST(ValidateTest, HashKeyThatDoesNotParse) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.hash_key");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
hash_key = "path_segment:0"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(7, 12, HasSubstr("path_segment:N needs N between 1 and 64"))))
        << dump(result);
}

TEST(ValidateTest, MaxLifetimeShorterThanPingInterval) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.websocket");
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.websocket]
ping_interval = "1m"
max_lifetime = "30s"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(10, 16,
                                    Eq("max_lifetime is shorter than ping_interval: pings "
                                       "would never be sent"))))
        << dump(result);
}

}  // namespace
}  // namespace sb::config

namespace sb::config {
namespace {

TEST(ValidateRingWeights, TotalWeightOfARingPoolIsBounded) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:80"
pool = "p"
[pools.p]
backends = [ { address = "10.0.0.1:80", weight = 1000 }, { address = "10.0.0.2:80", weight = 1000 },
             { address = "10.0.0.3:80", weight = 1000 }, { address = "10.0.0.4:80", weight = 1000 },
             { address = "10.0.0.5:80", weight = 1000 }, { address = "10.0.0.6:80", weight = 1 } ]
)");
    EXPECT_THAT(result.errors,
                ::testing::ElementsAre(ErrorAt(6, 12, ::testing::HasSubstr("add up to 5001"))))
        << dump(result);
}

TEST(ValidateRingWeights, MaglevTakesAnyTotal) {
    auto result = load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:80"
pool = "p"
[pools.p]
algorithm = "maglev"
backends = [ { address = "10.0.0.1:80", weight = 1000 }, { address = "10.0.0.2:80", weight = 1000 },
             { address = "10.0.0.3:80", weight = 1000 }, { address = "10.0.0.4:80", weight = 1000 },
             { address = "10.0.0.5:80", weight = 1000 }, { address = "10.0.0.6:80", weight = 1 } ]
)");
    EXPECT_TRUE(result.ok()) << dump(result);
}

}  // namespace
}  // namespace sb::config
