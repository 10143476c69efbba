// config::load_string: one test per per-key rule of SPEC §2. Unknown keys (with the
// key's own line and column and a "did you mean" hint), wrong types, out-of-range
// values, missing required keys, malformed addresses and the keys that are rejected
// as "not supported yet" rather than accepted and ignored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "config/loader.h"
#include "config_test_util.h"

namespace sb::config {
namespace {

using test::dump;
using test::ErrorAt;
using test::ErrorSays;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A valid listener and pool, appended after the table under test so that its line
// numbers stay those of the literal.
constexpr std::string_view kRest = R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
pool = "chat"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)";

LoadResult load_with_rest(std::string_view text) {
    return test::load(std::string(text) + std::string(kRest));
}

// ---- unknown keys ----

TEST(LoaderErrorsTest, UnknownKeyPointsAtTheKeyWithAHint) {
    auto result = load_with_rest(R"(
[server]
workerz = 4
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(
                    2, 1, Eq("unknown key \"workerz\" in [server] (did you mean \"workers\"?)"))))
        << dump(result);
    EXPECT_EQ(result.config, nullptr);
}

TEST(LoaderErrorsTest, UnknownIndentedKeyColumnIsTheKeys) {
    auto result = load_with_rest(R"(
[log]
    levle = "info"
)");
    EXPECT_THAT(
        result.errors,
        ElementsAre(ErrorAt(2, 5, Eq("unknown key \"levle\" in [log] (did you mean \"level\"?)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, UnknownKeyWithNothingCloseHasNoHint) {
    auto result = load_with_rest(R"(
[server]
colour = "blue"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 1, Eq("unknown key \"colour\" in [server]"))))
        << dump(result);
}

TEST(LoaderErrorsTest, UnknownKeyInsideAnInlineTable) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080", wieght = 2 }]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(
                    6, 42, Eq("unknown key \"wieght\" in a backend (did you mean \"weight\"?)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, UnknownTableHeaderPointsAtItsName) {
    auto result = load_with_rest(R"(
[sever]
workers = 4
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(
                    1, 2, Eq("unknown key \"sever\" in the top level (did you mean \"server\"?)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, UnknownKeyInListener) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_conections = 10
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 1,
                                    Eq("unknown key \"max_conections\" in [[listeners]] (did you "
                                       "mean \"max_connections\"?)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, UnknownKeyInPoolWebSocketTable) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.websocket");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.websocket]
ping_intervall = "5s"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(9, 1,
                                    Eq("unknown key \"ping_intervall\" in [pools.chat.websocket] "
                                       "(did you mean \"ping_interval\"?)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, UnknownKeyInRoute) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
routes = [{ pool = "chat", prefix = "/ws" }]

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 28,
                                                   HasSubstr("unknown key \"prefix\" in a "
                                                             "route"))))
        << dump(result);
}

// ---- wrong types ----

TEST(LoaderErrorsTest, IntegerGivenAString) {
    auto result = load_with_rest(R"(
[server]
workers = "4"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 11, Eq("expected an integer, got a string"))))
        << dump(result);
}

TEST(LoaderErrorsTest, IntegerGivenAFloat) {
    auto result = load_with_rest(R"(
[server]
workers = 1.5
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 11, Eq("expected an integer, got a float"))))
        << dump(result);
}

TEST(LoaderErrorsTest, BooleanGivenAString) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
forwarded_headers = "yes"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(7, 21, Eq("expected a boolean (true or false), got a string"))))
        << dump(result);
}

TEST(LoaderErrorsTest, StringGivenAnInteger) {
    auto result = load_with_rest(R"(
[log]
access_log = 1
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 14, Eq("expected a string, got an integer"))))
        << dump(result);
}

TEST(LoaderErrorsTest, EmptyStringWhereANameIsNeeded) {
    auto result = load_with_rest(R"(
[log]
access_log = ""
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 14, Eq("must not be empty"))))
        << dump(result);
}

TEST(LoaderErrorsTest, DurationGivenAnInteger) {
    auto result = load_with_rest(R"(
[server]
drain_timeout = 30
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(
                    2, 17, Eq("expected a duration string such as \"10s\", got an integer"))))
        << dump(result);
}

