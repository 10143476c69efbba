// Plain HTTP through a real Session, in process (tests/support/session_harness.h): a
// client writes a fuzzed stream of requests (pipelined, with Content-Length, chunked,
// conflicting or broken framing, Expect, Connection: close, an upgrade now and then),
// cut at fuzzed points, to a backend that answers its first request head with a fuzzed
// answer (interim 1xx, any status, any framing, bytes past its end) and then says
// nothing more, so later requests on a kept connection time out.
//
// What it proves, for every input:
//  - nothing a client or a backend sends crashes the process or reads memory it must
//    not (ASan, UBSan);
//  - what the client receives is HTTP answers: its first bytes are a status line;
//  - with admission control on (a quarter of the inputs), an earlier client has taken
//    the only token, so the fuzzed client's request is shed (503 with Retry-After, or
//    switchboard's own 101 and Close 1013, after which its bytes are read as frames)
//    or refused by max_connects_per_ip_per_second (429);
//  - the session ends (every deadline fires) and the harness's teardown finds no handle
//    open, no session alive and every block given back: no leak, whatever was sent.
#include <fuzzer/FuzzedDataProvider.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "session_harness.h"

namespace {

std::string hex(size_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return buf;
}

// A chunked body of `total` bytes in a few chunks, sometimes bent out of shape.
std::string chunked(FuzzedDataProvider& in, size_t total) {
    std::string out;
    size_t left = total;
    while (left > 0) {
        size_t n = in.ConsumeIntegralInRange<size_t>(1, left);
        std::string line = hex(n);
        switch (in.ConsumeIntegralInRange<int>(0, 15)) {
            case 0:
                line += ";ext=" + std::string(in.ConsumeIntegralInRange<size_t>(1, 5000), 'e');
                break;
            case 1:
                line = "-" + line;
                break;
            case 2:
                line = "fffffffffffffffff";
                break;
            case 3:
                line += " ";
                break;
            default:
                break;
        }
        out += line + (in.ConsumeIntegralInRange<int>(0, 15) == 0 ? "\n" : "\r\n");
        out += std::string(n, 'c');
        out += in.ConsumeIntegralInRange<int>(0, 15) == 0 ? "\n" : "\r\n";
        left -= n;
    }
    out += "0\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) out += "X-Trailer: t\r\n";
    out += in.ConsumeIntegralInRange<int>(0, 15) == 0 ? "\n" : "\r\n";
    return out;
}

std::string request(FuzzedDataProvider& in) {
    static const char* kMethods[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"};
    std::string method = kMethods[in.ConsumeIntegralInRange<size_t>(0, 5)];
    std::string out = method + " /r?room=" + std::to_string(in.ConsumeIntegralInRange<int>(0, 3));
    out += in.ConsumeIntegralInRange<int>(0, 7) == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 15) != 0) out += "Host: chat.example\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) out += "Connection: close\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0)
        out += "Connection: keep-alive, X-A\r\nX-A: 1\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 15) == 0) {
        // An upgrade after the plain requests (the harness backend answers it as it
        // answers everything: with the fuzzed answer).
        out +=
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        return out;
    }
    size_t body = in.ConsumeIntegralInRange<size_t>(0, 3000);
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
        case 1:
        case 2:  // no body
            out += "\r\n";
            return out;
        case 3:  // Content-Length, sometimes wrong or doubled
            out += "Content-Length: " + std::to_string(body) + "\r\n";
            if (in.ConsumeIntegralInRange<int>(0, 7) == 0) out += "Content-Length: 1\r\n";
            if (in.ConsumeIntegralInRange<int>(0, 7) == 0) out += "Expect: 100-continue\r\n";
            out += "\r\n" + std::string(in.ConsumeBool() ? body : body / 2, 'b');
            return out;
        case 4:  // chunked
            out += "Transfer-Encoding: chunked\r\n\r\n" + chunked(in, body);
            return out;
        case 5:  // CL.TE
            out += "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(in, body);
            return out;
        case 6:  // obfuscated codings
            out += in.ConsumeBool() ? "Transfer-Encoding: chunked, identity\r\n\r\n"
                                    : "Transfer-Encoding: xchunked\r\n\r\n";
            out += chunked(in, body);
            return out;
        default:  // a raw tail
            out += in.ConsumeRandomLengthString(64);
            return out;
    }
}

