#include "http/message_parser.h"

#include <cctype>

#include <algorithm>
#include <array>
#include <cassert>

namespace sb::http {

namespace {

// SPEC §3: the largest Content-Length taken, 2^63 - 1.
constexpr uint64_t kMaxLength = 0x7FFF'FFFF'FFFF'FFFFull;

MessageParser* self(llhttp_t* p) {
    return static_cast<MessageParser*>(p->data);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// RFC 9110 tchar: the only characters a header name may hold. A table, since every
// character of every header name of every upgrade is checked.
constexpr std::array<bool, 256> kTokenChars = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[c] = ascii_alnum(static_cast<char>(c));
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}();

bool is_token_char(char c) {
    return kTokenChars[static_cast<unsigned char>(c)];
}

}  // namespace

const llhttp_settings_t* MessageParser::settings(Kind kind) {
    // llhttp keeps a pointer to its settings: one static table per kind serves every
    // parser instead of 160 bytes in each.
    static const auto make = [](Kind k) {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_header_field = &MessageParser::on_header_field;
        s.on_header_value = &MessageParser::on_header_value;
        s.on_headers_complete = &MessageParser::on_headers_complete;
        s.on_message_complete = &MessageParser::on_message_complete;
        s.on_body = &MessageParser::on_body;
        if (k == Kind::Request) {
            s.on_method = &MessageParser::on_method;
            s.on_url = &MessageParser::on_url;
        }
        return s;
    };
    static const llhttp_settings_t request = make(Kind::Request);
    static const llhttp_settings_t response = make(Kind::Response);
    return kind == Kind::Request ? &request : &response;
}

MessageParser::MessageParser(Kind kind) : kind_(kind) {
    llhttp_init(&parser_, kind == Kind::Request ? HTTP_REQUEST : HTTP_RESPONSE, settings(kind));
    parser_.data = this;
}

bool MessageParser::is_interim() const {
    return kind_ == Kind::Response && head_done_ && status_code_ >= 100 && status_code_ < 200 &&
           status_code_ != 101;
}

void MessageParser::start_next() {
    assert(is_interim() && error_.empty());
    if (!is_interim() || !error_.empty()) return;
    head_begin_ = head_end_;
    parsed_ = head_end_;
    method_ = {};
    target_ = {};
    headers_.clear();
    in_value_ = false;
    head_done_ = false;
    message_done_ = false;
    has_body_ = false;
    chunked_ = false;
    keep_alive_ = false;
    content_length_ = -1;
    length_over_limit_ = false;
    chunks_ = ChunkedScanner();
    status_code_ = 0;
    major_ = minor_ = 0;
    // A fresh llhttp rather than its own message chaining: llhttp would take the
    // interim head's Content-Length (which a 1xx must not have) as a body to skip, and
    // would refuse a next message after "Connection: close". The next head stands alone.
    llhttp_init(&parser_, HTTP_RESPONSE, settings(kind_));
    parser_.data = this;
}

void MessageParser::extend(Span& span, const char* at, size_t len) {
    // llhttp may deliver one field in several pieces; they are contiguous in the buffer.
    auto offset = static_cast<uint32_t>(at - base_);
    if (span.length == 0) span.offset = offset;
    span.length = offset + static_cast<uint32_t>(len) - span.offset;
}

int MessageParser::on_method(llhttp_t* p, const char* at, size_t len) {
    self(p)->extend(self(p)->method_, at, len);
    return 0;
}

int MessageParser::on_url(llhttp_t* p, const char* at, size_t len) {
    self(p)->extend(self(p)->target_, at, len);
    return 0;
}

int MessageParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
    auto* s = self(p);
    // Trailer fields of a chunked body come through here too, from the body's bytes:
    // they are not the head's headers (their offsets would point into a chunk).
    if (s->head_done_) return 0;
    if (s->headers_.empty() || s->in_value_) {
        s->headers_.emplace_back();
        s->in_value_ = false;
    }
    s->extend(s->headers_.back().name, at, len);
    return 0;
}

int MessageParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
    auto* s = self(p);
    if (s->head_done_) return 0;
    s->in_value_ = true;
    s->extend(s->headers_.back().value, at, len);
    return 0;
}

int MessageParser::on_headers_complete(llhttp_t* p) {
    auto* s = self(p);
    s->head_done_ = true;
    s->status_code_ = p->status_code;
    s->major_ = p->http_major;
    s->minor_ = p->http_minor;
    s->chunked_ = (p->flags & F_CHUNKED) != 0;
    s->has_body_ = s->chunked_ || ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > 0);
    s->length_over_limit_ = (p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > kMaxLength;
    // RFC 9110 §6.4.1: a 1xx, 204 or 304 answer has no content, whatever its framing
    // headers say. F_SKIPBODY is what llhttp sets for a callback that returns 1 ("no
    // body"), which a callback that pauses cannot return.
    s->content_length_ =
        (p->flags & F_CONTENT_LENGTH) != 0 ? static_cast<int64_t>(p->content_length) : -1;
    // A response to HEAD has none either (RFC 9112 §6.3 (1)).
    if (s->kind_ == Kind::Response && (s->no_body_expected_ || p->status_code / 100 == 1 ||
                                       p->status_code == 204 || p->status_code == 304)) {
        p->flags |= F_SKIPBODY;
        s->has_body_ = false;
    }
    // After F_SKIPBODY: a 204 without a length does not end at EOF.
    s->keep_alive_ = llhttp_should_keep_alive(p) != 0;
    // Pause so that execute() stops exactly at the end of the head: what follows is a
    // body, WebSocket frames, or nothing, and the session decides what to do with it.
    return HPE_PAUSED;
}

int MessageParser::on_body(llhttp_t* p, const char*, size_t len) {
    self(p)->body_bytes_ += len;
    return 0;
}

int MessageParser::on_message_complete(llhttp_t* p) {
    self(p)->message_done_ = true;
    return HPE_PAUSED;
}

MessageParser::Status MessageParser::parse(std::string_view buffer) {
    // A head rejected by the checks below stays rejected, as llhttp's own errors do.
    if (!error_.empty()) return Status::Error;
    if (head_done_) return Status::Complete;
    base_ = buffer.data();
    const char* start = buffer.data() + parsed_;
    size_t len = buffer.size() - parsed_;
    // Nothing new: llhttp must not see an empty (possibly null) buffer.
    if (len == 0) return Status::NeedMore;
    llhttp_errno_t rc = llhttp_execute(&parser_, start, len);
    if (rc == HPE_OK) {
        parsed_ = buffer.size();
        return Status::NeedMore;
    }
    if (rc == HPE_PAUSED && head_done_) {
        head_end_ = static_cast<size_t>(llhttp_get_error_pos(&parser_) - buffer.data());
        parsed_ = head_end_;
        llhttp_resume(&parser_);
        return check_head(buffer) ? Status::Complete : Status::Error;
    }
    error_ = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_)
                                               : llhttp_errno_name(rc);
    return Status::Error;
}

