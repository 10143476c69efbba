// Keys for protecting TLS records without OpenSSL's SSL object, once a handshake is
// done: TrafficKeys (one direction's key, IV and sequence number, about a hundred
// bytes), the key schedules that make them (TLS 1.3 HKDF-Expand-Label, RFC 8446 §7.1
// and §7.3, and KeyUpdate's next secret, §7.2; the TLS 1.2 key block, RFC 5246 §6.3),
// and RecordCrypto, the per-worker half: the ciphers fetched once, a bounded cache of
// keyed cipher contexts for the keys in use, and the key usage limits.
//
// TrafficKeys are owned by a connection (two per connection, one per direction) and
// hold no OpenSSL object; RecordCrypto is owned by a worker and used on its thread only.
#pragma once

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstddef>
#include <cstdint>

namespace sb::tls {

// The AEADs TLS 1.3 and TLS 1.2 (RFC 5288, RFC 7905) connections may switch to. TLS 1.3's
// CCM suites are not here: OpenSSL does not offer them unless configured to, and a
// connection that negotiates one stays on OpenSSL.
enum class Aead : uint8_t { Aes128Gcm, Aes256Gcm, Chacha20Poly1305 };
inline constexpr size_t kAeadCount = 3;

enum class RecordVersion : uint8_t { Tls12, Tls13 };

inline constexpr size_t kTagSize = 16;        // every AEAD here has a 16-byte tag
inline constexpr size_t kIvSize = 12;         // RFC 8446 §5.3: max(8, N_MIN) = 12 for these AEADs
inline constexpr size_t kMaxKeySize = 32;     // AES-256, ChaCha20
inline constexpr size_t kMaxSecretSize = 48;  // SHA-384 (TLS_AES_256_GCM_SHA384)

size_t key_size(Aead aead);

// One direction of a connection: what seals or opens its next record. Plain bytes, no
// pointer: a connection keeps two of these instead of an SSL object.
struct TrafficKeys {
    // The next record's sequence number (RFC 8446 §5.3, RFC 5246 §6.1); also the
    // number of records protected under this key, which the usage limits count.
    uint64_t seq = 0;
    // TLS 1.3 only: the current traffic secret, from which KeyUpdate derives the next
    // (§7.2). secret_size is the hash's length (32 or 48).
    uint8_t secret[kMaxSecretSize] = {};
    uint8_t key[kMaxKeySize] = {};
    // TLS 1.3 and TLS 1.2 ChaCha20-Poly1305: the 12-byte IV XORed with the sequence number
    // (RFC 8446 §5.3, RFC 7905 §2). TLS 1.2 AES-GCM: the 4-byte salt in iv[0..4), the
    // other 8 nonce bytes travel in each record (RFC 5288 §3).
    uint8_t iv[kIvSize] = {};
    Aead aead = Aead::Aes128Gcm;
    RecordVersion version = RecordVersion::Tls13;
    uint8_t secret_size = 0;
    // Whether RecordCrypto has protected a record under this key: its second record
    // takes a place in the worker's cache, its first does not. State of the cache, not
    // of the key, hence mutable; it fills the struct's padding.
    mutable bool used = false;
};

// Records a key may protect, per AEAD (RFC 8446 §5.5). Past key_update_at, sealing
// reports that a KeyUpdate (TLS 1.3) or a close (TLS 1.2, which cannot rekey without
// renegotiation) is due; a key that has sealed max_records records seals no more.
struct KeyLimits {
    uint64_t key_update_at;
    uint64_t max_records;
};

// The per-worker half of the record layer. OpenSSL 3.0 fetches an algorithm implicitly
// on every EVP_aes_128_gcm()-style use, which costs a lock and a lookup per record: here
// each cipher and KDF is fetched once.
//
// Keying a cipher context is most of a small record's cost in OpenSSL 3.0 (the key
// schedule, GHASH's table, and the parameter lookups EVP does for a key and its
// length). So the worker keeps a bounded cache of keyed contexts, looked up by the key
// itself: the connections active now find their keys ready and only set the nonce,
// as a per-connection context would, while an idle connection holds no context at
// all: its keys are evicted by those in use. kKeyedContexts bounds the cache, about
// a kilobyte each, whatever the number of connections.
//
// Any key may take any place (an open-addressed index from a hash of the key, under a
// secret of the worker's, to its place), so up to kKeyedContexts active keys all
// stay, whatever their bytes; past that, the clock algorithm evicts a key not used
// since the hand last passed.
// A key takes a place at its second record: its first goes through a scratch context
// (one per AEAD), so that connections which go idle after their upgrade hold none.
class RecordCrypto {
  public:
    static constexpr size_t kKeyedContexts = 512;
    // Twice the contexts, a power of two: probes stay short and always find a hole.
    static constexpr size_t kIndexSize = 2 * kKeyedContexts;

    RecordCrypto();
    ~RecordCrypto();
    RecordCrypto(const RecordCrypto&) = delete;
    RecordCrypto& operator=(const RecordCrypto&) = delete;

    // False if OpenSSL could not fetch an algorithm (a FIPS-only provider, say); then
    // no connection may switch to this record layer.
    bool ok() const { return ok_; }

    // One AEAD operation in place over data[0..len): encrypts and writes the tag, or
    // decrypts and checks it. False on a tag mismatch or error.
    [[nodiscard]] bool seal(const TrafficKeys& keys, const uint8_t nonce[kIvSize],
                            const uint8_t* aad, size_t aad_len, uint8_t* data, size_t len,
                            uint8_t tag[kTagSize]);
    [[nodiscard]] bool open(const TrafficKeys& keys, const uint8_t nonce[kIvSize],
                            const uint8_t* aad, size_t aad_len, uint8_t* data, size_t len,
                            const uint8_t tag[kTagSize]);

