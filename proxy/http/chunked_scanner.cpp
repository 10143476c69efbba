#include "http/chunked_scanner.h"

#include <array>

namespace sb::http {

namespace {

// RFC 9112 §7.1: chunk-size below 2^63, so that no signed 64-bit length overflows.
constexpr uint64_t kMaxSize = 0x7FFF'FFFF'FFFF'FFFFull;

// Character classes, one table lookup per byte of a chunk line.
enum : uint8_t {
    kTchar = 1,   // RFC 9110 §5.6.2 tchar
    kQdtext = 2,  // RFC 9110 §5.6.4 qdtext
    kVchar = 4,   // VCHAR and obs-text: field-vchar (RFC 9110 §5.5), quoted-pair
};

constexpr std::array<uint8_t, 256> kClasses = [] {
    std::array<uint8_t, 256> t{};
    for (int c = 0x21; c <= 0xFF; ++c) {
        if (c == 0x7F) continue;
        t[c] = kVchar;
        if (c != '"' && c != '\\') t[c] |= kQdtext;
    }
    t[' '] |= kQdtext;
    t['\t'] |= kQdtext;
    for (int c = '0'; c <= '9'; ++c)
        t[c] |= kTchar;
    for (int c = 'a'; c <= 'z'; ++c)
        t[c] |= kTchar;
    for (int c = 'A'; c <= 'Z'; ++c)
        t[c] |= kTchar;
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t[static_cast<unsigned char>(c)] |= kTchar;
    return t;
}();

bool is(unsigned char c, uint8_t cls) {
    return (kClasses[c] & cls) != 0;
}

bool is_ws(unsigned char c) {
    return c == ' ' || c == '\t';
}

int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

constexpr const char* kBareLf = "bare LF in chunked framing (lines must end in CRLF)";

}  // namespace

ChunkedScanner::Result ChunkedScanner::fail(const char* why, size_t at, size_t& used) {
    state_ = State::Failed;
    error_ = why;
    used = at;
    return Result::Error;
}

ChunkedScanner::Result ChunkedScanner::scan(std::string_view bytes, size_t& used) {
    used = 0;
    if (state_ == State::Failed) return Result::Error;
    if (state_ == State::Done) return Result::Ended;
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        if (state_ == State::Data) {
            // The data of a chunk is skipped by its length, never looked at.
            uint64_t left = n - i;
            uint64_t skip = remaining_ < left ? remaining_ : left;
            i += static_cast<size_t>(skip);
            remaining_ -= skip;
            if (remaining_ == 0) state_ = State::DataCr;
            continue;
        }
        const auto c = static_cast<unsigned char>(bytes[i]);
        switch (state_) {
            case State::SizeFirst: {
                // RFC 9112 §7.1: chunk-size = 1*HEXDIG.
                int d = hex_value(c);
                if (d < 0) {
                    return fail(c == '\n' ? kBareLf : "chunk size is not a hex number", i, used);
                }
                size_ = static_cast<uint64_t>(d);
                extension_ = 0;
                state_ = State::Size;
                break;
            }
            case State::Size: {
                int d = hex_value(c);
                if (d >= 0) {
                    if (size_ > (kMaxSize - static_cast<uint64_t>(d)) / 16) {
                        return fail("chunk size over 2^63", i, used);
                    }
                    size_ = size_ * 16 + static_cast<uint64_t>(d);
                } else if (c == '\r') {
                    state_ = State::SizeLineLf;
                } else if (c == ';') {
                    state_ = State::ExtNameFirst;
                } else if (is_ws(c)) {
                    state_ = State::ExtBws;
                } else {
                    return fail(c == '\n' ? kBareLf : "invalid character in chunk size", i, used);
                }
                break;
            }
            // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
            //                                  [ BWS "=" BWS chunk-ext-val ] )
            // BWS comes only before ";" and around "=": whitespace before the CR is not
            // in the grammar, and is refused.
            case State::ExtBws:
                if (c == ';') {
                    state_ = State::ExtNameFirst;
                } else if (!is_ws(c)) {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension", i, used);
                }
                break;
            case State::ExtNameFirst:
                if (is(c, kTchar)) {
                    state_ = State::ExtName;
                } else if (!is_ws(c)) {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension name", i, used);
                }
                break;
            case State::ExtName:
                if (c == '\r') {
                    state_ = State::SizeLineLf;
                } else if (c == '=') {
                    state_ = State::ExtValueFirst;
                } else if (c == ';') {
                    state_ = State::ExtNameFirst;
                } else if (is_ws(c)) {
                    state_ = State::ExtAfterName;
                } else if (!is(c, kTchar)) {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension name", i, used);
                }
                break;
            case State::ExtAfterName:
                if (c == '=') {
                    state_ = State::ExtValueFirst;
                } else if (c == ';') {
                    state_ = State::ExtNameFirst;
                } else if (!is_ws(c)) {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension", i, used);
                }
                break;
            case State::ExtValueFirst:
                // chunk-ext-val = token / quoted-string
                if (c == '"') {
                    state_ = State::ExtQuoted;
                } else if (is(c, kTchar)) {
                    state_ = State::ExtValueToken;
                } else if (!is_ws(c)) {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension value", i, used);
                }
                break;
            case State::ExtValueToken:
                if (c == '\r') {
                    state_ = State::SizeLineLf;
                } else if (c == ';') {
                    state_ = State::ExtNameFirst;
                } else if (is_ws(c)) {
                    state_ = State::ExtBws;
                } else if (!is(c, kTchar)) {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension value", i, used);
                }
                break;
            case State::ExtQuoted:
                // RFC 9110 §5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
                if (c == '"') {
                    state_ = State::ExtQuotedEnd;
                } else if (c == '\\') {
                    state_ = State::ExtQuotedPair;
                } else if (!is(c, kQdtext)) {
                    return fail(c == '\n' ? kBareLf : "invalid character in quoted chunk extension",
                                i, used);
                }
                break;
            case State::ExtQuotedPair:
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                if (!is_ws(c) && !is(c, kVchar)) {
                    return fail(c == '\n' ? kBareLf : "invalid character in quoted chunk extension",
                                i, used);
                }
                state_ = State::ExtQuoted;
                break;
            case State::ExtQuotedEnd:
                if (c == '\r') {
                    state_ = State::SizeLineLf;
                } else if (c == ';') {
                    state_ = State::ExtNameFirst;
                } else if (is_ws(c)) {
                    state_ = State::ExtBws;
                } else {
                    return fail(c == '\n' ? kBareLf : "invalid chunk extension", i, used);
                }
                break;
            case State::SizeLineLf:
                // RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF, and last-chunk likewise.
                if (c != '\n') return fail("bare CR in chunk line", i, used);
                if (size_ == 0) {
                    state_ = State::TrailerFirst;
                } else {
                    remaining_ = size_;
                    state_ = State::Data;
                }
                break;
            case State::DataCr:
                // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                if (c != '\r') {
                    return fail(c == '\n' ? kBareLf : "chunk data not followed by CRLF", i, used);
                }
                state_ = State::DataLf;
                break;
            case State::DataLf:
                if (c != '\n') return fail("bare CR after chunk data", i, used);
                state_ = State::SizeFirst;
                break;
            case State::TrailerFirst:
                // RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), then CRLF.
                if (c == '\r') {
                    state_ = State::FinalLf;
                } else if (is(c, kTchar)) {
                    state_ = State::TrailerName;
                } else if (is_ws(c)) {
                    // RFC 9112 §5.2: obs-fold is refused, in trailers as in heads.
                    return fail("obsolete line folding in trailer", i, used);
                } else {
                    return fail(c == '\n' ? kBareLf : "invalid character in trailer field name", i,
                                used);
                }
                break;
            case State::TrailerName:
                // RFC 9112 §5.1: field-name ":" — no whitespace before the colon.
                if (c == ':') {
                    state_ = State::TrailerValue;
                } else if (!is(c, kTchar)) {
                    return fail(c == '\n' ? kBareLf : "invalid character in trailer field name", i,
                                used);
                }
                break;
            case State::TrailerValue:
                // RFC 9110 §5.5: field-value is field-vchar, SP and HTAB only.
                if (c == '\r') {
                    state_ = State::TrailerLf;
                } else if (!is_ws(c) && !is(c, kVchar)) {
                    return fail(c == '\n' ? kBareLf : "invalid character in trailer field value", i,
                                used);
                }
                break;
            case State::TrailerLf:
                if (c != '\n') return fail("bare CR in trailer", i, used);
                state_ = State::TrailerFirst;
                break;
            case State::FinalLf:
                if (c != '\n') return fail("bare CR ending the chunked body", i, used);
                state_ = State::Done;
                used = i + 1;
                return Result::Ended;
            case State::Data:
            case State::Done:
            case State::Failed:
                break;  // handled above
        }
        // Every byte of a chunk line after its chunk-size, up to its CR, counts against
        // the extension limit (SPEC §3). Counted after the switch: the byte that ends
        // the chunk-size (";" or BWS) is the first one of the extensions.
        bool extension_byte = state_ >= State::ExtBws && state_ <= State::ExtQuotedEnd;
        if (extension_byte && ++extension_ > kMaxExtension) {
            return fail("chunk extension over 4 KiB", i, used);
        }
        ++i;
    }
    used = n;
    return Result::NeedMore;
}

}  // namespace sb::http
