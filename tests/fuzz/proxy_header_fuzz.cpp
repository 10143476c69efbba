// Fuzzer: net::proxy_header::Parser, the PROXY protocol v1/v2 header a listener reads
// from an L4 balancer.
//
// Proves, for any bytes cut into any chunks (one byte at a time, empty chunks, all at
// once), that the parser never claims more bytes than it was fed, that it answers the
// same (status, bytes of header, error, addresses) whole and in chunks, that it stops
// within the bounds (107 bytes for v1, 4 KiB for v2), that a NeedMore took the whole
// chunk, and that after its answer it takes nothing more. An accepted header is then
// checked against the protocol: v1 is "PROXY " ... CRLF with no CR or LF inside, v2
// starts with the signature and its length field gives its size exactly; carried
// addresses are IPv4 or IPv6, both of one family, and survive a round trip through
// the encoder.
//
// Input: one byte N, N decision bytes (fuzz_util.h Choices), then the stream.
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "net/proxy_header.h"

namespace {

using sb::fuzz::Choices;
namespace ph = sb::net::proxy_header;
using Status = ph::Parser::Status;

struct Answer {
    Status status = Status::NeedMore;
    size_t consumed = 0;  // total bytes of header over every feed
    std::string error;
};

// Feeds `data` in the chunks `choices` picks, stopping at the first answer.
Answer run(ph::Parser& parser, const uint8_t* data, size_t size, Choices* choices) {
    Answer answer;
    size_t pos = 0;
    // Every round feeds at least one byte but the empty chunks, capped at a few.
    for (size_t empties = 0; pos < size;) {
        size_t n = size - pos;
        if (choices) {
            if (empties < 4 && choices->one_in(16)) {
                n = 0;
                ++empties;
            } else {
                n = sb::fuzz::chunk_size(*choices, size - pos);
            }
        }
        auto o = parser.feed(reinterpret_cast<const char*>(data) + pos, n);
        SB_FUZZ_CHECK(o.consumed <= n, "consumed %zu of %zu", o.consumed, n);
        answer.consumed += o.consumed;
        if (o.status == Status::NeedMore) {
            SB_FUZZ_CHECK(o.consumed == n, "NeedMore after %zu of %zu bytes", o.consumed, n);
            SB_FUZZ_CHECK(o.error == nullptr);
            pos += n;
            continue;
        }
        answer.status = o.status;
        if (o.status == Status::Error) {
            SB_FUZZ_CHECK(o.error != nullptr && o.error[0] != '\0', "an Error without a reason");
            answer.error = o.error;
        }
        // Settled: later feeds take nothing and say the same.
        auto again = parser.feed(reinterpret_cast<const char*>(data), size);
        SB_FUZZ_CHECK(again.status == o.status && again.consumed == 0, "answer changed");
        return answer;
    }
    return answer;
}

void check_header(const uint8_t* data, const Answer& answer, const ph::Header& h) {
    const char* bytes = reinterpret_cast<const char*>(data);
    if (h.version == 1) {
        SB_FUZZ_CHECK(answer.consumed <= ph::kV1MaxBytes, "v1 header of %zu bytes",
                      answer.consumed);
        SB_FUZZ_CHECK(answer.consumed >= 8 && std::memcmp(bytes, "PROXY ", 6) == 0);
        SB_FUZZ_CHECK(bytes[answer.consumed - 2] == '\r' && bytes[answer.consumed - 1] == '\n');
        for (size_t i = 0; i + 2 < answer.consumed; ++i)
            SB_FUZZ_CHECK(bytes[i] != '\r' && bytes[i] != '\n', "CR or LF inside a v1 line");
    } else {
        SB_FUZZ_CHECK(h.version == 2, "version %d", h.version);
        SB_FUZZ_CHECK(answer.consumed >= ph::kV2FixedBytes && answer.consumed <= ph::kV2MaxBytes,
                      "v2 header of %zu bytes", answer.consumed);
        SB_FUZZ_CHECK(std::memcmp(bytes, ph::kV2Signature, sizeof ph::kV2Signature) == 0);
        size_t length = size_t{data[14]} << 8 | data[15];
        SB_FUZZ_CHECK(answer.consumed == ph::kV2FixedBytes + length, "length %zu, consumed %zu",
                      length, answer.consumed);
    }
    if (h.local) return;
    int family = h.source.family();
    SB_FUZZ_CHECK(family == AF_INET || family == AF_INET6, "family %d", family);
    SB_FUZZ_CHECK(h.destination.family() == family, "mixed families in one header");
    // Round trip: the encoder writes what the parser read.
    for (auto version : {sb::config::ProxyProtocol::V1, sb::config::ProxyProtocol::V2}) {
        std::string encoded = ph::encode(version, h.source, h.destination);
        ph::Parser again;
        auto o = again.feed(encoded.data(), encoded.size());
        SB_FUZZ_CHECK(o.status == Status::Done && o.consumed == encoded.size(),
                      "the encoder's header is refused: %s", o.error ? o.error : "");
        SB_FUZZ_CHECK(!again.header().local);
        SB_FUZZ_CHECK(again.header().source.ip_string() == h.source.ip_string() &&
                      again.header().source.port() == h.source.port());
        SB_FUZZ_CHECK(again.header().destination.ip_string() == h.destination.ip_string() &&
                      again.header().destination.port() == h.destination.port());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto input = sb::fuzz::split_input(data, size);
    Choices choices(input.choices, input.choices_size);

    ph::Parser whole;
    Answer a = run(whole, input.subject, input.subject_size, nullptr);
    ph::Parser chunked;
    Answer b = run(chunked, input.subject, input.subject_size, &choices);

    SB_FUZZ_CHECK(a.status == b.status, "whole %d, in chunks %d", static_cast<int>(a.status),
                  static_cast<int>(b.status));
    SB_FUZZ_CHECK(a.consumed <= input.subject_size);
    if (a.status == Status::NeedMore) {
        SB_FUZZ_CHECK(a.consumed == input.subject_size && b.consumed == input.subject_size);
        // Still waiting means still within the bounds.
        SB_FUZZ_CHECK(a.consumed < ph::kV2MaxBytes, "NeedMore after %zu bytes", a.consumed);
        return 0;
    }
    SB_FUZZ_CHECK(a.consumed == b.consumed, "whole took %zu, in chunks %zu", a.consumed,
                  b.consumed);
    SB_FUZZ_CHECK(a.error == b.error, "whole '%s', in chunks '%s'", a.error.c_str(),
                  b.error.c_str());
    if (a.status == Status::Error) return 0;

    const auto& h = whole.header();
    const auto& g = chunked.header();
    SB_FUZZ_CHECK(h.version == g.version && h.local == g.local && h.source == g.source &&
                      h.destination == g.destination,
                  "whole and chunked headers differ");
    check_header(input.subject, a, h);
    return 0;
}
