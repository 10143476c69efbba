// config::Decoder and decode_table, on values parsed from inline TOML: every typed
// reader's type and range errors with their exact positions, error_at_key's column
// for keys in plain lines, indented lines, inline tables and [table] headers, and a
// small test schema for unknown keys (with and without a hint), keys that are not
// supported yet and missing required keys. These rules do not depend on which
// configuration keys are implemented at the moment.
#include "config/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "config_test_util.h"

namespace sb::config {
namespace {

using namespace std::chrono_literals;
using test::ErrorAt;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

toml::value parse_toml(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    std::istringstream in{std::string(text)};
    return toml::parse(in, "test.toml");
}

class DecoderTest : public ::testing::Test {
  protected:
    // The value of top-level key `key` in `text`.
    const toml::value& value(std::string_view text, const std::string& key) {
        root_ = parse_toml(text);
        return root_.as_table().at(key);
    }

    Decoder d_{"test.toml"};
    toml::value root_;
};

// ---- typed readers ----

TEST_F(DecoderTest, BooleanReadsTrueAndFalse) {
    bool out = false;
    EXPECT_TRUE(d_.boolean(value("a = true", "a"), out));
    EXPECT_TRUE(out);
    EXPECT_TRUE(d_.boolean(value("a = false", "a"), out));
    EXPECT_FALSE(out);
    EXPECT_THAT(d_.errors(), IsEmpty());
}

TEST_F(DecoderTest, BooleanRejectsOtherTypesAndKeepsOut) {
    bool out = true;
    EXPECT_FALSE(d_.boolean(value("flag = \"yes\"", "flag"), out));
    EXPECT_TRUE(out);
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 8, Eq("expected a boolean (true or false), got a string"))));
    EXPECT_EQ(d_.errors()[0].file, "test.toml");
}

TEST_F(DecoderTest, StringReadsAndMayRefuseEmpty) {
    std::string out = "before";
    EXPECT_TRUE(d_.string(value("s = \"\"", "s"), out));
    EXPECT_EQ(out, "");
    out = "before";
    EXPECT_FALSE(d_.string(value("s = \"\"", "s"), out, false));
    EXPECT_EQ(out, "before");
    EXPECT_TRUE(d_.string(value("s = 'literal'", "s"), out, false));
    EXPECT_EQ(out, "literal");
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 5, Eq("must not be empty"))));
}

TEST_F(DecoderTest, StringRejectsOtherTypes) {
    std::string out;
    EXPECT_FALSE(d_.string(value("s = [1]", "s"), out));
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 5, Eq("expected a string, got an array"))));
}

TEST_F(DecoderTest, IntegerBoundsAreInclusive) {
    uint64_t out = 99;
    EXPECT_TRUE(d_.integer(value("n = 0", "n"), 0, 10, out));
    EXPECT_EQ(out, 0u);
    EXPECT_TRUE(d_.integer(value("n = 10", "n"), 0, 10, out));
    EXPECT_EQ(out, 10u);
    EXPECT_THAT(d_.errors(), IsEmpty());
}

TEST_F(DecoderTest, IntegerOutOfRange) {
    uint64_t out = 99;
    EXPECT_FALSE(d_.integer(value("n = 11", "n"), 0, 10, out));
    EXPECT_FALSE(d_.integer(value("n = -1", "n"), 0, 10, out));
    EXPECT_FALSE(d_.integer(value("n = 0", "n"), 1, 10, out));
    EXPECT_EQ(out, 99u);
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 5, Eq("11 is out of range (0 to 10)")),
                                         ErrorAt(1, 5, Eq("-1 is out of range (0 to 10)")),
                                         ErrorAt(1, 5, Eq("0 is out of range (1 to 10)"))));
}

TEST_F(DecoderTest, IntegerRejectsFloatsStringsAndBooleans) {
    uint64_t out = 0;
    EXPECT_FALSE(d_.integer(value("n = 1.0", "n"), 0, 10, out));
    EXPECT_FALSE(d_.integer(value("n = \"1\"", "n"), 0, 10, out));
    EXPECT_FALSE(d_.integer(value("n = true", "n"), 0, 10, out));
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 5, Eq("expected an integer, got a float")),
                                         ErrorAt(1, 5, Eq("expected an integer, got a string")),
                                         ErrorAt(1, 5, Eq("expected an integer, got a boolean"))));
}

