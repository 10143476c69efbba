// tls::Connection: one TLS session (OpenSSL) driven by the event loop through memory,
// never through a socket: ciphertext read from the network is handed in, plaintext
// comes out, and plaintext handed in comes out as ciphertext for the caller to write.
//
// The BIO is our own and holds no buffer: it reads straight from the ciphertext block
// the caller handed in and writes into blocks taken from the worker's BlockPool. With
// SSL_MODE_RELEASE_BUFFERS, OpenSSL also frees its record buffers when idle, so an
// idle TLS connection keeps only OpenSSL's session state.
//
// Owned by a Session (one per TLS side); used on its worker's thread only.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>

#include "tls/record_handoff.h"
#include "uv/block_pool.h"

namespace sb::tls {

class Connection {
  public:
    enum class Status {
        Ok,        // progress made (plaintext read, handshake finished...)
        WantRead,  // needs more ciphertext from the network
        Closed,    // the peer sent close_notify
        Error,     // fatal; error() says why
    };

    // A server-side connection on `ctx` (a listener's default context; SNI may switch it).
    static std::unique_ptr<Connection> accept(SSL_CTX* ctx, uv::BlockPool& pool);
    // A client-side connection to a backend: SNI and verification name `name` (a host
    // name, or an IP address verified against the certificate's IP entries).
    static std::unique_ptr<Connection> connect(SSL_CTX* ctx, const std::string& name, bool verify,
                                               uv::BlockPool& pool);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Hands in ciphertext: `block` holds `len` bytes from `data`, and goes back to the
    // pool once OpenSSL has consumed them all.
    void give_input(uv::Block* block, const char* data, size_t len);
    bool has_input() const { return in_block_ != nullptr; }
    // Ciphertext not yet consumed, or record bytes OpenSSL holds (a record decrypted
    // but not all read out, or a partial record): a read may have something to give.
    bool has_pending() const { return in_block_ != nullptr || SSL_has_pending(ssl_) == 1; }

    Status handshake();
    bool handshake_done() const { return SSL_is_init_finished(ssl_) != 0; }
    // Decrypts into out[0..cap); sets n to the plaintext bytes produced.
    Status read(char* out, size_t cap, size_t& n);
    // Encrypts every buffer; false on error.
    bool write(const char* data, size_t len);
    // Queues a close_notify alert.
    void close_notify();

    // Ciphertext produced so far, as a chain of blocks linked by Block::next (nullptr
    // if none); the caller writes and then releases them.
    uv::Block* take_output();
    bool has_output() const { return out_head_ != nullptr; }

    // Server side, handshake done and its output taken: the keys for the record layer
    // (take_keys, record_handoff.h). False (`why` says why) if this connection must
    // stay on OpenSSL. The SSL object may be freed after a success.
    [[nodiscard]] bool take_record_keys(RecordCrypto& crypto, RecordKeys& out, std::string& why);
    // Takes the ciphertext OpenSSL has not read (nullptr if none): the block holds
    // `len` bytes from block->data() + offset; the caller owns it from now on.
    uv::Block* take_input(size_t& offset, size_t& len);
    // The key-log callback of server contexts (context.cpp): keeps the traffic secrets
    // and restarts the record counters where OpenSSL changes keys.
    static void on_keylog(const SSL* ssl, const char* line);

    // What went wrong, from OpenSSL's error queue and the verification result.
    const std::string& error() const { return error_; }
    bool resumed() const { return SSL_session_reused(ssl_) != 0; }
    // The first bytes a client sent, when they looked like plain HTTP to a TLS port.
    bool saw_plain_http() const { return saw_plain_http_; }

  private:
    Connection(SSL* ssl, uv::BlockPool& pool);
    Status fail(int rc);
    static BIO_METHOD* method();
    static int bio_read(BIO* bio, char* out, int len);
    static int bio_write(BIO* bio, const char* in, int len);
    static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);

    SSL* ssl_;
    uv::BlockPool& pool_;
    uv::Block* in_block_ = nullptr;  // the ciphertext being consumed
    const char* in_ = nullptr;
    size_t in_left_ = 0;
    bool first_input_ = true;
    bool saw_plain_http_ = false;
    uv::Block* out_head_ = nullptr;
    uv::Block* out_tail_ = nullptr;
    std::string error_;
    // The hand-off to the record layer (server side): what OpenSSL read from and wrote
    // to the BIO, and the TLS 1.3 secrets from the key log.
    RecordCounter read_counter_;
    RecordCounter written_counter_;
    KeylogSecrets secrets_;
};

// Gives a chain of blocks (linked by Block::next) back to the pool.
void release_chain(uv::BlockPool& pool, uv::Block* chain);

}  // namespace sb::tls
