#include "load/report.h"

#include <cmath>

namespace sb::tools {

namespace {

// Rounds to `digits` decimals so the report stays readable.
double rounded(double value, int digits) {
    double scale = std::pow(10.0, digits);
    return std::round(value * scale) / scale;
}

nlohmann::ordered_json percentiles_us(const Histogram& h) {
    auto us = [](uint64_t ns) { return rounded(static_cast<double>(ns) / 1000.0, 1); };
    nlohmann::ordered_json out;
    out["p50"] = us(h.quantile(0.50));
    out["p90"] = us(h.quantile(0.90));
    out["p99"] = us(h.quantile(0.99));
    out["p999"] = us(h.quantile(0.999));
    out["max"] = us(h.max());
    return out;
}

}  // namespace

uint64_t Stats::error_total() const {
    uint64_t total = 0;
    for (uint64_t n : errors)
        total += n;
    return total;
}

nlohmann::ordered_json make_report(const Options& options, const Stats& stats) {
    double seconds = stats.duration_s;
    auto per_second = [seconds](double n) { return seconds > 0 ? rounded(n / seconds, 1) : 0.0; };
    nlohmann::ordered_json out;
    out["mode"] = mode_name(options.mode);
    out["url"] = options.url;
    out["connections"] = options.connections;
    out["size"] = options.size;
    out["duration_s"] = rounded(seconds, 3);
    out["warmup_s"] = options.warmup;
    out["messages"] = stats.messages;
    out["messages_per_sec"] = per_second(static_cast<double>(stats.messages));
    out["bytes_per_sec"] =
        per_second(static_cast<double>(stats.messages) * static_cast<double>(options.size));
    out["rtt_us"] = percentiles_us(stats.rtt_ns);
    out["handshake_us"] = percentiles_us(stats.handshake_ns);
    out["errors"] = stats.error_total();
    nlohmann::ordered_json kinds = nlohmann::ordered_json::object();
    for (size_t i = 1; i < kClientErrorKinds; ++i) {
        kinds[std::string(client_error_name(static_cast<ClientError>(i)))] = stats.errors[i];
    }
    out["error_kinds"] = kinds;
    out["established"] = stats.established;
    out["failed"] = stats.failed;
    if (options.mode == Mode::Rate) {
        out["rate"] = options.rate;
        out["sent"] = stats.sent;
        out["received"] = stats.received;
        out["late"] = stats.late;
        out["dropped"] = stats.dropped;
    }
    if (options.mode == Mode::Churn) {
        out["handshakes"] = stats.handshakes;
        out["handshakes_per_sec"] = per_second(static_cast<double>(stats.handshakes));
    }
    if (options.tls) {
        nlohmann::ordered_json tls;
        tls["version"] = stats.tls_version;
        tls["cipher"] = stats.tls_cipher;
        tls["handshakes"] = stats.tls_handshakes;
        tls["resumed"] = stats.tls_resumed;
        out["tls"] = tls;
    }
    return out;
}

}  // namespace sb::tools
