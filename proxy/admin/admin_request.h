// The admin listener's request handling without sockets: request bytes in, a complete
// HTTP answer out. AdminServer feeds it what a connection receives and writes what it
// returns; the admin fuzzer (tests/fuzz/admin_request_fuzz.cpp) drives the same code
// through answer_request().
//
// Every answer closes its connection (`Connection: close`) except GET /events, whose
// head is followed by one server-sent event per second. HEAD is answered like GET
// without the body (same headers, Content-Length included); other methods get 405
// with `Allow: GET, HEAD`; unknown paths 404; a malformed request 400; a request head
// over kMaxRequestBytes 431. Nothing here throws: a failure while building an answer
// becomes a 500 and a log line, since the caller is a libuv callback.
//
// RequestReader is owned by one admin connection; everything runs on the main thread
// (the AdminSources functions are main-thread only).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "admin/views.h"
#include "http/message_parser.h"

namespace sb::admin {

struct AdminAnswer {
    int status = 0;
    // The complete response: status line, headers, blank line, then the body (none for
    // HEAD). For a stream, the head and the first event.
    std::string bytes;
    // GET /events: the connection stays open and receives events; no Content-Length.
    bool stream = false;
};

// The answer to a request whose head is complete. Never throws.
AdminAnswer answer(const AdminSources& sources, std::string_view method, std::string_view target);

// Reads one request head from a connection's bytes as they arrive.
class RequestReader {
  public:
    static constexpr size_t kMaxRequestBytes = 8 * 1024;

    // `received` is every byte of the connection so far, earlier bytes unchanged.
    // Returns the answer once the head is complete, malformed or over
    // kMaxRequestBytes; std::nullopt while more bytes are needed. Bytes after the head
    // (a body, a pipelined request) are ignored: the connection closes after one
    // answer. Never throws.
    std::optional<AdminAnswer> read(const AdminSources& sources, std::string_view received);

  private:
    http::MessageParser parser_{http::MessageParser::Kind::Request};
};

// The pure map from what a client sent to what it gets: `request` is every byte the
// client sent on one connection. std::nullopt when that is not yet a complete request.
std::optional<AdminAnswer> answer_request(const AdminSources& sources, std::string_view request);

// Decodes %XX escapes and '+' (a space) of a query-string value, once. A '%' not
// followed by two hex digits stays as it is. The result may be any bytes.
std::string decode_query_value(std::string_view value);

}  // namespace sb::admin
