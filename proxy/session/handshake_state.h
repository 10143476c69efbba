// Session::Handshake: what a session needs only until its relay starts: the
// request and answer heads, their parsers, and the connect attempts. Freed as soon
// as a 101 goes through, so an established connection carries none of it.
#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "http/handshake.h"
#include "http/message_parser.h"
#include "session/session.h"

namespace sb::session {

struct Session::Handshake {
    // The most an answer head from a backend may take.
    static constexpr size_t kMaxResponseHead = 64 * 1024;
    // A WebSocket upgrade head is a few hundred bytes: reads start at 1 KiB and the
    // buffer doubles from there, so a burst of handshakes leaves little behind.
    static constexpr size_t kFirstRead = 1024;

    std::optional<CloseReason> over_limit;  // a connection limit refused it at accept
    std::string request;                    // bytes read from the client so far
    http::MessageParser request_parser{http::MessageParser::Kind::Request};
    http::UpgradeRequest upgrade;
    std::string method;

    std::string backend_request;  // rewritten head, built once, sent on each attempt
    std::string key;              // balancing key (the room), and its hash
    uint64_t key_hash = 0;
    std::vector<uint32_t> tried;  // backends (pool indexes) whose connect failed
    uv_connect_t connect;
    uint64_t connect_started_ms = 0;

    std::string response;  // bytes read from the backend so far
    http::MessageParser response_parser{http::MessageParser::Kind::Response};

    // Hands libuv the free tail of `request`, never letting it grow past limit + 1
    // bytes (one byte over is how an oversized head is noticed).
    void request_space(uint64_t limit, uv_buf_t* buf) { space(request, limit + 1, buf); }
    void response_space(uv_buf_t* buf) { space(response, kMaxResponseHead + 1, buf); }
    // Trims a buffer back to the bytes a read actually delivered.
    static void commit(std::string& buffer, size_t before, ssize_t nread) {
        buffer.resize(before + (nread > 0 ? static_cast<size_t>(nread) : 0));
    }
    size_t request_before = 0;  // request.size() when its space was handed out
    size_t response_before = 0;

  private:
    void space(std::string& buffer, size_t cap, uv_buf_t* buf) {
        size_t used = buffer.size();
        size_t step = used < cap ? std::min(std::max(kFirstRead, used), cap - used) : 0;
        (&buffer == &request ? request_before : response_before) = used;
        buffer.resize(used + step);
        *buf = uv_buf_init(buffer.data() + used, static_cast<unsigned>(step));
    }
};

struct Session::OwnedWrite {
    uv_write_t write;
    uv_shutdown_t shutdown;
    Session* session;
    std::string bytes;
    bool shutdown_after;  // shut the socket down for writing once written (a refusal)
};

}  // namespace sb::session