    // A key that will protect no more records (its connection closed, or a KeyUpdate
    // replaced it): its cached context, if any, is freed with the key schedule in it.
    void forget(const TrafficKeys& keys);
    // Whether `keys`' key has a keyed context now, and how many places are taken (for
    // tests).
    bool cached(const TrafficKeys& keys) const;
    size_t contexts_in_use() const { return kKeyedContexts - free_count_; }
    // Where a key's probe in the index starts: a hash of the key under this worker's
    // own random secret, so that no peer can steer keys together.
    size_t home(const TrafficKeys& keys) const;
    // The longest run of used entries in the index, the longest probe a lookup makes.
    size_t longest_run() const;

    const KeyLimits& limits(Aead aead) const { return limits_[static_cast<size_t>(aead)]; }
    // Lowers (or restores) a limit so that tests reach it in a few records.
    void set_limits_for_test(Aead aead, KeyLimits limits) {
        limits_[static_cast<size_t>(aead)] = limits;
    }

    EVP_KDF* tls13_kdf() const { return tls13_kdf_; }
    EVP_KDF* tls1_prf() const { return tls1_prf_; }

  private:
    struct Keyed {
        EVP_CIPHER_CTX* ctx = nullptr;  // bound to ciphers_[aead] while not null
        uint8_t key[kMaxKeySize] = {};  // the key it holds, when `valid`
        Aead aead = Aead::Aes128Gcm;
        int8_t enc = -1;  // the direction it was last set up for (1 sealing, 0 opening)
        bool valid = false;
        bool referenced = false;  // used since the clock's hand last passed
    };

    bool crypt(const TrafficKeys& keys, int enc, const uint8_t nonce[kIvSize], const uint8_t* aad,
               size_t aad_len, uint8_t* data, size_t len, uint8_t* tag);
    // The context holding `keys`' key, or null.
    Keyed* find(const TrafficKeys& keys);
    // A context keyed with `keys`' key, set up for one record in direction `enc` with
    // `nonce` (and, opening, the expected `tag`): found, or made in a free place or in
    // the clock's victim. Null on an OpenSSL error.
    EVP_CIPHER_CTX* keyed(const TrafficKeys& keys, int enc, const uint8_t nonce[kIvSize],
                          uint8_t* tag);
    static bool set_tag(EVP_CIPHER_CTX* ctx, int enc, uint8_t* tag);
    // Keys `k`'s context (made, or remade for another AEAD, as needed) with `keys`' key
    // and sets it up for one record. On an error `k` is cleared and false returned.
    bool key_context(Keyed& k, const TrafficKeys& keys, int enc, const uint8_t nonce[kIvSize],
                     uint8_t* tag);
    // A place for a new key, out of the index: a free one, else the clock's victim
    // (its context kept for reuse).
    size_t take_place();
    // The index entry where a probe for `key` starts (home()).
    size_t bucket_of(const uint8_t* key) const;
    void index(size_t place);
    void unindex(size_t place);
    // Frees a place: out of the index, its context freed and key cleansed.
    void drop(size_t place);
    static void clear(Keyed& k);

    bool ok_ = false;
    EVP_CIPHER* ciphers_[kAeadCount] = {};
    Keyed keyed_[kKeyedContexts];
    uint16_t index_[kIndexSize] = {};  // place + 1 of the key that hashed here, 0 if none
    uint64_t secret_ = 0;              // the index's hash key, random per worker
    uint16_t free_[kKeyedContexts] = {};
    Keyed scratch_[kAeadCount];
    size_t free_count_ = 0;
    size_t hand_ = 0;
    EVP_KDF* tls13_kdf_ = nullptr;
    EVP_KDF* tls1_prf_ = nullptr;
    KeyLimits limits_[kAeadCount];
};

// TLS 1.3 (RFC 8446 §7.3): a direction's key and IV from its traffic secret, sequence
// number 0. `secret_size` is 32 (SHA-256 suites) or 48 (SHA-384). False on a KDF error.
[[nodiscard]] bool tls13_keys(RecordCrypto& crypto, Aead aead, const uint8_t* secret,
                              size_t secret_size, TrafficKeys& out);

// TLS 1.3 KeyUpdate (RFC 8446 §7.2): replaces the secret with
// HKDF-Expand-Label(secret, "traffic upd", "", Hash.length), derives its key and IV,
// and restarts the sequence number at 0 (§5.3).
[[nodiscard]] bool tls13_update(RecordCrypto& crypto, TrafficKeys& keys);

// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, through OpenSSL's TLS13-KDF.
[[nodiscard]] bool hkdf_expand_label(RecordCrypto& crypto, size_t hash_size, const uint8_t* secret,
                                     const char* label, uint8_t* out, size_t out_size);

// TLS 1.2 AEAD (RFC 5246 §6.3): the client's and server's keys from the master secret,
// both sequence numbers 0. `prf_digest` is the suite's PRF hash ("SHA256", "SHA384").
[[nodiscard]] bool tls12_keys(RecordCrypto& crypto, Aead aead, const char* prf_digest,
                              const uint8_t master[48], const uint8_t client_random[32],
                              const uint8_t server_random[32], TrafficKeys& client,
                              TrafficKeys& server);

}  // namespace sb::tls
