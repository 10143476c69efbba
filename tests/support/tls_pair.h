// TlsPair: an OpenSSL client and server in one process, over memory BIOs, for the
// record layer's tests and fuzzer. The server has a throwaway self-signed ECDSA P-256
// certificate made in memory, and a key-log callback that does what the proxy's must:
// keep the traffic secrets and restart the record counters when OpenSSL changes keys
// (tls/record_handoff.h). After handshake(), switch_server() hands the server's end to
// the record layer and frees its SSL; the client stays OpenSSL's, the reference the
// record layer is checked against.
//
// Header-only and free of GoogleTest, so that the fuzzers can use it too.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string>

#include "tls/record_handoff.h"
#include "tls/record_keys.h"

namespace sb::test {

class TlsPair {
  public:
    struct Options {
        int version = TLS1_3_VERSION;
        const char* suites = "TLS_AES_128_GCM_SHA256";          // TLS 1.3
        const char* ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";  // TLS 1.2
        int tickets = 2;  // TLS 1.3 NewSessionTicket records written after the handshake
    };

    // The contexts of a pair; made once and shared by many pairs (the fuzzer's rate
    // went from 118 to 164 inputs a second), hence no tickets setting here.
    static SSL_CTX* make_context(const Options& o, bool server) {
        SSL_CTX* c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        SSL_CTX_set_min_proto_version(c, o.version);
        SSL_CTX_set_max_proto_version(c, o.version);
        SSL_CTX_set_ciphersuites(c, o.suites);
        SSL_CTX_set_cipher_list(c, o.ciphers);
        if (!server) return c;
        EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        X509* cert = X509_new();
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
        X509_set_pubkey(cert, key);
        X509_set_issuer_name(cert, X509_get_subject_name(cert));
        X509_sign(cert, key, EVP_sha256());
        SSL_CTX_use_certificate(c, cert);
        SSL_CTX_use_PrivateKey(c, key);
        X509_free(cert);
        EVP_PKEY_free(key);
        SSL_CTX_set_keylog_callback(c, &TlsPair::on_keylog);
        return c;
    }

    // A pair on contexts of its own, or on shared ones made by make_context() (each
    // pair takes a reference).
    explicit TlsPair(const Options& o, SSL_CTX* server_ctx = nullptr,
                     SSL_CTX* client_ctx = nullptr) {
        if (server_ctx != nullptr && client_ctx != nullptr) {
            SSL_CTX_up_ref(server_ctx);
            SSL_CTX_up_ref(client_ctx);
            sctx_ = server_ctx;
            cctx_ = client_ctx;
        } else {
            sctx_ = make_context(o, true);
            cctx_ = make_context(o, false);
        }
        server_ = SSL_new(sctx_);
        client_ = SSL_new(cctx_);
        SSL_set_num_tickets(server_, static_cast<size_t>(o.tickets));
        s_in_ = BIO_new(BIO_s_mem());
        s_out_ = BIO_new(BIO_s_mem());
        c_in_ = BIO_new(BIO_s_mem());
        c_out_ = BIO_new(BIO_s_mem());
        SSL_set_bio(server_, s_in_, s_out_);
        SSL_set_bio(client_, c_in_, c_out_);
        SSL_set_app_data(server_, this);
        SSL_set_accept_state(server_);
        SSL_set_connect_state(client_);
    }

    ~TlsPair() {
        if (server_ != nullptr) SSL_free(server_);
        SSL_free(client_);
        SSL_CTX_free(sctx_);
        SSL_CTX_free(cctx_);
        ERR_clear_error();
    }
    TlsPair(const TlsPair&) = delete;
    TlsPair& operator=(const TlsPair&) = delete;

    // Runs the handshake to its end on both sides. `client_first` is application data
    // the client writes as soon as its own handshake is done, so that it reaches the
    // server in the same read as the client's Finished (TLS 1.3).
    bool handshake(const std::string& client_first = "") {
        bool client_done = false;
        bool server_done = false;
        bool first_sent = client_first.empty();
        for (int i = 0; i < 20 && !(client_done && server_done); ++i) {
            if (!client_done) {
                int rc = SSL_do_handshake(client_);
                if (rc == 1)
                    client_done = true;
                else if (SSL_get_error(client_, rc) != SSL_ERROR_WANT_READ)
                    return false;
            }
            if (client_done && !first_sent) {
                if (!client_write(client_first)) return false;
                first_sent = true;
            }
            to_server(take_client_output());
            if (!server_done) {
                int rc = SSL_do_handshake(server_);
                if (rc == 1)
                    server_done = true;
                else if (SSL_get_error(server_, rc) != SSL_ERROR_WANT_READ)
                    return false;
            }
            sync_written();
            give_client(from_server_);
            from_server_.clear();
        }
        sync_read();
        return client_done && server_done;
    }

