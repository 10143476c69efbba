// Generation::build: the checks on files a configuration names, which --check, startup
// and reload share. Regression (issue 13): an access log in a directory that does not
// exist passed --check and then failed at startup.
#include "pool/generation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/loader.h"

namespace sb::pool {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

class GenerationFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/sb-generation-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // Builds a generation from a file whose [log] access_log is `path` (line 2, column 14).
    std::vector<config::ConfigError> build(const std::string& path) {
        auto loaded = config::load_string("[log]\naccess_log = \"" + path + "\"\n" + R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [{ address = "127.0.0.1:9" }]
)",
                                          "t.toml");
        EXPECT_TRUE(loaded.ok());
        std::vector<config::ConfigError> errors;
        if (!loaded.ok()) return errors;
        auto g = Generation::build(loaded.config, 1, nullptr, errors);
        EXPECT_EQ(g == nullptr, !errors.empty());
        return errors;
    }

    static ::testing::Matcher<const config::ConfigError&> At2_14(const std::string& says) {
        return AllOf(Field(&config::ConfigError::file, "t.toml"),
                     Field(&config::ConfigError::line, 2u),
                     Field(&config::ConfigError::column, 14u),
                     Field(&config::ConfigError::message, HasSubstr(says)));
    }

    std::string dir_;
};

TEST_F(GenerationFiles, AccessLogInADirectoryThatDoesNotExistIsAnError) {
    EXPECT_THAT(build(dir_ + "/missing/access.log"),
                ElementsAre(At2_14("directory \"" + dir_ + "/missing\" does not exist")));
}

TEST_F(GenerationFiles, AccessLogUnderAFileIsAnError) {
    std::ofstream(dir_ + "/plain") << "x";
    EXPECT_THAT(build(dir_ + "/plain/access.log"),
                ElementsAre(At2_14("\"" + dir_ + "/plain\" is not a directory")));
}

TEST_F(GenerationFiles, AccessLogThatIsADirectoryIsAnError) {
    EXPECT_THAT(build(dir_), ElementsAre(At2_14("is a directory")));
}

TEST_F(GenerationFiles, AccessLogInAnExistingDirectoryIsFineAndNotCreated) {
    EXPECT_THAT(build(dir_ + "/access.log"), ElementsAre());
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/access.log"));  // --check writes nothing
    std::ofstream(dir_ + "/existing.log") << "";
    EXPECT_THAT(build(dir_ + "/existing.log"), ElementsAre());
}

TEST_F(GenerationFiles, StandardStreamsAndOffNeedNoDirectory) {
    for (const char* d : {"stderr", "stdout", "off"})
        EXPECT_THAT(build(d), ElementsAre()) << d;
}

}  // namespace
}  // namespace sb::pool
