// The post-handshake record layer (tls/record_keys.h, tls/record_layer.h,
// tls/record_handoff.h): RFC 8448's vectors for the TLS 1.3 key schedule and records,
// then real handshakes between two OpenSSL ends over memory BIOs in which the server's
// end switches to the record layer and the client, still OpenSSL, must understand it
// both ways: data, KeyUpdates, close_notify, padding, any cut of the byte stream.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <string>
#include <vector>

#include "../../support/tls_pair.h"
#include "tls/record_handoff.h"
#include "tls/record_keys.h"
#include "tls/record_layer.h"

namespace sb::tls {
namespace {

using test::TlsPair;
using Kind = RecordReader::Kind;

std::vector<uint8_t> unhex(const char* s) {
    std::vector<uint8_t> out;
    auto val = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    while (*s != '\0') {
        if (*s == ' ' || *s == '\n') {
            ++s;
            continue;
        }
        out.push_back(static_cast<uint8_t>(val(s[0]) << 4 | val(s[1])));
        s += 2;
    }
    return out;
}

// RFC 8448 §3 (Simple 1-RTT Handshake, TLS_AES_128_GCM_SHA256).
const char* kClientAppSecret = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const char* kServerAppSecret = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
// {client} send application_data record, sequence number 0; the payload is 00 01 .. 31.
const char* kClientAppRecord =
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a"
    "20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
// {server} send application_data record: sequence number 1 (its NewSessionTicket was 0).
const char* kServerAppRecord =
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb"
    "501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
// {client} send alert record (close_notify), sequence number 1.
const char* kClientAlertRecord = "1703030013c987276065 5666b74d7ff1153efd6db6d0b0e3";
// {server} send alert record (close_notify), sequence number 2.
const char* kServerAlertRecord = "1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9";

std::vector<uint8_t> rfc8448_payload() {
    std::vector<uint8_t> p(50);
    for (size_t i = 0; i < p.size(); ++i)
        p[i] = static_cast<uint8_t>(i);
    return p;
}

TrafficKeys rfc8448_keys(RecordCrypto& crypto, const char* secret_hex) {
    TrafficKeys k;
    std::vector<uint8_t> secret = unhex(secret_hex);
    EXPECT_TRUE(tls13_keys(crypto, Aead::Aes128Gcm, secret.data(), secret.size(), k));
    return k;
}

TEST(RecordKeys, Rfc8448ApplicationTrafficKeys) {
    RecordCrypto crypto;
    ASSERT_TRUE(crypto.ok());
    TrafficKeys server = rfc8448_keys(crypto, kServerAppSecret);
    EXPECT_EQ(std::vector<uint8_t>(server.key, server.key + 16),
              unhex("9f02283b6c9c07efc26bb9f2ac92e356"));
    EXPECT_EQ(std::vector<uint8_t>(server.iv, server.iv + 12), unhex("cf782b88dd83549aadf1e984"));
    TrafficKeys client = rfc8448_keys(crypto, kClientAppSecret);
    EXPECT_EQ(std::vector<uint8_t>(client.key, client.key + 16),
              unhex("17422dda596ed5d9acd890e3c63f5051"));
    EXPECT_EQ(std::vector<uint8_t>(client.iv, client.iv + 12), unhex("5b78923dee08579033e523d9"));
    EXPECT_EQ(client.seq, 0u);
}

TEST(RecordLayer, Rfc8448SealsTheClientsRecords) {
    RecordCrypto crypto;
    TrafficKeys keys = rfc8448_keys(crypto, kClientAppSecret);
    uint8_t buf[128];
    std::vector<uint8_t> payload = rfc8448_payload();
    std::memcpy(buf + seal_prefix(keys), payload.data(), payload.size());
    Sealed s = seal(crypto, keys, ContentType::ApplicationData, buf, payload.size(), sizeof(buf));
    ASSERT_EQ(s.status, SealStatus::Ok);
    EXPECT_EQ(std::vector<uint8_t>(buf, buf + s.size), unhex(kClientAppRecord));
    s = seal_alert(crypto, keys, alert::kWarning, alert::kCloseNotify, buf, sizeof(buf));
    ASSERT_EQ(s.status, SealStatus::Ok);
    EXPECT_EQ(std::vector<uint8_t>(buf, buf + s.size), unhex(kClientAlertRecord));
}

TEST(RecordLayer, Rfc8448OpensTheServersRecords) {
    RecordCrypto crypto;
    TrafficKeys keys = rfc8448_keys(crypto, kServerAppSecret);
    keys.seq = 1;  // after the NewSessionTicket record
    std::vector<uint8_t> wire = unhex(kServerAppRecord);
    std::vector<uint8_t> alert_rec = unhex(kServerAlertRecord);
    wire.insert(wire.end(), alert_rec.begin(), alert_rec.end());
    RecordReader reader;
    auto e = reader.next(crypto, keys, wire.data(), wire.size());
    ASSERT_EQ(e.kind, Kind::Data);
    EXPECT_EQ(std::vector<uint8_t>(e.data, e.data + e.size), rfc8448_payload());
    EXPECT_EQ(e.consumed, 72u);
    e = reader.next(crypto, keys, wire.data() + 72, wire.size() - 72);
    EXPECT_EQ(e.kind, Kind::CloseNotify);
    EXPECT_EQ(e.consumed, 24u);
}

TEST(RecordLayer, PerConnectionStateIsSmall) {
    // Two TrafficKeys and a RecordReader per connection replace OpenSSL's SSL object.
    EXPECT_EQ(sizeof(TrafficKeys), 104u);
    EXPECT_LE(sizeof(RecordReader), 24u);
}

// RecordCrypto's cache of keyed contexts: a record sealed under any key opens under a
// fresh RecordCrypto, whatever the cache held or evicted in between.
TrafficKeys random_keys(Aead aead, uint32_t seed) {
    TrafficKeys k;
    k.aead = aead;
    k.version = RecordVersion::Tls13;
    for (size_t i = 0; i < kMaxKeySize; ++i)
        k.key[i] = static_cast<uint8_t>(seed * 2654435761u >> (i % 24) ^ i * 31);
    for (size_t i = 0; i < kIvSize; ++i)
        k.iv[i] = static_cast<uint8_t>(seed + i);
    return k;
}

bool round_trip(RecordCrypto& sealer, RecordCrypto& opener, const TrafficKeys& k, uint32_t n) {
    uint8_t nonce[kIvSize] = {};
    std::memcpy(nonce, &n, sizeof(n));
    const uint8_t aad[5] = {23, 3, 3, 0, 0};
    std::string msg = "record " + std::to_string(n);
    std::vector<uint8_t> buf(msg.begin(), msg.end());
    uint8_t tag[kTagSize];
    if (!sealer.seal(k, nonce, aad, sizeof(aad), buf.data(), buf.size(), tag)) return false;
    if (std::string(buf.begin(), buf.end()) == msg) return false;  // not encrypted
    if (!opener.open(k, nonce, aad, sizeof(aad), buf.data(), buf.size(), tag)) return false;
    return std::string(buf.begin(), buf.end()) == msg;
}

TEST(RecordCrypto, KeysInUseAreCachedAndForgottenKeysAreNot) {
    RecordCrypto crypto;
    RecordCrypto other;
    ASSERT_TRUE(crypto.ok());
    TrafficKeys k = random_keys(Aead::Aes128Gcm, 1);
    EXPECT_FALSE(crypto.cached(k));
    // A key's first record goes through a scratch context; its second caches it.
    EXPECT_TRUE(round_trip(crypto, other, k, 1));
    EXPECT_FALSE(crypto.cached(k));
    EXPECT_TRUE(round_trip(crypto, other, k, 1));
    EXPECT_TRUE(crypto.cached(k));
    // Sealing and opening under one key share its context, direction switched.
    EXPECT_TRUE(round_trip(crypto, crypto, k, 2));
    crypto.forget(k);
    EXPECT_FALSE(crypto.cached(k));
    EXPECT_TRUE(round_trip(crypto, other, k, 3));
    // A wrong tag still fails on a cached context, and the context stays usable.
    uint8_t nonce[kIvSize] = {};
    uint8_t data[4] = {1, 2, 3, 4};
    uint8_t tag[kTagSize] = {};
    EXPECT_FALSE(crypto.open(k, nonce, nullptr, 0, data, sizeof(data), tag));
    EXPECT_TRUE(round_trip(crypto, other, k, 4));
}

TEST(RecordCrypto, MoreKeysThanTheCacheHoldsAllSealAndOpen) {
    RecordCrypto crypto;
    RecordCrypto other;
    const Aead aeads[] = {Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::Chacha20Poly1305};
    std::vector<TrafficKeys> keys;
    for (uint32_t i = 0; i < 3 * RecordCrypto::kKeyedContexts; ++i)
        keys.push_back(random_keys(aeads[i % 3], i + 7));
    // Interleaved, as records of many connections are, twice over: evictions, places
    // reused by another AEAD, and hits all come up.
    for (int pass = 0; pass < 2; ++pass)
        for (uint32_t i = 0; i < keys.size(); ++i)
            ASSERT_TRUE(round_trip(crypto, other, keys[i], i)) << "key " << i;
    size_t cached = 0;
    for (const TrafficKeys& k : keys)
        cached += crypto.cached(k) ? 1 : 0;
    EXPECT_LE(cached, RecordCrypto::kKeyedContexts);
    EXPECT_GT(cached, 0u);
}

// One record as OpenSSL's EVP computes it on a fresh context: the reference the cached
// contexts must match whatever nonce, direction or tag came before.
std::vector<uint8_t> reference_seal(const TrafficKeys& k, const uint8_t nonce[kIvSize],
                                    const uint8_t* aad, size_t aad_len, std::vector<uint8_t> data) {
    static const char* names[] = {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"};
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, names[static_cast<int>(k.aead)], nullptr);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    bool ok =
        EVP_EncryptInit_ex2(ctx, cipher, k.key, nonce, nullptr) == 1 &&
        EVP_EncryptUpdate(ctx, nullptr, &n, aad, static_cast<int>(aad_len)) == 1 &&
        EVP_EncryptUpdate(ctx, data.data(), &n, data.data(), static_cast<int>(data.size())) == 1 &&
        EVP_EncryptFinal_ex(ctx, nullptr, &n) == 1;
    uint8_t tag[kTagSize];
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    EXPECT_TRUE(ok);
    data.insert(data.end(), tag, tag + kTagSize);
    return data;
}

TEST(RecordCrypto, CachedContextsMatchAFreshContextRecordAfterRecord) {
    // A cached context only gets the next nonce (and, opening, the tag): nothing of the
    // record before may leak into the next, in either direction, after a bad tag too.
    RecordCrypto crypto;
    for (Aead aead : {Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::Chacha20Poly1305}) {
        TrafficKeys k = random_keys(aead, 40 + static_cast<uint32_t>(aead));
        for (uint32_t seq = 0; seq < 40; ++seq) {
            uint8_t nonce[kIvSize];
            std::memcpy(nonce, k.iv, kIvSize);
            nonce[kIvSize - 1] ^= static_cast<uint8_t>(seq);
            nonce[kIvSize - 2] ^= static_cast<uint8_t>(seq * 7);
            const uint8_t aad[5] = {23, 3, 3, 0, static_cast<uint8_t>(seq)};
            std::vector<uint8_t> plain(1 + seq * 37 % 300);
            for (size_t i = 0; i < plain.size(); ++i)
                plain[i] = static_cast<uint8_t>(i * seq + 3);
            const std::vector<uint8_t> want = reference_seal(k, nonce, aad, sizeof(aad), plain);
            std::vector<uint8_t> buf = plain;
            uint8_t tag[kTagSize];
            ASSERT_TRUE(crypto.seal(k, nonce, aad, sizeof(aad), buf.data(), buf.size(), tag));
            buf.insert(buf.end(), tag, tag + kTagSize);
            ASSERT_EQ(buf, want) << "aead " << static_cast<int>(aead) << " seq " << seq;
            // Every third record also opens on the same key (the direction switches),
            // every fifth first fails with a wrong tag.
            if (seq % 3 == 0) {
                std::vector<uint8_t> c(want.begin(), want.end() - kTagSize);
                if (seq % 5 == 0) {
                    uint8_t bad[kTagSize];
                    std::memcpy(bad, want.data() + plain.size(), kTagSize);
                    bad[0] ^= 1;
                    std::vector<uint8_t> c2 = c;
                    EXPECT_FALSE(
                        crypto.open(k, nonce, aad, sizeof(aad), c2.data(), c2.size(), bad));
                }
                ASSERT_TRUE(crypto.open(k, nonce, aad, sizeof(aad), c.data(), c.size(),
                                        want.data() + plain.size()));
                EXPECT_EQ(c, plain);
            }
        }
    }
}

TEST(RecordCrypto, AsManyActiveKeysAsTheCacheHoldsAllStayCached) {
    // tools/bench's small-wss keeps 100 connections (200 keys) busy. Two-way sets lost
    // about half of such keys to their set's neighbours, and each miss re-keys a context
    // (the key schedule and GHASH's table, four thousand instructions). Up to the bound,
    // every active key must stay, whatever its bytes; forgotten keys free their place.
    RecordCrypto crypto;
    RecordCrypto other;
    std::vector<TrafficKeys> keys;
    for (uint32_t i = 0; i < RecordCrypto::kKeyedContexts; ++i)
        keys.push_back(random_keys(i % 4 == 3 ? Aead::Chacha20Poly1305 : Aead::Aes128Gcm, i + 1));
    for (int pass = 0; pass < 3; ++pass)
        for (uint32_t i = 0; i < keys.size(); ++i)
            ASSERT_TRUE(round_trip(crypto, other, keys[i], i)) << "key " << i;
    for (uint32_t i = 0; i < keys.size(); ++i)
        EXPECT_TRUE(crypto.cached(keys[i])) << "key " << i;
    // Half go (connections closed), as many new ones come: all of those are cached,
    // and the ones that stayed are still there.
    for (uint32_t i = 0; i < keys.size(); i += 2) {
        crypto.forget(keys[i]);
        keys[i] = random_keys(Aead::Aes256Gcm, 100'000 + i);
    }
    for (int pass = 0; pass < 2; ++pass)
        for (uint32_t i = 0; i < keys.size(); ++i)
            ASSERT_TRUE(round_trip(crypto, other, keys[i], i)) << "key " << i;
    for (uint32_t i = 0; i < keys.size(); ++i)
        EXPECT_TRUE(crypto.cached(keys[i])) << "key " << i;
    // One key more than the bound evicts exactly one.
    TrafficKeys extra = random_keys(Aead::Aes128Gcm, 999'999);
    ASSERT_TRUE(round_trip(crypto, other, extra, 1));
    ASSERT_TRUE(round_trip(crypto, other, extra, 2));
    EXPECT_TRUE(crypto.cached(extra));
    size_t cached = 0;
    for (const TrafficKeys& k : keys)
        cached += crypto.cached(k) ? 1 : 0;
    EXPECT_EQ(cached, keys.size() - 1);
}

TEST(RecordCrypto, KeysComeAndGoInAnyOrderAndTheIndexFindsEveryOneLeft) {
    // Connections close in any order, so keys leave the index from the middle of a
    // probe run. Here only keys whose probes start at one of 8 places are used, so
    // runs are long and every removal shifts entries back.
    RecordCrypto crypto;
    RecordCrypto other;
    std::vector<TrafficKeys> live;
    std::vector<TrafficKeys> gone;
    uint32_t next = 1;
    uint32_t rng = 12345;
    auto rand = [&rng] { return rng = rng * 1103515245u + 12345u; };
    for (int step = 0; step < 4000; ++step) {
        if (live.size() < RecordCrypto::kKeyedContexts && (live.empty() || rand() % 3 != 0)) {
            TrafficKeys k;
            do {
                k = random_keys(Aead::Aes128Gcm, next++);
            } while (crypto.home(k) % 97 != 0 || crypto.home(k) / 97 >= 8);
            ASSERT_TRUE(round_trip(crypto, other, k, next));
            ASSERT_TRUE(round_trip(crypto, other, k, next + 1));
            live.push_back(k);
        } else {
            const size_t i = (rand() >> 8) % live.size();
            crypto.forget(live[i]);
            gone.push_back(live[i]);
            live[i] = live.back();
            live.pop_back();
        }
    }
    for (const TrafficKeys& k : live)
        ASSERT_TRUE(crypto.cached(k));
    for (const TrafficKeys& k : gone)
        ASSERT_FALSE(crypto.cached(k));
}

TEST(RecordCrypto, KeysAPeerPicksByTheirFirstBytesDoNotShareAProbeRun) {
    // A TLS 1.3 client knows its connection's traffic keys. It could open connections
    // and keep only those whose keys begin alike; with the keys' first bytes as the
    // index's hash, 512 such keys made one probe run of 512, and every record of every
    // connection on the worker walked it. Hashed under a secret of the worker's, they
    // spread like any other keys.
    RecordCrypto crypto;
    RecordCrypto other;
    std::vector<TrafficKeys> keys;
    for (uint32_t i = 0; i < RecordCrypto::kKeyedContexts; ++i) {
        TrafficKeys k = random_keys(Aead::Aes128Gcm, i + 1);
        std::memset(k.key, 0xa5, 8);
        keys.push_back(k);
        ASSERT_TRUE(round_trip(crypto, other, k, 1));
        ASSERT_TRUE(round_trip(crypto, other, k, 2));
    }
    EXPECT_EQ(crypto.contexts_in_use(), RecordCrypto::kKeyedContexts);
    // Linear probing at half load: the longest run is about 17, and 60 in the worst of
    // 200,000 simulated fillings; a quarter of the index is out of reach of chance.
    EXPECT_LT(crypto.longest_run(), RecordCrypto::kIndexSize / 4);
    for (const TrafficKeys& k : keys)
        EXPECT_TRUE(crypto.cached(k));
    // The secret is each worker's own.
    size_t same = 0;
    for (const TrafficKeys& k : keys)
        same += crypto.home(k) == other.home(k) ? 1 : 0;
    EXPECT_LT(same, 32u);
}

TEST(RecordCrypto, KeysUsedOnceTakeNoPlace) {
    // An idle wss connection protects two records after the switch (the upgrade request
    // and its 101), then nothing for hours. Cached, 5,000 such connections filled all
    // 512 places, about 600 KB, for keys that would never be used again. A key takes a
    // place at its second record; its first goes through a scratch context.
    RecordCrypto crypto;
    RecordCrypto other;
    std::vector<TrafficKeys> once;
    for (uint32_t i = 0; i < 2 * RecordCrypto::kKeyedContexts; ++i) {
        once.push_back(random_keys(i % 3 == 0 ? Aead::Chacha20Poly1305 : Aead::Aes256Gcm, i + 1));
        ASSERT_TRUE(round_trip(crypto, other, once.back(), i));
    }
    EXPECT_EQ(crypto.contexts_in_use(), 0u);
    for (const TrafficKeys& k : once)
        EXPECT_FALSE(crypto.cached(k));
    // A key used again takes a place.
    TrafficKeys busy = random_keys(Aead::Aes128Gcm, 5'000'000);
    ASSERT_TRUE(round_trip(crypto, other, busy, 1));
    ASSERT_TRUE(round_trip(crypto, other, busy, 2));
    EXPECT_TRUE(crypto.cached(busy));
    EXPECT_EQ(crypto.contexts_in_use(), 1u);
    // A forgotten key is gone from the scratch context too: the next key's first record
    // under the same AEAD still seals correctly, and the forgotten key is nowhere.
    TrafficKeys last = random_keys(Aead::Aes128Gcm, 77);
    ASSERT_TRUE(round_trip(crypto, other, last, 1));
    crypto.forget(last);
    EXPECT_FALSE(crypto.cached(last));
    ASSERT_TRUE(round_trip(crypto, other, random_keys(Aead::Aes128Gcm, 78), 1));
}

TEST(RecordCrypto, AKeyUpdateForgetsTheOldKey) {
    RecordCrypto crypto;
    RecordCrypto other;
    TrafficKeys k = random_keys(Aead::Aes128Gcm, 9);
    k.secret_size = 32;
    ASSERT_TRUE(round_trip(crypto, other, k, 1));
    TrafficKeys old = k;
    ASSERT_TRUE(tls13_update(crypto, k));
    EXPECT_FALSE(crypto.cached(old));
    EXPECT_TRUE(round_trip(crypto, other, k, 2));
}

TEST(RecordLayer, AlertNamesAreTheRfcs) {
    // The log names the alert that ended a connection (Endpoint::end_detail).
    EXPECT_EQ(alert_name(alert::kCloseNotify), "close_notify");
    EXPECT_EQ(alert_name(alert::kBadRecordMac), "bad_record_mac");
    EXPECT_EQ(alert_name(alert::kRecordOverflow), "record_overflow");
    EXPECT_EQ(alert_name(alert::kNoRenegotiation), "no_renegotiation");
    EXPECT_EQ(alert_name(120), "no_application_protocol");
    EXPECT_EQ(alert_name(255), "");
}

// What a reader made of a byte stream fed in pieces of `chunk` bytes.
struct Opened {
    std::string data;
    std::vector<RecordReader::Event> events;  // everything but Data and NeedMore
    bool ended = false;
};

Opened open_stream(RecordCrypto& crypto, TrafficKeys& keys, RecordReader& reader, std::string bytes,
                   size_t chunk = SIZE_MAX) {
    Opened out;
    size_t off = 0;
    while (off < bytes.size() && !out.ended) {
        size_t n = std::min(chunk, bytes.size() - off);
        auto* p = reinterpret_cast<uint8_t*>(bytes.data() + off);
        size_t used = 0;
        for (;;) {
            auto e = reader.next(crypto, keys, p + used, n - used);
            used += e.consumed;
            if (e.kind == Kind::NeedMore) break;
            if (e.kind == Kind::Data) {
                out.data.append(reinterpret_cast<char*>(e.data), e.size);
                continue;
            }
            out.events.push_back(e);
            if (e.kind == Kind::CloseNotify || e.kind == Kind::PeerAlert || e.kind == Kind::Fail) {
                out.ended = true;
                break;
            }
        }
        if (!out.ended) {
            EXPECT_EQ(used, n);  // a reader that ended stops where it did
        }
        off += n;
    }
    return out;
}

// Seals `data` in records of at most `max_record` bytes, each padded by `padding`.
std::string seal_stream(RecordCrypto& crypto, TrafficKeys& keys, const std::string& data,
                        size_t max_record = kMaxPlaintext, size_t padding = 0) {
    std::string out;
    std::vector<uint8_t> buf(kMaxSealedRecord + 256 + padding);
    size_t off = 0;
    do {
        size_t n = std::min(max_record, data.size() - off);
        std::memcpy(buf.data() + seal_prefix(keys), data.data() + off, n);
        Sealed s =
            seal(crypto, keys, ContentType::ApplicationData, buf.data(), n, buf.size(), padding);
        EXPECT_TRUE(s.status == SealStatus::Ok || s.status == SealStatus::KeyUpdateDue);
        out.append(reinterpret_cast<char*>(buf.data()), s.size);
        off += n;
    } while (off < data.size());
    return out;
}

std::string pattern(size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
    return s;
}

// A handshake whose server end is then on the record layer.
struct Switched {
    explicit Switched(TlsPair::Options o, const std::string& client_first = "",
                      SSL_CTX* server_ctx = nullptr, SSL_CTX* client_ctx = nullptr,
                      SSL_SESSION* resume = nullptr)
        : pair(o, server_ctx, client_ctx) {
        if (resume != nullptr) SSL_set_session(pair.client(), resume);
        EXPECT_TRUE(pair.handshake(client_first));
        std::string why;
        ok = pair.switch_server(crypto, keys, unread, why);
        EXPECT_TRUE(ok) << why;
    }
    // The client sends; the record layer opens.
    Opened client_to_server(const std::string& data, size_t chunk = SIZE_MAX) {
        EXPECT_TRUE(pair.client_write(data));
        return open_stream(crypto, keys.read, reader, pair.take_client_output(), chunk);
    }
    // The record layer seals; the client reads.
    std::string server_to_client(const std::string& data, size_t max_record = kMaxPlaintext,
                                 size_t padding = 0) {
        pair.give_client(seal_stream(crypto, keys.write, data, max_record, padding));
        std::string got;
        EXPECT_EQ(pair.client_read(got), SSL_ERROR_WANT_READ);
        return got;
    }
    void send_key_update(bool requested) {
        uint8_t buf[64];
        Sealed s = seal_key_update(crypto, keys.write, requested, buf, sizeof(buf));
        ASSERT_EQ(s.status, SealStatus::Ok);
        pair.give_client(buf, s.size);
    }

    TlsPair pair;
    RecordCrypto crypto;
    RecordKeys keys;
    RecordReader reader;
    std::string unread;
    bool ok = false;
};

struct Suite {
    const char* name;
    int version;
    const char* suites;
    const char* ciphers;
};

class RecordRoundTrip : public ::testing::TestWithParam<Suite> {
  protected:
    TlsPair::Options options() const {
        TlsPair::Options o;
        o.version = GetParam().version;
        o.suites = GetParam().suites;
        o.ciphers = GetParam().ciphers;
        return o;
    }
    bool tls13() const { return GetParam().version == TLS1_3_VERSION; }
};

TEST_P(RecordRoundTrip, SequenceNumbersCountWhatOpenSslProtected) {
    Switched s(options());
    ASSERT_TRUE(s.ok);
    if (tls13()) {
        EXPECT_EQ(s.keys.write.seq, 2u);  // two NewSessionTicket records
        EXPECT_EQ(s.keys.read.seq, 0u);
    } else {
        EXPECT_EQ(s.keys.write.seq, 1u);  // each side's Finished
        EXPECT_EQ(s.keys.read.seq, 1u);
    }
    EXPECT_TRUE(s.unread.empty());
}

TEST_P(RecordRoundTrip, DataBothWaysInAnyCut) {
    Switched s(options());
    ASSERT_TRUE(s.ok);
    std::string big = pattern(100000);
    EXPECT_EQ(s.server_to_client(big), big);
    EXPECT_EQ(s.server_to_client("x", 1), "x");
    EXPECT_EQ(s.server_to_client(pattern(5000, 2), 7), pattern(5000, 2));
    // Several records per read, then one byte at a time, then odd cuts.
    EXPECT_EQ(s.client_to_server(big).data, big);
    EXPECT_EQ(s.client_to_server(pattern(3000, 3), 1).data, pattern(3000, 3));
    std::string many;
    for (int i = 0; i < 20; ++i) {
        std::string piece = pattern(static_cast<size_t>(1 + i * 37), static_cast<unsigned>(i));
        ASSERT_TRUE(s.pair.client_write(piece));
        many += piece;
    }
    Opened o = open_stream(s.crypto, s.keys.read, s.reader, s.pair.take_client_output(), 13);
    EXPECT_EQ(o.data, many);
    EXPECT_TRUE(o.events.empty());
    EXPECT_FALSE(s.reader.buffering());
}

TEST_P(RecordRoundTrip, CloseNotifyFromTheClient) {
    Switched s(options());
    ASSERT_TRUE(s.ok);
    ASSERT_EQ(SSL_shutdown(s.pair.client()), 0);
    Opened o = open_stream(s.crypto, s.keys.read, s.reader, s.pair.take_client_output());
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].kind, Kind::CloseNotify);
    // RFC 8446 §6.1: anything after it is ignored.
    uint8_t junk[3] = {1, 2, 3};
    auto e = s.reader.next(s.crypto, s.keys.read, junk, 3);
    EXPECT_EQ(e.kind, Kind::CloseNotify);
    EXPECT_EQ(e.consumed, 3u);
    // Our direction stays open (a half-close), then closes too.
    EXPECT_EQ(s.server_to_client("after"), "after");
    uint8_t buf[64];
    Sealed a = seal_alert(s.crypto, s.keys.write, alert::kWarning, alert::kCloseNotify, buf, 64);
    ASSERT_EQ(a.status, SealStatus::Ok);
    s.pair.give_client(buf, a.size);
    std::string got;
    EXPECT_EQ(s.pair.client_read(got), SSL_ERROR_ZERO_RETURN);
}

TEST_P(RecordRoundTrip, CorruptedRecordIsBadRecordMac) {
    Switched s(options());
    ASSERT_TRUE(s.ok);
    ASSERT_TRUE(s.pair.client_write("hello"));
    std::string wire = s.pair.take_client_output();
    wire[wire.size() - 3] ^= 0x20;
    Opened o = open_stream(s.crypto, s.keys.read, s.reader, wire);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].kind, Kind::Fail);
    EXPECT_EQ(o.events[0].alert, alert::kBadRecordMac);
    EXPECT_TRUE(o.data.empty());
}