TEST_F(DecoderTest, UnsignedIntegerIsCappedAtUnsignedMax) {
    unsigned out = 7;
    EXPECT_TRUE(
        d_.integer(value("n = 4294967295", "n"), 0, std::numeric_limits<int64_t>::max(), out));
    EXPECT_EQ(out, 4294967295u);
    EXPECT_FALSE(
        d_.integer(value("n = 4294967296", "n"), 0, std::numeric_limits<int64_t>::max(), out));
    EXPECT_EQ(out, 4294967295u);
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 5, Eq("4294967296 is out of range (0 to 4294967295)"))));
}

TEST_F(DecoderTest, NumberTakesIntegersAndFiniteFloats) {
    double out = 0;
    EXPECT_TRUE(d_.number(value("x = 2", "x"), out));
    EXPECT_EQ(out, 2.0);
    EXPECT_TRUE(d_.number(value("x = 1.25", "x"), out));
    EXPECT_EQ(out, 1.25);
    EXPECT_THAT(d_.errors(), IsEmpty());
}

TEST_F(DecoderTest, NumberRejectsInfinityNanAndStrings) {
    double out = 5;
    EXPECT_FALSE(d_.number(value("x = inf", "x"), out));
    EXPECT_FALSE(d_.number(value("x = nan", "x"), out));
    EXPECT_FALSE(d_.number(value("x = \"1\"", "x"), out));
    EXPECT_EQ(out, 5);
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 5, Eq("expected a number, got a float")),
                                         ErrorAt(1, 5, Eq("expected a number, got a float")),
                                         ErrorAt(1, 5, Eq("expected a number, got a string"))));
}

TEST_F(DecoderTest, DurationReadsAString) {
    Duration out{};
    EXPECT_TRUE(d_.duration(value("t = \"1m30s\"", "t"), Duration(0), out));
    EXPECT_EQ(out, 90s);
}

TEST_F(DecoderTest, DurationErrors) {
    Duration out = 7s;
    EXPECT_FALSE(d_.duration(value("t = 10", "t"), Duration(0), out));
    EXPECT_FALSE(d_.duration(value("t = \"10x\"", "t"), Duration(0), out));
    EXPECT_FALSE(d_.duration(value("t = \"0ms\"", "t"), Duration(1), out));
    EXPECT_FALSE(d_.duration(value("t = \"59s\"", "t"), Duration(60'000), out));
    EXPECT_EQ(out, 7s);
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 5,
                                    Eq("expected a duration string such as \"10s\", got "
                                       "an integer")),
                            ErrorAt(1, 5, Eq("unknown duration unit \"x\" (use ms, s, m or h)")),
                            ErrorAt(1, 5, Eq("must be at least 1ms")),
                            ErrorAt(1, 5, Eq("must be at least 1m"))));
}

TEST_F(DecoderTest, SizeReadsBytesOrUnits) {
    uint64_t out = 0;
    EXPECT_TRUE(d_.size(value("s = 2048", "s"), 0, 1 << 20, out));
    EXPECT_EQ(out, 2048u);
    EXPECT_TRUE(d_.size(value("s = \"16KiB\"", "s"), 0, 1 << 20, out));
    EXPECT_EQ(out, 16384u);
    EXPECT_TRUE(d_.size(value("s = \"1MiB\"", "s"), 0, 1 << 20, out));
    EXPECT_EQ(out, 1u << 20);
    EXPECT_THAT(d_.errors(), IsEmpty());
}

