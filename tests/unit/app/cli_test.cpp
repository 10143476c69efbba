// app's command line (SPEC §1): parse_command_line turns argv into an action and a
// config path (-c FILE, --config FILE, --config=FILE, --check, --version, --help; an
// unknown option or a missing FILE is misuse), and run() answers each with the exit
// code and output the SPEC promises: 0 and "switchboard X.Y.Z" for --version, 0 and
// the usage for --help, 2 and the usage on stderr for misuse, and for --check 0 with
// "configuration ok" or 1 with every error as FILE:LINE:COLUMN: message. --check runs
// on temp files only; nothing here opens a socket or starts a loop.
#include "app/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "version.h"

namespace sb::app {
namespace {

using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Action = CommandLine::Action;

CommandLine parse(std::vector<std::string> args) {
    return parse_command_line(args);
}

// ---- parse_command_line ----

TEST(CommandLineTest, NoArgumentsRunsTheDefaultFile) {
    auto cl = parse({});
    EXPECT_EQ(cl.action, Action::Run);
    EXPECT_EQ(cl.config_path, "/etc/switchboard/switchboard.toml");
    EXPECT_EQ(cl.error, "");
}

TEST(CommandLineTest, DashCNamesTheFile) {
    auto cl = parse({"-c", "/tmp/a.toml"});
    EXPECT_EQ(cl.action, Action::Run);
    EXPECT_EQ(cl.config_path, "/tmp/a.toml");
}

TEST(CommandLineTest, LongConfigNamesTheFileInBothSpellings) {
    EXPECT_EQ(parse({"--config", "a.toml"}).config_path, "a.toml");
    EXPECT_EQ(parse({"--config=b.toml"}).config_path, "b.toml");
    EXPECT_EQ(parse({"--config=b.toml"}).action, Action::Run);
}

TEST(CommandLineTest, TheLastFileNamedWins) {
    EXPECT_EQ(parse({"-c", "a.toml", "-c", "b.toml"}).config_path, "b.toml");
}

TEST(CommandLineTest, HiddenRingCountsTakeDecimalDigitsInRangeOnly) {
    EXPECT_EQ(parse({"--debug-ring-sides=4"}).ring_sides, 4u);
    EXPECT_EQ(parse({"--debug-ring-sides=4080"}).ring_sides, 4080u);
    EXPECT_EQ(parse({"--debug-ring-buffers=16"}).ring_buffers, 16u);
    EXPECT_EQ(parse({"--debug-ring-coalesce-us=0"}).ring_coalesce_us, 0);
    EXPECT_EQ(parse({"--debug-ring-coalesce-us=100000"}).ring_coalesce_us, 100000);
    EXPECT_EQ(parse({}).ring_coalesce_us, -1);
    for (const char* bad :
         {"--debug-ring-sides=", "--debug-ring-sides=0", "--debug-ring-sides=4081",
          "--debug-ring-sides=4abc", "--debug-ring-sides= 4", "--debug-ring-sides=+4",
          "--debug-ring-sides=-1", "--debug-ring-sides=-18446744073709551615",
          "--debug-ring-buffers=3", "--debug-ring-buffers=128", "--debug-ring-buffers=8x",
          "--debug-ring-coalesce-us=", "--debug-ring-coalesce-us=100001",
          "--debug-ring-coalesce-us=-1", "--debug-ring-coalesce-us=00x"}) {
        auto cl = parse({bad});
        EXPECT_EQ(cl.action, Action::Usage) << bad;
        EXPECT_THAT(cl.error, StartsWith("--debug-ring-")) << bad;
    }
}

TEST(CommandLineTest, CheckWithOrWithoutAFileInEitherOrder) {
    auto alone = parse({"--check"});
    EXPECT_EQ(alone.action, Action::Check);
    EXPECT_EQ(alone.config_path, kDefaultConfigPath);
    auto before = parse({"--check", "-c", "a.toml"});
    EXPECT_EQ(before.action, Action::Check);
    EXPECT_EQ(before.config_path, "a.toml");
    auto after = parse({"-c", "a.toml", "--check"});
    EXPECT_EQ(after.action, Action::Check);
    EXPECT_EQ(after.config_path, "a.toml");
    EXPECT_EQ(parse({"-t", "-c", "a.toml"}).action, Action::Check);
}

TEST(CommandLineTest, VersionAndHelpInLongAndShortForms) {
    EXPECT_EQ(parse({"--version"}).action, Action::Version);
    EXPECT_EQ(parse({"-v"}).action, Action::Version);
    EXPECT_EQ(parse({"--help"}).action, Action::Help);
    EXPECT_EQ(parse({"-h"}).action, Action::Help);
    // They win over a check asked for before them.
    EXPECT_EQ(parse({"--check", "--version"}).action, Action::Version);
    EXPECT_EQ(parse({"-c", "a.toml", "--help"}).action, Action::Help);
}

TEST(CommandLineTest, AnUnknownOptionIsMisuseAndNamed) {
    auto cl = parse({"--bogus"});
    EXPECT_EQ(cl.action, Action::Usage);
    EXPECT_EQ(cl.error, "unknown argument \"--bogus\"");
}

TEST(CommandLineTest, AStrayWordIsMisuse) {
    auto cl = parse({"-c", "a.toml", "extra"});
    EXPECT_EQ(cl.action, Action::Usage);
    EXPECT_THAT(cl.error, HasSubstr("\"extra\""));
}

TEST(CommandLineTest, AnUnknownOptionAfterCheckIsStillMisuse) {
    EXPECT_EQ(parse({"--check", "--verbose"}).action, Action::Usage);
}

TEST(CommandLineTest, DashCWithoutAFileIsMisuse) {
    auto cl = parse({"-c"});
    EXPECT_EQ(cl.action, Action::Usage);
    EXPECT_EQ(cl.error, "-c needs a file name");
    auto check = parse({"--check", "--config"});
    EXPECT_EQ(check.action, Action::Usage);
    EXPECT_EQ(check.error, "--config needs a file name");
}

TEST(CommandLineTest, AnEmptyConfigEqualsIsMisuse) {
    // "--config=" names no file; running with an empty path would only fail later,
    // with a less useful message.
    auto cl = parse({"--config="});
    EXPECT_EQ(cl.action, Action::Usage) << "config_path = \"" << cl.config_path << "\"";
}

TEST(CommandLineTest, VersionStringIsSwitchboardAndTheVersion) {
    EXPECT_EQ(version_string(), std::string("switchboard ") + SB_VERSION);
    EXPECT_THAT(version_string(),
                ::testing::MatchesRegex(R"(switchboard [0-9]+\.[0-9]+\.[0-9]+.*)"));
}

TEST(CommandLineTest, HelpNamesEveryFormAndTheDefaultFile) {
    std::string help = help_text();
    EXPECT_THAT(help, StartsWith("usage:\n"));
    EXPECT_THAT(help, HasSubstr("switchboard [-c FILE]"));
    EXPECT_THAT(help, HasSubstr("switchboard --check [-c FILE]"));
    EXPECT_THAT(help, HasSubstr("switchboard --version"));
    EXPECT_THAT(help, HasSubstr("switchboard --help"));
    EXPECT_THAT(help, HasSubstr(kDefaultConfigPath));
    EXPECT_THAT(help, EndsWith("\n"));
}

// ---- run(): exit codes and output ----

struct Ran {
    int code;
    std::string out;
    std::string err;
};

Ran run_with(std::vector<std::string> args) {
    args.insert(args.begin(), "switchboard");
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int code = run(static_cast<int>(args.size()), argv.data());
    std::fflush(stdout);
    std::fflush(stderr);
    std::string err = ::testing::internal::GetCapturedStderr();
    std::string out = ::testing::internal::GetCapturedStdout();
    return {code, out, err};
}

TEST(CliRunTest, VersionPrintsOneLineAndExits0) {
    auto r = run_with({"--version"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, version_string() + "\n");
    EXPECT_EQ(r.err, "");
}

TEST(CliRunTest, HelpPrintsTheUsageAndExits0) {
    auto r = run_with({"--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, help_text());
}

TEST(CliRunTest, MisuseExits2WithTheReasonAndTheUsageOnStderr) {
    auto r = run_with({"--frobnicate"});
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, StartsWith("switchboard: unknown argument \"--frobnicate\"\n"));
    EXPECT_THAT(r.err, HasSubstr(help_text()));
}

TEST(CliRunTest, MissingFileAfterDashCExits2) {
    auto r = run_with({"--check", "-c"});
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, StartsWith("switchboard: -c needs a file name\n"));
}

class CheckTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const char* base = std::getenv("TMPDIR");
        std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/sb-unit-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    std::string write(const std::string& name, std::string_view text) {
        if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
        std::string path = dir_ + "/" + name;
        std::ofstream(path) << text;
        return path;
    }
    std::string dir_;
};

constexpr std::string_view kValid = R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [{ address = "127.0.0.1:9" }]
)";

TEST_F(CheckTest, AValidFileSaysConfigurationOkAndExits0) {
    auto r = run_with({"--check", "-c", write("ok.toml", kValid)});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "configuration ok\n");
    EXPECT_EQ(r.err, "");
}

