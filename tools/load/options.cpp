#include "load/options.h"

#include <cstdio>

#include "common/cli.h"

namespace sb::tools {

namespace {

constexpr const char* kUsage =
    "usage: sb-load --url ws://HOST:PORT/PATH [options]\n"
    "  --mode MODE            closed (default) | rate | large | idle | churn\n"
    "  --connections N        concurrent connections, or parallel lanes in churn (default 1)\n"
    "  --size BYTES           message size (default 64)\n"
    "  --rate MSGS_PER_SEC    total send rate, spread evenly over the connections (rate)\n"
    "  --duration SECONDS     measured time (default 5)\n"
    "  --warmup SECONDS       traffic before measuring starts, not counted (default 0)\n"
    "  --max-messages N       also stop after N measured round trips (churn: cycles)\n"
    "  --connect-rate N       new connections per second (default unlimited)\n"
    "  --max-handshakes N     connects + handshakes in progress at once (default 200)\n"
    "  --connect-timeout S    limit for TCP connect + handshake (default 10)\n"
    "  --tls                  speak TLS to the target (wss), without verification unless\n"
    "                         --tls-ca is given\n"
    "  --tls-ca FILE          verify the server's certificate against this CA (PEM)\n"
    "  --tls-sni NAME         server name sent and verified (default localhost)\n"
    "  --tls-version V        1.3 (default) or 1.2: the only version offered\n"
    "With --tls every connection of a lane (a connection slot; churn's loop) offers the\n"
    "session its previous connection received, and the report gains `tls` {version,\n"
    "cipher, handshakes, resumed}, counted like handshake_us.\n"
    "Modes closed, rate, large and idle first open every connection, then measure.\n"
    "A run takes at most: connecting (each connection is bounded by the connect\n"
    "timeout) + warmup + duration + 5 s of closing. Prints one JSON object on stdout;\n"
    "idle mode also prints `idle N` on stderr once its connections are open.\n";

bool parse_mode(std::string_view text, Mode& out) {
    for (Mode m : {Mode::Closed, Mode::Rate, Mode::Large, Mode::Idle, Mode::Churn}) {
        if (text == mode_name(m)) {
            out = m;
            return true;
        }
    }
    return false;
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "sb-load: %s\n%s", message.c_str(), kUsage);
    return 2;
}

}  // namespace

std::string_view mode_name(Mode m) {
    switch (m) {
        case Mode::Closed:
            return "closed";
        case Mode::Rate:
            return "rate";
        case Mode::Large:
            return "large";
        case Mode::Idle:
            return "idle";
        case Mode::Churn:
            return "churn";
    }
    return "closed";
}

int parse_options(int argc, char** argv, Options& out) {
    ArgReader args(argc, argv);
    std::string_view name;
    std::string_view value;
    while (args.next(name)) {
        if (name == "--help" || name == "-h") {
            std::fputs(kUsage, stdout);
            return -1;
        }
        if (name == "--tls") {  // the one option without a value
            out.tls = true;
            continue;
        }
        if (!args.value(value)) return usage_error(args.error());
        std::string bad = "bad value for " + std::string(name) + ": '" + std::string(value) + "'";
        uint64_t number = 0;
        if (name == "--url") {
            out.url = std::string(value);
        } else if (name == "--mode") {
            if (!parse_mode(value, out.mode)) return usage_error(bad);
        } else if (name == "--connections") {
            if (!parse_u64(value, number) || number < 1 || number > 1'000'000) {
                return usage_error(bad + " (1 to 1000000)");
            }
            out.connections = static_cast<uint32_t>(number);
        } else if (name == "--size") {
            // Up to 1 GiB: far above any benchmark, and safe for every length field.
            if (!parse_u64(value, out.size) || out.size > (uint64_t{1} << 30)) {
                return usage_error(bad + " (0 to 1073741824)");
            }
        } else if (name == "--rate") {
            if (!parse_non_negative(value, out.rate) || out.rate <= 0) return usage_error(bad);
        } else if (name == "--duration") {
            if (!parse_non_negative(value, out.duration) || out.duration <= 0) {
                return usage_error(bad);
            }
        } else if (name == "--warmup") {
            if (!parse_non_negative(value, out.warmup)) return usage_error(bad);
        } else if (name == "--max-messages") {
            if (!parse_u64(value, out.max_messages) || out.max_messages == 0) {
                return usage_error(bad);
            }
        } else if (name == "--connect-rate") {
            if (!parse_non_negative(value, out.connect_rate)) return usage_error(bad);
        } else if (name == "--max-handshakes") {
            if (!parse_u64(value, number) || number < 1 || number > 100'000) {
                return usage_error(bad);
            }
            out.max_handshakes = static_cast<uint32_t>(number);
        } else if (name == "--connect-timeout") {
            if (!parse_non_negative(value, out.connect_timeout) || out.connect_timeout <= 0) {
                return usage_error(bad);
            }
        } else if (name == "--tls-ca") {
            out.tls_ca = std::string(value);
        } else if (name == "--tls-sni") {
            out.tls_sni = std::string(value);
        } else if (name == "--tls-version") {
            if (value != "1.3" && value != "1.2") return usage_error(bad + " (1.3 or 1.2)");
            out.tls_version = std::string(value);
        } else {
            return usage_error("unknown option " + std::string(name));
        }
    }
    if (out.url.empty()) return usage_error("--url is required");
    std::string error;
    if (!parse_ws_url(out.url, out.target, error)) return usage_error(error);
    if (out.mode == Mode::Rate && out.rate <= 0) return usage_error("--mode rate needs --rate");
    if (!out.tls &&
        (!out.tls_ca.empty() || out.tls_version != "1.3" || out.tls_sni != "localhost")) {
        return usage_error("--tls-ca, --tls-sni and --tls-version need --tls");
    }
    return 0;
}

}  // namespace sb::tools
