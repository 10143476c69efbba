// Helpers for the TLS unit tests: throwaway self-signed certificates made in memory
// with OpenSSL's C API and written as PEM into a private temp dir (ServerContext and
// ClientContext load files, as startup does), and a Wire that carries ciphertext
// between two tls::Connections in memory, cut at whatever size a test asks for.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "../../support/temp_dir.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "tls/connection.h"
#include "uv/block_pool.h"

namespace sb::tls::test {

using sb::test::TempDir;

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

// A P-256 key.
inline Pkey make_key() {
    return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

// A self-signed certificate for `key`, with common name `cn` and, if `san` is not
// empty, a subjectAltName extension such as "DNS:a.test,IP:127.0.0.1".
inline Cert make_cert(EVP_PKEY* key, const std::string& cn, const std::string& san) {
    Cert x(X509_new());
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 24 * 3600);
    X509_set_pubkey(x.get(), key);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    if (!san.empty()) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
        if (ext == nullptr) std::abort();
        X509_add_ext(x.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x.get(), key, EVP_sha256()) == 0) std::abort();
    return x;
}

inline void write_cert_pem(const std::string& path, X509* cert, bool append = false) {
    std::FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
    ASSERT_NE(f, nullptr) << path;
    ASSERT_EQ(PEM_write_X509(f, cert), 1);
    std::fclose(f);
}

inline void write_key_pem(const std::string& path, EVP_PKEY* key) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    ASSERT_EQ(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
    std::fclose(f);
}

// One direction of ciphertext between two Connections: what `from` produced, handed
// to `to` at most `chunk` bytes at a time, each piece in its own pool block as the
// Endpoint hands in what it read.
class Wire {
  public:
    Wire(uv::BlockPool& pool, size_t chunk) : pool_(pool), chunk_(chunk) {}

    // Moves everything `from` has produced onto the wire; returns the bytes moved.
    size_t collect(Connection& from) {
        size_t moved = 0;
        uv::Block* chain = from.take_output();
        for (uv::Block* b = chain; b != nullptr; b = b->next) {
            bytes_.append(b->data(), b->size);
            moved += b->size;
        }
        release_chain(pool_, chain);
        return moved;
    }

    // Hands the next piece to `to` if it has consumed the last one; false if it has
    // not, or if the wire is empty.
    bool deliver(Connection& to) {
        if (to.has_input() || empty()) return false;
        size_t n = std::min({chunk_, bytes_.size() - off_, size_t{uv::BlockPool::kBlockSize}});
        uv::Block* b = pool_.take();
        std::memcpy(b->data(), bytes_.data() + off_, n);
        b->size = static_cast<uint32_t>(n);
        to.give_input(b, b->data(), n);
        off_ += n;
        if (off_ == bytes_.size()) {
            bytes_.clear();
            off_ = 0;
        }
        return true;
    }

    bool empty() const { return off_ == bytes_.size(); }
    size_t size() const { return bytes_.size() - off_; }
    // The bytes on the wire, for a test to corrupt or inspect.
    std::string& bytes() { return bytes_; }
    void set_chunk(size_t chunk) { chunk_ = chunk; }

  private:
    uv::BlockPool& pool_;
    size_t chunk_;
    std::string bytes_;
    size_t off_ = 0;
};

}  // namespace sb::tls::test
