// config::prescan and load_string's bounds on what reaches toml11: Debian's toml11 3.7
// recurses once per nested array or inline table (about 1,200 levels overflow an 8 MiB
// stack) and spends time quadratic in a dotted key's parts and in a line's length, so
// such text is rejected, with its position, before toml11 sees it.
#include "config/prescan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/loader.h"
#include "config_test_util.h"

namespace sb::config {
namespace {

using test::dump;
using test::ErrorAt;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::string_view kValid = R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:8080"
pool = "chat"
routes = [{ path_prefix = "/ws", pool = "chat" }]

[pools.chat]
backends = [{ address = "10.0.0.1:8080", weight = 1 }]
)";

std::string nested_arrays(size_t depth) {
    return "a = " + std::string(depth, '[') + std::string(depth, ']') + "\n";
}

TEST(PrescanTest, TwelveHundredNestedArraysAreRejectedNotACrash) {
    // The 2.4 KB file that used to overflow toml11's stack under `--check`.
    auto text = nested_arrays(1200);
    ASSERT_LT(text.size(), 2500u);
    auto result = load_string(text, "deep.toml");
    ASSERT_FALSE(result.ok());
    // The bracket that goes one level past the limit: column 5 is the first '['.
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(1, 5 + static_cast<unsigned>(kMaxNesting),
                                                   HasSubstr("nested more than 32 deep"))))
        << dump(result);
    EXPECT_EQ(result.errors.front().file, "deep.toml");
}

TEST(PrescanTest, NestingAtTheLimitReachesToml) {
    // 32 levels pass the pre-scan; toml11 parses them and the decoder says what is wrong.
    auto result = test::load(nested_arrays(kMaxNesting));
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(1, 1, HasSubstr("unknown key \"a\"")),
                                           ErrorAt(1, 1, HasSubstr("missing required key"))))
        << dump(result);
}

TEST(PrescanTest, DeepInlineTablesAreRejected) {
    std::string text = "\nx = ";
    for (int i = 0; i < 1000; ++i)
        text += "{a = ";
    text += "1";
    for (int i = 0; i < 1000; ++i)
        text += "}";
    auto result = load_string(text, "t.toml");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, static_cast<unsigned>(5 + 5 * kMaxNesting),
                                                   HasSubstr("nested more than 32 deep"))))
        << dump(result);
}

TEST(PrescanTest, MixedArraysAndInlineTablesCountTogether) {
    std::string text;
    for (int i = 0; i < 20; ++i)
        text += "[{a=";
    auto result = load_string("x = " + text, "t.toml");
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(result.errors.front().message, HasSubstr("nested more than 32 deep"));
}

TEST(PrescanTest, BracketsInStringsAndCommentsDoNotCount) {
    std::string deep(200, '[');
    std::string text = "# " + deep + "\n" +   // a comment
                       "[server]\n" +         //
                       "# \"" + deep + "\n";  // a quote in a comment
    text += std::string(kValid);
    text += "[log]\naccess_log = \"/tmp/" + deep + "\"\n";  // a basic string
    text += "level = 'info'\n";
    auto result = load_string(text, "t.toml");
    EXPECT_TRUE(result.ok()) << dump(result);
    // Literal and multi-line strings, with escaped quotes and quotes at the very end.
    EXPECT_FALSE(prescan("a = '" + deep + "'\n").has_value());
    EXPECT_FALSE(prescan("a = \"\"\"\n" + deep + "\n\\\"\"\" \"\"\"\"\n").has_value());
    EXPECT_FALSE(prescan("a = '''\n" + deep + "\n''''\n").has_value());
    EXPECT_FALSE(prescan("a = \"\\\"" + deep + "\"\n").has_value());
}

TEST(PrescanTest, AStringDoesNotHideBracketsAfterItCloses) {
    auto text = "a = \"\"\"x\"\"\"\"\" " + nested_arrays(100);
    auto error = prescan(text);
    ASSERT_TRUE(error.has_value());
    EXPECT_THAT(error->message, HasSubstr("nested more than 32 deep"));
}