    // Hands the server's end to the record layer: its keys (with the sequence numbers
    // counted), and the bytes the client sent that OpenSSL has not read (`unread`), which
    // the record layer reads next. Frees the server's SSL.
    bool switch_server(tls::RecordCrypto& crypto, tls::RecordKeys& keys, std::string& unread,
                       std::string& why) {
        sync_read();
        sync_written();
        if (!tls::take_keys(crypto, server_, secrets_, read_, written_, keys, why)) return false;
        secrets_.clear();
        unread = drain(s_in_);
        give_client(from_server_);
        from_server_.clear();
        SSL_free(server_);
        server_ = nullptr;
        return true;
    }

    SSL* client() { return client_; }
    SSL* server() { return server_; }
    const tls::RecordCounter& read_counter() const { return read_; }
    const tls::RecordCounter& written_counter() const { return written_; }

    bool client_write(const std::string& data) {
        size_t off = 0;
        while (off < data.size()) {
            size_t n = 0;
            if (SSL_write_ex(client_, data.data() + off, data.size() - off, &n) != 1) return false;
            off += n;
        }
        return true;
    }
    // The ciphertext the client has written.
    std::string take_client_output() { return drain(c_out_); }
    // Ciphertext for the client to read.
    void give_client(const std::string& bytes) {
        if (!bytes.empty()) BIO_write(c_in_, bytes.data(), static_cast<int>(bytes.size()));
    }
    void give_client(const uint8_t* p, size_t n) {
        if (n > 0) BIO_write(c_in_, p, static_cast<int>(n));
    }
    // Reads what the client can into `out`; returns SSL_get_error() of the read that
    // stopped (SSL_ERROR_WANT_READ once all is read, SSL_ERROR_ZERO_RETURN after a
    // close_notify, SSL_ERROR_SSL on an error).
    int client_read(std::string& out) {
        char buf[16384];
        for (;;) {
            size_t n = 0;
            int rc = SSL_read_ex(client_, buf, sizeof(buf), &n);
            if (rc != 1) return SSL_get_error(client_, rc);
            out.append(buf, n);
        }
    }

  private:
    static std::string drain(BIO* bio) {
        std::string out;
        char buf[4096];
        int n;
        while ((n = BIO_read(bio, buf, sizeof(buf))) > 0)
            out.append(buf, static_cast<size_t>(n));
        return out;
    }

    void to_server(const std::string& bytes) {
        if (bytes.empty()) return;
        to_server_log_ += bytes;
        BIO_write(s_in_, bytes.data(), static_cast<int>(bytes.size()));
    }

    // Feeds the read counter what OpenSSL has taken from its input BIO so far.
    void sync_read() {
        size_t consumed = to_server_log_.size() - BIO_ctrl_pending(s_in_);
        read_.feed(reinterpret_cast<const uint8_t*>(to_server_log_.data()) + read_fed_,
                   consumed - read_fed_);
        read_fed_ = consumed;
    }
    // Feeds the written counter what OpenSSL has written so far.
    void sync_written() {
        std::string out = drain(s_out_);
        written_.feed(reinterpret_cast<const uint8_t*>(out.data()), out.size());
        from_server_ += out;
    }

    // What the proxy's key-log callback does (record_handoff.h): the secrets, and the
    // counters restarted where OpenSSL changes keys.
    static void on_keylog(const SSL* ssl, const char* line) {
        auto* self = static_cast<TlsPair*>(SSL_get_ex_data(ssl, 0));
        switch (self->secrets_.take(line)) {
            case tls::KeylogSecrets::Line::ClientTraffic:
                self->sync_read();
                self->read_.restart();
                break;
            case tls::KeylogSecrets::Line::ServerTraffic:
                self->sync_written();
                self->written_.restart();
                break;
            case tls::KeylogSecrets::Line::Other:
                break;
        }
    }

    SSL_CTX* sctx_ = nullptr;
    SSL_CTX* cctx_ = nullptr;
    SSL* server_ = nullptr;
    SSL* client_ = nullptr;
    BIO* s_in_ = nullptr;  // owned by the SSLs
    BIO* s_out_ = nullptr;
    BIO* c_in_ = nullptr;
    BIO* c_out_ = nullptr;
    std::string to_server_log_;  // every byte given to the server
    size_t read_fed_ = 0;
    std::string from_server_;  // written by the server, not yet given to the client
    tls::KeylogSecrets secrets_;
    tls::RecordCounter read_;
    tls::RecordCounter written_;
};

}  // namespace sb::test
