// Fuzzer: the admin request path (admin/admin_request.h), from request bytes to the
// complete answer, without sockets, over AdminSources built from a small fixed
// configuration the way the Server builds them.
//
// Proves, for any bytes a client sends, cut into any chunks, that:
//   - nothing throws and nothing crashes (issue 13: `GET /route?pool=chat&key=%FF`
//     threw from the JSON writer through a noexcept libuv callback);
//   - once an answer comes, it is a well-formed HTTP/1.1 response: a status line with
//     a known code and its reason, header lines `Name: value` of visible characters,
//     `Connection: close`, a Content-Length equal to the body's size (or an empty body,
//     for HEAD), or, for the /events stream only, no length and a first event;
//   - every JSON body (and the /events snapshot) is valid UTF-8 and valid JSON once its
//     \udcXX escapes of non-UTF-8 bytes are read as the bytes they stand for;
//   - feeding the bytes in chunks gives the answer status that feeding them at once
//     gives, when both fit under the request cap.
//
// Input: one byte N, N decision bytes (fuzz_util.h Choices: whether the process is
// draining, then the chunk sizes), then the request bytes.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/admin_request.h"
#include "admin/json_text.h"
#include "config/loader.h"
#include "fuzz_util.h"
#include "pool/generation.h"

namespace {

using sb::admin::AdminAnswer;
using sb::admin::AdminSources;
using sb::fuzz::Choices;

// Two pools with different balancers, so /route walks both kinds of table.
constexpr std::string_view kConfig = R"(
[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [ { address = "127.0.0.1:7001" }, { address = "127.0.0.1:7002", weight = 3 } ]
hash_key = "query:room"

[pools.game]
backends = [ { address = "127.0.0.1:7101" }, { address = "127.0.0.1:7102" },
             { address = "127.0.0.1:7103" } ]
algorithm = "maglev"
)";

struct World {
    sb::pool::GenerationPtr generation;
    bool draining = false;
    AdminSources sources;
};

World& world() {
    static World* w = [] {
        auto* made = new World();
        auto loaded = sb::config::load_string(kConfig, "admin-fuzz.toml");
        SB_FUZZ_CHECK(loaded.ok(), "the fixed configuration does not load");
        std::vector<sb::config::ConfigError> errors;
        made->generation = sb::pool::Generation::build(loaded.config, 1, nullptr, errors);
        SB_FUZZ_CHECK(made->generation != nullptr, "the fixed generation does not build");
        made->sources.generation = [made] { return made->generation; };
        made->sources.listeners = [] {
            return std::vector<sb::admin::ListenerAddress>{{"public", "127.0.0.1:8080"}};
        };
        made->sources.workers = [] { return std::vector<const sb::metrics::WorkerStats*>{}; };
        made->sources.draining = [made] { return made->draining; };
        made->sources.reloads_ok = [] { return uint64_t{0}; };
        made->sources.reloads_failed = [] { return uint64_t{0}; };
        return made;
    }();
    return *w;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

bool valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        size_t n = sb::admin::utf8_sequence_length(s.substr(i));
        if (n == 0) return false;
        i += n;
    }
    return true;
}

// JSON text whose \udcXX escapes (bytes that are not UTF-8) are read as \u00XX: the
// rest must be JSON a strict parser accepts. A `\\udc` (an escaped backslash, then
// text) may be rewritten too; it stays valid JSON either way.
void check_json(std::string_view text) {
    SB_FUZZ_CHECK(valid_utf8(text), "JSON answer that is not UTF-8");
    std::string plain(text);
    for (size_t at = plain.find("\\udc"); at != std::string::npos; at = plain.find("\\udc", at + 1))
        plain.replace(at, 4, "\\u00");
    SB_FUZZ_CHECK(nlohmann::json::accept(plain), "JSON answer that does not parse: %s",
                  plain.substr(0, 300).c_str());
}

bool known_status(int status, std::string_view reason) {
    switch (status) {
        case 200:
            return reason == "OK";
        case 400:
            return reason == "Bad Request";
        case 404:
            return reason == "Not Found";
        case 405:
            return reason == "Method Not Allowed";
        case 431:
            return reason == "Request Header Fields Too Large";
        case 500:
            return reason == "Internal Server Error";
        case 503:
            return reason == "Service Unavailable";
        default:
            return false;
    }
}