TEST_F(CheckTest, AMissingFileExits1AndNamesIt) {
    const std::string path = dir_ + "/absent.toml";
    auto r = run_with({"--check", "-c", path});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, HasSubstr(path));
}

TEST_F(CheckTest, EveryErrorIsPrintedAsFileLineColumn) {
    const std::string path = write("bad.toml", R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
bogus_key = 1

[pools.chat]
backends = [{ address = "127.0.0.1:9" }]
also_bogus = 2
)");
    auto r = run_with({"--check", "-c", path});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, AllOf(HasSubstr(path + ":5:1: "), HasSubstr(path + ":9:1: ")));
    EXPECT_THAT(r.err, AllOf(HasSubstr("bogus_key"), HasSubstr("also_bogus")));
}

TEST_F(CheckTest, AnUnreadableCertificateFailsTheCheck) {
    const std::string path = write("tls.toml", R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
tls = { certificates = [{ certificate = "/nonexistent/c.pem", private_key = "/nonexistent/k.pem" }] }

[pools.chat]
backends = [{ address = "127.0.0.1:9" }]
)");
    auto r = run_with({"--check", "-c", path});
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_THAT(r.err, HasSubstr("/nonexistent/c.pem"));
}

// Issue 13: "--check passes files that startup then rejects". Startup opens the
// access log; --check must find a path that cannot be opened too.
TEST_F(CheckTest, AnAccessLogInAMissingDirectoryFailsTheCheck) {
    const std::string log = dir_ + "/missing-dir/access.log";
    const std::string path = write("log.toml", std::string(R"(
[log]
access_log = ")") + log + "\"\n" + std::string(kValid));
    auto r = run_with({"--check", "-c", path});
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(r.out, "");
    // Positioned at the value, and naming what is missing.
    EXPECT_THAT(r.err, AllOf(StartsWith(path + ":2:"), HasSubstr(dir_ + "/missing-dir")));
}

// Issue 13: two listeners on 0.0.0.0:P and 127.0.0.1:P pass --check, and startup
// then fails to bind the second.
TEST_F(CheckTest, TwoListenersOnOverlappingAddressesAndOnePortFailTheCheck) {
    const std::string path = write("overlap.toml", R"(
[[listeners]]
name = "any"
listen = "0.0.0.0:18080"
pool = "chat"

[[listeners]]
name = "local"
listen = "127.0.0.1:18080"
pool = "chat"

[pools.chat]
backends = [{ address = "127.0.0.1:9" }]
)");
    auto r = run_with({"--check", "-c", path});
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_THAT(r.err, HasSubstr("18080"));
}

}  // namespace
}  // namespace sb::app