TEST_P(RecordRoundTrip, SealingReportsTheKeyLimit) {
    Switched s(options());
    ASSERT_TRUE(s.ok);
    const Aead aead = s.keys.write.aead;
    const uint64_t start = s.keys.write.seq;
    s.crypto.set_limits_for_test(aead, {start + 3, start + 5});
    auto seal_one = [&s](char c) {
        uint8_t buf[128];
        buf[seal_prefix(s.keys.write)] = static_cast<uint8_t>(c);
        Sealed r = seal(s.crypto, s.keys.write, ContentType::ApplicationData, buf, 1, sizeof(buf));
        if (r.size > 0) s.pair.give_client(buf, r.size);
        return r.status;
    };
    EXPECT_EQ(seal_one('a'), SealStatus::Ok);
    EXPECT_EQ(seal_one('a'), SealStatus::Ok);
    EXPECT_EQ(seal_one('a'), SealStatus::KeyUpdateDue);
    std::string read;
    EXPECT_EQ(s.pair.client_read(read), SSL_ERROR_WANT_READ);
    EXPECT_EQ(read, "aaa");
    if (tls13()) {
        // A KeyUpdate starts a fresh key, which the client follows.
        s.send_key_update(false);
        EXPECT_EQ(s.keys.write.seq, 0u);
        EXPECT_EQ(s.server_to_client("fresh"), "fresh");
    }
    // Past the KeyUpdate mark sealing goes on, up to the limit and not one record more.
    size_t sealed = 0;
    while (seal_one('b') != SealStatus::Exhausted && sealed < 10)
        ++sealed;
    EXPECT_EQ(s.keys.write.seq, start + 5);
    read.clear();
    EXPECT_EQ(s.pair.client_read(read), SSL_ERROR_WANT_READ);
    EXPECT_EQ(read, std::string(sealed, 'b'));
    // A key that may seal nothing more cannot even carry a KeyUpdate: close instead.
    uint8_t buf[64];
    EXPECT_EQ(seal_key_update(s.crypto, s.keys.write, false, buf, sizeof(buf)).status,
              tls13() ? SealStatus::Exhausted : SealStatus::Error);
}

