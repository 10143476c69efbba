// ChunkedScanner: switchboard's own reading of a chunked body (RFC 9112 §7.1), run by
// MessageParser::consume_body next to llhttp, for the rules llhttp 8.1 does not keep.
// llhttp 8.1, even built with LLHTTP_STRICT_MODE, takes a bare LF as the empty line
// that ends a chunked body, obs-fold in trailers, chunk sizes up to 2^64, an empty
// chunk-ext name or value and extensions of any length (without the strict define it
// also skips any two bytes after chunk data). A proxy more lenient than the server
// behind it is a request-smuggling vector, so SPEC §3 has:
//   - every chunk-size line, the CRLF after each chunk's data, the last-chunk line,
//     each trailer line and the final empty line end in CRLF exactly: a bare LF or a
//     bare CR is an error (RFC 9112 §2.2, §7.1);
//   - chunk-size is 1*HEXDIG (RFC 9112 §7.1) and below 2^63, so that it never
//     overflows anyone's signed 64-bit length;
//   - chunk extensions follow RFC 9112 §7.1.1's grammar and take at most 4 KiB per
//     chunk line (SPEC §3; the RFC leaves the limit to the recipient);
//   - trailer fields are field-name ":" field-value lines, no obs-fold (RFC 9112 §7.1.2,
//     §5.1, §5.2).
//
// Incremental: it keeps where in the framing the stream is, so bytes may come split at
// any point, one at a time included. Only chunk lines and trailers are looked at byte by
// byte; a chunk's data is skipped by its length, never scanned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sb::http {

class ChunkedScanner {
  public:
    enum class Result {
        NeedMore,  // every byte given belongs to the body, which has not ended
        Ended,     // the body ended; `used` says after how many of the bytes
        Error,     // malformed at byte `used`; error() says why. Sticky
    };

    // Most bytes of extensions one chunk line may carry (SPEC §3).
    static constexpr size_t kMaxExtension = 4096;

    // Scans the next bytes of the body. `used` is set to the number of bytes that
    // belong to the body (NeedMore: all of them; Ended: up to and including the final
    // LF) or to the offset of the offending byte (Error).
    Result scan(std::string_view bytes, size_t& used);

    const char* error() const { return error_; }
    bool ended() const { return state_ == State::Done; }

  private:
    enum class State : uint8_t {
        SizeFirst,      // the first HEXDIG of a chunk-size
        Size,           // more HEXDIGs, BWS, ";" or CR
        ExtBws,         // BWS before ";" (RFC 9112 §7.1.1)
        ExtNameFirst,   // BWS, then the first tchar of chunk-ext-name
        ExtName,        // more tchar, BWS, "=", ";" or CR
        ExtAfterName,   // BWS after a name: "=", ";" or CR
        ExtValueFirst,  // BWS, then a token or a quoted-string
        ExtValueToken,  // more tchar, BWS, ";" or CR
        ExtQuoted,      // inside a quoted-string
        ExtQuotedPair,  // after "\" in a quoted-string
        ExtQuotedEnd,   // right after a quoted-string: BWS, ";" or CR
        SizeLineLf,     // CR seen at the end of a chunk-size line: LF must follow
        Data,           // chunk-data: remaining_ more bytes, skipped by length
        DataCr,         // the CR after chunk-data
        DataLf,         // the LF after chunk-data
        TrailerFirst,   // a trailer field-name, or CR of the empty line ending the body
        TrailerName,    // more tchar or ":"
        TrailerValue,   // field-value bytes up to CR
        TrailerLf,      // CR seen at the end of a trailer line: LF must follow
        FinalLf,        // CR of the final empty line seen: LF ends the body
        Done,
        Failed,
    };

    Result fail(const char* why, size_t at, size_t& used);

    State state_ = State::SizeFirst;
    bool last_chunk_ = false;  // the chunk-size read so far is zero
    uint64_t size_ = 0;        // the chunk-size being read
    uint64_t remaining_ = 0;   // chunk-data bytes still to skip
    size_t extension_ = 0;     // bytes after chunk-size on this chunk line
    const char* error_ = nullptr;
};

}  // namespace sb::http
