// CloseReason: why a client connection ended, decided once by its session.
//
// Each reason maps to exactly one access-log `reason` (empty for ordinary ends that
// the proxy did not cause), one `closed_by` side and one metric label, in one table
// (close_reason.cpp), so logs and metrics can never disagree. Refusals also carry the
// HTTP status the client was answered with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sb::metrics {

enum class Side : uint8_t { Client, Backend, Proxy };

enum class CloseReason : uint8_t {
    // Ordinary ends of a relayed connection.
    ClientClosed,     // the client closed (close handshake or TCP)
    BackendClosed,    // the backend closed
    ClientReset,      // client connection error or reset
    BackendLost,      // backend connection lost without a Close frame (client gets 1012)
    BackendAnswered,  // a non-101 backend answer was passed to the client
    // Refusals during the handshake.
    ClientAborted,       // client went away before an answer
    HandshakeTimeout,    // no complete request within handshake_timeout
    BadRequest,          // 400
    BadVersion,          // 426
    HeadersTooLarge,     // 431
    OriginNotAllowed,    // 403
    NoRoute,             // 404
    ClientLimit,         // 429 max_connections_per_ip
    ListenerLimit,       // 503 listener max_connections
    ServerLimit,         // 503 server max_connections
    NoBackend,           // 503 no backend up or free
    BackendRefused,      // 502 connect failed on every attempt
    BackendBadAnswer,    // 502 backend answered garbage or closed during the handshake
    BackendTimeout,      // 504 backend did not answer in time
    Overloaded,          // 503 the proxy itself is out of descriptors or memory
    BackendTlsFailed,    // 502 TLS to the backend failed (verification, protocol)
    BodyTooLarge,        // 413 HTTP request body over max_request_body
    TlsHandshakeFailed,  // the client's TLS handshake failed: no HTTP exchange
    ProxyProtocol,       // PROXY listener: the header was missing, malformed, cut or late
    ProxyUntrusted,      // PROXY listener: a source outside proxy_protocol_from
    ShedPoolRate,        // admission: the pool's bucket was empty (1013 or 503)
    ShedBackendRate,     // admission: the room's / every free backend's bucket was empty
    ConnectRateLimited,  // 429 max_connects_per_ip_per_second
    // Proxy-initiated ends of relayed connections.
    Shutdown,          // 1001 graceful drain
    IdleTimeout,       // 1001 no frames either way for idle_timeout
    PingTimeout,       // client did not answer a ping (1001 to the backend)
    MaxLifetime,       // 1001 connection older than max_lifetime
    MessageTooBig,     // 1009
    RateLimited,       // 1008
    ProtocolError,     // 1002 client broke RFC 6455 framing
    Rehome,            // 1012 room moved to its new home backend
    BackendRemoved,    // 1012 backend removed by a reload
    CloseTimeout,      // a close handshake did not complete in time
    KeepaliveTimeout,  // HTTP: no new request within keepalive_timeout
    Reload,            // HTTP keep-alive connection closed after a reload (new routes apply)
    InternalError,     // out of memory or an unexpected system error
};

inline constexpr size_t kCloseReasonCount = static_cast<size_t>(CloseReason::InternalError) + 1;

struct CloseReasonInfo {
    std::string_view log_reason;  // access log `reason`; "" = none
    Side closed_by;
    std::string_view label;  // metric label
    int status;              // HTTP status for refusals, 0 otherwise
    bool refusal;            // counted as a rejection
};

const CloseReasonInfo& info(CloseReason r);
std::string_view side_name(Side s);

}  // namespace sb::metrics
