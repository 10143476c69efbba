// Session::Handshake: what a session needs only until its relay starts: the
// request and answer heads, their parsers, and the connect attempts. Freed as soon
// as a 101 goes through, so an established connection carries none of it.
//
// The heads are copied out of the delivered blocks into strings (llhttp wants the
// head contiguous, and it is a few hundred bytes); what follows a head in its last
// block is given back to the Endpoint (Endpoint::unread) and reaches the Pipe through
// the same path as every later byte.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/handshake.h"
#include "http/message_parser.h"
#include "net/proxy_header.h"
#include "session/session.h"
#include "ws/frame_scanner.h"

namespace sb::session {

// One plain HTTP request (SPEC §3 HTTP requests) rather than an upgrade: the request
// body and the answer's body stream through the Pipes in Raw mode, framed here.
struct HttpExchange {
    uint64_t started_ms = 0;    // head complete (the request's duration counts from here)
    bool request_done = false;  // the request's last byte went to the backend
    bool response_done = false;
    bool keep_client = false;  // the client connection carries another request after
    bool http10 = false;       // the client spoke HTTP/1.0
    bool backend_reusable = false;
    bool body_too_large = false;
    bool bad_body = false;     // a request body broke its framing
    bool reused = false;       // the backend connection came from IdleConnections
    bool retried = false;      // ...failed, and the request went out again on a new one
    bool fresh_retry = false;  // connect_next: that new connection, to the same backend
};

struct Session::Handshake {
    // The most an answer head from a backend may take (interim answers included).
    static constexpr size_t kMaxResponseHead = 64 * 1024;

    std::optional<CloseReason> over_limit;  // a connection limit refused it at accept
    // max_connects_per_ip_per_second refused it: seconds until the address has a token.
    unsigned connect_retry_after = 0;
    // This request's placement takes admission tokens (a retry takes the next
    // backend's too).
    bool takes_tokens = false;
    // Shed with 1013: the 101 and the Close are out; the client's Close is awaited.
    bool shedding = false;
    ws::FrameScanner shed_frames;
    // A PROXY listener reads the header first, before TLS and the request; bytes behind
    // it go back to the client's Endpoint (through TLS, on a TLS listener). Set while
    // the header is being read (only on such listeners), freed once it is.
    std::unique_ptr<net::proxy_header::Parser> proxy_header;
    // The address the client connected to: a PROXY header's destination, else the
    // client socket's own (asked for only when a pool sends a PROXY header).
    config::SocketAddress local_address;
    // Keep-alive: the previous request's backend connection, still open in the backend
    // Endpoint (paused), kept with the client while its next request may go to the
    // same backend; and the pool it was for. Null when there is none.
    pool::Backend* kept = nullptr;
    const pool::Pool* kept_pool = nullptr;
    // Between requests: when the kept connection has been idle for the pool's
    // idle_timeout, and when the client has for keepalive_timeout (loop times).
    uint64_t kept_until = 0;
    uint64_t keepalive_until = 0;
    // The kept connection went to the idle set: once its Endpoint is closed, the
    // placed request connects (connect_next).
    bool connect_after_close = false;
    std::string request;  // bytes read from the client so far
    http::MessageParser request_parser{http::MessageParser::Kind::Request};
    http::UpgradeRequest upgrade;
    std::string method;
    std::string client_key;  // Sec-WebSocket-Key, to check the backend's 101

    std::string backend_request;  // rewritten head, built once, sent on each attempt
    std::string key;              // balancing key (the room), and its hash
    uint64_t key_hash = 0;
    std::vector<uint32_t> tried;  // backends (pool indexes) whose connect failed
    uint64_t connect_started_ms = 0;
    // The backend Endpoint's connect request. libuv may touch it until its callback has
    // run (cancelled when the handle closes first): this state lives until the relay
    // starts (every attempt's callback has run by then) or the Session is destroyed
    // (after every close callback), never less.
    uv_connect_t connect{};

    std::string response;  // bytes read from the backend so far
    http::MessageParser response_parser{http::MessageParser::Kind::Response};

    // A plain HTTP request (SPEC §3 HTTP requests) rather than an upgrade: see
    // HttpExchange.
    std::optional<HttpExchange> http;
};

}  // namespace sb::session
