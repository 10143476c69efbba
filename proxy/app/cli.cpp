#include "app/cli.h"

#include <cstdio>
#include <cstdlib>

#include "app/server.h"
#include "config/loader.h"
#include "pool/generation.h"
#include "session/context.h"
#include "version.h"

namespace sb::app {

namespace {

// A hidden option's count: decimal digits only (up to six), else 0, which every such
// option refuses. strtoul alone would take "4abc", " 4", "+4" and wrap "-1" around.
unsigned long debug_count(const std::string& text) {
    if (text.empty() || text.size() > 6) return 0;
    unsigned long n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<unsigned long>(c - '0');
    }
    return n;
}

constexpr unsigned long kMaxCoalesceUs = 100000;

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
    CommandLine cl;
    bool check = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-c" || a == "--config") {
            if (i + 1 >= args.size()) {
                cl.action = CommandLine::Action::Usage;
                cl.error = a + " needs a file name";
                return cl;
            }
            cl.config_path = args[++i];
        } else if (a.rfind("--config=", 0) == 0) {
            if (a.size() == 9) {
                cl.action = CommandLine::Action::Usage;
                cl.error = "--config= needs a file name";
                return cl;
            }
            cl.config_path = a.substr(9);
        } else if (a.rfind("--debug-record-key-update=", 0) == 0) {
            cl.record_key_update = std::strtoull(a.c_str() + 26, nullptr, 10);
        } else if (a == "--debug-no-ring") {
            cl.no_ring = true;
        } else if (a == "--debug-ring-prompt-sends") {
            cl.ring_prompt_sends = true;
        } else if (a.rfind("--debug-ring-buffers=", 0) == 0) {
            const unsigned long n = debug_count(a.substr(21));
            if (n == 0 || n > uv::Ring::kBuffers || (n & (n - 1)) != 0) {
                cl.action = CommandLine::Action::Usage;
                cl.error = "--debug-ring-buffers: a power of two from 1 to " +
                           std::to_string(uv::Ring::kBuffers);
                return cl;
            }
            cl.ring_buffers = static_cast<unsigned>(n);
        } else if (a.rfind("--debug-ring-sides=", 0) == 0) {
            const unsigned long n = debug_count(a.substr(19));
            if (n == 0 || n > uv::Ring::kMaxSides) {
                cl.action = CommandLine::Action::Usage;
                cl.error =
                    "--debug-ring-sides: a number from 1 to " + std::to_string(uv::Ring::kMaxSides);
                return cl;
            }
            cl.ring_sides = static_cast<unsigned>(n);
        } else if (a.rfind("--debug-ring-coalesce-us=", 0) == 0) {
            const std::string text = a.substr(25);
            const unsigned long n = debug_count(text);
            if ((n == 0 && text != "0") || n > kMaxCoalesceUs) {
                cl.action = CommandLine::Action::Usage;
                cl.error = "--debug-ring-coalesce-us: a number from 0 to " +
                           std::to_string(kMaxCoalesceUs);
                return cl;
            }
            cl.ring_coalesce_us = static_cast<int>(n);
        } else if (a == "--check" || a == "-t") {
            check = true;
        } else if (a == "--version" || a == "-v") {
            cl.action = CommandLine::Action::Version;
            return cl;
        } else if (a == "--help" || a == "-h") {
            cl.action = CommandLine::Action::Help;
            return cl;
        } else {
            cl.action = CommandLine::Action::Usage;
            cl.error = "unknown argument \"" + a + "\"";
            return cl;
        }
    }
    cl.action = check ? CommandLine::Action::Check : CommandLine::Action::Run;
    return cl;
}

std::string version_string() {
    return std::string("switchboard ") + SB_VERSION;
}

std::string help_text() {
    return "usage:\n"
           "  switchboard [-c FILE]            run in the foreground\n"
           "  switchboard --check [-c FILE]    validate FILE and exit (0 valid, 1 invalid)\n"
           "  switchboard --version            print the version\n"
           "  switchboard --help               print this help\n"
           "\n"
           "FILE defaults to " +
           std::string(kDefaultConfigPath) +
           ".\n"
           "Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT drain and exit,\n"
           "SIGUSR1 reopens the access log. See switchboard(8) and switchboard.toml(5).\n";
}

namespace {

int check(const std::string& path) {
    auto loaded = config::load_file(path);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        return 1;
    }
    // Load the certificates and CA files too, exactly as startup and reload do.
    std::vector<config::ConfigError> errors;
    if (!pool::Generation::build(loaded.config, 1, nullptr, errors)) {
        for (const auto& e : errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        return 1;
    }
    std::printf("configuration ok\n");
    return 0;
}

}  // namespace

int run(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto cl = parse_command_line(args);
    switch (cl.action) {
        case CommandLine::Action::Version:
            std::printf("%s\n", version_string().c_str());
            return 0;
        case CommandLine::Action::Help:
            std::printf("%s", help_text().c_str());
            return 0;
        case CommandLine::Action::Usage:
            std::fprintf(stderr, "switchboard: %s\n%s", cl.error.c_str(), help_text().c_str());
            return 2;
        case CommandLine::Action::Check:
            return check(cl.config_path);
        case CommandLine::Action::Run:
            break;
    }
    session::WorkerContext::record_key_update_for_test = cl.record_key_update;
    session::WorkerContext::ring_disabled = cl.no_ring;
    uv::Ring::buffers_for_test = cl.ring_buffers;
    uv::Ring::max_sides_for_test = cl.ring_sides;
    uv::Ring::prompt_sends_for_test = cl.ring_prompt_sends;
    uv::Ring::coalesce_us_for_test = cl.ring_coalesce_us;
    Server server(cl.config_path);
    return server.run();
}

}  // namespace sb::app
