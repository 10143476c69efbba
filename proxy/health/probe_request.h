// The bytes of one active health check and the verdict on its answer (SPEC §2
// [pools.NAME.health_check], §3 Health "Active"). Pure: no I/O, so the unit tests
// feed it bytes.
//
//   http       GET path HTTP/1.1, Host = the backend's address, Connection: close;
//              a complete response head with a 2xx status is a success.
//   websocket  GET path with Upgrade: websocket and a random Sec-WebSocket-Key; a 101
//              that http::check_upgrade_response accepts (Upgrade, Connection, the
//              matching Sec-WebSocket-Accept) is a success; the probe then sends a
//              masked Close 1000 and ends.
//   tcp        nothing is sent: the connect (and TLS handshake) is the check.
// A pool with proxy_protocol v1/v2 sends net::proxy_header::encode_local() (PROXY
// UNKNOWN, or a v2 LOCAL header) before anything else.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "config/config.h"
#include "http/message_parser.h"

namespace sb::health {

// The request head for an http or websocket check (empty for tcp). `host` is the
// backend's address as configured; `key` the Sec-WebSocket-Key (websocket only).
std::string probe_request(const config::HealthCheckConfig& check, std::string_view host,
                          std::string_view key);

// base64 of 16 random bytes: a Sec-WebSocket-Key (RFC 6455 §4.1).
std::string random_websocket_key(std::mt19937_64& rng);

// A masked Close frame with code 1000 and no reason (RFC 6455 §5.5.1), masked with
// `mask` as a client's frames must be.
std::string close_frame_1000(uint32_t mask);

// What the bytes received so far say.
struct Verdict {
    enum class State { NeedMore, Ok, Failed };
    State state = State::NeedMore;
    std::string error;  // for Failed: "status 503", "bad response: ...", ...
};

// Reads `buffer` (everything received so far) with `parser` (a Response parser that
// has seen the earlier bytes of the same buffer). Interim 1xx heads are skipped.
// `max_head` bounds the bytes read without a complete head.
Verdict check_answer(const config::HealthCheckConfig& check, std::string_view buffer,
                     http::MessageParser& parser, std::string_view key, size_t max_head);

}  // namespace sb::health
