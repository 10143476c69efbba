// TlsContext: sb-load's TLS client settings for one run (--tls): the SSL_CTX every
// connection is made from (protocol version, verification, SNI) and the session each
// lane (a slot of LoadRun) saved last, which its next connection offers for resumption.
//
// Sessions come from OpenSSL's new-session callback, not from SSL_get1_session after
// the handshake: TLS 1.3 tickets arrive after the handshake (in NewSessionTicket
// messages read along with the 101 response), so the callback is the only place that
// sees the latest one. The internal session cache is off; the lanes keep theirs here.
//
// Created by main() when --tls is given; outlives every Client; single-threaded.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sb::tools {

struct TlsOptions {
    std::string ca_file;           // verify the server against it; empty = no verification
    std::string server_name;       // SNI (and the verified name when ca_file is set)
    int version = TLS1_3_VERSION;  // the only version offered
};

class TlsContext {
  public:
    // `lanes` sessions are kept, one per slot.
    TlsContext(const TlsOptions& options, uint32_t lanes, bool release_buffers);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    // Sets up the SSL_CTX. Returns false with `error` set (OpenSSL's reasons) when the
    // CA file cannot be loaded or the context cannot be made.
    [[nodiscard]] bool init(std::string& error);

    // A new client SSL for `slot` with SNI set and, when the slot has one, the session
    // its previous connection saved. nullptr when OpenSSL cannot make one.
    SSL* new_ssl(uint32_t slot);
    // Keeps `session` (a reference the caller hands over) as `slot`'s latest.
    void save_session(uint32_t slot, SSL_SESSION* session);

    // OpenSSL's last errors as one line ("reason; reason"), clearing the queue.
    static std::string openssl_errors();

  private:
    static int on_new_session(SSL* ssl, SSL_SESSION* session);

    TlsOptions options_;
    bool release_buffers_;
    SSL_CTX* ctx_ = nullptr;
    std::vector<SSL_SESSION*> sessions_;  // one per slot; null = none yet
};

}  // namespace sb::tools