TEST_F(DecoderTest, SizeErrors) {
    uint64_t out = 3;
    EXPECT_FALSE(d_.size(value("s = -1", "s"), 0, 100, out));
    EXPECT_FALSE(d_.size(value("s = 1.5", "s"), 0, 100, out));
    EXPECT_FALSE(d_.size(value("s = \"1MB\"", "s"), 0, 100, out));
    EXPECT_FALSE(d_.size(value("s = \"1KiB\"", "s"), 0, 100, out));
    EXPECT_EQ(out, 3u);
    EXPECT_THAT(
        d_.errors(),
        ElementsAre(ErrorAt(1, 5, Eq("a size must not be negative")),
                    ErrorAt(1, 5,
                            Eq("expected a size (bytes, or a string such as \"16KiB\"), got "
                               "a float")),
                    ErrorAt(1, 5, HasSubstr("is ambiguous")),
                    ErrorAt(1, 5, Eq("size 1024 is out of range (0 to 100 bytes)"))));
}

TEST_F(DecoderTest, AddressReadsIpv4AndIpv6) {
    SocketAddress out;
    EXPECT_TRUE(d_.address(value("a = \"10.1.2.3:80\"", "a"), out));
    EXPECT_EQ(out.to_string(), "10.1.2.3:80");
    EXPECT_TRUE(d_.address(value("a = \"[::1]:0\"", "a"), out));
    EXPECT_EQ(out.to_string(), "[::1]:0");
    EXPECT_THAT(d_.errors(), IsEmpty());
}

TEST_F(DecoderTest, AddressErrors) {
    SocketAddress out;
    EXPECT_FALSE(d_.address(value("a = \"localhost:80\"", "a"), out));
    EXPECT_FALSE(d_.address(value("a = 80", "a"), out));
    EXPECT_FALSE(out.is_set());
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 5,
                                    Eq("\"localhost:80\" is not an address of the form "
                                       "\"1.2.3.4:port\" or \"[::]:port\"")),
                            ErrorAt(1, 5, Eq("expected a string, got an integer"))));
}

TEST_F(DecoderTest, StringListReadsEveryItem) {
    std::vector<std::string> out;
    EXPECT_TRUE(d_.string_list(value("l = [\"a\", \"b\"]", "l"), out));
    EXPECT_THAT(out, ElementsAre("a", "b"));
    EXPECT_TRUE(d_.string_list(value("l = []", "l"), out));
    EXPECT_THAT(out, IsEmpty());
}

TEST_F(DecoderTest, StringListReportsEachBadItemAtItsPosition) {
    std::vector<std::string> out = {"kept"};
    EXPECT_FALSE(d_.string_list(value("l = [\"a\", 2, \"\", \"d\"]", "l"), out));
    EXPECT_THAT(out, ElementsAre("kept"));
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 11, Eq("expected a string, got an integer")),
                                         ErrorAt(1, 14, Eq("must not be empty"))));
}

TEST_F(DecoderTest, StringListRejectsAString) {
    std::vector<std::string> out;
    EXPECT_FALSE(d_.string_list(value("l = \"a\"", "l"), out));
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 5, Eq("expected the value to be an array, got a string"))));
}

enum class Colour { Red, Green };

TEST_F(DecoderTest, ChoiceMapsNamesToValues) {
    Colour out = Colour::Red;
    EXPECT_TRUE(d_.choice<Colour>(value("c = \"green\"", "c"),
                                  {{"red", Colour::Red}, {"green", Colour::Green}}, out));
    EXPECT_EQ(out, Colour::Green);
}

TEST_F(DecoderTest, ChoiceListsTheOptions) {
    Colour out = Colour::Red;
    EXPECT_FALSE(d_.choice<Colour>(value("c = \"Green\"", "c"),
                                   {{"red", Colour::Red}, {"green", Colour::Green}}, out));
    EXPECT_FALSE(d_.choice<Colour>(value("c = 1", "c"),
                                   {{"red", Colour::Red}, {"green", Colour::Green}}, out));
    EXPECT_EQ(out, Colour::Red);
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 5, Eq("\"Green\" is not one of \"red\", \"green\"")),
                            ErrorAt(1, 5, Eq("expected a string, got an integer"))));
}