TEST(LoaderErrorsTest, DurationWithoutAUnit) {
    auto result = load_with_rest(R"(
[server]
drain_timeout = "30"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(2, 17, Eq("duration \"30\" needs a unit (ms, s, m or h)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, SizeGivenABoolean) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_header_bytes = true
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 20,
                                    HasSubstr("expected a size (bytes, or a string such as "
                                              "\"16KiB\"), got a boolean"))))
        << dump(result);
}

TEST(LoaderErrorsTest, SizeWithAnAmbiguousUnit) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_header_bytes = "16KB"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 20, HasSubstr("is ambiguous"))))
        << dump(result);
}

TEST(LoaderErrorsTest, NumberGivenAString) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.load_factor");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
load_factor = "1.5"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(7, 15, Eq("expected a number, got a string"))))
        << dump(result);
}

TEST(LoaderErrorsTest, ChoiceNotAmongTheOptions) {
    auto result = load_with_rest(R"(
[log]
level = "verbose"
)");
    EXPECT_THAT(
        result.errors,
        ElementsAre(ErrorAt(
            2, 9, Eq("\"verbose\" is not one of \"error\", \"warn\", \"info\", \"debug\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, AlgorithmNotAmongTheOptions) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.algorithm");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
algorithm = "random"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(7, 13,
                                                   HasSubstr("\"random\" is not one of "
                                                             "\"ring\", \"maglev\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, SectionThatIsNotATable) {
    auto result = load_with_rest(R"(
server = 5
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(1, 10, Eq("expected [server] to be a table, got an integer"))))
        << dump(result);
}

TEST(LoaderErrorsTest, ListenersThatIsNotAnArray) {
    auto result = test::load(R"(
listeners = "public"
)");
    EXPECT_THAT(
        result.errors,
        ElementsAre(ErrorAt(1, 13, Eq("expected [[listeners]] to be an array, got a string"))))
        << dump(result);
}

TEST(LoaderErrorsTest, RoutesThatIsNotAnArray) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
routes = { pool = "chat" }
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 10, Eq("expected routes to be an array, got a table"))))
        << dump(result);
}

TEST(LoaderErrorsTest, BackendThatIsNotATable) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = ["10.0.0.1:8080"]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(
                                   6, 13, Eq("expected each backend to be a table, got a string"))))
        << dump(result);
}

TEST(LoaderErrorsTest, StringListWithANonString) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.allowed_origins");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
allowed_origins = ["https://a.example", 7]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 41, Eq("expected a string, got an integer"))))
        << dump(result);
}

// ---- ranges ----

TEST(LoaderErrorsTest, IntegerAboveItsRange) {
    auto result = load_with_rest(R"(
[server]
workers = 257
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 11, Eq("257 is out of range (0 to 256)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, NegativeInteger) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
retries = -1
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(7, 11, Eq("-1 is out of range (0 to 100)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, BackendWeightZero) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.backends.weight");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080", weight = 0 }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 51, Eq("0 is out of range (1 to 1000)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, RetriesAboveItsRange) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
retries = 101
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(7, 11, Eq("101 is out of range (0 to 100)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, DurationBelowItsMinimum) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
handshake_timeout = "0s"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 21, Eq("must be at least 1ms"))))
        << dump(result);
}

TEST(LoaderErrorsTest, DurationLongerThanAYear) {
    auto result = load_with_rest(R"(
[server]
drain_timeout = "9000h"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 17, HasSubstr("longer than a year"))))
        << dump(result);
}

TEST(LoaderErrorsTest, SizeAboveItsRange) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_header_bytes = "2MiB"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 20,
                                    Eq("size 2097152 is out of range (1024 to 1048576 "
                                       "bytes)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, SizeBelowItsRange) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_header_bytes = 100
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 20, Eq("size 100 is out of range (1024 to 1048576 bytes)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, NegativeSize) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
max_header_bytes = -1
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 20, Eq("a size must not be negative"))))
        << dump(result);
}

TEST(LoaderErrorsTest, LoadFactorBetweenZeroAndOne) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.load_factor");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
load_factor = 0.5
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(7, 15,
                                    Eq("load_factor must be 0 (off) or between 1.0 and "
                                       "100.0"))))
        << dump(result);
}

TEST(LoaderErrorsTest, LoadFactorNotFinite) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.load_factor");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
load_factor = inf
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(7, 15, Eq("expected a number, got a float"))))
        << dump(result);
}

