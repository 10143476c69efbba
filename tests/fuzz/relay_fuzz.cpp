// The relay, in process: a real Session on a real uv_loop between a client socket and
// a fake backend (tests/support/session_harness.h), fed fuzzed frame streams in both
// directions, cut at fuzzed points, with some of the client's frames glued to its
// upgrade request and some of the backend's to its 101.
//
// What it proves, for every input:
//  - what the backend receives is exactly the client's frames up to the first one the
//    proxy must refuse (decided here from the frames' structure, RFC 6455 §5 and the
//    pool's max_message_bytes), then at most one Close of the proxy's own: never a
//    byte more than the client sent, never a byte of anything else;
//  - a refused frame ends the connection with the right code (1002 for a framing
//    violation, 1009 for a message over the limit) sent to the client;
//  - what the client receives after the 101 is exactly the backend's frames in order
//    (a prefix of them when the session ended early), then at most the proxy's Close;
//  - the session ends, and the harness's teardown finds no handle open, no session
//    alive and every block given back.
#include <fuzzer/FuzzedDataProvider.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "session_harness.h"

namespace {

using sb::test::Frame;

struct Planned {
    uint8_t opcode;
    bool fin;
    bool masked;
    int length_form;  // 0 shortest, 16 or 64: forced (not minimal when too long a form)
    std::string payload;
    std::string wire;
};

std::string encode(const Planned& f) {
    std::string out;
    out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | f.opcode));
    uint8_t mask_bit = f.masked ? 0x80 : 0;
    size_t n = f.payload.size();
    int form = f.length_form;
    if (form == 0) form = n < 126 ? 7 : n < 65536 ? 16 : 64;
    if (form == 7) {
        out.push_back(static_cast<char>(mask_bit | n));
    } else if (form == 16) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int i = 7; i >= 0; --i)
            out.push_back(static_cast<char>(static_cast<uint64_t>(n) >> (8 * i)));
    }
    const uint8_t key[4] = {0x5a, 0x13, 0xc7, 0x81};
    if (f.masked) out.append(reinterpret_cast<const char*>(key), 4);
    for (size_t i = 0; i < n; ++i) {
        auto b = static_cast<uint8_t>(f.payload[i]);
        out.push_back(static_cast<char>(f.masked ? b ^ key[i & 3] : b));
    }
    return out;
}

// Whether the proxy must refuse client frame `f`, given the message state so far:
// 1002 (framing) or 1009 (too big), or 0. Written from RFC 6455 §5.2-§5.5, not from
// the proxy's code.
uint16_t verdict(const Planned& f, bool& in_message, uint64_t& message_bytes, uint64_t limit) {
    size_t n = f.payload.size();
    bool minimal = f.length_form == 0 || (f.length_form == 16 && n >= 126) ||
                   (f.length_form == 64 && n >= 65536);
    if (!f.masked || !minimal) return 1002;
    bool control = (f.opcode & 0x8) != 0;
    if (control) {
        if (f.opcode != 0x8 && f.opcode != 0x9 && f.opcode != 0xA) return 1002;
        if (n > 125 || !f.fin) return 1002;
        return 0;
    }
    if (f.opcode == 0x0) {
        if (!in_message) return 1002;
        message_bytes += n;
    } else if (f.opcode == 0x1 || f.opcode == 0x2) {
        if (in_message) return 1002;
        in_message = true;
        message_bytes = n;
    } else {
        return 1002;
    }
    if (limit > 0 && message_bytes > limit) return 1009;
    if (f.fin) in_message = false;
    return 0;
}

Planned plan_frame(FuzzedDataProvider& in, bool client) {
    Planned f;
    static const uint8_t kOpcodes[] = {0x1, 0x2, 0x0, 0x9, 0xA, 0x3, 0xB};
    uint8_t pick = in.ConsumeIntegralInRange<uint8_t>(0, 15);
    f.opcode = pick < 6 ? (pick < 3 ? 0x1 : 0x2) : kOpcodes[pick % 7];
    f.fin = in.ConsumeIntegralInRange<uint8_t>(0, 7) != 0;
    if (!client && (f.opcode & 0x8)) f.fin = true;
    f.masked = client ? in.ConsumeIntegralInRange<uint8_t>(0, 31) != 0 : false;
    uint8_t form = in.ConsumeIntegralInRange<uint8_t>(0, 31);
    f.length_form = form == 0 ? 16 : form == 1 ? 64 : 0;
    size_t size = in.ConsumeIntegralInRange<size_t>(0, 300);
    if (in.ConsumeIntegralInRange<uint8_t>(0, 63) == 0) size = 70000;  // the 64-bit form
    if (!client && (f.opcode & 0x8) && size > 125) size = 125;
    if (f.length_form == 16 && size >= 65536) f.length_form = 64;  // 16 bits cannot hold it
    f.payload.assign(size, static_cast<char>(in.ConsumeIntegral<uint8_t>()));
    f.wire = encode(f);
    return f;
}

