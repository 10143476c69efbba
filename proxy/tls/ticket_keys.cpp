#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include <cstring>

// OpenSSL's API is largely C macros with C casts inside (SSL_CTX_set_mode,
// SSL_set_tlsext_host_name...): the warning is about their expansion, not our code.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace sb::tls {

TicketKeys::TicketKeys() : current_(make_key()), previous_{} {}

TicketKeys::Key TicketKeys::make_key() {
    Key k{};
    RAND_bytes(k.name.data(), static_cast<int>(k.name.size()));
    RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size()));
    RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size()));
    return k;
}

void TicketKeys::rotate() {
    Key fresh = make_key();
    std::lock_guard lock(mutex_);
    previous_ = current_;
    has_previous_ = true;
    current_ = fresh;
}

int TicketKeys::on_ticket(unsigned char name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
                          EVP_MAC_CTX* mac, int encrypt, bool tls13) {
    Key key;
    int result = 1;
    {
        std::lock_guard lock(mutex_);
        if (encrypt) {
            key = current_;
        } else if (std::memcmp(name, current_.name.data(), 16) == 0) {
            key = current_;
            if (tls13) result = 2;  // a ticket for the next connection (see the header)
        } else if (has_previous_ && std::memcmp(name, previous_.name.data(), 16) == 0) {
            key = previous_;
            result = 2;  // still good, but issue a ticket under the current key
        } else {
            return 0;  // unknown (rotated out, or from another process): full handshake
        }
    }
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (encrypt) {
        std::memcpy(name, key.name.data(), 16);
        if (RAND_bytes(iv, 16) != 1) return -1;
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) {
            return -1;
        }
    } else if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) {
        return -1;
    }
    if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
    return result;
}

namespace {

int ticket_callback(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                    EVP_MAC_CTX* mac, int encrypt) {
    auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    // The version is settled before OpenSSL opens a ticket (it picks the extension to
    // read the ticket from by it).
    const bool tls13 = SSL_version(ssl) == TLS1_3_VERSION;
    return keys != nullptr ? keys->on_ticket(name, iv, cipher, mac, encrypt, tls13) : 0;
}

}  // namespace

void TicketKeys::install(SSL_CTX* ctx) {
    SSL_CTX_set_app_data(ctx, this);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ticket_callback);
}

}  // namespace sb::tls
