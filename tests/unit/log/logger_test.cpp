// log::Logger: the event line formats (text: the message, then key=value fields, with
// anything that could break the line or fake a field quoted and escaped; JSON: ts,
// level, msg and the fields, valid JSON whatever bytes a hostile client put in a Host
// or a path), level filtering, and the access log's destinations: off, stderr, a
// file, a path that cannot be opened (the old destination stays), and reopen after
// logrotate moved the file.
//
// The Logger is process-wide: every test restores info level, text format and the
// access log on stderr.
#include "log/logger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "log_test_util.h"

namespace sb::log {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class LoggerTest : public ::testing::Test {
  protected:
    void SetUp() override { reset(); }
    void TearDown() override { reset(); }

    static void reset() {
        Logger::get().configure(Level::Info, false);
        std::string error;
        EXPECT_TRUE(Logger::get().set_access_log("stderr", error)) << error;
    }

    // What one write() puts on stderr.
    std::string line_of(Level level, std::string_view message,
                        std::initializer_list<Field> fields = {}) {
        test::StderrCapture capture(dir_);
        Logger::get().write(level, message, fields);
        return capture.take();
    }

    nlohmann::ordered_json json_of(Level level, std::string_view message,
                                   std::initializer_list<Field> fields = {}) {
        Logger::get().configure(Level::Debug, true);
        std::string out = line_of(level, message, fields);
        EXPECT_EQ(test::lines_of(out).size(), 1u) << out;
        EXPECT_TRUE(nlohmann::json::accept(out)) << "not JSON: " << out;
        if (!nlohmann::json::accept(out)) return {};
        return nlohmann::ordered_json::parse(out);
    }

    test::TempDir dir_;
};

// ---- text ----

TEST_F(LoggerTest, TextInfoLineIsTheMessageAloneAsTheSpecShowsIt) {
    EXPECT_EQ(line_of(Level::Info, "listening public 127.0.0.1:8080"),
              "listening public 127.0.0.1:8080\n");
}

TEST_F(LoggerTest, TextLevelsOtherThanInfoArePrefixed) {
    Logger::get().configure(Level::Debug, false);
    EXPECT_EQ(line_of(Level::Error, "boom"), "error: boom\n");
    EXPECT_EQ(line_of(Level::Warn, "hmm"), "warning: hmm\n");
    EXPECT_EQ(line_of(Level::Debug, "detail"), "debug: detail\n");
}

TEST_F(LoggerTest, TextFieldsFollowTheMessageAsKeyEqualsValue) {
    EXPECT_EQ(line_of(Level::Info, "session closed",
                      {{"session", "42"}, {"client", "10.0.0.1:5000"}, {"backend", "b1"}}),
              "session closed session=42 client=10.0.0.1:5000 backend=b1\n");
}

TEST_F(LoggerTest, TextValuesWithSpacesQuotesOrEqualsAreQuotedAndEscaped) {
    EXPECT_EQ(line_of(Level::Info, "m", {{"detail", "two words"}}), "m detail=\"two words\"\n");
    EXPECT_EQ(line_of(Level::Info, "m", {{"path", "/a\"b"}}), "m path=\"/a\\\"b\"\n");
    // A value that would otherwise read as a second field.
    EXPECT_EQ(line_of(Level::Info, "m", {{"host", "x backend=evil"}}),
              "m host=\"x backend=evil\"\n");
    EXPECT_EQ(line_of(Level::Info, "m", {{"host", "a=b"}}), "m host=\"a=b\"\n");
}

TEST_F(LoggerTest, TextEmptyValueIsAnEmptyQuotedString) {
    EXPECT_EQ(line_of(Level::Info, "m", {{"host", ""}}), "m host=\"\"\n");
}

TEST_F(LoggerTest, TextValueWithNewlinesStaysOnOneLine) {
    std::string out =
        line_of(Level::Info, "bad request", {{"host", "evil\r\nlistening admin 0.0.0.0:1"}});
    EXPECT_EQ(out, "bad request host=\"evil\\r\\nlistening admin 0.0.0.0:1\"\n");
    EXPECT_EQ(test::lines_of(out).size(), 1u);
}

TEST_F(LoggerTest, TextValueWithATerminalEscapeIsEscaped) {
    std::string out = line_of(Level::Info, "m", {{"path", "/\x1b[2Jx"}});
    EXPECT_THAT(out, Not(HasSubstr("\x1b")));
    EXPECT_EQ(out, "m path=\"/\\u001b[2Jx\"\n");
}

TEST_F(LoggerTest, TextValueWithBytesThatAreNotUtf8GetsReplacementCharacters) {
    std::string out = line_of(Level::Info, "m", {{"path", "/\xff\xfe/x"}});
    EXPECT_THAT(out, Not(HasSubstr("\xff")));
    EXPECT_THAT(out, HasSubstr("\xEF\xBF\xBD"));  // U+FFFD
    EXPECT_EQ(test::lines_of(out).size(), 1u);
}

TEST_F(LoggerTest, TextValueWithUtf8IsKept) {
    std::string out = line_of(Level::Info, "m", {{"path", "/caf\xC3\xA9"}});
    EXPECT_THAT(out, HasSubstr("/caf\xC3\xA9"));
}

TEST_F(LoggerTest, TextMessageWithANewlineStaysOnOneLine) {
    // Messages are built from config errors and listener names too (server.cpp:
    // "reload: " + error); SPEC §1: one line per event.
    std::string out = line_of(Level::Error, "reload: test.toml:1:1: bad key \"a\nb\"");
    EXPECT_EQ(test::lines_of(out).size(), 1u) << out;
}

// ---- JSON ----

TEST_F(LoggerTest, JsonLineCarriesTsLevelMsgThenTheFieldsInOrder) {
    auto j = json_of(Level::Info, "session closed", {{"session", "42"}, {"client", "10.0.0.1:5"}});
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it)
        keys.push_back(it.key());
    EXPECT_THAT(keys, ElementsAre("ts", "level", "msg", "session", "client"));
    EXPECT_EQ(j["level"], "info");
    EXPECT_EQ(j["msg"], "session closed");
    EXPECT_EQ(j["session"], "42");
    EXPECT_EQ(j["client"], "10.0.0.1:5");
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << j["ts"];
}