bool MessageParser::check_head(std::string_view buffer) {
    // (find is memchr: a few instructions per 16 bytes, not a loop per byte.)
    std::string_view head = buffer.substr(head_begin_, head_end_ - head_begin_);
    // RFC 9112 §4: status-code is exactly three digits, then a space (llhttp takes
    // "HTTP/1.1 20 OK", "0200" and an empty code).
    if (kind_ == Kind::Response) {
        // Up to the line's end, bare LF included: that is refused below, by its own name.
        std::string_view line = head.substr(0, head.find_first_of("\r\n"));
        size_t sp = line.find(' ');
        std::string_view rest = sp == line.npos ? std::string_view() : line.substr(sp + 1);
        bool three_digits = rest.size() >= 3 && std::isdigit(static_cast<unsigned char>(rest[0])) &&
                            std::isdigit(static_cast<unsigned char>(rest[1])) &&
                            std::isdigit(static_cast<unsigned char>(rest[2])) &&
                            (rest.size() == 3 || rest[3] == ' ');
        if (!three_digits) {
            error_ = "status code is not three digits";
            return false;
        }
        // RFC 9110 §15: codes outside 100..599 are invalid; llhttp frames a 003's body
        // as a 200's.
        if (status_code_ < 100 || status_code_ > 599) {
            error_ = "status code outside 100..599";
            return false;
        }
        // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ). llhttp takes
        // control characters there, which a client would get passed on.
        for (char c : rest.substr(3)) {
            auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7F) {
                error_ = "invalid character in reason phrase";
                return false;
            }
        }
    }
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version, one SP
    // each. llhttp takes runs of spaces, which §3 warns the next recipient may split
    // into words differently.
    if (kind_ == Kind::Request) {
        std::string_view line = buffer.substr(method_.offset);
        line = line.substr(0, line.find_first_of("\r\n"));
        size_t target = size_t{method_.length} + 1;
        if (method_.length == 0 || target_.offset != method_.offset + target ||
            line.size() != target + target_.length + 9 || line[method_.length] != ' ' ||
            line[target + target_.length] != ' ') {
            error_ = "request line is not method SP target SP version";
            return false;
        }
    }
    for (size_t i = head.find('\r'); i != head.npos; i = head.find('\r', i + 1)) {
        if (i + 1 == head.size() || head[i + 1] != '\n') {
            error_ = "bare CR in message head";
            return false;
        }
    }
    for (size_t i = head.find('\n'); i != head.npos; i = head.find('\n', i + 1)) {
        if (i == 0 || head[i - 1] != '\r') {
            error_ = "bare LF in message head (lines must end in CRLF)";
            return false;
        }
        if (i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t')) {
            error_ = "obsolete line folding in header";
            return false;
        }
    }
    // RFC 9112 §2.3, §3: a request-line ends in an HTTP-version, and switchboard speaks
    // HTTP/1.x only. llhttp takes a request-line without one as HTTP/0.9 (whose message
    // framing is not HTTP/1.1's) and versions such as 2.0 in HTTP/1.1 syntax.
    if (major_ != 1) {
        error_ = "HTTP version is not 1.x";
        return false;
    }
    // SPEC §3: a length must fit a signed 64-bit integer, as a chunk size must
    // (chunked_scanner.h); llhttp takes anything below 2^64.
    if (length_over_limit_) {
        error_ = "Content-Length over 2^63";
        return false;
    }
    // llhttp 8 lets spaces into header names ("Host : a"), which RFC 9112 §5.1
    // requires a server to reject.
    bool has_transfer_encoding = false;
    for (const auto& h : headers_) {
        auto name = h.name.in(buffer);
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
            error_ = "invalid character in header name";
            return false;
        }
        has_transfer_encoding = has_transfer_encoding || iequals(name, "transfer-encoding");
    }
    return !has_transfer_encoding || check_transfer_encoding(buffer);
}

