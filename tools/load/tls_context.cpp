#include "load/tls_context.h"

#include <openssl/err.h>

#include <cstring>

// OpenSSL's API is largely C macros with C casts inside (SSL_CTX_set_mode,
// SSL_set_tlsext_host_name...): the warning is about their expansion, not our code.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace sb::tools {

TlsContext::TlsContext(const TlsOptions& options, uint32_t lanes, bool release_buffers)
    : options_(options), release_buffers_(release_buffers), sessions_(lanes, nullptr) {}

TlsContext::~TlsContext() {
    for (SSL_SESSION* s : sessions_) {
        if (s != nullptr) SSL_SESSION_free(s);
    }
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

bool TlsContext::init(std::string& error) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) {
        error = "cannot make an SSL_CTX: " + openssl_errors();
        return false;
    }
    // One version, so that every target is measured doing the same handshake.
    SSL_CTX_set_min_proto_version(ctx_, options_.version);
    SSL_CTX_set_max_proto_version(ctx_, options_.version);
    if (options_.ca_file.empty()) {
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    } else {
        if (SSL_CTX_load_verify_locations(ctx_, options_.ca_file.c_str(), nullptr) != 1) {
            error = "--tls-ca " + options_.ca_file + ": " + openssl_errors();
            return false;
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    // Client-side caching only feeds the new-session callback; the lanes keep the
    // sessions themselves (see the header).
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx_, &TlsContext::on_new_session);
    SSL_CTX_set_app_data(ctx_, this);
    // Thousands of idle connections: OpenSSL frees its record buffers between records.
    // Elsewhere they stay, as allocating them per record would cost the load core.
    if (release_buffers_) SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
    return true;
}

SSL* TlsContext::new_ssl(uint32_t slot) {
    SSL* ssl = SSL_new(ctx_);
    if (ssl == nullptr) return nullptr;
    // The slot rides in the app data pointer: the new-session callback needs nothing else.
    SSL_set_app_data(ssl, reinterpret_cast<void*>(static_cast<uintptr_t>(slot)));
    if (!options_.server_name.empty()) {
        SSL_set_tlsext_host_name(ssl, options_.server_name.c_str());
        if (!options_.ca_file.empty()) SSL_set1_host(ssl, options_.server_name.c_str());
    }
    if (slot < sessions_.size() && sessions_[slot] != nullptr) {
        SSL_set_session(ssl, sessions_[slot]);  // takes its own reference
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

void TlsContext::save_session(uint32_t slot, SSL_SESSION* session) {
    if (slot >= sessions_.size()) {
        SSL_SESSION_free(session);
        return;
    }
    if (sessions_[slot] != nullptr) SSL_SESSION_free(sessions_[slot]);
    sessions_[slot] = session;
}

int TlsContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    auto slot = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(SSL_get_app_data(ssl)));
    self->save_session(slot, session);
    return 1;  // we keep the reference
}

std::string TlsContext::openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        // "error:0A000086:SSL routines::certificate verify failed" → the reason part.
        const char* reason = std::strrchr(buf, ':');
        if (!out.empty()) out += "; ";
        out += reason != nullptr ? reason + 1 : buf;
    }
    return out.empty() ? "unknown error" : out;
}

}  // namespace sb::tools
