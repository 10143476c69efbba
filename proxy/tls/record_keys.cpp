#include "tls/record_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>

namespace sb::tls {

namespace {

constexpr const char* kCipherNames[kAeadCount] = {"AES-128-GCM", "AES-256-GCM",
                                                  "ChaCha20-Poly1305"};

// RFC 8446 §5.5: AES-GCM may protect 2^24.5 full-size records under one key (about 24
// million); ask for a KeyUpdate at 2^24, well before. ChaCha20-Poly1305's limit lies
// beyond 2^64 records, so only the sequence number bounds it: it must never wrap
// (§5.3), so the last value, 2^64 - 1, is never used, and a KeyUpdate is asked for
// halfway there.
constexpr KeyLimits kGcmLimits{uint64_t{1} << 24, 23'726'566};  // floor(2^24.5)
constexpr KeyLimits kChachaLimits{uint64_t{1} << 63, UINT64_MAX};

const char* digest_name(size_t hash_size) {
    return hash_size == 48 ? "SHA384" : "SHA256";
}

}  // namespace

size_t key_size(Aead aead) {
    return aead == Aead::Aes128Gcm ? 16 : 32;
}

RecordCrypto::RecordCrypto() {
    limits_[0] = limits_[1] = kGcmLimits;
    limits_[2] = kChachaLimits;
    // The first key takes place 0.
    for (size_t i = 0; i < kKeyedContexts; ++i)
        free_[i] = static_cast<uint16_t>(kKeyedContexts - 1 - i);
    free_count_ = kKeyedContexts;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&secret_), sizeof(secret_)) != 1) {
        secret_ = std::random_device{}();
        secret_ = secret_ << 32 | std::random_device{}();
    }
    ok_ = true;
    for (size_t i = 0; i < kAeadCount; ++i) {
        ciphers_[i] = EVP_CIPHER_fetch(nullptr, kCipherNames[i], nullptr);
        // A context can be bound to the cipher: checked now, not at the first record.
        EVP_CIPHER_CTX* probe = EVP_CIPHER_CTX_new();
        if (ciphers_[i] == nullptr || probe == nullptr ||
            EVP_CipherInit_ex2(probe, ciphers_[i], nullptr, nullptr, 1, nullptr) != 1) {
            ok_ = false;
        }
        EVP_CIPHER_CTX_free(probe);
    }
    tls13_kdf_ = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_TLS1_3_KDF, nullptr);
    tls1_prf_ = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_TLS1_PRF, nullptr);
    if (tls13_kdf_ == nullptr || tls1_prf_ == nullptr) ok_ = false;
}

RecordCrypto::~RecordCrypto() {
    for (Keyed& k : keyed_)
        clear(k);
    for (Keyed& k : scratch_)
        clear(k);
    for (size_t i = 0; i < kAeadCount; ++i)
        EVP_CIPHER_free(ciphers_[i]);
    EVP_KDF_free(tls13_kdf_);
    EVP_KDF_free(tls1_prf_);
}

void RecordCrypto::clear(Keyed& k) {
    EVP_CIPHER_CTX_free(k.ctx);  // cleanses the key schedule
    OPENSSL_cleanse(k.key, sizeof(k.key));
    k.ctx = nullptr;
    k.valid = false;
}

namespace {

// Whether two keys of n bytes (16 or 32) are equal, in time that does not depend on
// where they differ: a word at a time, as CRYPTO_memcmp does a byte at a time, at a
// tenth of its cost on every record.
bool same_key(const uint8_t* a, const uint8_t* b, size_t n) {
    uint64_t diff = 0;
    for (size_t i = 0; i < n; i += sizeof(uint64_t)) {
        uint64_t x, y;
        std::memcpy(&x, a + i, sizeof(x));
        std::memcpy(&y, b + i, sizeof(y));
        diff |= x ^ y;
    }
    return diff == 0;
}

constexpr size_t kIndexMask = RecordCrypto::kIndexSize - 1;

}  // namespace

size_t RecordCrypto::home(const TrafficKeys& keys) const {
    return bucket_of(keys.key);
}

size_t RecordCrypto::bucket_of(const uint8_t* key) const {
    // Keys are random, but a TLS 1.3 client knows its own and may keep only the
    // connections whose keys collide: under a secret of this worker's it cannot tell
    // which do. Every key has at least 16 bytes; two that share them are the same key
    // to anyone but a brute force of 2^64.
    return XXH3_64bits_withSeed(key, 16, secret_) & kIndexMask;
}

