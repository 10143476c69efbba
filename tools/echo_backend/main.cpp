// sb-echo-backend: a WebSocket echo server for the demo, the integration tests and
// the benchmarks. argv → options → one EchoServer on one uv loop → exit code.
//
//   sb-echo-backend [--listen HOST:PORT] [--name NAME] [--accept-log FILE]
//
// Prints `listening HOST:PORT` (the port actually bound) on stdout once it accepts
// connections; exits 0 on SIGTERM or SIGINT, 1 when it cannot listen, 2 on bad usage.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "common/address.h"
#include "common/cli.h"
#include "common/handshake.h"
#include "echo_backend/echo_server.h"

namespace {

constexpr const char* kUsage =
    "usage: sb-echo-backend [--listen HOST:PORT] [--name NAME] [--accept-log FILE]\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:9001; IPv6 as\n"
    "                      [::1]:PORT; port 0 picks a free port)\n"
    "  --name NAME         backend identity (default echo): sent as the X-Backend\n"
    "                      header of the 101, and as the answer to a text `whoami`\n"
    "  --accept-log FILE   append one line per WebSocket upgrade answered with 101: the\n"
    "                      CLOCK_MONOTONIC time in microseconds (written out every\n"
    "                      second and at exit; for tools/bench's storm scenario)\n"
    "Echoes every other message with its opcode. Stops on SIGTERM or SIGINT.\n";

struct Options {
    std::string listen = "127.0.0.1:9001";
    std::string name = "echo";
    std::string accept_log;  // empty = none
};

// Returns 0 to run, or the exit code to leave with.
int parse_options(int argc, char** argv, Options& options) {
    sb::tools::ArgReader args(argc, argv);
    std::string_view name;
    std::string_view value;
    while (args.next(name)) {
        if (name == "--help" || name == "-h") {
            std::fputs(kUsage, stdout);
            return -1;
        }
        if (name != "--listen" && name != "--name" && name != "--accept-log") {
            std::fprintf(stderr, "sb-echo-backend: unknown option %.*s\n%s",
                         static_cast<int>(name.size()), name.data(), kUsage);
            return 2;
        }
        if (!args.value(value)) {
            std::fprintf(stderr, "sb-echo-backend: %s\n", args.error().c_str());
            return 2;
        }
        if (name == "--listen") {
            options.listen = std::string(value);
        } else if (name == "--name") {
            options.name = std::string(value);
        } else {
            options.accept_log = std::string(value);
        }
    }
    return 0;
}

struct Signals {
    uv_signal_t term{};
    uv_signal_t interrupt{};
};

void on_signal(uv_signal_t* handle, int) noexcept {
    auto* server = static_cast<sb::tools::EchoServer*>(handle->data);
    server->stop();
    // The signal handles are the last to keep the loop alive; closing them lets
    // uv_run() return once the connections have closed.
    auto* signals = static_cast<Signals*>(handle->loop->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&signals->term), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&signals->interrupt), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (int rc = parse_options(argc, argv, options); rc != 0) return rc < 0 ? 0 : rc;

    sb::tools::HostPort host_port;
    sockaddr_storage addr{};
    std::string error;
    if (!sb::tools::parse_host_port(options.listen, host_port, error) ||
        !sb::tools::resolve(host_port, addr, error)) {
        std::fprintf(stderr, "sb-echo-backend: --listen: %s\n", error.c_str());
        return 2;
    }
    // A client that resets its connection must not kill the process on our next write.
    std::signal(SIGPIPE, SIG_IGN);
    // OpenSSL loads its providers on first use, which takes milliseconds: do it now,
    // not while the first client waits for its 101.
    (void)sb::tools::accept_key("warm-up");

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    int exit_code = 0;
    {
        sb::tools::EchoServer server(&loop, options.name);
        if (!options.accept_log.empty() && !server.open_accept_log(options.accept_log)) {
            std::fprintf(stderr, "sb-echo-backend: cannot open --accept-log %s\n",
                         options.accept_log.c_str());
            return 1;
        }
        Signals signals;
        loop.data = &signals;
        std::string bound;
        int rc = server.listen(reinterpret_cast<const sockaddr*>(&addr), bound);
        if (rc != 0) {
            std::fprintf(stderr, "sb-echo-backend: cannot listen on %s: %s\n",
                         options.listen.c_str(), uv_strerror(rc));
            server.stop();
            exit_code = 1;
        } else {
            uv_signal_init(&loop, &signals.term);
            uv_signal_init(&loop, &signals.interrupt);
            signals.term.data = signals.interrupt.data = &server;
            uv_signal_start(&signals.term, &on_signal, SIGTERM);
            uv_signal_start(&signals.interrupt, &on_signal, SIGINT);
            std::printf("listening %s\n", bound.c_str());
            std::fflush(stdout);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&loop) != 0) {
        std::fprintf(stderr, "sb-echo-backend: handles left open at exit\n");
        return 1;
    }
    return exit_code;
}
