// sb-storm: the clients of tools/bench's storm scenario. argv → StormOptions → one
// StormRun on one uv loop → `connected N` once all N clients are open, then one JSON
// report on stdout once every client that lost its connection has one again (or at
// --max-seconds, or on SIGTERM/SIGINT) → exit code (0 after a run; 1 when it cannot
// run; 2 on bad usage). storm/storm_run.h says how the clients reconnect;
// tools/benchmark/sb_bench/storm.py reads the report.
//
//   sb-storm --address HOST:PORT --clients N [--max-seconds S] [--handshake-timeout S]
#include <uv.h>

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/address.h"
#include "common/cli.h"
#include "common/handshake.h"
#include "storm/storm_run.h"

namespace {

constexpr const char* kUsage =
    "usage: sb-storm --address HOST:PORT --clients N [--max-seconds S]\n"
    "                [--handshake-timeout S]\n"
    "  --address HOST:PORT     the proxy (or backend) to connect to\n"
    "  --clients N             WebSocket clients; client i asks for /?room=c<i>\n"
    "  --max-seconds S         report and exit after S seconds whatever happened\n"
    "                          (default 120)\n"
    "  --handshake-timeout S   an attempt without an answer this long is an error\n"
    "                          (default 10)\n"
    "Prints `connected N` once all clients are open; after the first dropped connection,\n"
    "prints a JSON report once all are open again (see storm/storm_run.h), then waits\n"
    "for SIGTERM or SIGINT.\n";

int usage_error(const std::string& message) {
    std::fprintf(stderr, "sb-storm: %s\n%s", message.c_str(), kUsage);
    return 2;
}

// Returns 0 to run, or the exit code to leave with (-1: 0 after --help).
int parse_options(int argc, char** argv, sb::tools::StormOptions& options) {
    sb::tools::ArgReader args(argc, argv);
    std::string_view name;
    std::string_view value;
    std::string address;
    while (args.next(name)) {
        if (name == "--help" || name == "-h") {
            std::fputs(kUsage, stdout);
            return -1;
        }
        if (!args.value(value)) return usage_error(args.error());
        uint64_t count = 0;
        double seconds = 0;
        if (name == "--address") {
            address = std::string(value);
        } else if (name == "--clients") {
            if (!sb::tools::parse_u64(value, count) || count == 0) {
                return usage_error("--clients: a positive whole number");
            }
            options.clients = count;
        } else if (name == "--max-seconds" || name == "--handshake-timeout") {
            if (!sb::tools::parse_non_negative(value, seconds) || seconds <= 0) {
                return usage_error(std::string(name) + ": a positive number of seconds");
            }
            if (name == "--max-seconds") {
                options.max_seconds = seconds;
            } else {
                options.handshake_timeout_ms = static_cast<uint64_t>(seconds * 1000);
            }
        } else {
            return usage_error("unknown option " + std::string(name));
        }
    }
    if (address.empty() || options.clients == 0) {
        return usage_error("--address and --clients are required");
    }
    sb::tools::HostPort host_port;
    std::string error;
    if (!sb::tools::parse_host_port(address, host_port, error) ||
        !sb::tools::resolve(host_port, options.address, error)) {
        return usage_error("--address: " + error);
    }
    options.host_header = address;
    return 0;
}

struct Signals {
    uv_signal_t term{};
    uv_signal_t interrupt{};
};

void on_signal(uv_signal_t* handle, int) noexcept {
    static_cast<sb::tools::StormRun*>(handle->data)->stop();
}

}  // namespace

int main(int argc, char** argv) {
    sb::tools::StormOptions options;
    if (int rc = parse_options(argc, argv, options); rc != 0) return rc < 0 ? 0 : rc;
    std::signal(SIGPIPE, SIG_IGN);  // a reset connection is an outcome, not a crash
    sb::tools::raise_descriptor_limit();
    (void)sb::tools::accept_key("warm-up");  // OpenSSL's providers load on first use

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    sb::tools::StormRun run(&loop, options);
    Signals signals;
    uv_signal_init(&loop, &signals.term);
    uv_signal_init(&loop, &signals.interrupt);
    signals.term.data = signals.interrupt.data = &run;
    uv_signal_start(&signals.term, &on_signal, SIGTERM);
    uv_signal_start(&signals.interrupt, &on_signal, SIGINT);
    run.run();
    std::string report = run.report();
    std::printf("%s\n", report.c_str());
    std::fflush(stdout);
    // Wait for SIGTERM or SIGINT (the bench reads this process's CPU time first), then
    // leave. Thousands of sockets and timers are still open: the kernel closes them
    // faster than a walk of the loop would, and the bench stops the proxy and the
    // backends next. So no teardown (and no uv_loop_close, which would fail).
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGTERM);
    sigaddset(&wanted, SIGINT);
    pthread_sigmask(SIG_BLOCK, &wanted, nullptr);
    int received = 0;
    sigwait(&wanted, &received);
    std::_Exit(0);
}