size_t RecordCrypto::longest_run() const {
    size_t longest = 0;
    size_t run = 0;
    // Twice round, so that a run across the end of the index counts whole.
    for (size_t i = 0; i < 2 * kIndexSize; ++i) {
        run = index_[i & kIndexMask] != 0 ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    return std::min(longest, kIndexSize);
}

RecordCrypto::Keyed* RecordCrypto::find(const TrafficKeys& keys) {
    const size_t n = key_size(keys.aead);
    // At most half the index is in use: a probe always meets a hole.
    for (size_t b = bucket_of(keys.key);; b = (b + 1) & kIndexMask) {
        const uint16_t e = index_[b];
        if (e == 0) return nullptr;
        Keyed& k = keyed_[e - 1];
        if (k.aead == keys.aead && same_key(k.key, keys.key, n)) return &k;
    }
}

void RecordCrypto::index(size_t place) {
    size_t b = bucket_of(keyed_[place].key);
    while (index_[b] != 0)
        b = (b + 1) & kIndexMask;
    index_[b] = static_cast<uint16_t>(place + 1);
}

void RecordCrypto::unindex(size_t place) {
    size_t hole = bucket_of(keyed_[place].key);
    while (index_[hole] != place + 1)
        hole = (hole + 1) & kIndexMask;
    // Linear probing without tombstones: each later entry of the run moves back into
    // the hole unless its own bucket lies after the hole (cyclically), where a probe
    // for it starts past the hole anyway.
    for (size_t j = (hole + 1) & kIndexMask; index_[j] != 0; j = (j + 1) & kIndexMask) {
        const size_t home = bucket_of(keyed_[index_[j] - 1].key);
        if (((j - home) & kIndexMask) >= ((j - hole) & kIndexMask)) {
            index_[hole] = index_[j];
            hole = j;
        }
    }
    index_[hole] = 0;
}

size_t RecordCrypto::take_place() {
    if (free_count_ > 0) return free_[--free_count_];
    // Every place holds a key: the clock's hand gives each key used since it last
    // passed another round, and takes the first that was not.
    for (;;) {
        const size_t place = hand_;
        hand_ = (hand_ + 1) % kKeyedContexts;
        Keyed& k = keyed_[place];
        if (k.referenced) {
            k.referenced = false;
            continue;
        }
        unindex(place);
        // Its context is reused (re-keyed, or freed for another AEAD); its key goes now,
        // since a shorter key would overwrite only part of it.
        OPENSSL_cleanse(k.key, sizeof(k.key));
        k.valid = false;
        return place;
    }
}

void RecordCrypto::drop(size_t place) {
    unindex(place);
    clear(keyed_[place]);
    free_[free_count_++] = static_cast<uint16_t>(place);
}

bool RecordCrypto::cached(const TrafficKeys& keys) const {
    return const_cast<RecordCrypto*>(this)->find(keys) != nullptr;
}

void RecordCrypto::forget(const TrafficKeys& keys) {
    if (Keyed* k = find(keys)) drop(static_cast<size_t>(k - keyed_));
    // The scratch context may hold the key's schedule: it goes too.
    Keyed& s = scratch_[static_cast<size_t>(keys.aead)];
    if (s.valid && same_key(s.key, keys.key, key_size(keys.aead))) clear(s);
}

bool RecordCrypto::key_context(Keyed& k, const TrafficKeys& keys, int enc,
                               const uint8_t nonce[kIvSize], uint8_t* tag) {
    const size_t a = static_cast<size_t>(keys.aead);
    k.valid = false;
    if (k.ctx != nullptr && k.aead != keys.aead) {
        EVP_CIPHER_CTX_free(k.ctx);
        k.ctx = nullptr;
    }
    if (k.ctx == nullptr) {
        // Bound to its cipher once: later inits pass no cipher, so OpenSSL keeps the
        // provider's context and only re-keys it.
        k.ctx = EVP_CIPHER_CTX_new();
        if (k.ctx == nullptr ||
            EVP_CipherInit_ex2(k.ctx, ciphers_[a], nullptr, nullptr, enc, nullptr) != 1) {
            clear(k);
            return false;
        }
    }
    k.aead = keys.aead;
    if (EVP_CipherInit_ex2(k.ctx, nullptr, keys.key, nonce, enc, nullptr) != 1 ||
        !set_tag(k.ctx, enc, tag)) {
        clear(k);
        return false;
    }
    std::memcpy(k.key, keys.key, key_size(keys.aead));
    k.enc = static_cast<int8_t>(enc);
    k.valid = true;
    return true;
}

EVP_CIPHER_CTX* RecordCrypto::keyed(const TrafficKeys& keys, int enc, const uint8_t nonce[kIvSize],
                                    uint8_t* tag) {
    if (Keyed* k = find(keys)) {
        k->referenced = true;
        if (k->aead != Aead::Chacha20Poly1305 && k->enc == enc) {
            // AES-GCM in the same direction: the key schedule is there, only the nonce
            // (and, opening, the expected tag) change, set as one parameter list.
            // EVP_CipherInit_ex2 would do the same after asking the provider for the IV's
            // length, a quarter of a small record's cost. A fixed IV of length -1 is the
            // whole nonce (OpenSSL's EVP_CTRL_GCM_SET_IV_FIXED with -1, as its own TLS
            // record layer uses it).
            OSSL_PARAM params[] = {
                OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED,
                                                  const_cast<uint8_t*>(nonce), SIZE_MAX),
                enc == 0
                    ? OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize)
                    : OSSL_PARAM_construct_end(),
                OSSL_PARAM_construct_end(),
            };
            if (EVP_CIPHER_CTX_set_params(k->ctx, params) != 1) {
                drop(static_cast<size_t>(k - keyed_));
                return nullptr;
            }
            return k->ctx;
        }
        // ChaCha20-Poly1305 (whose fixed IV means something else), or the key's
        // direction switched (only tests seal and open under one key).
        if (EVP_CipherInit_ex2(k->ctx, nullptr, nullptr, nonce, enc, nullptr) != 1 ||
            !set_tag(k->ctx, enc, tag)) {
            drop(static_cast<size_t>(k - keyed_));
            return nullptr;
        }
        k->enc = static_cast<int8_t>(enc);
        return k->ctx;
    }
    if (!keys.used) {
        // Its first record: the AEAD's scratch context, so that a key used once (an
        // idle connection's upgrade and 101) takes no place.
        keys.used = true;
        Keyed& scratch = scratch_[static_cast<size_t>(keys.aead)];
        return key_context(scratch, keys, enc, nonce, tag) ? scratch.ctx : nullptr;
    }
    const size_t place = take_place();
    Keyed& k = keyed_[place];
    if (!key_context(k, keys, enc, nonce, tag)) {
        // Not indexed yet: the place only goes back to the free ones.
        free_[free_count_++] = static_cast<uint16_t>(place);
        return nullptr;
    }
    k.referenced = true;
    index(place);
    return k.ctx;
}

