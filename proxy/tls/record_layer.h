// The record layer after the handshake: seals records (TLS 1.3, RFC 8446 §5.2 and §5.3;
// TLS 1.2 AEAD, RFC 5246 §6.2.3.3) in the caller's buffer, and RecordReader, an
// incremental parser that opens a stream of records in place, whatever reads they
// arrive in, and says what each one means for the connection (data, a KeyUpdate, a
// close_notify, an alert, a refused renegotiation, or the alert to close with).
//
// Only what a server needs once its handshake is done is accepted: application data,
// alerts, TLS 1.3 KeyUpdate. Everything else a client may send ends the connection.
// Stateless apart from the TrafficKeys and RecordReader the connection owns; the
// cipher work goes through the worker's RecordCrypto. One thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "tls/record_keys.h"

namespace sb::tls {

// RFC 8446 §5.1, RFC 5246 §6.2.1.
enum class ContentType : uint8_t {
    ChangeCipherSpec = 20,
    Alert = 21,
    Handshake = 22,
    ApplicationData = 23,
};

// The alert descriptions this layer sends or recognises (RFC 8446 §6, RFC 5246 §7.2).
namespace alert {
inline constexpr uint8_t kCloseNotify = 0;
inline constexpr uint8_t kUnexpectedMessage = 10;
inline constexpr uint8_t kBadRecordMac = 20;
inline constexpr uint8_t kRecordOverflow = 22;
inline constexpr uint8_t kIllegalParameter = 47;
inline constexpr uint8_t kDecodeError = 50;
inline constexpr uint8_t kProtocolVersion = 70;
inline constexpr uint8_t kInternalError = 80;
inline constexpr uint8_t kUserCanceled = 90;
inline constexpr uint8_t kNoRenegotiation = 100;
inline constexpr uint8_t kWarning = 1;  // AlertLevel
inline constexpr uint8_t kFatal = 2;
}  // namespace alert

// An alert description's name as the RFCs spell it ("bad_record_mac"), for the log;
// empty for a value no RFC names.
std::string_view alert_name(uint8_t description);

inline constexpr size_t kHeaderSize = 5;
inline constexpr size_t kMaxPlaintext = 16384;  // 2^14 (RFC 8446 §5.1, RFC 5246 §6.2.1)
// RFC 8446 §5.2: TLSCiphertext.length must not exceed 2^14 + 256.
inline constexpr size_t kMaxCiphertext13 = kMaxPlaintext + 256;
// RFC 5246 §6.2.3: TLSCiphertext.length must not exceed 2^14 + 2048.
inline constexpr size_t kMaxCiphertext12 = kMaxPlaintext + 2048;

// How many records in a row a peer may send that carry no application data (empty
// records, warning alerts, KeyUpdates): each costs a decryption and moves nothing.
// OpenSSL allows 32 empty records in a row (MAX_EMPTY_RECORDS); a longer run ends the
// connection with unexpected_message.
inline constexpr size_t kMaxRecordsWithoutData = 32;

// Where a sealed record's plaintext goes in the caller's buffer: after the header (and,
// for TLS 1.2 AES-GCM, the 8-byte explicit nonce), and how much room it needs after:
// TLS 1.3's content type and padding, and the tag.
size_t seal_prefix(const TrafficKeys& keys);
size_t seal_suffix(const TrafficKeys& keys, size_t padding);
// The largest sealed record: a full plaintext, the largest prefix and suffix, no padding.
inline constexpr size_t kMaxSealedRecord = kHeaderSize + 8 + kMaxPlaintext + 1 + kTagSize;

enum class SealStatus : uint8_t {
    Ok,
    // Sealed, and the key has reached its usage limit's KeyUpdate mark (RFC 8446 §5.5):
    // TLS 1.3 must seal_key_update() before much more data; TLS 1.2 must close soon.
    KeyUpdateDue,
    // Not sealed: the key may protect no more records (its limit, or a sequence number
    // that would wrap, §5.3). The connection must close without sending more.
    Exhausted,
    Error,  // not sealed: a length out of bounds, or a cipher failure
};

struct Sealed {
    SealStatus status;
    size_t size;  // bytes of record at buf[0..size) when sealed
};

// Seals one record of `type` in place. The plaintext is buf[seal_prefix(keys) ..
// + len), len <= 2^14; `cap` is the buffer's size, which must hold seal_prefix + len +
// seal_suffix(keys, padding). `padding` zero bytes are added inside a TLS 1.3 record
// (§5.4; ignored for TLS 1.2), up to the 2^14 + 1 bytes of TLSInnerPlaintext §5.2 allows.
// The sequence number advances on success.
[[nodiscard]] Sealed seal(RecordCrypto& crypto, TrafficKeys& keys, ContentType type, uint8_t* buf,
                          size_t len, size_t cap, size_t padding = 0);

// TLS 1.3 (RFC 8446 §4.6.3): seals a KeyUpdate message into out[0..cap) (cap >= 32;
// 27 bytes are written) under the current keys, then moves `keys` to the next
// generation: the sender updates its keys right after sending KeyUpdate.
[[nodiscard]] Sealed seal_key_update(RecordCrypto& crypto, TrafficKeys& keys, bool update_requested,
                                     uint8_t* out, size_t cap);

// Seals an alert (cap >= 32). A TLS 1.3 alert is always fatal except close_notify and
// user_canceled (§6): pass kFatal for the others.
[[nodiscard]] Sealed seal_alert(RecordCrypto& crypto, TrafficKeys& keys, uint8_t level,
                                uint8_t description, uint8_t* out, size_t cap);

// Opens the records a peer sends, in place, as they arrive in reads of any size.
// A record wholly inside one read is decrypted where it lies; only a record split
// across reads is gathered into a buffer, allocated for that record (its exact size,
// at most 2^14 + 2048 bytes) and freed once it is opened, so a reader between records
// holds no buffer.
class RecordReader {
  public:
    enum class Kind : uint8_t {
        NeedMore,       // every input byte is taken; give more
        Data,           // application data: data[0..size), possibly empty
        KeyUpdate,      // the peer's KeyUpdate: the read keys have moved on already;
                        // if update_requested, seal_key_update(false) before more data
        CloseNotify,    // the peer closed its side (a half-close); later input is ignored
        Renegotiation,  // TLS 1.2: a handshake message (a ClientHello). Refuse it with a
                        // warning no_renegotiation alert, or close. A second one is a Fail
        PeerAlert,      // the peer sent a fatal alert (`alert`): close without answering
        Fail,           // the record is not acceptable: send `alert` (fatal) and close
    };
    struct Event {
        Kind kind = Kind::NeedMore;
        bool update_requested = false;  // KeyUpdate
        uint8_t alert = 0;              // PeerAlert: received; Fail: to send
        size_t consumed = 0;            // input bytes this call took
        uint8_t* data = nullptr;        // Data: plaintext, valid until the next call
        size_t size = 0;
    };