TEST(PrescanTest, AnUnterminatedBasicStringEndsAtItsLine) {
    // toml11 rejects the string; the next line's nesting must still be seen.
    auto error = prescan("a = \"open\n" + nested_arrays(100));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->line, 2u);
}

TEST(PrescanTest, LongDottedKeysAreRejectedAtTheKey) {
    std::string key = "a";
    for (int i = 0; i < 50'000; ++i)
        key += ".b";
    auto result = load_string("\n  " + key + " = 1\n", "t.toml");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 3, HasSubstr("more than 32 parts"))))
        << dump(result);
    auto header = load_string("[" + key + "]\n", "t.toml");
    EXPECT_THAT(header.errors, ElementsAre(ErrorAt(1, 2, HasSubstr("more than 32 parts"))))
        << dump(header);
    auto inline_key = load_string("t = { " + key + " = 1 }\n", "t.toml");
    EXPECT_THAT(inline_key.errors, ElementsAre(ErrorAt(1, 7, HasSubstr("more than 32 parts"))))
        << dump(inline_key);
}

TEST(PrescanTest, DotsInValuesAndQuotedKeysAreNotKeyParts) {
    std::string floats = "a = [";
    for (int i = 0; i < 100; ++i)
        floats += "1.5, ";
    floats +=
        "]\nb = 1979-05-27T07:32:00.999Z\n\"x.y.z.w.v.u.t.s.r.q.p.o.n.m.l.k.j.i.h.g.f.e.d.c.b.a."
        "1.2.3.4.5.6.7.8.9\" = 1\n";
    EXPECT_FALSE(prescan(floats).has_value()) << prescan(floats)->message;
    std::string parts = "a";
    for (size_t i = 1; i < kMaxKeyParts; ++i)
        parts += " . b";
    EXPECT_FALSE(prescan(parts + " = 1\n").has_value());
    EXPECT_TRUE(prescan(parts + ".c = 1\n").has_value());
}

TEST(PrescanTest, LongLinesAreRejectedWherePastTheLimit) {
    std::string line = "a = [";
    while (line.size() < kMaxLineBytes + 100)
        line += "1,";
    auto result = load_string("\n" + line + "]\n", "t.toml");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, static_cast<unsigned>(kMaxLineBytes + 1),
                                                   HasSubstr("longer than 4096 bytes"))))
        << dump(result);
}

TEST(PrescanTest, HugeFilesAreRejected) {
    std::string text;
    while (text.size() <= kMaxFileBytes)
        text += "# a comment line that takes some room in the file, over and over\n";
    auto result = load_string(text, "big.toml");
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_THAT(result.errors.front().message, HasSubstr("larger than 1 MiB"));
    EXPECT_GT(result.errors.front().line, 1000u);
}

// Found by config_fuzz: toml11 3.7 read past its buffer (ASan heap-buffer-overflow in
// parse_ml_literal_string) reporting invalid UTF-8 inside a multi-line string.
TEST(PrescanTest, InvalidUtf8InAMultiLineStringIsRejectedBeforeToml) {
    auto result = load_string("l = '''x\n[\xff\xff[[ \n'''\n", "t.toml");
    EXPECT_THAT(result.errors, ElementsAre(ErrorAt(2, 2, HasSubstr("invalid UTF-8"))))
        << dump(result);
    EXPECT_FALSE(prescan("s = \"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"\n").has_value());
    EXPECT_TRUE(prescan("s = \"\xc0\xaf\"\n").has_value());      // overlong
    EXPECT_TRUE(prescan("s = \"\xed\xa0\x80\"\n").has_value());  // a surrogate
    EXPECT_TRUE(prescan("s = \"\xe2\x82").has_value());          // cut short
}

TEST(PrescanTest, TheShippedConfigurationPassesUnchanged) {
    EXPECT_FALSE(prescan(kValid).has_value());
    EXPECT_TRUE(test::load(kValid).ok());
}

}  // namespace
}  // namespace sb::config