TEST_F(DecoderTest, ExpectTableAndArray) {
    EXPECT_TRUE(d_.expect_table(value("t = { a = 1 }", "t"), "[t]"));
    EXPECT_TRUE(d_.expect_array(value("t = [1]", "t"), "t"));
    EXPECT_FALSE(d_.expect_table(value("t = [1]", "t"), "[t]"));
    EXPECT_FALSE(d_.expect_array(value("t = 1979-05-27", "t"), "t"));
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 5, Eq("expected [t] to be a table, got an array")),
                            ErrorAt(1, 5, Eq("expected t to be an array, got a date or time"))));
}

TEST_F(DecoderTest, ErrorsKeepTheirOrderAndFile) {
    Decoder d("/etc/x.toml");
    d.error_at(3, 4, "first");
    d.error_at(1, 2, "second");
    EXPECT_THAT(d.errors(), ElementsAre(ErrorAt(3, 4, Eq("first")), ErrorAt(1, 2, Eq("second"))));
    EXPECT_EQ(d.errors()[0].file, "/etc/x.toml");
    EXPECT_EQ(d.file(), "/etc/x.toml");
}

// ---- error_at_key ----

TEST_F(DecoderTest, ErrorAtKeyPointsAtTheKey) {
    d_.error_at_key(value("\n\nkey = 1", "key"), "key", "m");
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(2, 1, Eq("m"))));
}

TEST_F(DecoderTest, ErrorAtKeyOnAnIndentedLine) {
    d_.error_at_key(value("     key = 1", "key"), "key", "m");
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 6, Eq("m"))));
}

TEST_F(DecoderTest, ErrorAtKeyInsideAnInlineTable) {
    // "po" also occurs inside "pool"; the key is the occurrence nearest its value.
    root_ = parse_toml("t = { pool = \"x\", po = 1 }");
    const auto& t = root_.as_table().at("t");
    d_.error_at_key(t.as_table().at("po"), "po", "m");
    d_.error_at_key(t.as_table().at("pool"), "pool", "m");
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 19, Eq("m")), ErrorAt(1, 7, Eq("m"))));
}

TEST_F(DecoderTest, ErrorAtKeyOfATableHeader) {
    root_ = parse_toml("\n[outer]\na = 1\n\n[outer.inner]\nb = 2\n");
    const auto& inner = root_.as_table().at("outer").as_table().at("inner");
    d_.error_at_key(inner, "inner", "m");
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(4, 8, Eq("m"))));
}

TEST_F(DecoderTest, ErrorAtKeyWithADottedKey) {
    root_ = parse_toml("outer.inner = 1");
    const auto& inner = root_.as_table().at("outer").as_table().at("inner");
    d_.error_at_key(inner, "inner", "m");
    EXPECT_THAT(d_.errors(), ElementsAre(ErrorAt(1, 7, Eq("m"))));
}

// ---- decode_table with a test schema ----

struct Sample {
    uint64_t count = 0;
    std::string name;
    bool future_decoded = false;
};

const Key<Sample> kSampleKeys[] = {
    {"count", [](Decoder& d, const toml::value& v, Sample& s) { d.integer(v, 0, 10, s.count); }},
    {"name", [](Decoder& d, const toml::value& v, Sample& s) { d.string(v, s.name, false); }, true},
    {"future", [](Decoder&, const toml::value&, Sample& s) { s.future_decoded = true; }, false,
     "time travel"},
};

class DecodeTableTest : public ::testing::Test {
  protected:
    void decode(std::string_view text) {
        root_ = parse_toml(text);
        decode_table<Sample>(d_, root_.as_table().at("sample"), kSampleKeys, sample_, "[sample]");
    }
    Decoder d_{"test.toml"};
    toml::value root_;
    Sample sample_;
};

TEST_F(DecodeTableTest, DecodesKnownKeys) {
    decode("[sample]\ncount = 3\nname = \"x\"\n");
    EXPECT_THAT(d_.errors(), IsEmpty());
    EXPECT_EQ(sample_.count, 3u);
    EXPECT_EQ(sample_.name, "x");
}

TEST_F(DecodeTableTest, UnknownKeyWithAHint) {
    decode("[sample]\nname = \"x\"\n  cuont = 3\n");
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(
                    3, 3, Eq("unknown key \"cuont\" in [sample] (did you mean \"count\"?)"))));
    EXPECT_EQ(sample_.count, 0u);
}