    RecordReader() = default;
    RecordReader(const RecordReader&) = delete;
    RecordReader& operator=(const RecordReader&) = delete;

    // Reads from in[0..len) up to the end of the next record that means something to
    // the caller (an empty record or a warning alert is passed over) and returns it;
    // the caller calls again with in + consumed until NeedMore. More than
    // kMaxRecordsWithoutData records in a row without data are a Fail. Ciphertext is
    // overwritten with plaintext. After CloseNotify, PeerAlert or Fail, every later
    // call returns the same event and takes all input.
    Event next(RecordCrypto& crypto, TrafficKeys& keys, uint8_t* in, size_t len);

    // Bytes of a record begun but not complete (a header, or a header and some body).
    size_t partial() const { return header_have_ + body_have_; }
    bool buffering() const { return body_ != nullptr; }

  private:
    Event finish(uint8_t* body, size_t body_len, RecordCrypto& crypto, TrafficKeys& keys);
    Event end(Event e);
    void reset_record();

    uint8_t header_[kHeaderSize] = {};
    uint8_t header_have_ = 0;
    Kind ended_ = Kind::NeedMore;  // CloseNotify, PeerAlert or Fail once ended
    uint8_t ended_alert_ = 0;
    uint8_t without_data_ = 0;  // records in a row without data (kMaxRecordsWithoutData)
    bool renegotiation_refused_ = false;
    uint16_t body_have_ = 0;
    std::unique_ptr<uint8_t[]> body_;  // only while a split record is gathered
};

}  // namespace sb::tls