TEST_P(RecordRoundTrip, ResumedHandshake) {
    // An abbreviated handshake changes keys at other points of the flights (TLS 1.2:
    // the server's change_cipher_spec and Finished come first).
    SSL_CTX* server_ctx = TlsPair::make_context(options(), true);
    SSL_CTX* client_ctx = TlsPair::make_context(options(), false);
    SSL_SESSION* session = nullptr;
    {
        Switched first(options(), "", server_ctx, client_ctx);
        ASSERT_TRUE(first.ok);
        EXPECT_EQ(first.server_to_client("ticket"), "ticket");  // reads the tickets
        session = SSL_get1_session(first.pair.client());
        // As after a clean close: SSL_free would otherwise mark the session unresumable.
        SSL_set_shutdown(first.pair.client(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    ASSERT_NE(session, nullptr);
    {
        Switched again(options(), "", server_ctx, client_ctx, session);
        ASSERT_TRUE(again.ok);
        EXPECT_EQ(SSL_session_reused(again.pair.client()), 1);
        EXPECT_EQ(again.server_to_client("resumed"), "resumed");
        EXPECT_EQ(again.client_to_server("and back").data, "and back");
    }
    SSL_SESSION_free(session);
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
}

INSTANTIATE_TEST_SUITE_P(
    Suites, RecordRoundTrip,
    ::testing::Values(Suite{"Tls13Aes128Gcm", TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", ""},
                      Suite{"Tls13Aes256Gcm", TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", ""},
                      Suite{"Tls13Chacha20", TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", ""},
                      Suite{"Tls12Aes128Gcm", TLS1_2_VERSION, "", "ECDHE-ECDSA-AES128-GCM-SHA256"},
                      Suite{"Tls12Aes256Gcm", TLS1_2_VERSION, "", "ECDHE-ECDSA-AES256-GCM-SHA384"},
                      Suite{"Tls12Chacha20", TLS1_2_VERSION, "", "ECDHE-ECDSA-CHACHA20-POLY1305"}),
    [](const ::testing::TestParamInfo<Suite>& i) { return std::string(i.param.name); });

TlsPair::Options tls13_options(int tickets = 2) {
    TlsPair::Options o;
    o.tickets = tickets;
    return o;
}

TEST(RecordLayerTls13, ClientDataInTheReadWithItsFinished) {
    // The client's first record arrives with its Finished: OpenSSL has not read it, the
    // record layer reads it as the client key's first record.
    Switched s(tls13_options(), "early words");
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.keys.read.seq, 0u);
    ASSERT_FALSE(s.unread.empty());
    Opened o = open_stream(s.crypto, s.keys.read, s.reader, s.unread);
    EXPECT_EQ(o.data, "early words");
    EXPECT_EQ(s.keys.read.seq, 1u);
}

TEST(RecordLayerTls13, RecordsOpenSslProtectedBeforeTheSwitchCount) {
    // Data OpenSSL read and wrote under the application keys before the switch (what
    // an Endpoint that switches late would see) moves both sequence numbers on.
    TlsPair pair(tls13_options());
    ASSERT_TRUE(pair.handshake("first"));
    char buf[64];
    size_t n = 0;
    ASSERT_EQ(SSL_read_ex(pair.server(), buf, sizeof(buf), &n), 1);
    EXPECT_EQ(std::string(buf, n), "first");
    ASSERT_EQ(SSL_write_ex(pair.server(), "from OpenSSL", 12, &n), 1);
    RecordCrypto crypto;
    RecordKeys keys;
    std::string unread, why;
    ASSERT_TRUE(pair.switch_server(crypto, keys, unread, why)) << why;
    EXPECT_EQ(keys.read.seq, 1u);
    EXPECT_EQ(keys.write.seq, 3u);  // two tickets and the data
    EXPECT_TRUE(unread.empty());
    std::vector<uint8_t> rec(64);
    std::memcpy(rec.data() + seal_prefix(keys.write), "from us", 7);
    Sealed sealed =
        seal(crypto, keys.write, ContentType::ApplicationData, rec.data(), 7, rec.size());
    ASSERT_EQ(sealed.status, SealStatus::Ok);
    pair.give_client(rec.data(), sealed.size);
    std::string got;
    EXPECT_EQ(pair.client_read(got), SSL_ERROR_WANT_READ);
    EXPECT_EQ(got, "from OpenSSLfrom us");
    ASSERT_TRUE(pair.client_write("to us"));
    RecordReader reader;
    EXPECT_EQ(open_stream(crypto, keys.read, reader, pair.take_client_output()).data, "to us");
}

TEST(RecordLayerTls13, NoTickets) {
    Switched s(tls13_options(0));
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.keys.write.seq, 0u);
    EXPECT_EQ(s.server_to_client("hi"), "hi");
}

TEST(RecordLayerTls13, ClientKeyUpdateRequested) {
    Switched s(tls13_options());
    ASSERT_TRUE(s.ok);
    ASSERT_EQ(SSL_key_update(s.pair.client(), SSL_KEY_UPDATE_REQUESTED), 1);
    Opened o = s.client_to_server("after the update");
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].kind, Kind::KeyUpdate);
    EXPECT_TRUE(o.events[0].update_requested);
    EXPECT_EQ(o.data, "after the update");
    EXPECT_EQ(s.keys.read.seq, 1u);
    // Answer with our own, as §4.6.3 asks; the client must read what follows under it.
    s.send_key_update(false);
    EXPECT_EQ(s.server_to_client("answered"), "answered");
    // And once more, unrequested, the other way round.
    ASSERT_EQ(SSL_key_update(s.pair.client(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    o = s.client_to_server("again", 1);
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_FALSE(o.events[0].update_requested);
    EXPECT_EQ(o.data, "again");
}

TEST(RecordLayerTls13, OurKeyUpdateRequestedIsAnswered) {
    Switched s(tls13_options());
    ASSERT_TRUE(s.ok);
    s.send_key_update(true);
    EXPECT_EQ(s.server_to_client("new keys"), "new keys");
    // OpenSSL answers with its own KeyUpdate before its next data.
    Opened o = s.client_to_server("reply");
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].kind, Kind::KeyUpdate);
    EXPECT_FALSE(o.events[0].update_requested);
    EXPECT_EQ(o.data, "reply");
    for (int i = 0; i < 3; ++i) {
        s.send_key_update(false);
        EXPECT_EQ(s.server_to_client("round " + std::to_string(i)), "round " + std::to_string(i));
    }
}

TEST(RecordLayerTls13, PaddingBothWays) {
    Switched s(tls13_options());
    ASSERT_TRUE(s.ok);
    ASSERT_EQ(SSL_set_block_padding(s.pair.client(), 512), 1);
    std::string data = pattern(3000, 9);
    Opened o = s.client_to_server(data, 100);
    EXPECT_EQ(o.data, data);
    EXPECT_EQ(s.server_to_client(data, 1000, 300), data);
    // The largest padding a full record allows: 2^14 + 1 - 1 - len bytes.
    EXPECT_EQ(s.server_to_client("p", 1, kMaxPlaintext - 1), "p");
}

// Records the record layer's own peer would send: a second set of the client's keys
// seals what OpenSSL would never send.
class RecordReaderRules : public ::testing::Test {
  protected:
    void SetUp() override {
        std::vector<uint8_t> secret = unhex(kClientAppSecret);
        ASSERT_TRUE(tls13_keys(crypto, Aead::Aes128Gcm, secret.data(), secret.size(), peer));
        mine = peer;
    }
    std::string record(ContentType type, const std::string& body, size_t padding = 0) {
        std::vector<uint8_t> buf(kMaxSealedRecord + padding + 64);
        std::memcpy(buf.data() + seal_prefix(peer), body.data(), body.size());
        Sealed s = seal(crypto, peer, type, buf.data(), body.size(), buf.size(), padding);
        EXPECT_TRUE(s.status == SealStatus::Ok || s.status == SealStatus::KeyUpdateDue);
        return std::string(reinterpret_cast<char*>(buf.data()), s.size);
    }
    RecordReader::Event first_event(const std::string& wire) {
        Opened o = open_stream(crypto, mine, reader, wire);
        if (o.events.empty()) return {};
        return o.events[0];
    }

    RecordCrypto crypto;
    TrafficKeys peer;
    TrafficKeys mine;
    RecordReader reader;
};

TEST_F(RecordReaderRules, KeyUpdateWithABadValueIsIllegalParameter) {
    auto e = first_event(record(ContentType::Handshake, std::string("\x18\0\0\x01\x02", 5)));
    EXPECT_EQ(e.kind, Kind::Fail);
    EXPECT_EQ(e.alert, alert::kIllegalParameter);
}

TEST_F(RecordReaderRules, KeyUpdateNotEndingItsRecordIsUnexpected) {
    auto e = first_event(record(ContentType::Handshake, std::string("\x18\0\0\x01\x00\x18", 6)));
    EXPECT_EQ(e.alert, alert::kUnexpectedMessage);
}

TEST_F(RecordReaderRules, NewSessionTicketFromAClientIsUnexpected) {
    auto e = first_event(record(ContentType::Handshake, std::string("\x04\0\0\x01\x00", 5)));
    EXPECT_EQ(e.kind, Kind::Fail);
    EXPECT_EQ(e.alert, alert::kUnexpectedMessage);
}

TEST_F(RecordReaderRules, AllZeroInnerPlaintextIsUnexpected) {
    // A record whose content type is 0 reads as padding only.
    auto e = first_event(record(static_cast<ContentType>(0), "", 10));
    EXPECT_EQ(e.alert, alert::kUnexpectedMessage);
}

TEST_F(RecordReaderRules, ChangeCipherSpecAfterTheHandshakeIsUnexpected) {
    auto e = first_event(std::string("\x14\x03\x03\x00\x01\x01", 6));
    EXPECT_EQ(e.alert, alert::kUnexpectedMessage);
    RecordReader inner;
    Opened o = open_stream(crypto, mine, inner, record(ContentType::ChangeCipherSpec, "\x01"));
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].alert, alert::kUnexpectedMessage);
}

TEST_F(RecordReaderRules, OversizedRecordsOverflow) {
    // §5.2: a ciphertext longer than 2^14 + 256 is refused from its header alone.
    std::string header("\x17\x03\x03\x41\x01", 5);  // 16641 = 2^14 + 257
    auto e = first_event(header);
    EXPECT_EQ(e.alert, alert::kRecordOverflow);
    // §5.4: an inner plaintext longer than 2^14 + 1 (here data of 2^14 and one byte of
    // padding), sealed by a peer that ignored the limit.
    TrafficKeys cheat = peer;
    std::vector<uint8_t> buf(kMaxCiphertext13 + 64);
    const size_t inner = kMaxPlaintext + 2;
    std::memset(buf.data(), 0, buf.size());
    buf[kHeaderSize + kMaxPlaintext] = 23;
    uint8_t nonce[kIvSize];
    std::memcpy(nonce, cheat.iv, kIvSize);
    buf[0] = 23;
    buf[1] = buf[2] = 3;
    buf[3] = static_cast<uint8_t>((inner + kTagSize) >> 8);
    buf[4] = static_cast<uint8_t>(inner + kTagSize);
    ASSERT_TRUE(crypto.seal(cheat, nonce, buf.data(), kHeaderSize, buf.data() + kHeaderSize, inner,
                            buf.data() + kHeaderSize + inner));
    RecordReader fresh;
    Opened o = open_stream(
        crypto, mine, fresh,
        std::string(reinterpret_cast<char*>(buf.data()), kHeaderSize + inner + kTagSize));
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].alert, alert::kRecordOverflow);
}