TEST_F(DecodeTableTest, UnknownKeyWithoutAHint) {
    decode("[sample]\nname = \"x\"\nsomething_else = 3\n");
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(3, 1, Eq("unknown key \"something_else\" in [sample]"))));
}

TEST_F(DecodeTableTest, KeyNotSupportedYetIsRejectedWithoutDecoding) {
    decode("[sample]\nname = \"x\"\nfuture = \"anything\"\n");
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(3, 1,
                                    Eq("\"future\" is not supported yet (time travel comes "
                                       "in a later release)"))));
    EXPECT_FALSE(sample_.future_decoded);
}

TEST_F(DecodeTableTest, MissingRequiredKeyPointsAtTheTable) {
    decode("\n\n[sample]\ncount = 1\n");
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(2, 1, Eq("missing required key \"name\" in [sample]"))));
    EXPECT_EQ(sample_.count, 1u);
}

TEST_F(DecodeTableTest, MissingRequiredKeyOfAnInlineTable) {
    root_ = parse_toml("list = [{ count = 1 }]");
    decode_table<Sample>(d_, root_.as_table().at("list").as_array()[0], kSampleKeys, sample_,
                         "an item");
    EXPECT_THAT(d_.errors(),
                ElementsAre(ErrorAt(1, 9, Eq("missing required key \"name\" in an item"))));
}

TEST_F(DecodeTableTest, CollectsEveryError) {
    decode("[sample]\ncount = 11\ncuont = 1\nfuture = 1\n");
    EXPECT_THAT(d_.errors(),
                UnorderedElementsAre(ErrorAt(2, 9, HasSubstr("out of range")),
                                     ErrorAt(3, 1, HasSubstr("unknown key \"cuont\"")),
                                     ErrorAt(4, 1, HasSubstr("is not supported yet")),
                                     ErrorAt(1, 1, HasSubstr("missing required key \"name\""))));
}

// ---- suggest_key and type_name ----

TEST(SuggestKeyTest, FindsTheClosestKey) {
    std::vector<std::string_view> known = {"workers", "max_connections", "drain_timeout"};
    EXPECT_EQ(suggest_key("workerz", known), "workers");
    EXPECT_EQ(suggest_key("wrkers", known), "workers");
    EXPECT_EQ(suggest_key("max_conections", known), "max_connections");
    EXPECT_EQ(suggest_key("drain-timeout", known), "drain_timeout");
}

TEST(SuggestKeyTest, NothingCloseMeansNoHint) {
    std::vector<std::string_view> known = {"workers", "max_connections"};
    EXPECT_EQ(suggest_key("colour", known), "");
    EXPECT_EQ(suggest_key("x", known), "");
    EXPECT_EQ(suggest_key("workers_count_total", known), "");
    EXPECT_EQ(suggest_key("anything", {}), "");
}

TEST(SuggestKeyTest, AllowsMoreEditsForLongerKeys) {
    // Up to max(2, length / 3) edits.
    std::vector<std::string_view> known = {"max_connections_per_backend"};
    EXPECT_EQ(suggest_key("max_conns_per_backend", known), "max_connections_per_backend");
    std::vector<std::string_view> short_known = {"pool"};
    EXPECT_EQ(suggest_key("pl", short_known), "pool");
    EXPECT_EQ(suggest_key("p", short_known), "");
}

TEST(TypeNameTest, NamesEveryTomlType) {
    auto root = parse_toml(R"(
b = true
i = 1
f = 1.5
s = "x"
a = [1]
t = { x = 1 }
d = 1979-05-27
)");
    const auto& table = root.as_table();
    EXPECT_EQ(type_name(table.at("b")), "a boolean");
    EXPECT_EQ(type_name(table.at("i")), "an integer");
    EXPECT_EQ(type_name(table.at("f")), "a float");
    EXPECT_EQ(type_name(table.at("s")), "a string");
    EXPECT_EQ(type_name(table.at("a")), "an array");
    EXPECT_EQ(type_name(table.at("t")), "a table");
    EXPECT_EQ(type_name(table.at("d")), "a date or time");
}

}  // namespace
}  // namespace sb::config
