// sb-load's command line: the Options of one run and their parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/address.h"

namespace sb::tools {

enum class Mode {
    Closed,  // closed loop: send, wait for the echo, send the next
    Rate,    // open loop at a fixed total rate; RTT from the scheduled send time
    Large,   // closed loop with big messages; reports throughput
    Idle,    // open connections and hold them without traffic
    Churn,   // connect, handshake, one echo, close, repeat
};
std::string_view mode_name(Mode m);

struct Options {
    std::string url;
    WsUrl target;
    Mode mode = Mode::Closed;
    uint32_t connections = 1;
    uint64_t size = 64;
    double rate = 0;                // messages per second over all connections (rate mode)
    double duration = 5;            // seconds measured
    double warmup = 0;              // seconds before measuring
    double connect_rate = 0;        // new connections per second; 0 = unlimited
    uint32_t max_handshakes = 200;  // connects + handshakes in progress at once
    double connect_timeout = 10;    // seconds for TCP connect + handshake
    uint64_t max_messages = 0;      // 0 = no limit
    bool tls = false;               // TLS to the target (--tls)
    std::string tls_ca;             // verify against this CA file; empty = no verification
    std::string tls_sni = "localhost";
    std::string tls_version = "1.3";  // "1.3" or "1.2": the only version offered
};

// Parses argv into `out`. Returns 0 to run, -1 when --help was printed (exit 0), or
// 2 after printing an error (bad usage).
int parse_options(int argc, char** argv, Options& out);

}  // namespace sb::tools