TEST_F(RecordReaderRules, AlertsAndEmptyRecords) {
    // One statement each: the records must be sealed in order.
    std::string wire = record(ContentType::ApplicationData, "");
    wire += record(ContentType::Alert, std::string("\x01\x5a", 2));  // user_canceled
    wire += record(ContentType::ApplicationData, "x");
    wire += record(ContentType::Alert, std::string("\x02\x28", 2));  // handshake_failure
    Opened o = open_stream(crypto, mine, reader, wire, 3);
    EXPECT_EQ(o.data, "x");
    ASSERT_EQ(o.events.size(), 1u);
    EXPECT_EQ(o.events[0].kind, Kind::PeerAlert);
    EXPECT_EQ(o.events[0].alert, 40);
    RecordReader r2;
    Opened bad = open_stream(crypto, mine, r2, record(ContentType::Alert, "\x01"));
    ASSERT_EQ(bad.events.size(), 1u);
    EXPECT_EQ(bad.events[0].alert, alert::kDecodeError);
}

// A peer's records that carry no data (empty ones, warnings, KeyUpdates) cost a
// decryption each and move nothing: a run of them longer than
// kMaxRecordsWithoutData ends the connection, as OpenSSL bounds empty records.
TEST_F(RecordReaderRules, RecordsWithoutDataInARowAreBounded) {
    auto key_update = [this] {
        uint8_t buf[64];
        Sealed s = seal_key_update(crypto, peer, false, buf, sizeof(buf));
        EXPECT_EQ(s.status, SealStatus::Ok);
        return std::string(reinterpret_cast<char*>(buf), s.size);
    };
    std::string wire;
    for (size_t i = 0; i < kMaxRecordsWithoutData; ++i)
        wire += i % 2 == 0 ? record(ContentType::ApplicationData, "") : key_update();
    wire += record(ContentType::ApplicationData, "x");  // data: the run starts again
    for (size_t i = 0; i < kMaxRecordsWithoutData; ++i)
        wire += key_update();
    wire += record(ContentType::ApplicationData, "y");
    Opened o = open_stream(crypto, mine, reader, wire, 7);
    EXPECT_EQ(o.data, "xy");
    EXPECT_FALSE(o.ended);
    std::string more;
    for (size_t i = 0; i <= kMaxRecordsWithoutData; ++i)
        more += record(ContentType::ApplicationData, "");
    o = open_stream(crypto, mine, reader, more);
    ASSERT_FALSE(o.events.empty());
    EXPECT_EQ(o.events.back().kind, Kind::Fail);
    EXPECT_EQ(o.events.back().alert, alert::kUnexpectedMessage);
}