TEST_F(LoggerTest, JsonLevelNames) {
    EXPECT_EQ(json_of(Level::Error, "m")["level"], "error");
    EXPECT_EQ(json_of(Level::Warn, "m")["level"], "warning");
    EXPECT_EQ(json_of(Level::Debug, "m")["level"], "debug");
}

TEST_F(LoggerTest, JsonEscapesQuotesBackslashesAndNewlinesAndReadsBackExactly) {
    const std::string hostile = "a\"b\\c\r\nd\te\x01";
    auto j = json_of(Level::Info, "msg with \"quotes\"\n", {{"host", hostile}});
    EXPECT_EQ(j["host"], hostile);
    EXPECT_EQ(j["msg"], "msg with \"quotes\"\n");
}

TEST_F(LoggerTest, JsonReplacesBytesThatAreNotUtf8AndStaysValid) {
    auto j = json_of(Level::Info, "m\xc3", {{"path", "/\xff\xfe/x"}, {"host", "ok"}});
    EXPECT_EQ(j["path"], "/\xEF\xBF\xBD\xEF\xBF\xBD/x");
    EXPECT_EQ(j["msg"], "m\xEF\xBF\xBD");
    EXPECT_EQ(j["host"], "ok");
}

TEST_F(LoggerTest, JsonKeepsUtf8AsIs) {
    auto j = json_of(Level::Info, "m", {{"path", "/caf\xC3\xA9"}});
    EXPECT_EQ(j["path"], "/caf\xC3\xA9");
}

// ---- levels ----

TEST_F(LoggerTest, LinesBelowTheLevelAreNotWritten) {
    Logger::get().configure(Level::Warn, false);
    EXPECT_EQ(line_of(Level::Info, "info"), "");
    EXPECT_EQ(line_of(Level::Debug, "debug"), "");
    EXPECT_EQ(line_of(Level::Warn, "warn"), "warning: warn\n");
    EXPECT_EQ(line_of(Level::Error, "error"), "error: error\n");
}

TEST_F(LoggerTest, EnabledFollowsTheConfiguredLevel) {
    Logger& l = Logger::get();
    l.configure(Level::Error, false);
    EXPECT_TRUE(l.enabled(Level::Error));
    EXPECT_FALSE(l.enabled(Level::Warn));
    l.configure(Level::Info, false);
    EXPECT_TRUE(l.enabled(Level::Warn));
    EXPECT_TRUE(l.enabled(Level::Info));
    EXPECT_FALSE(l.enabled(Level::Debug));
    l.configure(Level::Debug, false);
    EXPECT_TRUE(l.enabled(Level::Debug));
}