bool MessageParser::check_transfer_encoding(std::string_view buffer) {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    if (major_ == 1 && minor_ == 0) {
        error_ = "Transfer-Encoding in an HTTP/1.0 message";
        return false;
    }
    // All Transfer-Encoding fields form one list (RFC 9110 §5.3). Empty elements are
    // refused rather than skipped, so that no parser behind us can read the list
    // differently; so is a coding after chunked or chunked twice.
    size_t codings = 0;
    bool chunked_last = false;
    for (const auto& h : headers_) {
        if (!iequals(h.name.in(buffer), "transfer-encoding")) continue;
        std::string_view list = h.value.in(buffer);
        while (true) {
            auto comma = list.find(',');
            auto coding = trim(list.substr(0, comma));
            if (coding.empty()) {
                error_ = "empty Transfer-Encoding or empty element in it";
                return false;
            }
            if (chunked_last) {
                error_ = "Transfer-Encoding has a coding after chunked";
                return false;
            }
            chunked_last = iequals(coding, "chunked");
            ++codings;
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
    }
    // RFC 9112 §6.3 (4): without chunked last, a request's length cannot be known (a
    // server MUST answer 400); SPEC §3 refuses such a response too (502).
    if (!chunked_last || codings == 0) {
        error_ = "Transfer-Encoding does not end in chunked";
        return false;
    }
    // Our reading and llhttp's must agree, or the body would be framed two ways.
    if (!chunked_) {
        error_ = "Transfer-Encoding not understood";
        return false;
    }
    return true;
}

bool MessageParser::consume_body(std::string_view bytes, bool& ended, size_t* used) {
    if (used != nullptr) *used = 0;
    ended = message_done_;
    if (ended) return true;
    if (!error_.empty()) return false;
    // A message without a body has ended with its head, and EOF ends a close-delimited
    // one; llhttp only says so once it has seen a byte after the head, and calls an EOF
    // right after it an invalid state.
    // (has_body() is false for a close-delimited body: it has no length to wait for.)
    if (bytes.empty() && !has_body_) {
        message_done_ = true;
        ended = true;
        return true;
    }
    // Our own reading of a chunked body goes first: it stops at the offending byte, or
    // at the body's end, which llhttp must then agree on.
    std::string_view feed = bytes;
    bool scanned_end = false;
    if (chunked_ && has_body_ && !bytes.empty()) {
        size_t scanned = 0;
        switch (chunks_.scan(bytes, scanned)) {
            case ChunkedScanner::Result::Error:
                error_ = chunks_.error();
                return false;
            case ChunkedScanner::Result::Ended:
                feed = bytes.substr(0, scanned);
                scanned_end = true;
                break;
            case ChunkedScanner::Result::NeedMore:
                break;
        }
    }
    base_ = feed.data();
    llhttp_errno_t rc =
        feed.empty() ? llhttp_finish(&parser_) : llhttp_execute(&parser_, feed.data(), feed.size());
    if (rc != HPE_OK && !(rc == HPE_PAUSED && message_done_)) {
        error_ = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_)
                                                   : llhttp_errno_name(rc);
        return false;
    }
    // Paused at the message's end: llhttp says where it stopped.
    size_t stop = feed.size();
    if (rc == HPE_PAUSED) {
        const char* at = llhttp_get_error_pos(&parser_);
        if (at != nullptr && at >= feed.data() && at <= feed.data() + feed.size())
            stop = static_cast<size_t>(at - feed.data());
    }
    // Two readings of one chunked body that end apart would frame it two ways; never
    // seen, since both follow RFC 9112 §7.1, but refused rather than trusted.
    if (chunked_ && has_body_ && (scanned_end != message_done_ || stop != feed.size())) {
        error_ = "chunked body framed differently by llhttp";
        return false;
    }
    ended = message_done_;
    if (used != nullptr) *used = stop;
    return true;
}

bool MessageParser::body_ends_at_eof() const {
    return llhttp_message_needs_eof(&parser_) != 0;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

bool find_header(std::string_view buffer, const std::vector<HeaderSpan>& headers,
                 std::string_view name, std::string_view& value) {
    for (const auto& h : headers) {
        if (iequals(h.name.in(buffer), name)) {
            value = trim(h.value.in(buffer));
            return true;
        }
    }
    return false;
}

size_t count_headers(const std::vector<HeaderSpan>& headers, std::string_view buffer,
                     std::string_view name) {
    size_t n = 0;
    for (const auto& h : headers)
        n += iequals(h.name.in(buffer), name) ? 1 : 0;
    return n;
}

bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto item = trim(list.substr(0, comma));
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace sb::http
