// Fuzzer: a client's upgrade request, through every function the session runs on it
// before a backend sees it: http::MessageParser (Kind::Request), check_upgrade,
// backend_request and the balancing keys of request_key.h.
//
// Proves, for any bytes a client sends cut into any reads, with the buffer growing and
// moving between reads as the session's does:
//   - no crash, no bad access, no undefined behaviour, no exception;
//   - the parser's verdict (NeedMore, Complete, Error) and head length do not depend on
//     how the bytes were cut: whole and in chunks agree;
//   - a Complete head lies inside the buffer, as does every span it reports;
//   - a request check_upgrade accepts keeps the rules SPEC §3 lists (re-stated here from
//     the headers, not taken from check_upgrade), and its rewrite for the backend is
//     itself one complete head that check_upgrade accepts, for the same target and key;
//   - balancing keys are what their hash_key names, or the client address;
//   - the canned answer for a refusal is a well-formed response.
//
// Input: one byte N, N decision bytes (fuzz_util.h Choices), then the request.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "fuzz_util.h"
#include "http/forward.h"
#include "http/handshake.h"
#include "http/message_parser.h"
#include "http/replies.h"
#include "http/request_key.h"

namespace {

using sb::fuzz::Choices;
using sb::http::MessageParser;
using Verdict = MessageParser::Status;

constexpr std::string_view kClientIp = "203.0.113.7";

// True if `view` points into `buffer` (a view into the head the parser described).
bool inside(std::string_view view, std::string_view buffer) {
    return view.empty() || (view.data() >= buffer.data() &&
                            view.data() + view.size() <= buffer.data() + buffer.size());
}

void check_spans(const MessageParser& parser, size_t limit) {
    auto within = [limit](sb::http::Span s) { return size_t{s.offset} + s.length <= limit; };
    SB_FUZZ_CHECK(within(parser.method()) && within(parser.target()), "request line past %zu",
                  limit);
    for (const auto& h : parser.headers())
        SB_FUZZ_CHECK(within(h.name) && within(h.value), "header span past %zu", limit);
}

// Parses `bytes` as the session reads them: the buffer grows by a chunk at a time and the
// parser sees each prefix until it decides. Every read moves the buffer to new memory of
// exactly its size, the old memory freed, so that ASan catches both a pointer kept into
// an old buffer and a read past the end of the bytes received.
Verdict parse_in_chunks(MessageParser& parser, std::string_view bytes, Choices& choices,
                        std::vector<char>& buffer) {
    Verdict verdict = Verdict::NeedMore;
    size_t fed = 0;
    while (fed < bytes.size()) {
        size_t n = sb::fuzz::chunk_size(choices, bytes.size() - fed);
        std::vector<char> grown(buffer.size() + n);
        std::copy(buffer.begin(), buffer.end(), grown.begin());
        std::copy_n(bytes.data() + fed, n, grown.begin() + static_cast<ptrdiff_t>(buffer.size()));
        buffer.swap(grown);
        fed += n;
        verdict = parser.parse({buffer.data(), buffer.size()});
        check_spans(parser, buffer.size());
        if (verdict != Verdict::NeedMore) break;
    }
    return verdict;
}

// SPEC §3 Handshake, re-stated from the parsed head: what every accepted upgrade has.
void check_accepted(std::string_view buffer, const MessageParser& parser,
                    const sb::http::UpgradeRequest& req) {
    using sb::http::count_headers;
    using sb::http::find_header;
    const auto& headers = parser.headers();
    std::string_view value;
    SB_FUZZ_CHECK(req.method == "GET");
    SB_FUZZ_CHECK(parser.http_major() == 1 && parser.http_minor() == 1);
    SB_FUZZ_CHECK(!req.target.empty() && req.target.front() == '/');
    SB_FUZZ_CHECK(count_headers(headers, buffer, "host") == 1);
    SB_FUZZ_CHECK(sb::http::valid_host(req.host), "accepted Host '%.*s'",
                  static_cast<int>(req.host.size()), req.host.data());
    SB_FUZZ_CHECK(count_headers(headers, buffer, "sec-websocket-key") == 1);
    SB_FUZZ_CHECK(find_header(buffer, headers, "sec-websocket-key", value) && value.size() == 24);
    SB_FUZZ_CHECK(count_headers(headers, buffer, "sec-websocket-version") == 1);
    SB_FUZZ_CHECK(find_header(buffer, headers, "sec-websocket-version", value) && value == "13");
    SB_FUZZ_CHECK(find_header(buffer, headers, "upgrade", value));
    SB_FUZZ_CHECK(find_header(buffer, headers, "connection", value));
    SB_FUZZ_CHECK(count_headers(headers, buffer, "transfer-encoding") == 0,
                  "an upgrade with Transfer-Encoding is accepted");
    SB_FUZZ_CHECK(!parser.has_body(), "an upgrade with a body is accepted");
    if (find_header(buffer, headers, "content-length", value))
        SB_FUZZ_CHECK(value.find_first_not_of('0') == std::string_view::npos,
                      "an upgrade with Content-Length %.*s is accepted",
                      static_cast<int>(value.size()), value.data());
    SB_FUZZ_CHECK(count_headers(headers, buffer, "origin") <= 1);
    for (auto view : {req.method, req.target, req.path, req.query, req.host, req.origin})
        SB_FUZZ_CHECK(inside(view, buffer.substr(0, parser.head_end())), "a view past the head");
    SB_FUZZ_CHECK(req.target.substr(0, req.path.size()) == req.path);
    SB_FUZZ_CHECK(req.host_name.size() <= req.host.size());
}

// The head the backend gets must be one complete request head, accepted as the client's
// was, with the same target and key.
void check_rewrite(std::string_view buffer, const MessageParser& parser,
                   const sb::http::UpgradeRequest& req, bool forwarded_headers) {
    sb::http::ForwardInfo info{forwarded_headers, kClientIp, "https"};
    std::string out = sb::http::backend_request(buffer, parser, info);
    MessageParser again(MessageParser::Kind::Request);
    Verdict v = again.parse(out);
    SB_FUZZ_CHECK(v == Verdict::Complete, "the backend request does not parse: %s\n%s",
                  again.error().c_str(), out.c_str());
    SB_FUZZ_CHECK(again.head_length() == out.size(), "the backend request is not one head");
    sb::http::UpgradeRequest forwarded;
    auto result = sb::http::check_upgrade(out, again, forwarded);
    SB_FUZZ_CHECK(result.status == sb::http::Status::Ok, "the backend request is refused: %s\n%s",
                  result.reason.c_str(), out.c_str());
    SB_FUZZ_CHECK(forwarded.target == req.target && forwarded.method == req.method);
    std::string_view key_in, key_out;
    sb::http::find_header(buffer, parser.headers(), "sec-websocket-key", key_in);
    sb::http::find_header(out, again.headers(), "sec-websocket-key", key_out);
    SB_FUZZ_CHECK(key_in == key_out, "Sec-WebSocket-Key changed on the way to the backend");
    if (forwarded_headers) {
        std::string_view xff;
        SB_FUZZ_CHECK(sb::http::find_header(out, again.headers(), "x-forwarded-for", xff));
        SB_FUZZ_CHECK(xff.size() >= kClientIp.size() &&
                          xff.substr(xff.size() - kClientIp.size()) == kClientIp,
                      "X-Forwarded-For does not end in the client address");
        SB_FUZZ_CHECK(sb::http::count_headers(again.headers(), out, "x-forwarded-proto") == 1);
        SB_FUZZ_CHECK(sb::http::count_headers(again.headers(), out, "x-forwarded-host") <= 1);
    }
}

void check_keys(std::string_view buffer, const MessageParser& parser,
                const sb::http::UpgradeRequest& req, Choices& choices) {
    using Kind = sb::config::HashKey::Kind;
    sb::http::KeySource source{buffer, &parser.headers(), req.path, req.query, kClientIp};
    sb::config::HashKey keys[] = {
        {Kind::ClientIp, "", 0},
        {Kind::Header, "x-room", 0},
        {Kind::Header, "sec-websocket-protocol", 0},
        {Kind::Cookie, "room", 0},
        {Kind::Query, "room", 0},
        {Kind::Path, "", 0},
        {Kind::PathSegment, "", static_cast<unsigned>(choices.in_range(0, 4))},
        {Kind::PathSegment, "", 0xFFFFFFFFu},
    };
    for (const auto& key : keys) {
        bool fell_back = false;
        std::string k = sb::http::balancing_key(key, source, fell_back);
        SB_FUZZ_CHECK(!fell_back || k == kClientIp, "fell back to '%s'", k.c_str());
        SB_FUZZ_CHECK(fell_back || !k.empty(), "an empty key that names a room");
        if (key.kind == Kind::ClientIp) SB_FUZZ_CHECK(fell_back);
        if (key.kind == Kind::Path) SB_FUZZ_CHECK(k == req.path);
        // Any other key is a piece of the request as sent.
        if (!fell_back && key.kind != Kind::Path)
            SB_FUZZ_CHECK(buffer.substr(0, parser.head_end()).find(k) != std::string_view::npos,
                          "key '%s' is not in the request", k.c_str());
    }
}

// A refusal's canned answer: one complete response head with the status asked for.
void check_reply(sb::http::Status status, const std::string& reason) {
    std::string answer = sb::http::reply(status, reason);
    MessageParser response(MessageParser::Kind::Response);
    SB_FUZZ_CHECK(response.parse(answer) == Verdict::Complete, "canned reply does not parse: %s",
                  response.error().c_str());
    SB_FUZZ_CHECK(response.status_code() == sb::http::status_code(status));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto input = sb::fuzz::split_input(data, size);
    Choices choices(input.choices, input.choices_size);
    std::string_view bytes(reinterpret_cast<const char*>(input.subject), input.subject_size);

    // The whole input as libFuzzer gives it: its memory ends where the bytes end.
    MessageParser whole(MessageParser::Kind::Request);
    Verdict whole_verdict = whole.parse(bytes.empty() ? std::string_view("") : bytes);

    MessageParser parser(MessageParser::Kind::Request);
    std::vector<char> storage;
    Verdict verdict = parse_in_chunks(parser, bytes, choices, storage);
    std::string_view buffer(storage.data(), storage.size());

    // The chunked parse stops at its verdict, so it may have seen less than all the bytes;
    // a streaming parser's verdict on a prefix is its verdict on the whole.
    SB_FUZZ_CHECK(verdict == whole_verdict, "whole: %d, in chunks: %d (%s / %s)",
                  static_cast<int>(whole_verdict), static_cast<int>(verdict), whole.error().c_str(),
                  parser.error().c_str());
    if (verdict != Verdict::Complete) return 0;

    SB_FUZZ_CHECK(parser.head_length() == whole.head_length(), "head length whole %zu, chunked %zu",
                  whole.head_length(), parser.head_length());
    SB_FUZZ_CHECK(parser.head_begin() == 0 && parser.head_end() <= buffer.size());
    SB_FUZZ_CHECK(!parser.is_interim());
    check_spans(parser, parser.head_end());
    // The head is the same bytes whichever way they came.
    SB_FUZZ_CHECK(buffer.substr(0, parser.head_end()) == bytes.substr(0, parser.head_end()));

    sb::http::UpgradeRequest req;
    auto result = sb::http::check_upgrade(buffer, parser, req);
    if (result.status != sb::http::Status::Ok) {
        SB_FUZZ_CHECK(!result.reason.empty(), "a refusal without a reason");
        check_reply(result.status, result.reason);
        return 0;
    }
    check_accepted(buffer, parser, req);
    check_rewrite(buffer, parser, req, true);
    check_rewrite(buffer, parser, req, false);
    check_keys(buffer, parser, req, choices);
    return 0;
}