TEST(LoaderErrorsTest, PingTimeoutZero) {
    SB_SKIP_UNLESS_SUPPORTED("pools.NAME.websocket.ping_timeout");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.websocket]
ping_timeout = "0ms"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(9, 16, Eq("must be at least 1ms"))))
        << dump(result);
}

// ---- required keys ----

TEST(LoaderErrorsTest, NoListenersAtAll) {
    auto result = test::load(R"(
[server]
workers = 1
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorSays(Eq("missing required key \"listeners\" in the top level"))))
        << dump(result);
}

TEST(LoaderErrorsTest, EmptyListenersArray) {
    auto result = test::load(R"(
listeners = []
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(1, 13, Eq("at least one [[listeners]] is required"))))
        << dump(result);
}

TEST(LoaderErrorsTest, ListenerWithoutName) {
    auto result = test::load(R"(
[[listeners]]
listen = "127.0.0.1:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(1, 1, Eq("missing required key \"name\" in [[listeners]]"))))
        << dump(result);
}

TEST(LoaderErrorsTest, ListenerWithoutListen) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(1, 1, Eq("missing required key \"listen\" in [[listeners]]"))))
        << dump(result);
}

TEST(LoaderErrorsTest, PoolWithoutBackends) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
connect_timeout = "1s"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(5, 1, Eq("missing required key \"backends\" in [pools.chat]"))))
        << dump(result);
}

TEST(LoaderErrorsTest, BackendWithoutAddress) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{}]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(6, 13,
                                    Eq("missing required key \"address\" in a backend (or "
                                       "\"srv\" for an SRV name)"))))
        << dump(result);
}

TEST(LoaderErrorsTest, RouteWithoutPool) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
routes = [{ path_prefix = "/ws" }]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(4, 11, Eq("missing required key \"pool\" in a route"))))
        << dump(result);
}

TEST(LoaderErrorsTest, AdminWithoutListen) {
    SB_SKIP_UNLESS_SUPPORTED("admin");
    auto result = load_with_rest(R"(
[admin]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(1, 1, Eq("missing required key \"listen\" in [admin]"))))
        << dump(result);
}

TEST(LoaderErrorsTest, CertificateWithoutPrivateKey) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.tls");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8443"

[listeners.tls]
certificates = [{ certificate = "/etc/a.pem" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 17,
                                                   Eq("missing required key \"private_key\" "
                                                      "in a certificate"))))
        << dump(result);
}

TEST(LoaderErrorsTest, ListenerTlsWithoutCertificates) {
    SB_SKIP_UNLESS_SUPPORTED("listeners.tls");
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8443"

[listeners.tls]
certificates = []
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(6, 16, Eq("at least one certificate is required"))))
        << dump(result);
}

TEST(LoaderErrorsTest, EmptyBackends) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = []
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 12, Eq("a pool needs at least one backend"))))
        << dump(result);
}

// ---- addresses ----

TEST(LoaderErrorsTest, ListenAddressWithAHostName) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "localhost:8080"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(3, 10,
                                    Eq("\"localhost:8080\" is not an address of the form "
                                       "\"1.2.3.4:port\" or \"[::]:port\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, ListenAddressWithoutAPort) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "0.0.0.0"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(3, 10, HasSubstr("is not an address"))))
        << dump(result);
}

TEST(LoaderErrorsTest, AdminAddressMalformed) {
    SB_SKIP_UNLESS_SUPPORTED("admin");
    auto result = load_with_rest(R"(
[admin]
listen = "127.0.0.1:99999"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(2, 10, HasSubstr("\"127.0.0.1:99999\" is not an address"))))
        << dump(result);
}

TEST(LoaderErrorsTest, BackendAddressMalformed) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 25,
                                                   Eq("\"10.0.0.1\" is not an address of the form "
                                                      "\"1.2.3.4:port\", \"[::1]:port\" or "
                                                      "\"name:port\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, BackendPortOutOfRange) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:70000" }]
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(6, 25, HasSubstr("is not an address"))))
        << dump(result);
}

// ---- keys that are not supported yet ----

// Where test::place_key put a key: the file, and the key's line and column.
struct PlacedKey {
    std::string text;
    unsigned line = 0;
    unsigned column = 0;
};

