#include "tls/connection.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstring>

// OpenSSL's API is largely C macros with C casts inside (SSL_CTX_set_mode,
// SSL_set_tlsext_host_name...): the warning is about their expansion, not our code.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace sb::tls {

namespace {

bool is_ip_literal(const std::string& s) {
    in_addr v4{};
    in6_addr v6{};
    return inet_pton(AF_INET, s.c_str(), &v4) == 1 || inet_pton(AF_INET6, s.c_str(), &v6) == 1;
}

bool looks_like_http(const char* data, size_t len) {
    // "GET /", "POST /"...: an upper-case method and a space where a TLS record would
    // start with a content type byte (0x16 for a handshake).
    size_t i = 0;
    while (i < len && i < 8 && std::isupper(static_cast<unsigned char>(data[i])))
        ++i;
    return i >= 3 && i < len && data[i] == ' ';
}

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        // "error:0A000086:SSL routines::certificate verify failed" → the reason part.
        const char* reason = std::strrchr(buf, ':');
        if (!out.empty()) out += "; ";
        out += reason != nullptr ? reason + 1 : buf;
    }
    return out;
}

}  // namespace

void release_chain(uv::BlockPool& pool, uv::Block* chain) {
    while (chain != nullptr) {
        uv::Block* next = chain->next;
        chain->next = nullptr;
        pool.give(chain);
        chain = next;
    }
}

BIO_METHOD* Connection::method() {
    // One method table for the process; OpenSSL copies nothing from it per BIO.
    static BIO_METHOD* m = [] {
        BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "switchboard");
        BIO_meth_set_read(meth, &Connection::bio_read);
        BIO_meth_set_write(meth, &Connection::bio_write);
        BIO_meth_set_ctrl(meth, &Connection::bio_ctrl);
        return meth;
    }();
    return m;
}

Connection::Connection(SSL* ssl, uv::BlockPool& pool) : ssl_(ssl), pool_(pool) {
    BIO* bio = BIO_new(method());
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);   // the SSL owns the BIO from here on
    SSL_set_app_data(ssl_, this);  // for on_keylog
}

Connection::~Connection() {
    SSL_free(ssl_);
    if (in_block_ != nullptr) pool_.give(in_block_);
    release_chain(pool_, out_head_);
}

std::unique_ptr<Connection> Connection::accept(SSL_CTX* ctx, uv::BlockPool& pool) {
    SSL* ssl = SSL_new(ctx);
    if (ssl == nullptr) return nullptr;
    SSL_set_accept_state(ssl);
    return std::unique_ptr<Connection>(new Connection(ssl, pool));
}

std::unique_ptr<Connection> Connection::connect(SSL_CTX* ctx, const std::string& name, bool verify,
                                                uv::BlockPool& pool) {
    SSL* ssl = SSL_new(ctx);
    if (ssl == nullptr) return nullptr;
    SSL_set_connect_state(ssl);
    if (!name.empty()) {
        if (is_ip_literal(name)) {
            // No SNI for addresses (RFC 6066 §3); verify the certificate's IP entries.
            if (verify) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl, name.c_str());
            if (verify) SSL_set1_host(ssl, name.c_str());
        }
    }
    return std::unique_ptr<Connection>(new Connection(ssl, pool));
}

void Connection::give_input(uv::Block* block, const char* data, size_t len) {
    if (first_input_ && len > 0) {
        first_input_ = false;
        saw_plain_http_ = SSL_is_server(ssl_) && looks_like_http(data, len);
    }
    if (in_block_ != nullptr) pool_.give(in_block_);  // only when fully consumed
    in_block_ = block;
    in_ = data;
    in_left_ = len;
}

