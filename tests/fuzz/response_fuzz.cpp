// Fuzzer: a backend's answer to an upgrade, through what the session runs on it:
// http::MessageParser (Kind::Response) with its interim 1xx heads, then
// check_upgrade_response for a 101, or consume_body to follow any other answer's body
// to its end (an empty chunk meaning the backend closed).
//
// Proves, for any bytes a backend sends cut into any reads, with the buffer growing and
// moving between reads as the session's does:
//   - no crash, no bad access, no undefined behaviour, no exception;
//   - the heads found (each interim head, then the final one: where each begins and
//     ends, its status) and the verdict do not depend on how the bytes were cut, and
//     neither does what consume_body says of the body (where it ends, or that it is
//     malformed);
//   - each head lies inside the buffer, right after the one before, and every span the
//     parser reports lies inside its head; an interim head is a 1xx other than 101;
//   - a 101 check_upgrade_response accepts keeps the rules RFC 6455 §4.1 lists
//     (re-stated here), and websocket_accept gives RFC 6455's own example value;
//   - following a body never changes the head the parser described.
//
// Input: one byte N, N decision bytes (fuzz_util.h Choices), then the answer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "http/handshake.h"
#include "http/message_parser.h"
#include "http/upgrade_response.h"

namespace {

using sb::fuzz::Choices;
using sb::http::MessageParser;
using Verdict = MessageParser::Status;

// RFC 6455 §1.3: this key's accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=.
constexpr std::string_view kClientKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kExpectedAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct Head {
    size_t begin = 0;
    size_t end = 0;
    int status = 0;
    friend bool operator==(const Head&, const Head&) = default;
};

// What parsing an answer found, to compare the whole and the chunked runs.
struct Outcome {
    Verdict verdict = Verdict::NeedMore;
    std::vector<Head> heads;  // interim heads, then the final one when Complete
};

void check_head(const MessageParser& parser, std::string_view buffer, Outcome& out) {
    size_t buffer_size = buffer.size();
    SB_FUZZ_CHECK(parser.head_begin() < parser.head_end() && parser.head_end() <= buffer_size,
                  "head [%zu, %zu) in a buffer of %zu", parser.head_begin(), parser.head_end(),
                  buffer_size);
    size_t expected_begin = out.heads.empty() ? 0 : out.heads.back().end;
    SB_FUZZ_CHECK(parser.head_begin() == expected_begin, "head begins at %zu, not %zu",
                  parser.head_begin(), expected_begin);
    auto within = [&](sb::http::Span s) {
        return s.length == 0 || (s.offset >= parser.head_begin() &&
                                 size_t{s.offset} + s.length <= parser.head_end());
    };
    for (const auto& h : parser.headers())
        SB_FUZZ_CHECK(within(h.name) && within(h.value), "header span outside its head");
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [reason-phrase], and the
    // code is exactly three digits. Anything else is garbage, which SPEC §3 answers 502.
    int status = parser.status_code();
    if (!sb::fuzz::known_defect("status")) {
        std::string_view line = buffer.substr(parser.head_begin(), parser.head_length());
        line = line.substr(0, line.find('\r'));
        size_t sp = line.find(' ');
        bool three_digits = sp != std::string_view::npos && line.size() >= sp + 4 &&
                            (line.size() == sp + 4 || line[sp + 4] == ' ');
        int code = 0;
        for (size_t i = 1; three_digits && i <= 3; ++i) {
            char c = line[sp + i];
            three_digits = c >= '0' && c <= '9';
            code = code * 10 + (c - '0');
        }
        SB_FUZZ_CHECK(three_digits && code == status, "status line '%.*s' is taken as status %d",
                      static_cast<int>(line.size()), line.data(), status);
    }
    SB_FUZZ_CHECK(parser.is_interim() == (status >= 100 && status < 200 && status != 101));
    out.heads.push_back({parser.head_begin(), parser.head_end(), status});
}

// Parses what `buffer` holds so far, as the session does after each read: every interim
// head complete in it is passed on and the parser moves to the next head.
Verdict parse_heads(MessageParser& parser, std::string_view buffer, Outcome& out) {
    while (true) {
        Verdict v = parser.parse(buffer);
        if (v != Verdict::Complete) return v;
        check_head(parser, buffer, out);
        if (!parser.is_interim()) return v;
        parser.start_next();
    }
}

// Parses `bytes` in chunks into `buffer`, which moves to new memory of exactly its size
// at every read (the old one freed), so that ASan catches both a pointer kept into an old
// buffer and a read past the bytes received.
Outcome parse_in_chunks(MessageParser& parser, std::string_view bytes, Choices& choices,
                        std::vector<char>& buffer) {
    Outcome out;
    size_t fed = 0;
    while (fed < bytes.size()) {
        size_t n = sb::fuzz::chunk_size(choices, bytes.size() - fed);
        std::vector<char> grown(buffer.size() + n);
        std::copy(buffer.begin(), buffer.end(), grown.begin());
        std::copy_n(bytes.data() + fed, n, grown.begin() + static_cast<ptrdiff_t>(buffer.size()));
        buffer.swap(grown);
        fed += n;
        out.verdict = parse_heads(parser, {buffer.data(), buffer.size()}, out);
        if (out.verdict != Verdict::NeedMore) break;
    }
    return out;
}

// RFC 6455 §4.1 (the client's checks of a 101), re-stated: what every accepted 101 has.
void check_accepted_101(std::string_view buffer, const MessageParser& parser) {
    using sb::http::count_headers;
    using sb::http::find_header;
    const auto& headers = parser.headers();
    std::string_view value;
    SB_FUZZ_CHECK(parser.status_code() == 101);
    SB_FUZZ_CHECK(parser.http_major() == 1 && parser.http_minor() == 1);
    SB_FUZZ_CHECK(find_header(buffer, headers, "upgrade", value) &&
                  sb::http::iequals(value, "websocket"));
    SB_FUZZ_CHECK(count_headers(headers, buffer, "sec-websocket-accept") == 1);
    SB_FUZZ_CHECK(find_header(buffer, headers, "sec-websocket-accept", value) &&
                  value == kExpectedAccept);
    SB_FUZZ_CHECK(count_headers(headers, buffer, "transfer-encoding") == 0,
                  "a 101 with Transfer-Encoding is accepted");
}

struct BodyOutcome {
    bool ok = true;
    bool ended = false;
    friend bool operator==(const BodyOutcome&, const BodyOutcome&) = default;
};

// Follows the body in `rest` as the Pipe hands it over, in chunks, then reports the
// backend's close with an empty chunk, unless the body ended first.
BodyOutcome follow_body(MessageParser& parser, std::string_view rest, Choices* choices) {
    BodyOutcome out;
    size_t fed = 0;
    while (fed < rest.size() && !out.ended) {
        size_t n = choices ? sb::fuzz::chunk_size(*choices, rest.size() - fed) : rest.size();
        // Each chunk in memory of its own size, as a read block is to the parser.
        std::vector<char> chunk(rest.begin() + static_cast<ptrdiff_t>(fed),
                                rest.begin() + static_cast<ptrdiff_t>(fed + n));
        fed += n;
        if (!parser.consume_body({chunk.data(), chunk.size()}, out.ended)) {
            out.ok = false;
            return out;
        }
    }
    if (!out.ended) {
        out.ok = parser.consume_body({}, out.ended);
        // After the close, the message has ended one way or the other.
        if (out.ok) SB_FUZZ_CHECK(out.ended, "the body goes on after the backend closed");
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool accept_checked = [] {
        SB_FUZZ_CHECK(sb::http::websocket_accept(kClientKey) == kExpectedAccept,
                      "websocket_accept does not give RFC 6455's example value");
        return true;
    }();
    (void)accept_checked;

    auto input = sb::fuzz::split_input(data, size);
    Choices choices(input.choices, input.choices_size);
    std::string_view bytes(reinterpret_cast<const char*>(input.subject), input.subject_size);
    if (bytes.empty()) bytes = std::string_view("");  // a buffer is never a null pointer

    // The whole input as libFuzzer gives it: its memory ends where the bytes end.
    MessageParser whole(MessageParser::Kind::Response);
    Outcome whole_out;
    whole_out.verdict = parse_heads(whole, bytes, whole_out);

    MessageParser parser(MessageParser::Kind::Response);
    std::vector<char> storage;
    Outcome out = parse_in_chunks(parser, bytes, choices, storage);
    std::string_view buffer(storage.data(), storage.size());

    SB_FUZZ_CHECK(out.verdict == whole_out.verdict, "whole: %d, in chunks: %d (%s / %s)",
                  static_cast<int>(whole_out.verdict), static_cast<int>(out.verdict),
                  whole.error().c_str(), parser.error().c_str());
    SB_FUZZ_CHECK(out.heads == whole_out.heads, "whole: %zu heads, in chunks: %zu",
                  whole_out.heads.size(), out.heads.size());
    if (out.verdict != Verdict::Complete) return 0;
    SB_FUZZ_CHECK(buffer.substr(0, parser.head_end()) == bytes.substr(0, parser.head_end()));

    if (parser.status_code() == 101) {
        auto result = sb::http::check_upgrade_response(buffer, parser, kClientKey);
        auto again = sb::http::check_upgrade_response(bytes, whole, kClientKey);
        SB_FUZZ_CHECK(result.status == again.status);
        if (result.status == sb::http::Status::Ok) {
            check_accepted_101(buffer, parser);
        } else {
            SB_FUZZ_CHECK(result.status == sb::http::Status::BadGateway && !result.reason.empty());
        }
        return 0;
    }

    // Any other answer goes to the client with its body, which the session follows to
    // its end. What the parser said of the head must survive that.
    SB_FUZZ_CHECK(parser.has_body() == whole.has_body());
    SB_FUZZ_CHECK(parser.body_ends_at_eof() == whole.body_ends_at_eof());
    size_t header_count = parser.headers().size();
    int status = parser.status_code();
    std::string_view rest = bytes.substr(parser.head_end());
    BodyOutcome chunked = follow_body(parser, rest, &choices);
    BodyOutcome at_once = follow_body(whole, rest, nullptr);
    SB_FUZZ_CHECK(chunked == at_once, "body whole: ok=%d ended=%d, in chunks: ok=%d ended=%d",
                  at_once.ok, at_once.ended, chunked.ok, chunked.ended);
    // llhttp reports a chunked body's trailer fields as header callbacks; were they added
    // to headers(), their spans would point into a body chunk long gone.
    if (!sb::fuzz::known_defect("trailers")) {
        SB_FUZZ_CHECK(parser.headers().size() == header_count && parser.status_code() == status,
                      "following the body changed the head: %zu headers, then %zu", header_count,
                      parser.headers().size());
    }
    return 0;
}
