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
    // --debug-record-key-update=N, for tests and not in --help: the client side's TLS
    // keys are due for a KeyUpdate after N records (0: RFC 8446 §5.5's limits).
    uint64_t record_key_update = 0;
    // --debug-no-ring, for tests and comparisons and not in --help: workers do every
    // read and write through libuv, as when the kernel offers no io_uring.
    bool no_ring = false;
    // --debug-ring-buffers=N, for tests and not in --help: the ring provides N read
    // buffers instead of 64 (uv/ring.h), so that reads run out of them.
    unsigned ring_buffers = 0;
    // --debug-ring-sides=N, for tests and not in --help: at most N relay sides per worker
    // use the ring instead of 4,080 (uv/ring.h), so that a few sessions reach the limit.
    unsigned ring_sides = 0;
    // --debug-ring-prompt-sends, for tests and comparisons and not in --help: every
    // write through the ring completes as a completion of its own (no lazy sends,
    // uv/ring.h).
    bool ring_prompt_sends = false;
    // --debug-ring-coalesce-us=N, for tests and comparisons and not in --help: a busy
    // worker's wait is held for at most N microseconds instead of 20 (uv/ring.h); 0 turns
    // coalescing off. -1: not given.
    int ring_coalesce_us = -1;
};

CommandLine parse_command_line(const std::vector<std::string>& args);

// Runs what the command line asks for and returns the process exit code:
// 0 success, 1 invalid configuration or startup failure, 2 command-line misuse.
int run(int argc, char** argv);

std::string version_string();
std::string help_text();

}  // namespace sb::app
