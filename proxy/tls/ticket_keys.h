// TicketKeys: the keys that encrypt TLS session tickets, so reconnecting clients
// resume without a full handshake (TLS 1.2 tickets and TLS 1.3 resumption alike).
//
// Kept in memory only, never on disk: a current key that encrypts new tickets and the
// previous one, still accepted (its tickets are renewed). rotate() makes a new current
// key, so a ticket lives at most two rotation intervals. Shared by every context of a
// listener and kept across reloads (by listener name), so a reload does not cost every
// client a full handshake. Thread-safe: workers' handshakes read the keys, the main
// thread rotates them.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <array>
#include <mutex>

namespace sb::tls {

class TicketKeys {
  public:
    TicketKeys();

    void rotate();

    // The SSL_CTX_set_tlsext_ticket_key_evp_cb callback body: 1 = key found (or made
    // a new ticket), 2 = found a key and the client gets a new ticket, 0 = unknown key
    // (full handshake), -1 = error. A ticket under the previous key is renewed, and so
    // is every ticket a TLS 1.3 resumption opens (`tls13`): with a key callback, OpenSSL
    // 3.0 sends a resumed TLS 1.3 connection a ticket only when told 2 (its own keys
    // always renew), and a client that uses each ticket once (RFC 8446 §C.4; Chromium,
    // BoringSSL) would otherwise run out after the tickets of its full handshake and
    // resume only every other time (docs/tls.md). OpenSSL sends at most one ticket on a
    // resumption, whatever SSL_CTX_set_num_tickets says.
    int on_ticket(unsigned char name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int encrypt, bool tls13);

    // Installs the callback on `ctx`, with `this` as the context's app data.
    void install(SSL_CTX* ctx);

  private:
    struct Key {
        std::array<unsigned char, 16> name;
        std::array<unsigned char, 32> aes;
        std::array<unsigned char, 32> hmac;
    };
    static Key make_key();

    std::mutex mutex_;
    Key current_;
    Key previous_;
    bool has_previous_ = false;
};

}  // namespace sb::tls
