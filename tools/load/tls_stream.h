// TlsStream: the TLS layer of one sb-load Client (--tls). OpenSSL runs over a BIO of
// our own that holds no buffer: its reads take the ciphertext the Client just read
// (the context's shared read buffer, lent for one callback), its writes go straight to
// the Client's StreamWriter, which tries the socket first and copies only what the
// kernel refuses. So TLS adds no copy beyond OpenSSL's own record buffers, and the
// load generator stays as cheap as it can on the core it shares with the backend.
//
// This is deliberately not the proxy's tls::Connection: the load generator must not
// share code with what it measures (a plumbing bug there would be hidden on both ends).
//
// Owned by its Client (created in connect(), freed with it); single-threaded.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/stream_writer.h"
#include "load/tls_context.h"

namespace sb::tools {

class TlsStream {
  public:
    enum class Status {
        Ok,        // progress: the handshake finished, or plaintext came out
        WantRead,  // every byte handed in is consumed; wait for the next read
        Closed,    // the server sent close_notify
        Error,     // fatal (error() says why)
    };

    // Output goes to `writer`, which must outlive the stream.
    TlsStream(TlsContext& context, uint32_t slot, StreamWriter& writer);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    // Sends the ClientHello. False when the SSL could not be made or written.
    [[nodiscard]] bool start();
    // Lends ciphertext for the next handshake() and read() calls; they consume it
    // all before returning WantRead.
    void give_input(const uint8_t* data, size_t n) {
        in_ = data;
        in_left_ = n;
    }
    Status handshake();
    bool handshake_done() const { return ssl_ != nullptr && SSL_is_init_finished(ssl_) != 0; }
    // Decrypts into out[0..cap); `n` is the plaintext produced when Ok.
    Status read(uint8_t* out, size_t cap, size_t& n);
    // Encrypts and writes `n` bytes. Returns 0, or the writer's error (or UV_EPROTO
    // when OpenSSL fails).
    [[nodiscard]] int write(const void* data, size_t n);

    // The connection ended cleanly above TLS (the WebSocket closing handshake): its
    // session stays resumable. OpenSSL forgets the session of a connection freed
    // without a TLS shutdown (ssl_clear_bad_session); browsers do resume after a clean
    // close without close_notify, and so do we.
    void end_cleanly() {
        if (ssl_ != nullptr) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    bool resumed() const { return SSL_session_reused(ssl_) != 0; }
    const char* version() const { return SSL_get_version(ssl_); }
    const char* cipher() const { return SSL_get_cipher_name(ssl_); }
    const std::string& error() const { return error_; }

  private:
    static BIO_METHOD* method();
    static int bio_read(BIO* bio, char* out, int len);
    static int bio_write(BIO* bio, const char* in, int len);
    static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);
    Status fail(int rc);

    TlsContext& context_;
    uint32_t slot_;
    StreamWriter& writer_;
    SSL* ssl_ = nullptr;
    const uint8_t* in_ = nullptr;
    size_t in_left_ = 0;
    std::string error_;
};

}  // namespace sb::tools
