// What sb-load measures (Stats, filled by LoadRun) and the JSON object it prints.
//
// Keys common to every mode: mode, url, connections, size, duration_s, warmup_s,
// messages, messages_per_sec, bytes_per_sec, rtt_us {p50 p90 p99 p999 max},
// handshake_us {same}, errors, error_kinds {one key per ClientError}, established,
// failed. Rate mode adds rate, sent, received, late, dropped; churn mode adds
// handshakes, handshakes_per_sec; --tls adds tls {version, cipher, handshakes, resumed}
// (TLS handshakes of connections that opened, counted where handshake_us is: in churn
// inside the window, elsewhere all). Percentiles of an empty histogram are 0.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/histogram.h"
#include "load/client.h"
#include "load/options.h"

namespace sb::tools {

struct Stats {
    // Inside the measured window.
    uint64_t messages = 0;    // round trips completed (churn: echoes)
    uint64_t sent = 0;        // rate: messages scheduled in the window and sent
    uint64_t received = 0;    // rate: their echoes
    uint64_t late = 0;        // rate: sends more than 1 ms after their schedule
    uint64_t dropped = 0;     // rate: scheduled sends that had no open connection or room
    uint64_t handshakes = 0;  // churn: completed connect-echo-close cycles
    Histogram rtt_ns;
    Histogram handshake_ns;       // TCP connect start to 101 received
    uint64_t tls_handshakes = 0;  // --tls: counted as handshake_ns is
    uint64_t tls_resumed = 0;     // of which resumed a session
    std::string tls_version;      // of the first connection that opened
    std::string tls_cipher;
    // Over the whole run.
    uint64_t established = 0;  // handshakes that succeeded
    uint64_t failed = 0;       // connections that never opened
    std::array<uint64_t, kClientErrorKinds> errors{};
    double duration_s = 0;  // length of the measured window actually run

    uint64_t error_total() const;
};

nlohmann::ordered_json make_report(const Options& options, const Stats& stats);

}  // namespace sb::tools
