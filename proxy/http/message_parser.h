// MessageParser: an llhttp wrapper that parses one HTTP/1.1 request head (from a
// client) or response head (from a backend) out of a buffer that grows as bytes
// arrive, and keeps headers as offsets into that buffer so it may reallocate. A
// backend's interim 1xx heads (RFC 9110 §15.2) come before its final answer in the
// same buffer: start_next() parses the head that follows one.
//
// Strict by construction (SPEC §3; a request that breaks a rule gets 400 from the
// session, a response 502). llhttp runs with every leniency off, so invalid
// characters, malformed lines, conflicting Content-Length and Transfer-Encoding
// (RFC 9112 §6.3) and differing or invalid Content-Length values are errors. llhttp
// stops short of a few rules, which are checked here once the head is complete:
//   - every line of the head ends in CRLF: a bare CR, or a bare LF (which llhttp 8.1
//     takes after the request line), is an error (RFC 9112 §2.2);
//   - obsolete line folding is an error (RFC 9112 §5.2);
//   - a header name is a token, without whitespace before the colon (RFC 9112 §5.1);
//   - a Transfer-Encoding, all its fields read as one list, must end in chunked and
//     name chunked only once (RFC 9112 §6.1, §6.3 (4)); an empty one, an empty list
//     element, or one in an HTTP/1.0 message (RFC 9112 §6.1) is an error. llhttp
//     checks the request case only after the head, where this parser has stopped;
//   - a Content-Length is below 2^63 (SPEC §3; llhttp takes anything below 2^64);
//   - the version is HTTP/1.x: llhttp reads a request-line without one as HTTP/0.9.
// A chunked body is checked by consume_body (chunked_scanner.h).
// Only the head is held to these rules: what follows it (a body, WebSocket frames)
// is not looked at by parse().
//
// Owned by a session for the length of a handshake; single-threaded.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/chunked_scanner.h"

namespace sb::http {

struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
    std::string_view in(std::string_view buffer) const { return buffer.substr(offset, length); }
};

struct HeaderSpan {
    Span name;
    Span value;
};

class MessageParser {
  public:
    enum class Kind { Request, Response };
    enum class Status {
        NeedMore,  // the head is not complete yet
        Complete,  // the head is complete: buffer[head_begin(), head_end())
        Error,     // malformed; error() says why. Sticky: later calls say Error too
    };

    explicit MessageParser(Kind kind);
    MessageParser(const MessageParser&) = delete;
    MessageParser& operator=(const MessageParser&) = delete;

    // For a response to a HEAD request (RFC 9112 §6.3 (1)): the head is the whole
    // message, whatever its Content-Length or Transfer-Encoding say; only the session
    // knows the request's method. Call before parse(); it holds for interim heads and
    // the final one alike.
    void expect_no_body() { no_body_expected_ = true; }

    // Parses the bytes of `buffer` not seen by earlier calls. `buffer` must hold
    // everything given before, unchanged, followed by the new bytes (it may move).
    // Once Complete, further calls return Complete until start_next().
    Status parse(std::string_view buffer);

    // After a Complete response head with is_interim(): forgets that head, and the next
    // parse(buffer), on the same growing buffer, parses a new head starting at
    // head_end(). A 1xx has no body (RFC 9110 §15.2), so the next head follows at once.
    // The caller passes each interim head on before calling this; see is_interim().
    // Calling it in any other state is a bug: asserted, and a no-op without asserts.
    void start_next();
    // A complete response head whose status is 1xx other than 101 (100 Continue, 103
    // Early Hints): an interim answer, followed by the final one. Never for requests.
    bool is_interim() const;

    // After Complete: continues with body bytes of a request, or of a response that is
    // not an upgrade; `ended` turns true once the message has ended (Content-Length
    // met, last chunk, at once for a message without a body). Empty `bytes` means the
    // peer closed. Body bytes are not stored. Returns false with error() set on
    // malformed bodies; errors are sticky. `used` (if given) is set to how many of
    // `bytes` belong to the message: bytes past its end are the next message's, never
    // this one's (a relay that passed them on would let a peer smuggle a second one).
    // A chunked body is held to switchboard's own rules as well as llhttp's (see
    // chunked_scanner.h): CRLF line ends, chunk-size and extension limits, trailers.
    bool consume_body(std::string_view bytes, bool& ended, size_t* used = nullptr);
    // The body ends when the backend closes (no length and not chunked).
    bool body_ends_at_eof() const;
    // After Complete: whether the connection may carry another message after this one
    // (llhttp_should_keep_alive): HTTP/1.1 without "Connection: close", HTTP/1.0 with
    // "Connection: keep-alive", and never a response whose body ends at EOF.
    bool keep_alive() const { return keep_alive_; }

