#include "metrics/close_reason.h"

#include <array>

namespace sb::metrics {

namespace {

using enum Side;

// Indexed by CloseReason; the static_assert below keeps it complete.
constexpr std::array<CloseReasonInfo, kCloseReasonCount> kTable = {{
    {"", Client, "client_closed", 0, false},
    {"", Backend, "backend_closed", 0, false},
    {"client_reset", Client, "client_reset", 0, false},
    {"backend_lost", Backend, "backend_lost", 0, false},
    {"", Backend, "backend_answered", 0, false},
    {"client_aborted", Client, "client_aborted", 499, false},
    {"handshake_timeout", Proxy, "handshake_timeout", 408, true},
    {"bad_request", Proxy, "bad_request", 400, true},
    {"bad_version", Proxy, "bad_version", 426, true},
    {"headers_too_large", Proxy, "headers_too_large", 431, true},
    {"origin_not_allowed", Proxy, "origin_not_allowed", 403, true},
    {"no_route", Proxy, "no_route", 404, true},
    {"client_limit", Proxy, "client_limit", 429, true},
    {"listener_limit", Proxy, "listener_limit", 503, true},
    {"server_limit", Proxy, "server_limit", 503, true},
    {"no_backend", Proxy, "no_backend", 503, true},
    {"backend_refused", Proxy, "backend_refused", 502, true},
    {"backend_bad_answer", Proxy, "backend_bad_answer", 502, true},
    {"backend_timeout", Proxy, "backend_timeout", 504, true},
    {"overloaded", Proxy, "overloaded", 503, true},
    {"backend_tls_failed", Proxy, "backend_tls_failed", 502, true},
    {"body_too_large", Proxy, "body_too_large", 413, true},
    {"tls_handshake_failed", Proxy, "tls_handshake_failed", 0, true},
    {"proxy_protocol", Proxy, "proxy_protocol", 0, true},
    {"proxy_protocol_untrusted", Proxy, "proxy_protocol_untrusted", 0, true},
    {"shed_pool_rate", Proxy, "shed_pool_rate", 503, true},
    {"shed_backend_rate", Proxy, "shed_backend_rate", 503, true},
    {"connect_rate_limited", Proxy, "connect_rate_limited", 429, true},
    {"shutdown", Proxy, "shutdown", 0, false},
    {"idle_timeout", Proxy, "idle_timeout", 0, false},
    {"ping_timeout", Proxy, "ping_timeout", 0, false},
    {"max_lifetime", Proxy, "max_lifetime", 0, false},
    {"message_too_big", Proxy, "message_too_big", 0, false},
    {"rate_limited", Proxy, "rate_limited", 0, false},
    {"protocol_error", Proxy, "protocol_error", 0, false},
    {"rehome", Proxy, "rehome", 0, false},
    {"backend_removed", Proxy, "backend_removed", 0, false},
    {"close_timeout", Proxy, "close_timeout", 0, false},
    {"keepalive_timeout", Proxy, "keepalive_timeout", 0, false},
    {"reload", Proxy, "reload", 0, false},
    {"internal_error", Proxy, "internal_error", 0, false},
}};

static_assert(kTable.back().label == "internal_error", "kTable must follow CloseReason");

}  // namespace

const CloseReasonInfo& info(CloseReason r) {
    return kTable[static_cast<size_t>(r)];
}

std::string_view side_name(Side s) {
    switch (s) {
        case Side::Client:
            return "client";
        case Side::Backend:
            return "backend";
        case Side::Proxy:
            return "proxy";
    }
    return "proxy";
}

}  // namespace sb::metrics
