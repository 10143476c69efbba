#include "tls/record_handoff.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <cstring>

namespace sb::tls {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes the hex digits at `p` up to the end of the string into out (at most `cap`
// bytes); the byte count, or 0 if it is not an even number of hex digits that fit.
size_t decode_hex(const char* p, uint8_t* out, size_t cap) {
    size_t n = 0;
    while (p[0] != '\0') {
        int hi = hex_value(p[0]);
        int lo = p[1] == '\0' ? -1 : hex_value(p[1]);
        if (hi < 0 || lo < 0 || n == cap) return 0;
        out[n++] = static_cast<uint8_t>(hi << 4 | lo);
        p += 2;
    }
    return n;
}

bool aead_of(const SSL_CIPHER* c, Aead& out) {
    switch (SSL_CIPHER_get_cipher_nid(c)) {
        case NID_aes_128_gcm:
            out = Aead::Aes128Gcm;
            return true;
        case NID_aes_256_gcm:
            out = Aead::Aes256Gcm;
            return true;
        case NID_chacha20_poly1305:
            out = Aead::Chacha20Poly1305;
            return true;
        default:
            return false;
    }
}

}  // namespace

KeylogSecrets::Line KeylogSecrets::take(const char* line) {
    // NSS key log format: "<label> <64 hex digits of client_random> <secret in hex>".
    static const char kClient[] = "CLIENT_TRAFFIC_SECRET_0 ";
    static const char kServer[] = "SERVER_TRAFFIC_SECRET_0 ";
    Line which;
    if (std::strncmp(line, kClient, sizeof(kClient) - 1) == 0)
        which = Line::ClientTraffic;
    else if (std::strncmp(line, kServer, sizeof(kServer) - 1) == 0)
        which = Line::ServerTraffic;
    else
        return Line::Other;
    const char* p = line + sizeof(kClient) - 1;  // both labels have the same length
    const char* space = std::strchr(p, ' ');
    if (space == nullptr || space - p != 64) return Line::Other;
    uint8_t* dst = which == Line::ClientTraffic ? client : server;
    size_t n = decode_hex(space + 1, dst, kMaxSecretSize);
    if (n != 32 && n != 48) return Line::Other;
    (which == Line::ClientTraffic ? client_size : server_size) = static_cast<uint8_t>(n);
    return which;
}

void KeylogSecrets::clear() {
    OPENSSL_cleanse(client, sizeof(client));
    OPENSSL_cleanse(server, sizeof(server));
    client_size = server_size = 0;
}

void RecordCounter::feed(const uint8_t* data, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (have_ < 5) {
            size_t n = std::min(size_t{5} - have_, len - i);
            std::memcpy(header_ + have_, data + i, n);
            have_ = static_cast<uint8_t>(have_ + n);
            i += n;
            if (have_ < 5) return;
            left_ = uint32_t{header_[3]} << 8 | header_[4];
        }
        size_t n = std::min<size_t>(left_, len - i);
        left_ -= static_cast<uint32_t>(n);
        i += n;
        if (left_ > 0) return;
        // A complete record (RFC 8446 §5.1, RFC 5246 §6.2.1: type, version, length).
        have_ = 0;
        ++since_restart_;
        if (header_[0] == 20) {  // change_cipher_spec
            saw_ccs_ = true;
            since_ccs_ = 0;
        } else {
            ++since_ccs_;
        }
    }
}

bool take_keys(RecordCrypto& crypto, SSL* ssl, const KeylogSecrets& secrets,
               const RecordCounter& read, const RecordCounter& written, RecordKeys& out,
               std::string& why) {
    if (!crypto.ok()) {
        why = "the record layer's algorithms are unavailable";
        return false;
    }
    if (SSL_is_server(ssl) != 1 || SSL_is_init_finished(ssl) != 1) {
        why = "not a server whose handshake is done";
        return false;
    }
    // Bytes OpenSSL has taken but not given back as plaintext, or a record half read
    // or half written: the switch would lose them or mis-number the next record.
    if (SSL_has_pending(ssl) == 1 || SSL_pending(ssl) > 0) {
        why = "OpenSSL holds unread record bytes";
        return false;
    }
    // 0-RTT data would put EndOfEarlyData and the early key in the read counts; the
    // proxy does not accept early data, and a connection that did stays on OpenSSL.
    if (SSL_get_early_data_status(ssl) == SSL_EARLY_DATA_ACCEPTED) {
        why = "early data was accepted";
        return false;
    }
    if (!read.at_boundary() || !written.at_boundary()) {
        why = "a record is partly read or written";
        return false;
    }
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    Aead aead;
    if (cipher == nullptr || !aead_of(cipher, aead)) {
        why = "the cipher suite is not AES-GCM or ChaCha20-Poly1305";
        return false;
    }
    const EVP_MD* md = SSL_CIPHER_get_handshake_digest(cipher);
    const int hash_size = md != nullptr ? EVP_MD_get_size(md) : 0;
    if (hash_size != 32 && hash_size != 48) {
        why = "the suite's hash is not SHA-256 or SHA-384";
        return false;
    }
    const int version = SSL_version(ssl);
    if (version == TLS1_3_VERSION) {
        if (secrets.client_size != hash_size || secrets.server_size != hash_size) {
            why = "the key log did not give both traffic secrets";
            return false;
        }
        if (!tls13_keys(crypto, aead, secrets.client, secrets.client_size, out.read) ||
            !tls13_keys(crypto, aead, secrets.server, secrets.server_size, out.write)) {
            why = "key derivation failed";
            return false;
        }
        // RFC 8446 §5.3: one sequence number per key, counting the records OpenSSL
        // protected under it (the session tickets written, records it read).
        out.read.seq = read.records();
        out.write.seq = written.records();
        return true;
    }
    if (version == TLS1_2_VERSION) {
        if (!read.saw_change_cipher_spec() || !written.saw_change_cipher_spec()) {
            why = "no change_cipher_spec seen in both directions";
            return false;
        }
        uint8_t master[48];
        uint8_t client_random[32];
        uint8_t server_random[32];
        SSL_SESSION* session = SSL_get_session(ssl);
        if (session == nullptr || SSL_SESSION_get_master_key(session, master, 48) != 48 ||
            SSL_get_client_random(ssl, client_random, 32) != 32 ||
            SSL_get_server_random(ssl, server_random, 32) != 32) {
            why = "the master secret or the randoms are unavailable";
            return false;
        }
        bool ok = tls12_keys(crypto, aead, hash_size == 48 ? "SHA384" : "SHA256", master,
                             client_random, server_random, out.read, out.write);
        OPENSSL_cleanse(master, sizeof(master));
        if (!ok) {
            why = "key derivation failed";
            return false;
        }
        // RFC 5246 §6.1: sequence numbers restart with each change_cipher_spec; the
        // Finished messages were the first records after it.
        out.read.seq = read.records_after_ccs();
        out.write.seq = written.records_after_ccs();
        return true;
    }
    why = "not TLS 1.2 or TLS 1.3";
    return false;
}

}  // namespace sb::tls
