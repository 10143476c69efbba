// MessageParser: an llhttp wrapper that parses one HTTP/1.1 request head (from a
// client) or response head (from a backend) out of a buffer that grows as bytes
// arrive, and keeps headers as offsets into that buffer so it may reallocate.
//
// Strict by construction: llhttp runs with every leniency off, so conflicting
// Content-Length and Transfer-Encoding, invalid characters and malformed lines are
// errors; obsolete line folding and bare CR are rejected here as well.
//
// Owned by a session for the length of a handshake; single-threaded.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
        Complete,  // the head is complete; head_length() bytes of the buffer are the head
        Error,     // malformed; error() says why
    };

    explicit MessageParser(Kind kind);
    MessageParser(const MessageParser&) = delete;
    MessageParser& operator=(const MessageParser&) = delete;

    // Parses the bytes of `buffer` not seen by earlier calls. `buffer` must hold
    // everything given before, unchanged, followed by the new bytes.
    Status parse(std::string_view buffer);

    // After Complete: continues with body bytes of a response that is not an upgrade;
    // `ended` turns true once the message has ended (Content-Length met, last chunk).
    // Empty `bytes` means the backend closed. Body bytes are not stored. Returns false
    // with error() set on malformed bodies.
    bool consume_body(std::string_view bytes, bool& ended);
    // The body ends when the backend closes (no length and not chunked).
    bool body_ends_at_eof() const;

    const std::string& error() const { return error_; }
    size_t head_length() const { return head_length_; }

    // Request line.
    Span method() const { return method_; }
    Span target() const { return target_; }
    // Response status line.
    int status_code() const { return status_code_; }
    unsigned http_major() const { return major_; }
    unsigned http_minor() const { return minor_; }
    const std::vector<HeaderSpan>& headers() const { return headers_; }
    // Whether the head announces a body (Content-Length > 0 or chunked).
    bool has_body() const { return has_body_; }

  private:
    static int on_method(llhttp_t*, const char* at, size_t len);
    static int on_url(llhttp_t*, const char* at, size_t len);
    static int on_header_field(llhttp_t*, const char* at, size_t len);
    static int on_header_value(llhttp_t*, const char* at, size_t len);
    static int on_headers_complete(llhttp_t*);
    static int on_message_complete(llhttp_t*);
    void extend(Span& span, const char* at, size_t len);
    static const llhttp_settings_t* settings(Kind kind);

    llhttp_t parser_;
    const char* base_ = nullptr;  // start of the buffer during parse()
    size_t parsed_ = 0;           // bytes of the buffer already given to llhttp
    size_t head_length_ = 0;
    Span method_, target_;
    std::vector<HeaderSpan> headers_;
    bool in_value_ = false;
    bool head_done_ = false;
    bool message_done_ = false;
    bool has_body_ = false;
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