std::vector<size_t> cuts(FuzzedDataProvider& in, size_t total) {
    std::vector<size_t> out;
    size_t at = 0;
    while (at < total) {
        size_t step = in.ConsumeIntegralInRange<size_t>(1, 64);
        if (in.ConsumeBool()) step = in.ConsumeIntegralInRange<size_t>(1, 20000);
        at = std::min(total, at + step);
        out.push_back(at);
        if (in.remaining_bytes() == 0) break;
    }
    if (out.empty() || out.back() != total) out.push_back(total);
    return out;
}

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "relay_fuzz: %s %s\n", what, detail.c_str());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // As the server does (app/server.cpp): a write to a peer that has gone fails with
    // EPIPE instead of killing the process.
    std::signal(SIGPIPE, SIG_IGN);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    uint64_t limit = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(1, 400) : 0;

    // The client's frames and the proxy's expected verdict.
    std::vector<Planned> client;
    size_t n_client = in.ConsumeIntegralInRange<size_t>(0, 8);
    for (size_t i = 0; i < n_client; ++i)
        client.push_back(plan_frame(in, true));
    std::vector<Planned> backend;
    size_t n_backend = in.ConsumeIntegralInRange<size_t>(0, 6);
    for (size_t i = 0; i < n_backend; ++i)
        backend.push_back(plan_frame(in, false));

    bool in_message = false;
    uint64_t message_bytes = 0;
    size_t accepted = client.size();  // frames before the first refused one
    uint16_t expected_code = 0;
    for (size_t i = 0; i < client.size(); ++i) {
        if (uint16_t v = verdict(client[i], in_message, message_bytes, limit); v != 0) {
            accepted = i;
            expected_code = v;
            break;
        }
    }
    std::string client_wire, backend_wire;
    for (const auto& f : client)
        client_wire += f.wire;
    for (const auto& f : backend)
        backend_wire += f.wire;
    size_t client_glued = in.ConsumeIntegralInRange<size_t>(0, client_wire.size());
    size_t backend_glued = in.ConsumeIntegralInRange<size_t>(0, backend_wire.size());
    auto client_cuts = cuts(in, client_wire.size() - client_glued);
    auto backend_cuts = cuts(in, backend_wire.size() - backend_glued);

    sb::test::HarnessOptions options;
    if (limit > 0) options.websocket_toml = "max_message_bytes = " + std::to_string(limit);
    options.script.echo = false;
    options.script.after_answer = backend_wire.substr(0, backend_glued);
    sb::test::SessionHarness h(options);
    if (!h.ok()) fail("harness", h.error());
    sb::test::Peer* peer = h.open_websocket(std::string_view(client_wire).substr(0, client_glued));
    if (peer == nullptr) fail("no 101", h.error());
    size_t head = sb::test::head_length(peer->received());
    if (h.backend().connections() != 1) fail("backend connections");
    sb::test::BackendConnection& conn = h.backend().connection(0);

    // Interleave the rest of both streams, cut where the input says.
    size_t ci = 0, bi = 0, c_at = client_glued, b_at = backend_glued;
    while (ci < client_cuts.size() || bi < backend_cuts.size()) {
        bool client_turn =
            bi >= backend_cuts.size() || (ci < client_cuts.size() && in.ConsumeBool());
        if (client_turn) {
            size_t to = client_glued + client_cuts[ci++];
            if (peer->is_open()) peer->write(std::string_view(client_wire).substr(c_at, to - c_at));
            c_at = to;
        } else {
            size_t to = backend_glued + backend_cuts[bi++];
            if (conn.peer->is_open())
                conn.peer->write(std::string_view(backend_wire).substr(b_at, to - b_at));
            b_at = to;
        }
        h.run_iterations(1);
    }
    // Let everything that can arrive arrive: both streams complete, or the proxy's
    // Close reached the client (a refused frame), or the session ended.
    auto client_saw_close = [&] {
        std::vector<Frame> frames;
        sb::test::decode_frames(peer->received_after(head), frames);
        for (const auto& f : frames)
            if (f.opcode == 0x8) return true;
        return false;
    };
    h.run_until(
        [&] {
            bool all_in = conn.stream().size() >= client_wire.size() &&
                          peer->received().size() - head >= backend_wire.size();
            return all_in || h.sessions() == 0 || client_saw_close() || peer->ended();
        },
        std::chrono::milliseconds(2000));

    if (std::getenv("RELAY_FUZZ_DUMP") != nullptr) {
        auto dump = [](const char* path, std::string_view bytes) {
            if (FILE* f = std::fopen(path, "wb")) {
                std::fwrite(bytes.data(), 1, bytes.size(), f);
                std::fclose(f);
            }
        };
        dump("/tmp/relay-backend-sent", backend_wire);
        dump("/tmp/relay-client-got", peer->received_after(head));
        dump("/tmp/relay-client-sent", client_wire);
        dump("/tmp/relay-backend-got", conn.stream());
        std::fprintf(stderr, "glued: client %zu backend %zu; cuts:", client_glued, backend_glued);
        for (size_t c : backend_cuts)
            std::fprintf(stderr, " %zu", c);
        std::fprintf(stderr, "\n");
    }

    // ---- client -> backend ----
    std::vector<Frame> got;
    sb::test::decode_frames(conn.stream(), got);
    size_t prefix = std::min(got.size(), accepted);
    for (size_t i = 0; i < prefix; ++i) {
        if (got[i].opcode != client[i].opcode || got[i].payload != client[i].payload ||
            got[i].fin != client[i].fin) {
            fail("backend got a frame the client did not send", std::to_string(i));
        }
    }
    for (size_t i = prefix; i < got.size(); ++i) {
        // Only the proxy's own Close may follow the client's frames.
        if (got[i].opcode != 0x8 || i + 1 != got.size()) fail("extra frame at the backend");
    }
    size_t client_bytes_out = 0;
    for (size_t i = 0; i < prefix; ++i)
        client_bytes_out += got[i].wire_size;
    if (client_bytes_out > client_wire.size()) fail("more bytes out than in");
    if (expected_code == 0 && prefix < accepted && h.sessions() > 0 &&
        conn.stream().size() < client_wire.size()) {
        fail("client frames lost", std::to_string(prefix) + "/" + std::to_string(accepted));
    }

    // ---- backend -> client ----
    std::vector<Frame> to_client;
    sb::test::decode_frames(peer->received_after(head), to_client);
    size_t close_at = to_client.size();
    for (size_t i = 0; i < to_client.size(); ++i) {
        if (i < backend.size() && to_client[i].opcode == backend[i].opcode &&
            to_client[i].payload == backend[i].payload) {
            continue;
        }
        if (to_client[i].opcode == 0x8 && i + 1 == to_client.size()) {
            close_at = i;
            break;
        }
        std::string detail = std::to_string(i) + ": got opcode " +
                             std::to_string(to_client[i].opcode) + " of " +
                             std::to_string(to_client[i].payload.size()) + " bytes, fin " +
                             std::to_string(to_client[i].fin);
        if (i < backend.size()) {
            detail += "; sent opcode " + std::to_string(backend[i].opcode) + " of " +
                      std::to_string(backend[i].payload.size()) + " bytes";
        }
        fail("client got a frame the backend did not send", detail);
    }
    if (expected_code != 0) {
        bool told =
            close_at < to_client.size() && to_client[close_at].close_code() == expected_code;
        // The proxy's Close goes out at the next boundary of the backend's stream; a
        // backend frame cut short by the end of the input may keep it waiting.
        bool boundary_pending = b_at < backend_wire.size();
        if (!told && !boundary_pending && h.sessions() > 0 && !peer->ended()) {
            fail("refused frame without its close code", std::to_string(expected_code));
        }
    }

    if (std::getenv("RELAY_FUZZ_DEBUG") != nullptr) {
        std::fprintf(stderr,
                     "limit=%llu client=%zu frames (accepted %zu, code %u) backend=%zu "
                     "frames; backend got %zu/%zu bytes, client got %zu/%zu; sessions=%zu "
                     "peer ended=%d\n",
                     static_cast<unsigned long long>(limit), client.size(), accepted, expected_code,
                     backend.size(), conn.stream().size(), client_wire.size(),
                     peer->received().size() - head, backend_wire.size(), h.sessions(),
                     peer->ended() ? 1 : 0);
    }
    // Both peers hang up, as peers that got (or sent) a Close would.
    peer->close();
    if (conn.peer->is_open()) conn.peer->close();
    h.run_until([&] { return h.sessions() == 0; }, std::chrono::milliseconds(7000));
    auto report = h.teardown();
    if (!report.clean()) fail("teardown", report.describe());
    return 0;
}