bool RecordCrypto::set_tag(EVP_CIPHER_CTX* ctx, int enc, uint8_t* tag) {
    if (enc != 0) return true;
    // The tag as a parameter: EVP_CIPHER_CTX_ctrl would build the same array and look
    // up the control's name on every record. Set before the data, as OpenSSL's TLS 1.3
    // record layer does.
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize),
        OSSL_PARAM_construct_end(),
    };
    return EVP_CIPHER_CTX_set_params(ctx, params) == 1;
}

bool RecordCrypto::crypt(const TrafficKeys& keys, int enc, const uint8_t nonce[kIvSize],
                         const uint8_t* aad, size_t aad_len, uint8_t* data, size_t len,
                         uint8_t* tag) {
    if (!ok_) return false;
    EVP_CIPHER_CTX* ctx = keyed(keys, enc, nonce, tag);
    if (ctx == nullptr) return false;
    int n = 0;
    // Records are at most 2^14 + 256 bytes: the int conversions below cannot overflow.
    if (aad_len > 0 && EVP_CipherUpdate(ctx, nullptr, &n, aad, static_cast<int>(aad_len)) != 1)
        return false;
    if (len > 0 && EVP_CipherUpdate(ctx, data, &n, data, static_cast<int>(len)) != 1) return false;
    if (EVP_CipherFinal_ex(ctx, data + len, &n) != 1) return false;  // the tag check
    if (enc == 0) return true;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize),
        OSSL_PARAM_construct_end(),
    };
    return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

bool RecordCrypto::seal(const TrafficKeys& keys, const uint8_t nonce[kIvSize], const uint8_t* aad,
                        size_t aad_len, uint8_t* data, size_t len, uint8_t tag[kTagSize]) {
    return crypt(keys, 1, nonce, aad, aad_len, data, len, tag);
}

bool RecordCrypto::open(const TrafficKeys& keys, const uint8_t nonce[kIvSize], const uint8_t* aad,
                        size_t aad_len, uint8_t* data, size_t len, const uint8_t tag[kTagSize]) {
    // EVP_CTRL_AEAD_SET_TAG takes a non-const pointer but only copies from it.
    uint8_t copy[kTagSize];
    std::memcpy(copy, tag, kTagSize);
    return crypt(keys, 0, nonce, aad, aad_len, data, len, copy);
}

