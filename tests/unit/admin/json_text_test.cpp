// JSON text for admin answers: bytes that are not UTF-8 are escaped as \udcXX (never
// an exception, as nlohmann's dump() throws), valid text is written as nlohmann would.
#include "admin/json_text.h"

#include <gtest/gtest.h>

#include <string>

namespace sb::admin {
namespace {

using Json = nlohmann::ordered_json;

std::string quoted(std::string_view bytes) {
    std::string out;
    append_json_string(out, bytes);
    return out;
}

TEST(JsonText, ByteFfThatThrowsInNlohmannIsEscapedAsALoneSurrogate) {
    Json j{{"key", std::string("\xff")}};
    EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // the defect's cause
    EXPECT_EQ(json_text(j), R"({"key":"\udcff"})");
}

TEST(JsonText, ValidUtf8IsWrittenAsItIs) {
    EXPECT_EQ(quoted("room-42"), "\"room-42\"");
    EXPECT_EQ(quoted("\xc3\xbcn\xc3\xaf/c\xc3\xb6"), "\"\xc3\xbcn\xc3\xaf/c\xc3\xb6\"");  // ünï/cö
    EXPECT_EQ(quoted("\xe2\x82\xac"), "\"\xe2\x82\xac\"");                                // €
    EXPECT_EQ(quoted("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");                        // U+1F600
    EXPECT_EQ(quoted("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"");          // U+FFFD is text like any other
    EXPECT_EQ(quoted("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF, the last
}

TEST(JsonText, QuotesBackslashesAndControlCharactersAreEscapedAsJsonRequires) {
    EXPECT_EQ(quoted("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
    EXPECT_EQ(quoted(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
    EXPECT_EQ(quoted("\x7f"), "\"\x7f\"");
}

TEST(JsonText, EveryByteOfAnInvalidSequenceIsEscapedOnItsOwn) {
    EXPECT_EQ(quoted("\x80"), R"("\udc80")");                                // stray continuation
    EXPECT_EQ(quoted("\xc0\xaf"), R"("\udcc0\udcaf")");                      // overlong '/'
    EXPECT_EQ(quoted("\xe0\x80\xaf"), R"("\udce0\udc80\udcaf")");            // overlong, 3 bytes
    EXPECT_EQ(quoted("\xed\xa0\x80"), R"("\udced\udca0\udc80")");            // an encoded surrogate
    EXPECT_EQ(quoted("\xf4\x90\x80\x80"), R"("\udcf4\udc90\udc80\udc80")");  // > U+10FFFF
    EXPECT_EQ(quoted("\xf8"), R"("\udcf8")");
    // Cut short: the lead byte is escaped and what follows is read again.
    EXPECT_EQ(quoted("\xe2\x82"), R"("\udce2\udc82")");
    EXPECT_EQ(quoted("\xe2\x82x"), R"("\udce2\udc82x")");
    EXPECT_EQ(quoted("\xc3\xc3\xbc"), "\"\\udcc3\xc3\xbc\"");
}

TEST(JsonText, Utf8SequenceLengthFollowsRfc3629) {
    EXPECT_EQ(utf8_sequence_length("a"), 1u);
    EXPECT_EQ(utf8_sequence_length("\xc2\x80"), 2u);
    EXPECT_EQ(utf8_sequence_length("\xc1\xbf"), 0u);
    EXPECT_EQ(utf8_sequence_length("\xe0\xa0\x80"), 3u);
    EXPECT_EQ(utf8_sequence_length("\xe0\x9f\xbf"), 0u);
    EXPECT_EQ(utf8_sequence_length("\xed\x9f\xbf"), 3u);
    EXPECT_EQ(utf8_sequence_length("\xed\xa0\x80"), 0u);
    EXPECT_EQ(utf8_sequence_length("\xf0\x90\x80\x80"), 4u);
    EXPECT_EQ(utf8_sequence_length("\xf0\x8f\xbf\xbf"), 0u);
    EXPECT_EQ(utf8_sequence_length(""), 0u);
}

TEST(JsonText, ObjectKeysAreEscapedToo) {
    Json j;
    j[std::string("a\xfe")] = 1;
    EXPECT_EQ(json_text(j), R"({"a\udcfe":1})");
}

TEST(JsonText, ValidDocumentsAreWrittenExactlyAsNlohmannWritesThem) {
    Json j;
    j["version"] = "1.2.3";
    j["uptime"] = 12.5;
    j["count"] = 3;
    j["negative"] = -4;
    j["on"] = true;
    j["none"] = nullptr;
    j["empty_array"] = Json::array();
    j["empty_object"] = Json::object();
    j["list"] = {1, "two", {{"three", 3}}};
    j["nested"] = {{"a", {{"b", Json::array({1, 2})}}}, {"text", "ü \"q\"\n"}};
    EXPECT_EQ(json_text(j), j.dump());
    EXPECT_EQ(json_text(j, 2), j.dump(2));
    EXPECT_EQ(json_text(Json("plain")), "\"plain\"");
    EXPECT_EQ(json_text(Json(1.0 / 3)), Json(1.0 / 3).dump());
}

}  // namespace
}  // namespace sb::admin