int Connection::bio_read(BIO* bio, char* out, int len) {
    auto* self = static_cast<Connection*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (self->in_left_ == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    size_t n = std::min(self->in_left_, static_cast<size_t>(len));
    std::memcpy(out, self->in_, n);
    // Exactly the bytes OpenSSL takes: the records it has read are counted here.
    self->read_counter_.feed(reinterpret_cast<const uint8_t*>(self->in_), n);
    self->in_ += n;
    self->in_left_ -= n;
    if (self->in_left_ == 0 && self->in_block_ != nullptr) {
        // All consumed: the block goes back now, so an idle connection holds none.
        self->pool_.give(self->in_block_);
        self->in_block_ = nullptr;
    }
    return static_cast<int>(n);
}

int Connection::bio_write(BIO* bio, const char* in, int len) {
    auto* self = static_cast<Connection*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    self->written_counter_.feed(reinterpret_cast<const uint8_t*>(in), static_cast<size_t>(len));
    size_t left = static_cast<size_t>(len);
    while (left > 0) {
        uv::Block* tail = self->out_tail_;
        if (tail == nullptr || tail->size == tail->capacity) {
            uv::Block* b = self->pool_.take();
            if (b == nullptr) return -1;
            if (tail == nullptr) {
                self->out_head_ = b;
            } else {
                tail->next = b;
            }
            self->out_tail_ = tail = b;
        }
        size_t n = std::min<size_t>(left, tail->capacity - tail->size);
        std::memcpy(tail->data() + tail->size, in, n);
        tail->size += static_cast<uint32_t>(n);
        in += n;
        left -= n;
    }
    return len;
}

long Connection::bio_ctrl(BIO*, int cmd, long, void*) {
    // Writes land in memory at once, so a flush has nothing to do; nothing else is
    // supported.
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

Connection::Status Connection::fail(int rc) {
    int err = SSL_get_error(ssl_, rc);
    switch (err) {
        case SSL_ERROR_WANT_READ:
            return Status::WantRead;
        case SSL_ERROR_ZERO_RETURN:
            return Status::Closed;
        default: {
            error_ = openssl_errors();
            long verify = SSL_get_verify_result(ssl_);
            if (verify != X509_V_OK) {
                error_ += (error_.empty() ? "" : " (") +
                          std::string(X509_verify_cert_error_string(verify)) +
                          (error_.empty() ? "" : ")");
            }
            if (error_.empty())
                error_ = err == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "TLS error";
            return Status::Error;
        }
    }
}

Connection::Status Connection::handshake() {
    if (handshake_done()) return Status::Ok;
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    return rc == 1 ? Status::Ok : fail(rc);
}

Connection::Status Connection::read(char* out, size_t cap, size_t& n) {
    n = 0;
    ERR_clear_error();
    if (SSL_read_ex(ssl_, out, cap, &n) == 1) return Status::Ok;
    return fail(0);
}

bool Connection::write(const char* data, size_t len) {
    if (len == 0) return true;
    ERR_clear_error();
    size_t written = 0;
    if (SSL_write_ex(ssl_, data, len, &written) == 1 && written == len) return true;
    fail(0);
    return false;
}

void Connection::close_notify() {
    ERR_clear_error();
    SSL_shutdown(ssl_);
}

bool Connection::take_record_keys(RecordCrypto& crypto, RecordKeys& out, std::string& why) {
    bool ok = take_keys(crypto, ssl_, secrets_, read_counter_, written_counter_, out, why);
    secrets_.clear();
    return ok;
}

uv::Block* Connection::take_input(size_t& offset, size_t& len) {
    uv::Block* block = in_block_;
    offset = block != nullptr ? static_cast<size_t>(in_ - block->data()) : 0;
    len = in_left_;
    in_block_ = nullptr;
    in_ = nullptr;
    in_left_ = 0;
    if (block != nullptr && len == 0) {
        pool_.give(block);
        return nullptr;
    }
    return block;
}

void Connection::on_keylog(const SSL* ssl, const char* line) {
    auto* self = static_cast<Connection*>(SSL_get_app_data(ssl));
    if (self == nullptr) return;
    switch (self->secrets_.take(line)) {
        case KeylogSecrets::Line::ClientTraffic:
            self->read_counter_.restart();
            break;
        case KeylogSecrets::Line::ServerTraffic:
            self->written_counter_.restart();
            break;
        case KeylogSecrets::Line::Other:
            break;
    }
}

uv::Block* Connection::take_output() {
    uv::Block* chain = out_head_;
    out_head_ = out_tail_ = nullptr;
    return chain;
}

}  // namespace sb::tls
