// The hand-off from OpenSSL to the record layer once a server's handshake is done:
// the traffic secrets caught by the key-log callback (KeylogSecrets), the records
// OpenSSL already protected under the application keys, counted from the bytes that
// pass through the memory BIOs (RecordCounter), and take_keys(), which turns both and
// the SSL object into the two directions' TrafficKeys. The SSL can be freed after.
//
// When the keys change, on a server (OpenSSL 3.0), and what the caller must count:
//
// TLS 1.3. Writing: right after the server writes its Finished, OpenSSL installs the
//   server application key and reports SERVER_TRAFFIC_SECRET_0 to the key-log callback;
//   every record written after that (the NewSessionTicket records, then any data) is
//   under that key. Reading: right after OpenSSL reads and checks the client's
//   Finished, it installs the client application key and reports
//   CLIENT_TRAFFIC_SECRET_0; OpenSSL reads records one at a time (no read-ahead), so at
//   that moment it has taken exactly the bytes up to the end of the Finished record,
//   and every later record it takes is under the client key. So: feed each counter the
//   bytes OpenSSL writes to, or reads from, its BIO, and call restart() on the written
//   bytes' counter when SERVER_TRAFFIC_SECRET_0 arrives and on the read bytes' counter
//   when CLIENT_TRAFFIC_SECRET_0 arrives. The encrypted types cannot be seen on the
//   wire (every record says application_data), hence the callback.
// TLS 1.2. Each direction's keys change with its change_cipher_spec record (RFC 5246
//   §7.1), and the Finished that follows is the first record under them (sequence
//   number 0). The counter sees the plaintext change_cipher_spec and counts the records
//   after it by itself; no callback is needed. The master secret comes from the
//   session (SSL_SESSION_get_master_key), not from the key log.
//
// Switch before the first SSL_read or SSL_write of application data: a KeyUpdate
// OpenSSL has processed would change keys that the key log does not report. Bytes
// received but not yet read by OpenSSL (a client's first data, sent with its
// Finished) are then handed to the RecordReader as they are.
//
// Used on the connection's worker thread during its handshake; a few dozen bytes.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "tls/record_keys.h"

namespace sb::tls {

// The TLS 1.3 application traffic secrets of one connection, from key-log lines.
struct KeylogSecrets {
    enum class Line : uint8_t { Other, ClientTraffic, ServerTraffic };

    // Takes one line as SSL_CTX_set_keylog_callback gives it ("LABEL <client_random hex>
    // <secret hex>") and keeps CLIENT_TRAFFIC_SECRET_0 and SERVER_TRAFFIC_SECRET_0 (NSS
    // key log format); says which it was, Other for any other or malformed line.
    Line take(const char* line);
    // Wipes the secrets (once they are turned into keys).
    void clear();

    uint8_t client[kMaxSecretSize] = {};
    uint8_t server[kMaxSecretSize] = {};
    uint8_t client_size = 0;
    uint8_t server_size = 0;
};

// Counts the TLS records in one direction's byte stream, fed in pieces of any size.
class RecordCounter {
  public:
    void feed(const uint8_t* data, size_t len);
    // The keys change here (TLS 1.3; see above): records() counts from zero again.
    // Only meaningful at a record boundary.
    void restart() { since_restart_ = 0; }

    // Complete records since restart().
    uint64_t records() const { return since_restart_; }
    // Complete records after the last complete change_cipher_spec record (TLS 1.2).
    uint64_t records_after_ccs() const { return since_ccs_; }
    bool saw_change_cipher_spec() const { return saw_ccs_; }
    // No record begun and not finished: every byte fed belongs to a complete record.
    bool at_boundary() const { return have_ == 0 && left_ == 0; }

  private:
    uint8_t header_[5] = {};
    uint8_t have_ = 0;  // header bytes of the current record
    bool saw_ccs_ = false;
    uint32_t left_ = 0;  // body bytes of the current record still to come
    uint64_t since_restart_ = 0;
    uint64_t since_ccs_ = 0;
};

// One connection's two directions, as a server sees them.
struct RecordKeys {
    TrafficKeys read;   // the client's records
    TrafficKeys write;  // ours
};

// Derives the keys of a server-side `ssl` whose handshake is done and whose session
// tickets are written (TLS 1.3: NewSessionTicket goes out in the SSL_do_handshake call
// that completes). `read` counted the bytes OpenSSL read from its BIO, `written` those
// it wrote, restarted as described above. Accepts TLS 1.3 and TLS 1.2 with AES-GCM or
// ChaCha20-Poly1305; refuses (false, `why` says what) anything else, a record OpenSSL
// has only partly read or written, plaintext OpenSSL holds, or missing secrets. Then
// the connection stays on OpenSSL.
[[nodiscard]] bool take_keys(RecordCrypto& crypto, SSL* ssl, const KeylogSecrets& secrets,
                             const RecordCounter& read, const RecordCounter& written,
                             RecordKeys& out, std::string& why);

}  // namespace sb::tls