std::string answer(FuzzedDataProvider& in) {
    std::string out;
    if (in.ConsumeIntegralInRange<int>(0, 3) == 0) out += "HTTP/1.1 100 Continue\r\n\r\n";
    static const int kStatus[] = {200, 204, 304, 404, 101, 500, 200, 103};
    int status = kStatus[in.ConsumeIntegralInRange<size_t>(0, 7)];
    out += "HTTP/1.1 " + std::to_string(status) + " X\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) out += "Connection: close\r\n";
    size_t body = in.ConsumeIntegralInRange<size_t>(0, 40000);
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            out += "Content-Length: " + std::to_string(body) + "\r\n\r\n" + std::string(body, 'a');
            break;
        case 1:
            out += "Transfer-Encoding: chunked\r\n\r\n" + chunked(in, body);
            break;
        case 2:  // until the close (which never comes: the deadline ends it)
            out += "\r\n" + std::string(body, 'a');
            break;
        default:
            out += "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nab";
            break;
    }
    // A second answer glued behind the first: never the client's.
    if (in.ConsumeIntegralInRange<int>(0, 3) == 0)
        out += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) out = in.ConsumeRandomLengthString(300);
    return out;
}

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "http_session_fuzz: %s %s\n", what, detail.c_str());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::signal(SIGPIPE, SIG_IGN);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    sb::test::HarnessOptions options;
    options.script.answer = sb::test::BackendScript::Answer::Raw;
    options.script.echo = false;
    options.script.raw_answer = answer(in);
    // Short deadlines: every wait the session can be left in ends quickly.
    options.listener_toml = "keepalive_timeout = \"40ms\"\nhandshake_timeout = \"80ms\"\n";
    options.pool_toml =
        "\n[pools.chat.http]\nresponse_timeout = \"40ms\"\n"
        "max_request_body = \"2KiB\"\nmax_idle_connections = " +
        std::to_string(in.ConsumeIntegralInRange<int>(0, 2)) + "\n";
    const bool admission = in.ConsumeIntegralInRange<int>(0, 3) == 0;
    if (admission) {
        options.pool_toml += "\n[pools.chat.admission]\nnew_connections_per_second = 1\n";
        if (in.ConsumeBool()) options.pool_toml += "backend_new_connections_per_second = 1\n";
        options.pool_toml += "burst = 1\nretry_after = \"1s\"\n";
        options.pool_toml += in.ConsumeBool() ? "shed = \"http_503\"\n" : "shed = \"close_1013\"\n";
        if (in.ConsumeBool()) options.listener_toml += "max_connects_per_ip_per_second = 1\n";
    }
    std::string wire;
    size_t n = in.ConsumeIntegralInRange<size_t>(1, 4);
    for (size_t i = 0; i < n; ++i)
        wire += request(in);
    if (!wire.empty() && in.ConsumeIntegralInRange<int>(0, 3) == 0) {
        // One byte changed anywhere: the strict parser's corner cases.
        wire[in.ConsumeIntegralInRange<size_t>(0, wire.size() - 1)] =
            static_cast<char>(in.ConsumeIntegral<uint8_t>());
    }

    sb::test::SessionHarness h(options);
    if (!h.ok()) fail("harness", h.error());
    if (admission) {
        // An earlier client takes the pool's only token (its request is placed before
        // the backend answers) and the address's only connection of this second.
        sb::test::Peer* first = h.connect_client();
        if (first == nullptr) fail("no first client", h.error());
        first->write("GET /r?room=9 HTTP/1.1\r\nHost: chat.example\r\n\r\n");
        h.run_iterations(3);
        first->shutdown();
    }
    sb::test::Peer* client = h.connect_client();
    if (client == nullptr) fail("no client", h.error());
    size_t at = 0;
    while (at < wire.size()) {
        size_t step = in.ConsumeIntegralInRange<size_t>(1, 4096);
        if (in.remaining_bytes() == 0) step = wire.size();
        step = std::min(step, wire.size() - at);
        if (client->is_open()) client->write(std::string_view(wire).substr(at, step));
        at += step;
        h.run_iterations(in.ConsumeIntegralInRange<int>(1, 3));
    }
    // A shed client that never sends its Close is held for a second: end it instead,
    // so that the fuzzer keeps its pace.
    if ((admission || in.ConsumeBool()) && client->is_open()) client->shutdown();
    h.run_until([&] { return h.sessions() == 0 || client->ended(); },
                std::chrono::milliseconds(1500));

    const std::string& got = client->received();
    if (!got.empty() && got.rfind("HTTP/1.1 ", 0) != 0)
        fail("not an HTTP answer", got.substr(0, 80));
    auto report = h.teardown();
    if (!report.clean()) fail("teardown", report.describe());
    return 0;
}