void check_answer(const AdminAnswer& a, std::string_view request) {
    std::string_view bytes = a.bytes;
    size_t head_end = bytes.find("\r\n\r\n");
    SB_FUZZ_CHECK(head_end != std::string_view::npos, "an answer without a complete head");
    std::string_view head = bytes.substr(0, head_end + 2);
    std::string_view body = bytes.substr(head_end + 4);

    size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    SB_FUZZ_CHECK(
        starts_with(status_line, "HTTP/1.1 ") && status_line.size() > 13 && status_line[12] == ' ',
        "bad status line");
    int code = 0;
    for (size_t i = 9; i < 12; ++i) {
        SB_FUZZ_CHECK(status_line[i] >= '0' && status_line[i] <= '9', "bad status code");
        code = code * 10 + (status_line[i] - '0');
    }
    SB_FUZZ_CHECK(code == a.status, "status line %d, answer says %d", code, a.status);
    SB_FUZZ_CHECK(known_status(code, status_line.substr(13)), "unknown status or reason");

    std::string content_type, content_length, connection, allow;
    bool has_length = false;
    for (size_t at = eol + 2; at < head.size();) {
        size_t end = head.find("\r\n", at);
        std::string_view line = head.substr(at, end - at);
        size_t colon = line.find(": ");
        SB_FUZZ_CHECK(colon != std::string_view::npos && colon > 0, "header without a name");
        for (size_t i = 0; i < colon; ++i) {
            char c = line[i];
            SB_FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-',
                          "header name that is not a token");
        }
        for (char c : line.substr(colon + 2))
            SB_FUZZ_CHECK(c >= 0x20 && c < 0x7F, "header value with a control byte");
        std::string_view name = line.substr(0, colon), value = line.substr(colon + 2);
        if (name == "Content-Type") content_type = value;
        if (name == "Connection") connection = value;
        if (name == "Allow") allow = value;
        if (name == "Content-Length") {
            SB_FUZZ_CHECK(!has_length, "two Content-Length headers");
            has_length = true;
            content_length = value;
        }
        at = end + 2;
    }
    SB_FUZZ_CHECK(!content_type.empty(), "no Content-Type");
    SB_FUZZ_CHECK(connection == "close", "not Connection: close");
    SB_FUZZ_CHECK((code == 405) == (allow == "GET, HEAD"), "Allow goes with 405 only");

    bool head_request = starts_with(request, "HEAD ");
    if (content_type == "text/event-stream") {
        // The /events head: a 200 without a length, for GET with the first event, for
        // HEAD (the same head) with nothing, and then the connection closes.
        SB_FUZZ_CHECK(code == 200 && !has_length, "a stream is a 200 without a length");
        SB_FUZZ_CHECK(a.stream != head_request, "only GET /events streams");
        if (!a.stream) {
            SB_FUZZ_CHECK(body.empty(), "HEAD /events with a body");
            return;
        }
        SB_FUZZ_CHECK(starts_with(body, "retry: 2000\n\ndata: ") && body.size() >= 20 &&
                          body.substr(body.size() - 2) == "\n\n",
                      "a stream without its first event");
        check_json(body.substr(19, body.size() - 21));
        return;
    }
    SB_FUZZ_CHECK(!a.stream, "a stream that is not SSE");
    SB_FUZZ_CHECK(has_length, "an answer without Content-Length");
    SB_FUZZ_CHECK(content_length == std::to_string(body.size()) || (head_request && body.empty()),
                  "Content-Length %s for a body of %zu", content_length.c_str(), body.size());
    if (content_type == "application/json" && !body.empty()) check_json(body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto split = sb::fuzz::split_input(data, size);
    Choices choices(split.choices, split.choices_size);
    std::string_view request(reinterpret_cast<const char*>(split.subject), split.subject_size);
    World& w = world();
    w.draining = choices.one_in(4);

    // All at once, as the fuzzer's callers (and a client with one write) would send it.
    std::optional<AdminAnswer> whole = sb::admin::answer_request(w.sources, request);
    if (whole) check_answer(*whole, request);

    // In chunks, as a connection reads it: the answer comes at the first prefix that
    // makes one, and nothing after it is read.
    sb::admin::RequestReader reader;
    std::string received;
    std::optional<AdminAnswer> chunked;
    for (size_t at = 0; at < request.size() && !chunked;) {
        size_t n = sb::fuzz::chunk_size(choices, request.size() - at);
        received.append(request.substr(at, n));
        at += n;
        chunked = reader.read(w.sources, received);
    }
    if (chunked) check_answer(*chunked, received);
    if (request.size() <= sb::admin::RequestReader::kMaxRequestBytes) {
        SB_FUZZ_CHECK(whole.has_value() == chunked.has_value(), "chunks change whether it ends");
        if (whole) SB_FUZZ_CHECK(whole->status == chunked->status, "chunks change the status");
    }
    return 0;
}
