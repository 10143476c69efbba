#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tls/connection.h"

// OpenSSL's API is largely C macros with C casts inside (SSL_CTX_set_mode,
// SSL_set_tlsext_host_name...): the warning is about their expansion, not our code.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace sb::tls {

namespace {

// TLS 1.3 session tickets sent after a full handshake (RFC 8446 §4.6.1 lets a server
// send several). One, by measurement (tools/tls-resumption, docs/tls.md): Python's ssl,
// `openssl s_client`, Node and Chromium reconnecting 50 times in a loop (Chromium also
// two connections at a time) resumed every time after the first with 1, 2 and 4
// tickets alike, because each resumption brings its client one new ticket, whatever
// this count (OpenSSL sends one then; TicketKeys asks for it). What a count cannot do
// is make up for resumptions without a ticket: Chromium uses each ticket once (RFC 8446
// §C.4) and keeps two per server, so before TicketKeys asked it resumed 51% of the time
// with 1 ticket and 67% with 2 or 4. Each ticket costs a full handshake a key
// derivation, an encryption and a record (about 5% of it); OpenSSL's default of two
// would spend that for none of these clients. The record layer counts whatever
// tickets OpenSSL wrote (record_handoff.h), so any count works there.
constexpr size_t kTls13Tickets = 1;

std::string last_error() {
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (e == 0) return "unknown error";
    const char* reason = ERR_reason_error_string(e);
    return reason != nullptr ? reason : "unknown error";
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// DNS names from the certificate's subjectAltName, or its CN when it has none.
std::vector<std::string> certificate_names(X509* cert) {
    std::vector<std::string> names;
    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans != nullptr) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
            if (name->type != GEN_DNS) continue;
            const unsigned char* data = ASN1_STRING_get0_data(name->d.dNSName);
            int len = ASN1_STRING_length(name->d.dNSName);
            names.push_back(
                lower(std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(len))));
        }
        GENERAL_NAMES_free(sans);
    }
    if (names.empty()) {
        char cn[256] = {};
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) >
            0) {
            names.push_back(lower(cn));
        }
    }
    return names;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
    // WebSocket upgrades are HTTP/1.1; a client offering only h2 gets no ALPN answer
    // (and speaks HTTP/1.1 or fails), never a protocol we cannot serve.
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_len, kHttp11, sizeof(kHttp11), in, in_len) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

// OpenSSL reports a missing file as "system lib"; say what the system said.
bool readable(const std::string& path, std::string& error) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        error = path + ": cannot read: " + std::strerror(errno);
        return false;
    }
    std::fclose(f);
    return true;
}

}  // namespace

bool ServerContext::name_matches(const std::string& pattern, const std::string& host) {
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
        // One label only, as RFC 6125 §6.4.3 allows: "*.example.com" matches
        // "a.example.com", not "a.b.example.com" nor "example.com".
        auto dot = host.find('.');
        return dot != std::string::npos && dot > 0 && host.substr(dot) == pattern.substr(1);
    }
    return pattern == host;
}

std::shared_ptr<ServerContext> ServerContext::load(const config::ListenerTlsConfig& config,
                                                   std::shared_ptr<TicketKeys> keys,
                                                   std::string& error) {
    std::shared_ptr<ServerContext> out(new ServerContext());
    out->keys_ = std::move(keys);
    for (const auto& files : config.certificates) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == nullptr) {
            error = "cannot create a TLS context: " + last_error();
            return nullptr;
        }
        out->certs_.push_back({ctx, {}});
        SSL_CTX_set_min_proto_version(
            ctx, config.min_version == config::TlsVersion::Tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
        // TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all modern.
        SSL_CTX_set_cipher_list(ctx,
                                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
        SSL_CTX_set_options(
            ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
        // Free the record buffers of idle connections: most WebSocket connections are
        // idle most of the time.
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // tickets carry sessions
        SSL_CTX_set_num_tickets(ctx, kTls13Tickets);
        SSL_CTX_set_alpn_select_cb(ctx, &select_alpn, nullptr);
        // The traffic secrets for the record layer that takes over after the handshake
        // (Connection::take_record_keys); they stay in the connection, never logged.
        SSL_CTX_set_keylog_callback(ctx, &Connection::on_keylog);
        if (!readable(files.certificate, error) || !readable(files.private_key, error)) {
            return nullptr;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, files.certificate.c_str()) != 1) {
            error = files.certificate + ": cannot load the certificate: " + last_error();
            return nullptr;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, files.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
            std::string why = last_error();
            error =
                why == "key values mismatch"
                    ? files.private_key + ": the private key does not match " + files.certificate
                    : files.private_key + ": cannot load the private key: " + why;
            return nullptr;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            error = files.private_key + ": the private key does not match " + files.certificate;
            return nullptr;
        }
        out->certs_.back().names = certificate_names(SSL_CTX_get0_certificate(ctx));
        out->keys_->install(ctx);
        SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::on_servername);
        SSL_CTX_set_tlsext_servername_arg(ctx, out.get());
    }
    if (out->certs_.empty()) {
        error = "no certificate";
        return nullptr;
    }
    return out;
}

ServerContext::~ServerContext() {
    for (auto& c : certs_)
        SSL_CTX_free(c.ctx);
}

SSL_CTX* ServerContext::context_for(const std::string& host) const {
    for (const auto& c : certs_) {
        if (std::find(c.names.begin(), c.names.end(), host) != c.names.end()) return c.ctx;
    }
    for (const auto& c : certs_) {
        for (const auto& n : c.names) {
            if (name_matches(n, host)) return c.ctx;
        }
    }
    return nullptr;
}

int ServerContext::on_servername(SSL* ssl, int*, void* arg) {
    const auto* self = static_cast<const ServerContext*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
    SSL_CTX* ctx = self->context_for(lower(name));
    if (ctx != nullptr && ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<ClientContext> ClientContext::load(const config::PoolTlsConfig& config,
                                                   std::string& error) {
    std::shared_ptr<ClientContext> out(new ClientContext(config));
    out->ctx_ = SSL_CTX_new(TLS_client_method());
    if (out->ctx_ == nullptr) {
        error = "cannot create a TLS context: " + last_error();
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(out->ctx_, TLS1_2_VERSION);
    SSL_CTX_set_mode(out->ctx_, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(out->ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (config.verify) {
        SSL_CTX_set_verify(out->ctx_, SSL_VERIFY_PEER, nullptr);
        if (!config.ca_file.empty() && !readable(config.ca_file, error)) return nullptr;
        int ok = config.ca_file.empty()
                     ? SSL_CTX_set_default_verify_paths(out->ctx_)
                     : SSL_CTX_load_verify_locations(out->ctx_, config.ca_file.c_str(), nullptr);
        if (ok != 1) {
            error = (config.ca_file.empty() ? std::string("the system CA store") : config.ca_file) +
                    ": cannot load CA certificates: " + last_error();
            return nullptr;
        }
    }
    return out;
}

ClientContext::~ClientContext() {
    SSL_CTX_free(ctx_);
}

}  // namespace sb::tls