// An otherwise valid file holding the schema key at `path` ("pools.NAME.retries"),
// with a dummy value: a key that is not supported yet is refused by name, whatever
// its value. Returns nothing for a table this helper does not know.
std::optional<PlacedKey> place_key(std::string_view path) {
    const std::string listener = "[[listeners]]\nname = \"public\"\nlisten = \"127.0.0.1:8080\"\n";
    const std::string pool = "[pools.chat]\nbackends = [{ address = \"10.0.0.1:8080\" }]\n";
    const std::string key(path.substr(path.rfind('.') + 1));
    const std::string line = key + " = 0\n";
    auto in = [&](std::string_view table) {
        return path.size() > table.size() && path.substr(0, table.size()) == table &&
               path.find('.', table.size()) == std::string_view::npos;
    };
    if (in("server.")) return PlacedKey{"[server]\n" + line + listener + pool, 2, 1};
    if (in("log.")) return PlacedKey{"[log]\n" + line + listener + pool, 2, 1};
    if (in("admin.")) {
        std::string admin = key == "listen" ? "" : "listen = \"127.0.0.1:9901\"\n";
        return PlacedKey{"[admin]\n" + admin + line + listener + pool, key == "listen" ? 2u : 3u,
                         1};
    }
    if (in("listeners.")) return PlacedKey{listener + line + pool, 4, 1};
    if (in("listeners.routes.")) {
        return PlacedKey{listener + "routes = [{ pool = \"chat\", " + key + " = 0 }]\n" + pool, 4,
                         28};
    }
    if (in("listeners.tls.")) return PlacedKey{listener + "[listeners.tls]\n" + line + pool, 5, 1};
    if (in("listeners.tls.certificates.")) {
        return PlacedKey{listener +
                             "[listeners.tls]\ncertificates = [{ certificate = \"/a\", "
                             "private_key = \"/b\", " +
                             key + " = 0 }]\n" + pool,
                         5, 59};
    }
    if (in("pools.NAME.")) return PlacedKey{listener + pool + line, 6, 1};
    if (in("pools.NAME.backends.")) {
        return PlacedKey{listener + "[pools.chat]\nbackends = [{ address = \"10.0.0.1:8080\", " +
                             key + " = 0 }]\n",
                         5, 42};
    }
    if (in("pools.NAME.tls."))
        return PlacedKey{listener + pool + "[pools.chat.tls]\n" + line, 7, 1};
    if (in("pools.NAME.http."))
        return PlacedKey{listener + pool + "[pools.chat.http]\n" + line, 7, 1};
    if (in("pools.NAME.admission."))
        return PlacedKey{listener + pool + "[pools.chat.admission]\n" + line, 7, 1};
    if (in("pools.NAME.websocket.")) {
        return PlacedKey{listener + pool + "[pools.chat.websocket]\n" + line, 7, 1};
    }
    return std::nullopt;
}

TEST(LoaderErrorsTest, EveryKeyNotSupportedYetIsRejectedByName) {
    // Whatever the tree implements at the moment, a key it does not is never accepted
    // and ignored: it is an error at the key, saying "not supported yet".
    auto keys = schema_keys();
    size_t checked = 0;
    for (const auto& key : keys) {
        if (key.supported) continue;
        SCOPED_TRACE(key.path);
        auto placed = place_key(key.path);
        if (!placed) {
            ADD_FAILURE() << "place_key does not know where " << key.path << " goes";
            continue;
        }
        auto result = test::load(placed->text);
        EXPECT_FALSE(result.ok());
        std::string name = key.path.substr(key.path.rfind('.') + 1);
        bool table_above_too = false;
        for (const auto& other : keys) {
            if (!other.supported && key.path.size() > other.path.size() &&
                key.path.rfind(other.path + ".", 0) == 0) {
                table_above_too = true;
            }
        }
        if (table_above_too) {
            // The table holding it is refused first.
            EXPECT_THAT(result.errors, Contains(ErrorSays(HasSubstr("is not supported yet"))))
                << dump(result);
        } else {
            EXPECT_THAT(result.errors,
                        Contains(ErrorAt(placed->line, placed->column,
                                         StartsWith("\"" + name + "\" is not supported yet ("))))
                << dump(result);
        }
        ++checked;
    }
    // Every key of SPEC §2 is implemented now, so nothing may be left refused by name
    // (a key refused here would be one the loader forgot to decode).
    EXPECT_EQ(checked, 0u);
}

