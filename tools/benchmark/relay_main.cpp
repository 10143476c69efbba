// sb-bench-relay: the benchmark's floor, a bare epoll TCP relay (see relay.h).
// argv → options → one Relay → exit code.
//
//   sb-bench-relay --backend HOST:PORT [--listen HOST:PORT] [--block BYTES]
//
// Prints `listening HOST:PORT` (the port actually bound) on stdout once it accepts
// connections; exits 0 on SIGTERM or SIGINT, 1 when it cannot run, 2 on bad usage.
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "benchmark/relay.h"
#include "common/address.h"
#include "common/cli.h"

namespace {

constexpr const char* kUsage =
    "usage: sb-bench-relay --backend HOST:PORT [--listen HOST:PORT] [--block BYTES]\n"
    "  --backend HOST:PORT  where every client is relayed to\n"
    "  --listen HOST:PORT   address to listen on (default 127.0.0.1:0: a free port)\n"
    "  --block BYTES        read size, and the most one direction parks when its\n"
    "                       destination is full (default 65536)\n"
    "Copies bytes both ways, nothing else. Stops on SIGTERM or SIGINT.\n";

struct Options {
    std::string listen = "127.0.0.1:0";
    std::string backend;
    uint64_t block = 64 * 1024;
};

// Returns 0 to run, -1 after --help, or 2 after printing an error.
int parse_options(int argc, char** argv, Options& options) {
    sb::tools::ArgReader args(argc, argv);
    std::string_view name;
    std::string_view value;
    while (args.next(name)) {
        if (name == "--help" || name == "-h") {
            std::fputs(kUsage, stdout);
            return -1;
        }
        if (!args.value(value)) {
            std::fprintf(stderr, "sb-bench-relay: %s\n%s", args.error().c_str(), kUsage);
            return 2;
        }
        if (name == "--listen") {
            options.listen = std::string(value);
        } else if (name == "--backend") {
            options.backend = std::string(value);
        } else if (name == "--block") {
            if (!sb::tools::parse_u64(value, options.block) || options.block < 512 ||
                options.block > (uint64_t{16} << 20)) {
                std::fprintf(stderr, "sb-bench-relay: --block: 512 to 16777216\n");
                return 2;
            }
        } else {
            std::fprintf(stderr, "sb-bench-relay: unknown option %.*s\n%s",
                         static_cast<int>(name.size()), name.data(), kUsage);
            return 2;
        }
    }
    if (options.backend.empty()) {
        std::fprintf(stderr, "sb-bench-relay: --backend is required\n%s", kUsage);
        return 2;
    }
    return 0;
}

bool resolve(const std::string& text, sockaddr_storage& out, const char* option) {
    sb::tools::HostPort host_port;
    std::string error;
    if (!sb::tools::parse_host_port(text, host_port, error) ||
        !sb::tools::resolve(host_port, out, error)) {
        std::fprintf(stderr, "sb-bench-relay: %s: %s\n", option, error.c_str());
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (int rc = parse_options(argc, argv, options); rc != 0) return rc < 0 ? 0 : rc;
    sockaddr_storage listen_addr{};
    sockaddr_storage backend_addr{};
    if (!resolve(options.listen, listen_addr, "--listen") ||
        !resolve(options.backend, backend_addr, "--backend")) {
        return 2;
    }
    sb::tools::raise_descriptor_limit();
    // A peer that resets its connection must not kill the relay on the next write.
    std::signal(SIGPIPE, SIG_IGN);
    // SIGINT and SIGTERM arrive through the relay's signalfd instead.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);

    sb::bench::Relay relay(backend_addr, static_cast<size_t>(options.block));
    sockaddr_storage bound{};
    if (int rc = relay.listen(listen_addr, bound); rc != 0) {
        std::fprintf(stderr, "sb-bench-relay: cannot listen on %s: %s\n", options.listen.c_str(),
                     std::strerror(rc));
        return 1;
    }
    std::printf("listening %s\n",
                sb::tools::format_address(reinterpret_cast<const sockaddr*>(&bound)).c_str());
    std::fflush(stdout);
    if (int rc = relay.run(); rc != 0) {
        std::fprintf(stderr, "sb-bench-relay: epoll: %s\n", std::strerror(rc));
        return 1;
    }
    return 0;
}
