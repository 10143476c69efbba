// Differential fuzzer: a stream of pipelined HTTP/1.1 requests (or, when the stream
// starts with "HTTP/", responses) framed two ways, by http::MessageParser driven
// exactly as the session drives it, and by reference_framer.h, written from RFC 9112.
//
// The session's way: one MessageParser per message; parse() over a head buffer that
// grows (and moves) with each read until Complete; then the bytes after head_end()
// and every later read go through consume_body(bytes, ended, &used) until `ended`, an
// empty read meaning EOF; the bytes after `used` start the next message. Reads are cut
// by the fuzzer (fuzz_util.h Choices), one byte at a time included.
//
// Proves, for any stream and any cuts:
//   - no crash, no bad access, no undefined behaviour; `used` never exceeds a read and
//     is all of it until the message ends;
//   - where both accept a message, it begins, has its head end and ends at the same
//     offsets, and whether it has a body or one that ends at EOF agrees;
//   - where the reference finds the framing invalid, MessageParser refuses the same
//     message (never accepts it, never frames it some other way);
//   - where MessageParser refuses a message the reference accepts, it is one of the
//     divergences allowed below, each for a named reason.
//
// Allowed divergences (MessageParser refuses more, which fails closed: 400 or 502):
//   - head rules: llhttp refuses methods, targets, versions and header values the
//     reference reads loosely, and check_head refuses an empty Transfer-Encoding list
//     element that RFC 9110 §5.6.1 would skip, and framing headers on a 1xx, 204 or 304
//     that the reference ignores (RFC 9112 §6.3 (1)). None of this moves where a
//     message ends; a head MessageParser refuses is never forwarded.
//   - head rules checked late: MessageParser checks CRLF, obs-fold and header names when
//     the head is complete; the reference refuses the first bad byte at once. A head
//     the reference refuses may therefore still be NeedMore for MessageParser.
//   - chunk extensions RFC 9112 §7.1.1 allows but llhttp 8.1 refuses (BWS, quoted-pair,
//     obs-text in a quoted value, a parameter after a token value): the reference
//     marks them (extension_llhttp_refuses).
//   - a trailer field named Transfer-Encoding or Content-Length: llhttp checks it as a
//     header field and refuses some values. RFC 9110 §6.5.1 does not allow framing
//     fields in trailers, so refusing them is safe (framing_field_in_trailers).
// Comparison stops after a request that upgrades or is a CONNECT, and after a 101: what
// follows is not HTTP.
//
// Input: one byte N, N decision bytes (fuzz_util.h Choices), then the stream.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "http/message_parser.h"
#include "reference_framer.h"

