// Fuzzer: tls::RecordReader, the incremental parser that opens a peer's records in
// place (tls/record_layer.h), on hostile input.
//
// The input picks the version and AEAD of a fixed pair of keys, then builds a stream
// from pieces: raw bytes (headers of any type, version and length, truncated records,
// garbage), and records sealed under the peer's keys with any content type, content and
// TLS 1.3 padding, so that the checks after decryption (inner content type, padding,
// alerts, handshake messages, KeyUpdate, lengths) are reached as well as those on the
// header. The stream is read once whole and once cut into fuzzed pieces (one byte,
// none, all), over buffers of exactly the piece's size so that an over-read is an ASan
// report. Proved: no crash or over-read; never more bytes taken than given; data only
// from a record that opened, never longer than 2^14; at most one record held (2^14 +
// 2048 bytes); the same plaintext and the same final event whatever the cut; nothing
// read after the event that ended the stream.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "tls/record_keys.h"
#include "tls/record_layer.h"

namespace {

using namespace sb::tls;
using Kind = RecordReader::Kind;

RecordCrypto& crypto() {
    static RecordCrypto c;
    return c;
}

TrafficKeys make_keys(RecordVersion version, Aead aead) {
    TrafficKeys k;
    uint8_t secret[48];
    for (size_t i = 0; i < sizeof(secret); ++i)
        secret[i] = static_cast<uint8_t>(i * 29 + 3);
    if (version == RecordVersion::Tls13) {
        SB_FUZZ_CHECK(tls13_keys(crypto(), aead, secret, aead == Aead::Aes256Gcm ? 48 : 32, k),
                      "tls13_keys");
    } else {
        TrafficKeys other;
        SB_FUZZ_CHECK(
            tls12_keys(crypto(), aead, "SHA256", secret, secret + 8, secret + 16, k, other),
            "tls12_keys");
    }
    return k;
}

struct Outcome {
    std::string data;
    std::vector<std::pair<Kind, uint8_t>> events;  // KeyUpdate, Renegotiation, the last one
    bool ended = false;
};

Outcome read_stream(const std::string& stream, TrafficKeys keys, FuzzedDataProvider* cuts) {
    Outcome out;
    RecordReader reader;
    size_t off = 0;
    do {
        size_t left = stream.size() - off;
        size_t n = left;
        if (cuts != nullptr) {
            // A spent input reads 0 from here on: then the rest goes in whole.
            switch (cuts->ConsumeIntegralInRange<int>(0, 3)) {
                case 1:
                    n = 1;
                    break;
                case 2:
                    n = cuts->ConsumeIntegralInRange<size_t>(0, 64);
                    break;
                case 3:
                    n = cuts->ConsumeIntegralInRange<size_t>(0, 20000);
                    break;
                default:
                    break;
            }
            n = std::min(n, left);
        }
        // A buffer of exactly n bytes: a read past it is an ASan report.
        std::unique_ptr<uint8_t[]> piece(new uint8_t[n == 0 ? 1 : n]);
        std::memcpy(piece.get(), stream.data() + off, n);
        size_t used = 0;
        for (int guard = 0;; ++guard) {
            SB_FUZZ_CHECK(guard < 100000, "no progress");
            auto e = reader.next(crypto(), keys, piece.get() + used, n - used);
            SB_FUZZ_CHECK(e.consumed <= n - used, "took %zu of %zu", e.consumed, n - used);
            used += e.consumed;
            SB_FUZZ_CHECK(reader.partial() <= kHeaderSize + kMaxCiphertext12, "holds too much");
            if (e.kind == Kind::NeedMore) {
                SB_FUZZ_CHECK(used == n, "NeedMore with bytes left");
                break;
            }
            if (out.ended) {
                // After the end everything is taken and nothing more comes out.
                SB_FUZZ_CHECK(used == n && e.kind == out.events.back().first, "read after the end");
                break;
            }
            if (e.kind == Kind::Data) {
                SB_FUZZ_CHECK(e.size > 0 && e.size <= kMaxPlaintext, "data of %zu", e.size);
                out.data.append(reinterpret_cast<char*>(e.data), e.size);
                continue;
            }
            out.events.emplace_back(e.kind, e.alert);
            if (e.kind == Kind::CloseNotify || e.kind == Kind::PeerAlert || e.kind == Kind::Fail)
                out.ended = true;
        }
        off += n;
    } while (off < stream.size());
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    const auto version = in.ConsumeBool() ? RecordVersion::Tls13 : RecordVersion::Tls12;
    const auto aead = static_cast<Aead>(in.ConsumeIntegralInRange<int>(0, 2));
    TrafficKeys peer = make_keys(version, aead);
    const TrafficKeys mine = peer;

    // The stream: up to 16 pieces, each raw bytes, a bare header or a sealed record.
    std::string stream;
    std::vector<uint8_t> buf(kMaxSealedRecord + kMaxPlaintext + 64);
    for (int i = 0; i < 16 && in.remaining_bytes() > 0; ++i) {
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
            case 0:
                stream += in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 64));
                break;
            case 1: {
                uint8_t h[kHeaderSize] = {in.ConsumeIntegral<uint8_t>(), 3, 3, 0, 0};
                if (in.ConsumeBool()) h[1] = in.ConsumeIntegral<uint8_t>();
                uint16_t len = in.ConsumeIntegral<uint16_t>();
                h[3] = static_cast<uint8_t>(len >> 8);
                h[4] = static_cast<uint8_t>(len);
                stream.append(reinterpret_cast<char*>(h), sizeof(h));
                break;
            }
            default: {
                auto type = static_cast<ContentType>(in.ConsumeIntegral<uint8_t>());
                std::string body =
                    in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 300));
                if (in.ConsumeBool())
                    body.resize(in.ConsumeIntegralInRange<size_t>(0, kMaxPlaintext));
                size_t padding = in.ConsumeIntegralInRange<size_t>(0, 400);
                if (version == RecordVersion::Tls13)
                    padding = std::min(padding, kMaxPlaintext - body.size());
                std::memcpy(buf.data() + seal_prefix(peer), body.data(), body.size());
                Sealed s = seal(crypto(), peer, type, buf.data(), body.size(), buf.size(), padding);
                SB_FUZZ_CHECK(s.status == SealStatus::Ok, "seal %d", static_cast<int>(s.status));
                stream.append(reinterpret_cast<char*>(buf.data()), s.size);
                // A KeyUpdate the reader will act on: the peer moves on too.
                if (version == RecordVersion::Tls13 && type == ContentType::Handshake &&
                    body.size() == 5 && body.substr(0, 4) == std::string("\x18\0\0\x01", 4) &&
                    static_cast<uint8_t>(body[4]) <= 1)
                    SB_FUZZ_CHECK(tls13_update(crypto(), peer), "update");
                break;
            }
        }
    }

    Outcome whole = read_stream(stream, mine, nullptr);
    Outcome cut = read_stream(stream, mine, &in);
    SB_FUZZ_CHECK(whole.data == cut.data, "cut changed the data: %zu vs %zu bytes",
                  whole.data.size(), cut.data.size());
    SB_FUZZ_CHECK(whole.events == cut.events, "cut changed the events");
    SB_FUZZ_CHECK(whole.ended == cut.ended, "cut changed the end");
    return 0;
}