TEST_F(LoggerTest, TheHelpersWriteAtTheirLevel) {
    Logger::get().configure(Level::Debug, false);
    test::StderrCapture capture(dir_);
    log::error("e");
    log::warn("w");
    log::info("i", {{"k", "v"}});
    log::debug("d");
    EXPECT_THAT(test::lines_of(capture.take()),
                ElementsAre("error: e", "warning: w", "i k=v", "debug: d"));
}

TEST_F(LoggerTest, DebugHelperWritesNothingAtInfo) {
    test::StderrCapture capture(dir_);
    log::debug("hidden");
    EXPECT_EQ(capture.take(), "");
}

// ---- access log ----

TEST_F(LoggerTest, AccessLogGoesToStderrByDefault) {
    test::StderrCapture capture(dir_);
    EXPECT_TRUE(Logger::get().access_log_enabled());
    Logger::get().access(R"({"status":101})");
    EXPECT_EQ(capture.take(), "{\"status\":101}\n");
}

TEST_F(LoggerTest, AccessLogOffWritesNothing) {
    std::string error;
    ASSERT_TRUE(Logger::get().set_access_log("off", error));
    EXPECT_FALSE(Logger::get().access_log_enabled());
    test::StderrCapture capture(dir_);
    Logger::get().access(R"({"status":101})");
    EXPECT_EQ(capture.take(), "");
    // And back on.
    ASSERT_TRUE(Logger::get().set_access_log("stderr", error));
    EXPECT_TRUE(Logger::get().access_log_enabled());
}

TEST_F(LoggerTest, AccessLogToAFileAppendsOneLinePerCall) {
    std::string error;
    const std::string path = dir_.file("access.log");
    ASSERT_TRUE(Logger::get().set_access_log(path, error)) << error;
    EXPECT_TRUE(Logger::get().access_log_enabled());
    test::StderrCapture capture(dir_);
    Logger::get().access("one");
    Logger::get().access("two");
    EXPECT_EQ(capture.take(), "") << "access lines must not reach stderr";
    EXPECT_EQ(test::read_file(path), "one\ntwo\n");
}

TEST_F(LoggerTest, AccessLogPathThatCannotBeOpenedKeepsTheCurrentDestination) {
    std::string error;
    const std::string path = dir_.file("access.log");
    ASSERT_TRUE(Logger::get().set_access_log(path, error)) << error;
    const std::string bad = dir_.file("missing-dir/access.log");
    EXPECT_FALSE(Logger::get().set_access_log(bad, error));
    EXPECT_EQ(error, "cannot open " + bad + ": No such file or directory");
    EXPECT_TRUE(Logger::get().access_log_enabled());
    Logger::get().access("still here");
    Logger::get().flush();
    EXPECT_EQ(test::read_file(path), "still here\n");
}

TEST_F(LoggerTest, ReopenAfterRotationWritesToANewFileAtThePath) {
    std::string error;
    const std::string path = dir_.file("access.log");
    ASSERT_TRUE(Logger::get().set_access_log(path, error)) << error;
    Logger::get().access("before");
    Logger::get().flush();
    ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
    Logger::get().access("moved with the file");
    Logger::get().flush();
    ASSERT_TRUE(Logger::get().reopen_access_log(error)) << error;
    Logger::get().access("after");
    Logger::get().flush();
    EXPECT_EQ(test::read_file(path + ".1"), "before\nmoved with the file\n");
    EXPECT_EQ(test::read_file(path), "after\n");
}

TEST_F(LoggerTest, ReopenWithoutAFileSucceedsAndChangesNothing) {
    std::string error;
    EXPECT_TRUE(Logger::get().reopen_access_log(error));
    ASSERT_TRUE(Logger::get().set_access_log("off", error));
    EXPECT_TRUE(Logger::get().reopen_access_log(error));
    EXPECT_EQ(error, "");
}

TEST_F(LoggerTest, TimestampIsIso8601UtcWithMilliseconds) {
    EXPECT_TRUE(
        std::regex_match(Logger::timestamp(),
                         std::regex(R"(20\d\d-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d\.\d{3}Z)")))
        << Logger::timestamp();
}

}  // namespace
}  // namespace sb::log
