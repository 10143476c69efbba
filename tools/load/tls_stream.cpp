#include "load/tls_stream.h"

#include <openssl/err.h>
#include <uv.h>

#include <algorithm>
#include <climits>
#include <cstring>

// OpenSSL's API is largely C macros with C casts inside (SSL_get_cipher_name,
// BIO_set_retry_read...): the warning is about their expansion, not our code.
#pragma GCC diagnostic ignored "-Wold-style-cast"

namespace sb::tools {

BIO_METHOD* TlsStream::method() {
    // One method table for the process; OpenSSL copies nothing from it per BIO.
    static BIO_METHOD* m = [] {
        BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sb-load");
        BIO_meth_set_read(meth, &TlsStream::bio_read);
        BIO_meth_set_write(meth, &TlsStream::bio_write);
        BIO_meth_set_ctrl(meth, &TlsStream::bio_ctrl);
        return meth;
    }();
    return m;
}

TlsStream::TlsStream(TlsContext& context, uint32_t slot, StreamWriter& writer)
    : context_(context), slot_(slot), writer_(writer) {}

TlsStream::~TlsStream() {
    if (ssl_ != nullptr) SSL_free(ssl_);  // and the BIO with it
}

bool TlsStream::start() {
    ssl_ = context_.new_ssl(slot_);
    if (ssl_ == nullptr) {
        error_ = TlsContext::openssl_errors();
        return false;
    }
    BIO* bio = BIO_new(method());
    if (bio == nullptr) {
        error_ = TlsContext::openssl_errors();
        return false;
    }
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);             // the SSL owns the BIO from here on
    return handshake() == Status::WantRead;  // the ClientHello is out
}

TlsStream::Status TlsStream::handshake() {
    // SSL_get_error reads the thread's error queue: it must hold nothing older.
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    return rc == 1 ? Status::Ok : fail(rc);
}

TlsStream::Status TlsStream::read(uint8_t* out, size_t cap, size_t& n) {
    n = 0;
    ERR_clear_error();
    int rc = SSL_read(ssl_, out, static_cast<int>(std::min<size_t>(cap, INT_MAX)));
    if (rc > 0) {
        n = static_cast<size_t>(rc);
        return Status::Ok;
    }
    return fail(rc);
}

int TlsStream::write(const void* data, size_t n) {
    if (n == 0) return 0;
    ERR_clear_error();
    // Without SSL_MODE_ENABLE_PARTIAL_WRITE and with a BIO that takes everything,
    // SSL_write writes all or fails.
    int rc = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(n, INT_MAX)));
    if (rc > 0) return 0;
    if (writer_.error() != 0) return writer_.error();
    error_ = TlsContext::openssl_errors();
    return UV_EPROTO;
}

TlsStream::Status TlsStream::fail(int rc) {
    switch (SSL_get_error(ssl_, rc)) {
        case SSL_ERROR_WANT_READ:
            return Status::WantRead;
        case SSL_ERROR_ZERO_RETURN:
            return Status::Closed;
        default:
            error_ = TlsContext::openssl_errors();
            if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
                error_ += std::string("; verify: ") + X509_verify_cert_error_string(v);
            }
            return Status::Error;
    }
}

int TlsStream::bio_read(BIO* bio, char* out, int len) {
    auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (self->in_left_ == 0 || len <= 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    size_t n = std::min(self->in_left_, static_cast<size_t>(len));
    std::memcpy(out, self->in_, n);
    self->in_ += n;
    self->in_left_ -= n;
    return static_cast<int>(n);
}

int TlsStream::bio_write(BIO* bio, const char* in, int len) {
    auto* self = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    // The writer never refuses bytes (it queues what the kernel does not take) unless
    // the stream broke; backpressure is the Client's, from writer.queued().
    if (self->writer_.write(in, static_cast<size_t>(len)) != 0) return -1;
    return len;
}

long TlsStream::bio_ctrl(BIO*, int cmd, long, void*) {
    // Every write is handed on at once: a flush has nothing to do.
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

}  // namespace sb::tools
