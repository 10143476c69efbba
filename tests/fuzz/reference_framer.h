// A reference for HTTP/1.1 message framing, written from RFC 9112's grammar and
// length rules (and SPEC §3 where it is stricter than the RFC), to judge
// http::MessageParser against in the differential fuzzer (http_stream_fuzz.cpp). It
// shares no code with MessageParser or llhttp, and is written for clarity, not speed:
// it is given a whole byte stream of pipelined requests (or responses) and says where
// each message's head and body end, or where the framing becomes invalid.
//
// Its scope is framing: where a message ends. Head rules that do not move a message's
// end (which methods exist, what a request-target holds) are read loosely; see
// reference_framer.cpp for each rule and the RFC section it comes from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb::fuzz {

enum class Framing {
    None,           // no body (a request without length, a 1xx, 204 or 304)
    ContentLength,  // content_length bytes
    Chunked,        // RFC 9112 §7.1
    UntilClose,     // a response without length: the rest of the stream
};

struct ReferenceMessage {
    size_t begin = 0;        // offset of the message in the stream
    size_t head_length = 0;  // from begin to the end of the empty line ending the head
                             // (any empty lines before a request line included)
    Framing framing = Framing::None;
    uint64_t content_length = 0;
    uint64_t payload_length = 0;  // content bytes: chunk data, or the body
    size_t total_length = 0;      // head, body and all chunked framing
    int status = 0;               // responses
    // A request whose method is CONNECT or that asks for an upgrade: what follows it on
    // the connection is not HTTP, so framing stops after it.
    bool switches_protocol = false;
    // A chunk extension that RFC 9112 §7.1.1 allows but llhttp 8.1 refuses: BWS, a
    // quoted-pair or obs-text in a quoted value, or a parameter right after a token
    // value. Recorded so that the fuzzer can allow that one divergence by name.
    bool extension_llhttp_refuses = false;
    // A trailer field named Transfer-Encoding or Content-Length, which RFC 9110 §6.5.1
    // does not allow in trailers (they frame the message) and llhttp checks as if it
    // were a header field, refusing some values.
    bool framing_field_in_trailers = false;
};

struct ReferenceResult {
    enum class End {
        Clean,       // the stream ends where a message ends (or framing stopped)
        Incomplete,  // it ends inside a message that is valid so far
        Invalid,     // framing is invalid at `offset`
    };
    std::vector<ReferenceMessage> messages;  // every complete message, in order
    End end = End::Clean;
    size_t offset = 0;  // Invalid: the offset in the stream of the first bad byte
    // Invalid or Incomplete: in the head of the next message (or in the framing its
    // head decides, such as Transfer-Encoding with Content-Length)
    bool in_head = false;
    std::string reason;     // Invalid: the rule broken, with its section
    ReferenceMessage last;  // Invalid or Incomplete: the message read so far
};

// Frames `stream` as requests (responses = false) or responses. Responses to HEAD are
// not known here: a response stream is read as answers to GET.
ReferenceResult reference_frame(std::string_view stream, bool responses);

}  // namespace sb::fuzz