namespace {

using sb::fuzz::Choices;
using sb::fuzz::Framing;
using sb::fuzz::ReferenceResult;
using sb::http::MessageParser;
using End = ReferenceResult::End;

struct Message {
    size_t begin = 0;
    size_t head_length = 0;
    size_t total_length = 0;
    bool has_body = false;
    bool ends_at_eof = false;
};

struct Outcome {
    std::vector<Message> messages;
    End end = End::Clean;
    bool in_head = false;
    std::string error;
};

// Whether the head just parsed ends HTTP on the connection, as the reference decides
// it: CONNECT, a 101, or an Upgrade field with "upgrade" in any Connection field (all
// Connection fields form one list, RFC 9110 §5.3).
bool switches_protocol(const MessageParser& p, std::string_view buffer, bool responses) {
    if (responses) return p.status_code() == 101;
    if (p.method().in(buffer) == "CONNECT") return true;
    bool upgrade = false, connection_upgrade = false;
    for (const auto& h : p.headers()) {
        std::string_view name = h.name.in(buffer);
        upgrade = upgrade || sb::http::iequals(name, "upgrade");
        connection_upgrade =
            connection_upgrade || (sb::http::iequals(name, "connection") &&
                                   sb::http::has_token(h.value.in(buffer), "upgrade"));
    }
    return upgrade && connection_upgrade;
}

Outcome drive(std::string_view stream, bool responses, Choices& choices) {
    Outcome out;
    const size_t n = stream.size();
    size_t pos = 0;        // where the current message begins
    size_t delivered = 0;  // how much of the stream has been read
    auto read = [&]() {
        size_t k = sb::fuzz::chunk_size(choices, n - delivered);
        std::string_view piece = stream.substr(delivered, k);
        delivered += k;
        return piece;
    };
    while (pos < n) {
        MessageParser p(responses ? MessageParser::Kind::Response : MessageParser::Kind::Request);
        std::string buffer(stream.substr(pos, delivered - pos));
        auto status = buffer.empty() ? MessageParser::Status::NeedMore : p.parse(buffer);
        while (status == MessageParser::Status::NeedMore) {
            if (delivered == n) {
                out.end = End::Incomplete;
                out.in_head = true;
                return out;
            }
            // A new string on every read: the buffer moves, as a session's may.
            std::string grown = buffer;
            grown += read();
            buffer = std::move(grown);
            status = p.parse(buffer);
        }
        if (status == MessageParser::Status::Error) {
            out.end = End::Invalid;
            out.in_head = true;
            out.error = p.error();
            return out;
        }
        Message m;
        m.begin = pos;
        m.head_length = p.head_end();
        SB_FUZZ_CHECK(p.head_begin() == 0 && m.head_length <= buffer.size());
        m.has_body = p.has_body();
        m.ends_at_eof = p.body_ends_at_eof();
        if (switches_protocol(p, buffer, responses)) {
            m.total_length = m.head_length;
            out.messages.push_back(m);
            return out;
        }
        size_t at = pos + m.head_length;  // the next byte not yet taken by a message
        bool ended = false;
        while (!ended) {
            // A copy per read: nothing may point into bytes given before.
            std::string piece(at < delivered ? stream.substr(at, delivered - at) : read());
            bool eof = piece.empty();
            size_t used = 0;
            if (!p.consume_body(piece, ended, &used)) {
                // EOF inside a body is an error to MessageParser (a truncated message);
                // to the reference, the stream ended in a message that is valid so far.
                out.end = eof ? End::Incomplete : End::Invalid;
                out.error = p.error();
                return out;
            }
            SB_FUZZ_CHECK(used <= piece.size(), "used %zu of %zu", used, piece.size());
            SB_FUZZ_CHECK(ended || used == piece.size(), "used %zu of %zu before the end", used,
                          piece.size());
            at += used;
            if (eof && !ended) {
                out.end = End::Incomplete;
                return out;
            }
        }
        m.total_length = at - pos;
        out.messages.push_back(m);
        pos = at;
        if (m.ends_at_eof) break;
    }
    return out;
}

const char* name(End end) {
    switch (end) {
        case End::Clean:
            return "clean";
        case End::Incomplete:
            return "incomplete";
        case End::Invalid:
            return "invalid";
    }
    return "?";
}

// A body MessageParser may refuse although the reference reads it: see the list of
// divergences allowed at the top.
bool refused_for_a_named_reason(const sb::fuzz::ReferenceMessage& m) {
    return m.extension_llhttp_refuses || m.framing_field_in_trailers;
}

void compare(const Outcome& mp, const ReferenceResult& ref) {
    size_t common = std::min(mp.messages.size(), ref.messages.size());
    for (size_t i = 0; i < common; ++i) {
        const Message& a = mp.messages[i];
        const auto& b = ref.messages[i];
        SB_FUZZ_CHECK(a.begin == b.begin && a.head_length == b.head_length,
                      "message %zu: head [%zu +%zu) here, [%zu +%zu) by the reference", i, a.begin,
                      a.head_length, b.begin, b.head_length);
        if (b.switches_protocol) break;
        SB_FUZZ_CHECK(a.total_length == b.total_length,
                      "message %zu at %zu: %zu bytes here, %zu by the reference", i, a.begin,
                      a.total_length, b.total_length);
        bool body = b.framing == Framing::Chunked ||
                    (b.framing == Framing::ContentLength && b.content_length > 0);
        SB_FUZZ_CHECK(a.has_body == body, "message %zu: has_body %d, reference framing %d", i,
                      a.has_body, static_cast<int>(b.framing));
        SB_FUZZ_CHECK(a.ends_at_eof == (b.framing == Framing::UntilClose),
                      "message %zu: ends_at_eof %d, reference framing %d", i, a.ends_at_eof,
                      static_cast<int>(b.framing));
    }
    if (common > 0 && ref.messages[common - 1].switches_protocol) return;
    size_t k = common;  // the first message one of them did not complete
    const char* why = ref.reason.c_str();
    if (mp.messages.size() == ref.messages.size()) {
        if (mp.end == ref.end) return;
        // MessageParser refuses a message whose prefix the reference still reads.
        if (mp.end == End::Invalid && ref.end == End::Incomplete &&
            (mp.in_head || refused_for_a_named_reason(ref.last)))
            return;
        // The reference refuses a head MessageParser is still reading: its head checks
        // run once the head is complete.
        if (mp.end == End::Incomplete && ref.end == End::Invalid && ref.in_head && mp.in_head)
            return;
        SB_FUZZ_CHECK(false, "message %zu: %s here (%s), %s by the reference (%s, at %zu)", k,
                      name(mp.end), mp.error.c_str(), name(ref.end), why, ref.offset);
    }
    if (mp.messages.size() > ref.messages.size()) {
        SB_FUZZ_CHECK(false,
                      "message %zu at %zu (%zu bytes) accepted here, %s by the reference (%s, "
                      "at %zu)",
                      k, mp.messages[k].begin, mp.messages[k].total_length, name(ref.end), why,
                      ref.offset);
    }
    // The reference accepts message k, MessageParser does not.
    const auto& b = ref.messages[k];
    if (mp.end == End::Invalid && (mp.in_head || refused_for_a_named_reason(b))) return;
    SB_FUZZ_CHECK(false, "message %zu at %zu (%zu bytes) accepted by the reference, %s here (%s)",
                  k, b.begin, b.total_length, name(mp.end), mp.error.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto split = sb::fuzz::split_input(data, size);
    Choices choices(split.choices, split.choices_size);
    std::string_view stream(reinterpret_cast<const char*>(split.subject), split.subject_size);
    bool responses = stream.starts_with("HTTP/");
    Outcome mp = drive(stream, responses, choices);
    ReferenceResult ref = sb::fuzz::reference_frame(stream, responses);
    compare(mp, ref);
    return 0;
}