    const std::string& error() const { return error_; }
    // Where the current head lies in the buffer: [head_begin(), head_end()). The first
    // head begins at 0; one after an interim head begins where that one ended. Header
    // and request-line spans are offsets into the whole buffer, not into the head.
    size_t head_begin() const { return head_begin_; }
    size_t head_end() const { return head_end_; }
    // head_end() - head_begin(): the size of the current head, and its end for
    // callers that never call start_next() (their head begins at 0).
    size_t head_length() const { return head_end_ - head_begin_; }

    // Request line.
    Span method() const { return method_; }
    Span target() const { return target_; }
    // Response status line.
    int status_code() const { return status_code_; }
    unsigned http_major() const { return major_; }
    unsigned http_minor() const { return minor_; }
    const std::vector<HeaderSpan>& headers() const { return headers_; }
    // Whether a body follows the head: Content-Length > 0 or chunked, and never for a
    // 1xx, 204 or 304 answer (RFC 9110 §6.4.1).
    bool has_body() const { return has_body_; }
    // After Complete: the Content-Length value, or -1 without one (chunked, none).
    int64_t content_length() const { return content_length_; }
    bool chunked() const { return chunked_; }
    // Body bytes consume_body() has seen so far, without chunked framing.
    uint64_t body_bytes() const { return body_bytes_; }

  private:
    static int on_method(llhttp_t*, const char* at, size_t len);
    static int on_url(llhttp_t*, const char* at, size_t len);
    static int on_header_field(llhttp_t*, const char* at, size_t len);
    static int on_header_value(llhttp_t*, const char* at, size_t len);
    static int on_headers_complete(llhttp_t*);
    static int on_message_complete(llhttp_t*);
    static int on_body(llhttp_t*, const char* at, size_t len);
    void extend(Span& span, const char* at, size_t len);
    static const llhttp_settings_t* settings(Kind kind);
    // The checks llhttp does not make, on the complete head; false with error_ set.
    bool check_head(std::string_view buffer);
    bool check_transfer_encoding(std::string_view buffer);

    llhttp_t parser_;
    Kind kind_;
    const char* base_ = nullptr;  // start of the buffer during parse()
    size_t parsed_ = 0;           // bytes of the buffer already given to llhttp
    size_t head_begin_ = 0;
    size_t head_end_ = 0;
    Span method_, target_;
    std::vector<HeaderSpan> headers_;
    bool in_value_ = false;
    bool head_done_ = false;
    bool message_done_ = false;
    bool has_body_ = false;
    bool chunked_ = false;  // llhttp's reading: the last transfer coding is chunked
    bool keep_alive_ = false;
    bool length_over_limit_ = false;  // Content-Length of 2^63 or more
    bool no_body_expected_ = false;   // a response to HEAD
    int64_t content_length_ = -1;
    uint64_t body_bytes_ = 0;
    ChunkedScanner chunks_;  // our reading of a chunked body, next to llhttp's
    int status_code_ = 0;
    unsigned major_ = 0, minor_ = 0;
    std::string error_;
};

// Finds the first header named `name` (case-insensitive). Returns false if absent.
bool find_header(std::string_view buffer, const std::vector<HeaderSpan>& headers,
                 std::string_view name, std::string_view& value);
// Counts headers named `name`.
size_t count_headers(const std::vector<HeaderSpan>& headers, std::string_view buffer,
                     std::string_view name);
bool iequals(std::string_view a, std::string_view b);
// ASCII only, as HTTP names are, and inline: std::tolower is a libc call per
// character, and every upgrade compares header names dozens of times.
constexpr char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
constexpr bool ascii_alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Whether the comma-separated header value contains `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token);

}  // namespace sb::http
