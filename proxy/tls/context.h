// TLS contexts, built from the configuration when it is loaded (startup, --check and
// every reload read the certificate files again), then shared read-only by workers.
//
// ServerContext: a listener's certificates. One SSL_CTX per certificate, configured
// alike; SNI picks the certificate whose names (subject alternative names, or the
// common name when there are none) match the requested host, exact names first, then
// wildcards ("*.example.com" matches one label); the first certificate is the default.
// TLS 1.2 and 1.3 only (min_version may raise it to 1.3), modern ciphers, ALPN
// "http/1.1", renegotiation refused, session tickets from TicketKeys.
//
// ClientContext: a pool's TLS to its backends: verification against ca_file or the
// system store.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "tls/ticket_keys.h"

namespace sb::tls {

class ServerContext {
  public:
    // Loads every certificate and key; on failure returns nullptr and sets `error` to
    // one line naming the file and the cause.
    static std::shared_ptr<ServerContext> load(const config::ListenerTlsConfig& config,
                                               std::shared_ptr<TicketKeys> keys,
                                               std::string& error);
    ~ServerContext();
    ServerContext(const ServerContext&) = delete;
    ServerContext& operator=(const ServerContext&) = delete;

    SSL_CTX* default_context() const { return certs_.front().ctx; }
    // The context for an SNI host name (lower-case), or nullptr for the default.
    SSL_CTX* context_for(const std::string& host) const;
    const std::shared_ptr<TicketKeys>& ticket_keys() const { return keys_; }

    // Names a certificate answers for, exact or "*.example.com".
    static bool name_matches(const std::string& pattern, const std::string& host);

  private:
    ServerContext() = default;
    struct Certificate {
        SSL_CTX* ctx = nullptr;
        std::vector<std::string> names;
    };
    static int on_servername(SSL* ssl, int* alert, void* arg);

    std::vector<Certificate> certs_;
    std::shared_ptr<TicketKeys> keys_;
};

class ClientContext {
  public:
    static std::shared_ptr<ClientContext> load(const config::PoolTlsConfig& config,
                                               std::string& error);
    ~ClientContext();
    ClientContext(const ClientContext&) = delete;
    ClientContext& operator=(const ClientContext&) = delete;

    SSL_CTX* context() const { return ctx_; }
    const config::PoolTlsConfig& config() const { return config_; }

  private:
    explicit ClientContext(const config::PoolTlsConfig& config) : config_(config) {}

    SSL_CTX* ctx_ = nullptr;
    config::PoolTlsConfig config_;
};

}  // namespace sb::tls
