// tls::TicketKeys: a ticket sealed under the current key opens (1); after one
// rotation it still opens but asks for renewal (2), with the same cipher and MAC keys
// it was sealed with; after two rotations, or under a name we never issued, it is
// unknown (0) and the client gets a full handshake. A TLS 1.3 resumption always asks
// for renewal, so that every resumed connection brings its client a new ticket.
// Driven through on_ticket() with real cipher and MAC contexts, as OpenSSL calls it.
#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>

namespace sb::tls {
namespace {

using Name = std::array<unsigned char, 16>;
using Iv = std::array<unsigned char, 16>;

// One on_ticket() call's contexts, and what they do to a test message.
class TicketCall {
  public:
    TicketCall() {
        EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        mac_ = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);
        cipher_ = EVP_CIPHER_CTX_new();
    }
    ~TicketCall() {
        EVP_MAC_CTX_free(mac_);
        EVP_CIPHER_CTX_free(cipher_);
    }
    TicketCall(const TicketCall&) = delete;
    TicketCall& operator=(const TicketCall&) = delete;

    int run(TicketKeys& keys, Name& name, Iv& iv, bool encrypt, bool tls13 = false) {
        return keys.on_ticket(name.data(), iv.data(), cipher_, mac_, encrypt ? 1 : 0, tls13);
    }

    // Encrypts (or decrypts) `in` with the cipher the call set up.
    std::string crypt(const std::string& in, bool encrypt) {
        std::string out(in.size() + 32, '\0');
        int n = 0;
        int tail = 0;
        auto* o = reinterpret_cast<unsigned char*>(out.data());
        auto* i = reinterpret_cast<const unsigned char*>(in.data());
        int len = static_cast<int>(in.size());
        int ok = encrypt ? EVP_EncryptUpdate(cipher_, o, &n, i, len) &&
                               EVP_EncryptFinal_ex(cipher_, o + n, &tail)
                         : EVP_DecryptUpdate(cipher_, o, &n, i, len) &&
                               EVP_DecryptFinal_ex(cipher_, o + n, &tail);
        if (!ok) return "<crypt failed>";
        out.resize(static_cast<size_t>(n + tail));
        return out;
    }

    // The HMAC of `in` under the key the call set up.
    std::string mac(const std::string& in) {
        if (EVP_MAC_init(mac_, nullptr, 0, nullptr) != 1) return "<mac init failed>";
        EVP_MAC_update(mac_, reinterpret_cast<const unsigned char*>(in.data()), in.size());
        unsigned char out[64];
        size_t n = 0;
        if (EVP_MAC_final(mac_, out, &n, sizeof(out)) != 1) return "<mac failed>";
        return std::string(reinterpret_cast<char*>(out), n);
    }

  private:
    EVP_MAC_CTX* mac_ = nullptr;
    EVP_CIPHER_CTX* cipher_ = nullptr;
};

struct Sealed {
    Name name{};
    Iv iv{};
    std::string ciphertext;
    std::string tag;
};

const std::string kSession = "a session's secrets, as OpenSSL would seal them";

Sealed seal(TicketKeys& keys) {
    Sealed s;
    TicketCall call;
    EXPECT_EQ(call.run(keys, s.name, s.iv, true), 1);
    s.ciphertext = call.crypt(kSession, true);
    s.tag = call.mac(s.ciphertext);
    return s;
}

// Opens `s` as OpenSSL would: the callback's answer, and whether the cipher and MAC
// it set up match the ones the ticket was sealed with.
int open_ticket(TicketKeys& keys, Sealed s, bool* matches = nullptr, bool tls13 = false) {
    TicketCall call;
    int rc = call.run(keys, s.name, s.iv, false, tls13);
    if (matches != nullptr) {
        *matches = rc > 0 && call.mac(s.ciphertext) == s.tag &&
                   call.crypt(s.ciphertext, false) == kSession;
    }
    return rc;
}

TEST(TicketKeys, ATicketSealedUnderTheCurrentKeyOpens) {
    TicketKeys keys;
    Sealed s = seal(keys);
    bool matches = false;
    EXPECT_EQ(open_ticket(keys, s, &matches), 1);
    EXPECT_TRUE(matches) << "decryption or MAC keys differ from the sealing ones";
}

TEST(TicketKeys, EachTicketGetsAFreshIv) {
    TicketKeys keys;
    Sealed a = seal(keys);
    Sealed b = seal(keys);
    EXPECT_EQ(a.name, b.name);
    EXPECT_NE(a.iv, b.iv);
    EXPECT_NE(a.ciphertext, b.ciphertext);
}

TEST(TicketKeys, AfterOneRotationAnOldTicketOpensAndIsRenewed) {
    TicketKeys keys;
    Sealed old = seal(keys);
    keys.rotate();
    bool matches = false;
    EXPECT_EQ(open_ticket(keys, old, &matches), 2);
    EXPECT_TRUE(matches) << "the previous key must still open its tickets";
    // New tickets are sealed under a new name, and open with 1.
    Sealed fresh = seal(keys);
    EXPECT_NE(fresh.name, old.name);
    EXPECT_EQ(open_ticket(keys, fresh), 1);
}

TEST(TicketKeys, ATls13ResumptionIsAlwaysRenewed) {
    // Issue 17: without renewal, a client that uses each ticket once resumed only
    // every other time (OpenSSL sends a resumed TLS 1.3 connection no ticket on 1).
    TicketKeys keys;
    Sealed s = seal(keys);
    bool matches = false;
    EXPECT_EQ(open_ticket(keys, s, &matches, true), 2);
    EXPECT_TRUE(matches);
    keys.rotate();
    EXPECT_EQ(open_ticket(keys, s, nullptr, true), 2);
    keys.rotate();
    EXPECT_EQ(open_ticket(keys, s, nullptr, true), 0);  // renewal opens nothing unknown
}

TEST(TicketKeys, AfterTwoRotationsAnOldTicketIsUnknown) {
    TicketKeys keys;
    Sealed old = seal(keys);
    keys.rotate();
    keys.rotate();
    EXPECT_EQ(open_ticket(keys, old), 0);
}

TEST(TicketKeys, ANameNeverIssuedIsUnknown) {
    TicketKeys keys;
    Sealed s = seal(keys);
    s.name[0] = static_cast<unsigned char>(s.name[0] ^ 0xFF);
    EXPECT_EQ(open_ticket(keys, s), 0);
}

TEST(TicketKeys, AnotherProcessesTicketIsUnknown) {
    TicketKeys ours;
    TicketKeys theirs;
    EXPECT_EQ(open_ticket(ours, seal(theirs)), 0);
}

TEST(TicketKeys, AnAllZeroNameIsUnknownBeforeAnyRotation) {
    // Before the first rotation there is no previous key; its zeroed name must not
    // match a ticket carrying sixteen zero bytes.
    TicketKeys keys;
    Sealed s = seal(keys);
    s.name.fill(0);
    EXPECT_EQ(open_ticket(keys, s), 0);
}

}  // namespace
}  // namespace sb::tls