TEST_F(RecordReaderRules, SequenceNumberNeverWraps) {
    crypto.set_limits_for_test(Aead::Aes128Gcm, {UINT64_MAX, UINT64_MAX});
    peer.seq = mine.seq = UINT64_MAX - 1;
    std::string last = record(ContentType::ApplicationData, "last");
    Opened o = open_stream(crypto, mine, reader, last);
    EXPECT_EQ(o.data, "last");
    uint8_t buf[64];
    buf[kHeaderSize] = 'y';
    Sealed s = seal(crypto, peer, ContentType::ApplicationData, buf, 1, sizeof(buf));
    EXPECT_EQ(s.status, SealStatus::Exhausted);
}

TEST(RecordLayerTls12, RenegotiationIsReported) {
    TlsPair::Options o;
    o.version = TLS1_2_VERSION;
    Switched s(o);
    ASSERT_TRUE(s.ok);
    ASSERT_EQ(SSL_renegotiate(s.pair.client()), 1);
    SSL_do_handshake(s.pair.client());
    Opened got = open_stream(s.crypto, s.keys.read, s.reader, s.pair.take_client_output());
    ASSERT_EQ(got.events.size(), 1u);
    EXPECT_EQ(got.events[0].kind, Kind::Renegotiation);
    // Refused with a warning: the client gives up its renegotiation.
    uint8_t buf[64];
    Sealed a =
        seal_alert(s.crypto, s.keys.write, alert::kWarning, alert::kNoRenegotiation, buf, 64);
    ASSERT_EQ(a.status, SealStatus::Ok);
    s.pair.give_client(buf, a.size);
    std::string read;
    EXPECT_EQ(s.pair.client_read(read), SSL_ERROR_SSL);
}