bool hkdf_expand_label(RecordCrypto& crypto, size_t hash_size, const uint8_t* secret,
                       const char* label, uint8_t* out, size_t out_size) {
    // RFC 8446 §7.1: HKDF-Expand-Label(Secret, Label, Context, Length) =
    //   HKDF-Expand(Secret, HkdfLabel, Length), HkdfLabel = uint16 length ||
    //   opaque label<7..255> = "tls13 " + Label || opaque context<0..255>.
    // OpenSSL's TLS13-KDF builds HkdfLabel from the prefix, label and data parameters.
    EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(crypto.tls13_kdf());
    if (kctx == nullptr) return false;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    static const char kPrefix[] = "tls13 ";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                         const_cast<char*>(digest_name(hash_size)), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret),
                                          hash_size),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, const_cast<char*>(kPrefix),
                                          sizeof(kPrefix) - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, const_cast<char*>(label),
                                          std::strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    bool ok = EVP_KDF_derive(kctx, out, out_size, params) == 1;
    EVP_KDF_CTX_free(kctx);
    return ok;
}

bool tls13_keys(RecordCrypto& crypto, Aead aead, const uint8_t* secret, size_t secret_size,
                TrafficKeys& out) {
    if (secret_size != 32 && secret_size != 48) return false;
    out = TrafficKeys{};
    out.aead = aead;
    out.version = RecordVersion::Tls13;
    out.secret_size = static_cast<uint8_t>(secret_size);
    std::memcpy(out.secret, secret, secret_size);
    // RFC 8446 §7.3: [sender]_write_key = HKDF-Expand-Label(Secret, "key", "", key_length),
    // [sender]_write_iv = HKDF-Expand-Label(Secret, "iv", "", iv_length).
    return hkdf_expand_label(crypto, secret_size, secret, "key", out.key, key_size(aead)) &&
           hkdf_expand_label(crypto, secret_size, secret, "iv", out.iv, kIvSize);
}

bool tls13_update(RecordCrypto& crypto, TrafficKeys& keys) {
    if (keys.version != RecordVersion::Tls13) return false;
    // RFC 8446 §7.2: application_traffic_secret_N+1 =
    //   HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "", Hash.length).
    uint8_t next[kMaxSecretSize];
    if (!hkdf_expand_label(crypto, keys.secret_size, keys.secret, "traffic upd", next,
                           keys.secret_size))
        return false;
    // The old key protects nothing more: its cached schedule goes.
    crypto.forget(keys);
    // §5.3: the sequence number restarts at 0 with every key change (tls13_keys does).
    bool ok = tls13_keys(crypto, keys.aead, next, keys.secret_size, keys);
    OPENSSL_cleanse(next, sizeof(next));
    return ok;
}

bool tls12_keys(RecordCrypto& crypto, Aead aead, const char* prf_digest, const uint8_t master[48],
                const uint8_t client_random[32], const uint8_t server_random[32],
                TrafficKeys& client, TrafficKeys& server) {
    // RFC 5246 §6.3: key_block = PRF(master_secret, "key expansion",
    //   server_random + client_random), cut into client_write_MAC_key, server_write_MAC_key,
    //   client_write_key, server_write_key, client_write_IV, server_write_IV. AEAD suites
    //   have no MAC keys; their IV is 4 bytes for AES-GCM (RFC 5288 §3, the salt) and 12
    //   for ChaCha20-Poly1305 (RFC 7905 §2).
    const size_t klen = key_size(aead);
    const size_t ivlen = aead == Aead::Chacha20Poly1305 ? kIvSize : 4;
    static const char kLabel[] = "key expansion";
    uint8_t seed[sizeof(kLabel) - 1 + 64];
    std::memcpy(seed, kLabel, sizeof(kLabel) - 1);
    std::memcpy(seed + sizeof(kLabel) - 1, server_random, 32);
    std::memcpy(seed + sizeof(kLabel) - 1 + 32, client_random, 32);
    uint8_t block[2 * (kMaxKeySize + kIvSize)];
    EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(crypto.tls1_prf());
    if (kctx == nullptr) return false;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(prf_digest), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, const_cast<uint8_t*>(master), 48),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed)),
        OSSL_PARAM_construct_end(),
    };
    bool ok = EVP_KDF_derive(kctx, block, 2 * (klen + ivlen), params) == 1;
    EVP_KDF_CTX_free(kctx);
    if (!ok) return false;
    client = TrafficKeys{};
    server = TrafficKeys{};
    for (TrafficKeys* k : {&client, &server}) {
        k->aead = aead;
        k->version = RecordVersion::Tls12;
    }
    std::memcpy(client.key, block, klen);
    std::memcpy(server.key, block + klen, klen);
    std::memcpy(client.iv, block + 2 * klen, ivlen);
    std::memcpy(server.iv, block + 2 * klen + ivlen, ivlen);
    OPENSSL_cleanse(block, sizeof(block));
    return true;
}

}  // namespace sb::tls