TEST(LoaderErrorsTest, ListenerProxyProtocolMustBeBoolean) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
proxy_protocol = "v2"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(4, 18, HasSubstr("boolean")))) << dump(result);
}

TEST(LoaderErrorsTest, ProxyProtocolFromIsCheckedPerNetwork) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
proxy_protocol = true
proxy_protocol_from = ["10.0.0.0/8", "10.0.0.1/8", "::1/129", "example.com", "1.2.3.4/08",
                       "fd00::/8", "1.2.3.4/"]
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(5, 38,
                                    Eq("\"10.0.0.1/8\" has bits set past its /8 (did you mean "
                                       "\"10.0.0.0/8\"?)")),
                            ErrorAt(5, 52, Eq("\"::1/129\": the prefix length must be 0 to 128")),
                            ErrorAt(5, 63, HasSubstr("\"example.com\" is not a network")),
                            ErrorAt(5, 78, HasSubstr("prefix length must be 0 to 32")),
                            ErrorAt(6, 36, HasSubstr("prefix length must be 0 to 32"))))
        << dump(result);
}

TEST(LoaderErrorsTest, ProxyProtocolFromMustBeStrings) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
proxy_protocol = true
proxy_protocol_from = "10.0.0.0/8"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(5, 23, HasSubstr("array")))) << dump(result);
}

TEST(LoaderErrorsTest, ProxyProtocolFromWithoutProxyProtocol) {
    for (const char* value : {"[\"10.0.0.0/8\"]", "[]"}) {
        auto result = test::load(std::string(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
proxy_protocol_from = )") + value +
                                 "\n");
        EXPECT_THAT(result.errors,
                    ElementsAre(ErrorAt(4, 1,
                                        Eq("proxy_protocol_from is only used with proxy_protocol "
                                           "= true (listener \"public\" reads no PROXY header)"))))
            << dump(result);
    }
}

TEST(LoaderErrorsTest, PoolProxyProtocolIsAChoice) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
proxy_protocol = "v3"
)");
    EXPECT_THAT(result.errors,
                ElementsAre(ErrorAt(7, 18, Eq("\"v3\" is not one of \"off\", \"v1\", \"v2\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, HealthCheckKindIsOneOfThree) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.health_check]
kind = "udp"
)");
    EXPECT_THAT(
        result.errors,
        ElementsAre(ErrorAt(9, 8, Eq("\"udp\" is not one of \"http\", \"tcp\", \"websocket\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, HealthCheckPathMustStartWithASlash) {
    for (auto path : {"healthz", "/a b", "/\\u0001"}) {
        auto result = test::load(std::string(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.health_check]
path = ")") + path + "\"\n");
        EXPECT_THAT(result.errors, ElementsAre(ErrorAt(9, 8, HasSubstr("must start with '/'"))))
            << path << "\n"
            << dump(result);
    }
}

TEST(LoaderErrorsTest, HealthCheckTimeoutLongerThanIntervalIsAnError) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.health_check]
interval = "1s"
timeout = "3s"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(
                                   10, 11, Eq("health check timeout is longer than its interval"))))
        << dump(result);
}

TEST(LoaderErrorsTest, HealthCheckRanges) {
    for (auto [line, want] :
         {std::pair{"rise = 0", "rise"}, std::pair{"fall = 101", "fall"},
          std::pair{"interval = \"10ms\"", "interval"}, std::pair{"timeout = \"0s\"", "timeout"}}) {
        auto result = test::load(std::string(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.health_check]
)") + line + "\n");
        EXPECT_EQ(result.errors.size(), 1u) << want << "\n" << dump(result);
        if (!result.errors.empty()) {
            EXPECT_EQ(result.errors[0].line, 9u) << want;
        }
    }
}

TEST(LoaderErrorsTest, UnknownHealthCheckKeyIsAnError) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]

[pools.chat.health_check]
intervall = "1s"
)");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(9, 1, HasSubstr("did you mean \"interval\""))))
        << dump(result);
}

TEST(LoaderErrorsTest, SlowStartIsADuration) {
    auto result = test::load(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"

[pools.chat]
backends = [{ address = "10.0.0.1:8080" }]
slow_start = 30
)");
    EXPECT_EQ(result.errors.size(), 1u) << dump(result);
}

}  // namespace
}  // namespace sb::config