// RFC 5746 §4.4 lets a server refuse a renegotiation with a warning; a client that
// asks again after the refusal is closed, so that refusals cannot be made to queue
// one alert after another.
TEST(RecordLayerTls12, ASecondRenegotiationIsUnexpected) {
    TlsPair::Options o;
    o.version = TLS1_2_VERSION;
    Switched s(o);
    ASSERT_TRUE(s.ok);
    ASSERT_EQ(SSL_renegotiate(s.pair.client()), 1);
    SSL_do_handshake(s.pair.client());
    std::string hello = s.pair.take_client_output();
    Opened got = open_stream(s.crypto, s.keys.read, s.reader, hello);
    ASSERT_EQ(got.events.size(), 1u);
    EXPECT_EQ(got.events[0].kind, Kind::Renegotiation);
    // Another ClientHello (its first byte is all the reader looks at), sealed by hand
    // under the client's next sequence number: OpenSSL's client gives up after the
    // refusal.
    TrafficKeys client_write = s.keys.read;
    std::vector<uint8_t> buf(kMaxSealedRecord);
    const std::string message("\x01\x00\x00\x00", 4);
    std::memcpy(buf.data() + seal_prefix(client_write), message.data(), message.size());
    Sealed again = seal(s.crypto, client_write, ContentType::Handshake, buf.data(), message.size(),
                        buf.size());
    ASSERT_EQ(again.status, SealStatus::Ok);
    got = open_stream(s.crypto, s.keys.read, s.reader,
                      std::string(reinterpret_cast<char*>(buf.data()), again.size));
    ASSERT_EQ(got.events.size(), 1u);
    EXPECT_EQ(got.events[0].kind, Kind::Fail);
    EXPECT_EQ(got.events[0].alert, alert::kUnexpectedMessage);
}

