// The command line (SPEC §1): parsing argv into what to do, and running it.
#pragma once

#include <string>
#include <vector>

namespace sb::app {

inline constexpr const char* kDefaultConfigPath = "/etc/switchboard/switchboard.toml";

struct CommandLine {
    enum class Action { Run, Check, Version, Help, Usage };
    Action action = Action::Run;
    std::string config_path = kDefaultConfigPath;
    std::string error;  // for Action::Usage
};

CommandLine parse_command_line(const std::vector<std::string>& args);

// Runs what the command line asks for and returns the process exit code:
// 0 success, 1 invalid configuration or startup failure, 2 command-line misuse.
int run(int argc, char** argv);

std::string version_string();
std::string help_text();

}  // namespace sb::app