TEST(RecordCounter, CountsRecordsInAnyCut) {
    // A change_cipher_spec, then two records, one of them empty.
    std::string wire(
        "\x14\x03\x03\x00\x01\x01"
        "\x16\x03\x03\x00\x02\xaa\xbb"
        "\x17\x03\x03\x00\x00",
        18);
    for (size_t cut = 1; cut <= wire.size(); ++cut) {
        RecordCounter c;
        for (size_t off = 0; off < wire.size(); off += cut)
            c.feed(reinterpret_cast<const uint8_t*>(wire.data()) + off,
                   std::min(cut, wire.size() - off));
        EXPECT_TRUE(c.at_boundary());
        EXPECT_TRUE(c.saw_change_cipher_spec());
        EXPECT_EQ(c.records(), 3u);
        EXPECT_EQ(c.records_after_ccs(), 2u);
    }
    RecordCounter half;
    half.feed(reinterpret_cast<const uint8_t*>(wire.data()), 8);
    EXPECT_FALSE(half.at_boundary());
    EXPECT_EQ(half.records(), 1u);
}

TEST(KeylogSecrets, TakesTheTrafficSecrets) {
    KeylogSecrets s;
    std::string random(64, 'a');
    EXPECT_EQ(s.take(("SERVER_HANDSHAKE_TRAFFIC_SECRET " + random + " 00").c_str()),
              KeylogSecrets::Line::Other);
    EXPECT_EQ(s.take(("CLIENT_TRAFFIC_SECRET_0 " + random + " " + kClientAppSecret).c_str()),
              KeylogSecrets::Line::ClientTraffic);
    EXPECT_EQ(s.client_size, 32);
    EXPECT_EQ(std::vector<uint8_t>(s.client, s.client + 32), unhex(kClientAppSecret));
    EXPECT_EQ(s.take(("SERVER_TRAFFIC_SECRET_0 " + random + " abc").c_str()),
              KeylogSecrets::Line::Other);  // odd number of digits
    EXPECT_EQ(s.take(("SERVER_TRAFFIC_SECRET_0 short " + std::string(kServerAppSecret)).c_str()),
              KeylogSecrets::Line::Other);
    s.clear();
    EXPECT_EQ(s.client_size, 0);
}

}  // namespace
}  // namespace sb::tls
