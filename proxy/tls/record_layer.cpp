#include "tls/record_layer.h"

#include <algorithm>
#include <cstring>

namespace sb::tls {

namespace {

constexpr uint8_t kKeyUpdateType = 24;                    // HandshakeType key_update (RFC 8446 §4)
constexpr uint8_t kClientHelloType = 1;                   // RFC 5246 §7.4
constexpr size_t kGcmExplicitNonce = 8;                   // RFC 5288 §3
constexpr size_t kMaxInnerPlaintext = kMaxPlaintext + 1;  // RFC 8446 §5.4

bool is_tls12_gcm(const TrafficKeys& k) {
    return k.version == RecordVersion::Tls12 && k.aead != Aead::Chacha20Poly1305;
}

void put_u16(uint8_t* p, size_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

void put_u64(uint8_t* p, uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}

// RFC 8446 §5.3 (and RFC 7905 §2 for TLS 1.2 ChaCha20-Poly1305): the 64-bit sequence
// number, big-endian and left-padded to the IV's 12 bytes, XORed with the IV.
void xor_nonce(const TrafficKeys& k, uint8_t nonce[kIvSize]) {
    std::memcpy(nonce, k.iv, kIvSize);
    uint8_t seq[8];
    put_u64(seq, k.seq);
    for (size_t i = 0; i < 8; ++i)
        nonce[kIvSize - 8 + i] ^= seq[i];
}

// RFC 5246 §6.2.3.3: additional_data = seq_num + TLSCompressed.type +
// TLSCompressed.version + TLSCompressed.length (the plaintext's length).
void tls12_aad(const TrafficKeys& k, uint8_t type, size_t plain_len, uint8_t aad[13]) {
    put_u64(aad, k.seq);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    put_u16(aad + 11, plain_len);
}

// RFC 5246 §6.2.3.3 with RFC 5288 §3 (AES-GCM: nonce = 4-byte salt || 8-byte explicit
// nonce carried in the record, here the sequence number as OpenSSL does) or RFC 7905 §2
// (ChaCha20-Poly1305: nonce = IV XOR sequence number, nothing carried).
void tls12_nonce(const TrafficKeys& k, const uint8_t* explicit_nonce, uint8_t nonce[kIvSize]) {
    if (k.aead == Aead::Chacha20Poly1305) {
        xor_nonce(k, nonce);
    } else {
        std::memcpy(nonce, k.iv, 4);
        std::memcpy(nonce + 4, explicit_nonce, kGcmExplicitNonce);
    }
}

}  // namespace

std::string_view alert_name(uint8_t description) {
    // RFC 8446 §6, and RFC 5246 §7.2's that TLS 1.3 dropped.
    struct Named {
        uint8_t description;
        std::string_view name;
    };
    static constexpr Named kNames[] = {{0, "close_notify"},
                                       {10, "unexpected_message"},
                                       {20, "bad_record_mac"},
                                       {21, "decryption_failed"},
                                       {22, "record_overflow"},
                                       {30, "decompression_failure"},
                                       {40, "handshake_failure"},
                                       {42, "bad_certificate"},
                                       {43, "unsupported_certificate"},
                                       {44, "certificate_revoked"},
                                       {45, "certificate_expired"},
                                       {46, "certificate_unknown"},
                                       {47, "illegal_parameter"},
                                       {48, "unknown_ca"},
                                       {49, "access_denied"},
                                       {50, "decode_error"},
                                       {51, "decrypt_error"},
                                       {70, "protocol_version"},
                                       {71, "insufficient_security"},
                                       {80, "internal_error"},
                                       {86, "inappropriate_fallback"},
                                       {90, "user_canceled"},
                                       {100, "no_renegotiation"},
                                       {109, "missing_extension"},
                                       {110, "unsupported_extension"},
                                       {112, "unrecognized_name"},
                                       {113, "bad_certificate_status_response"},
                                       {115, "unknown_psk_identity"},
                                       {116, "certificate_required"},
                                       {120, "no_application_protocol"}};
    for (const Named& n : kNames) {
        if (n.description == description) return n.name;
    }
    return {};
}

size_t seal_prefix(const TrafficKeys& keys) {
    return kHeaderSize + (is_tls12_gcm(keys) ? kGcmExplicitNonce : 0);
}

size_t seal_suffix(const TrafficKeys& keys, size_t padding) {
    return keys.version == RecordVersion::Tls13 ? 1 + padding + kTagSize : kTagSize;
}

Sealed seal(RecordCrypto& crypto, TrafficKeys& keys, ContentType type, uint8_t* buf, size_t len,
            size_t cap, size_t padding) {
    const bool v13 = keys.version == RecordVersion::Tls13;
    if (!v13) padding = 0;
    // RFC 8446 §5.1 and RFC 5246 §6.2.1: at most 2^14 bytes of plaintext; §5.4: the
    // content type and padding too must fit in 2^14 + 1 bytes.
    if (len > kMaxPlaintext || (v13 && len + 1 + padding > kMaxInnerPlaintext))
        return {SealStatus::Error, 0};
    const size_t prefix = seal_prefix(keys);
    const size_t total = prefix + len + seal_suffix(keys, padding);
    if (total > cap) return {SealStatus::Error, 0};
    // RFC 8446 §5.5 and §5.3: never past the key's limit, never a wrapped sequence
    // number, hence never a nonce used twice.
    const KeyLimits& limits = crypto.limits(keys.aead);
    if (keys.seq >= limits.max_records || keys.seq == UINT64_MAX) return {SealStatus::Exhausted, 0};

    uint8_t nonce[kIvSize];
    uint8_t* data = buf + prefix;
    size_t data_len = len;
    if (v13) {
        // RFC 8446 §5.2: TLSInnerPlaintext = content || ContentType type || zeros; the
        // outer record says application_data, legacy_record_version 0x0303, and its
        // length covers the encrypted inner plaintext and the tag.
        data[len] = static_cast<uint8_t>(type);
        std::memset(data + len + 1, 0, padding);
        data_len = len + 1 + padding;
        buf[0] = static_cast<uint8_t>(ContentType::ApplicationData);
        buf[1] = 3;
        buf[2] = 3;
        put_u16(buf + 3, data_len + kTagSize);
        xor_nonce(keys, nonce);
        // §5.2: additional_data = the record header.
        if (!crypto.seal(keys, nonce, buf, kHeaderSize, data, data_len, data + data_len))
            return {SealStatus::Error, 0};
    } else {
        // RFC 5246 §6.2.3.3: the record carries the real type; its length covers the
        // explicit nonce (AES-GCM), the ciphertext and the tag.
        buf[0] = static_cast<uint8_t>(type);
        buf[1] = 3;
        buf[2] = 3;
        put_u16(buf + 3, total - kHeaderSize);
        if (is_tls12_gcm(keys)) put_u64(buf + kHeaderSize, keys.seq);
        tls12_nonce(keys, buf + kHeaderSize, nonce);
        uint8_t aad[13];
        tls12_aad(keys, buf[0], len, aad);
        if (!crypto.seal(keys, nonce, aad, sizeof(aad), data, len, data + len))
            return {SealStatus::Error, 0};
    }
    ++keys.seq;
    return {keys.seq >= limits.key_update_at ? SealStatus::KeyUpdateDue : SealStatus::Ok, total};
}

Sealed seal_key_update(RecordCrypto& crypto, TrafficKeys& keys, bool update_requested, uint8_t* out,
                       size_t cap) {
    if (keys.version != RecordVersion::Tls13) return {SealStatus::Error, 0};
    // RFC 8446 §4.6.3: struct { KeyUpdateRequest request_update; } KeyUpdate, in a
    // handshake message of type key_update (24) and length 1.
    const uint8_t msg[5] = {kKeyUpdateType, 0, 0, 1, update_requested ? uint8_t{1} : uint8_t{0}};
    if (cap < kHeaderSize + sizeof(msg)) return {SealStatus::Error, 0};
    std::memcpy(out + kHeaderSize, msg, sizeof(msg));
    Sealed s = seal(crypto, keys, ContentType::Handshake, out, sizeof(msg), cap);
    if (s.status == SealStatus::Exhausted || s.status == SealStatus::Error) return s;
    // §4.6.3: "the sender MUST send ... KeyUpdate ... using the old keys" and then
    // updates its sending keys; the fresh key is far from any limit.
    if (!tls13_update(crypto, keys)) return {SealStatus::Error, 0};
    return {SealStatus::Ok, s.size};
}

Sealed seal_alert(RecordCrypto& crypto, TrafficKeys& keys, uint8_t level, uint8_t description,
                  uint8_t* out, size_t cap) {
    // RFC 8446 §6 and RFC 5246 §7.2: struct { AlertLevel level; AlertDescription
    // description; } Alert.
    const size_t prefix = seal_prefix(keys);
    if (cap < prefix + 2) return {SealStatus::Error, 0};
    out[prefix] = level;
    out[prefix + 1] = description;
    return seal(crypto, keys, ContentType::Alert, out, 2, cap);
}

RecordReader::Event RecordReader::end(Event e) {
    ended_ = e.kind;
    ended_alert_ = e.alert;
    reset_record();
    body_.reset();
    return e;
}

void RecordReader::reset_record() {
    header_have_ = 0;
    body_have_ = 0;
}

RecordReader::Event RecordReader::next(RecordCrypto& crypto, TrafficKeys& keys, uint8_t* in,
                                       size_t len) {
    Event e;
    if (ended_ != Kind::NeedMore) {
        // RFC 8446 §6.1: data after a closure alert is ignored; after a failure the
        // connection is closing and nothing more is read.
        e.kind = ended_;
        e.alert = ended_alert_;
        e.consumed = len;
        return e;
    }
    const bool v13 = keys.version == RecordVersion::Tls13;
    size_t used = 0;
    for (;;) {
        // A gathered record's plaintext was handed out by the previous call (or was
        // passed over): its buffer goes as soon as no record is in progress.
        if (header_have_ == 0 && body_have_ == 0) body_.reset();
        if (header_have_ < kHeaderSize) {
            size_t n = std::min(kHeaderSize - header_have_, len - used);
            std::memcpy(header_ + header_have_, in + used, n);
            header_have_ = static_cast<uint8_t>(header_have_ + n);
            used += n;
            if (header_have_ < kHeaderSize) {
                e.consumed = used;
                return e;  // NeedMore
            }
        }
        const uint8_t type = header_[0];
        const size_t rec_len = size_t{header_[3]} << 8 | header_[4];
        // Checks on the header alone, before any byte of the body is kept.
        uint8_t refuse = 0;
        if (type == static_cast<uint8_t>(ContentType::ChangeCipherSpec)) {
            // RFC 8446 §5: change_cipher_spec after the peer's Finished, and RFC 5246
            // §7.1: one after the handshake would start a renegotiated epoch.
            refuse = alert::kUnexpectedMessage;
        } else if (v13) {
            // RFC 8446 §5.2: every protected record's outer type is application_data;
            // its length is at most 2^14 + 256 and holds at least a content type and a
            // tag. legacy_record_version is ignored (§5.1), but authenticated.
            if (type != static_cast<uint8_t>(ContentType::ApplicationData))
                refuse = alert::kUnexpectedMessage;
            else if (rec_len > kMaxCiphertext13)
                refuse = alert::kRecordOverflow;
            else if (rec_len < 1 + kTagSize)
                refuse = alert::kBadRecordMac;
        } else {
            // RFC 5246 §6.2.1: alert, handshake or application_data; the negotiated
            // version; at most 2^14 + 2048 bytes (§6.2.3); room for the explicit nonce
            // (AES-GCM) and the tag.
            if (type < static_cast<uint8_t>(ContentType::Alert) ||
                type > static_cast<uint8_t>(ContentType::ApplicationData))
                refuse = alert::kUnexpectedMessage;
            else if (header_[1] != 3 || header_[2] != 3)
                refuse = alert::kProtocolVersion;
            else if (rec_len > kMaxCiphertext12)
                refuse = alert::kRecordOverflow;
            else if (rec_len < (is_tls12_gcm(keys) ? kGcmExplicitNonce : 0) + kTagSize)
                refuse = alert::kBadRecordMac;
        }
        if (refuse != 0) {
            e.kind = Kind::Fail;
            e.alert = refuse;
            e.consumed = used;
            return end(e);
        }
        uint8_t* body;
        if (body_ == nullptr && len - used >= rec_len) {
            body = in + used;  // the whole record is in this read: open it where it is
            used += rec_len;
        } else {
            if (body_ == nullptr) body_.reset(new uint8_t[rec_len]);
            size_t n = std::min(rec_len - body_have_, len - used);
            std::memcpy(body_.get() + body_have_, in + used, n);
            body_have_ = static_cast<uint16_t>(body_have_ + n);
            used += n;
            if (body_have_ < rec_len) {
                e.consumed = used;
                return e;  // NeedMore
            }
            body = body_.get();
        }
        Event r = finish(body, rec_len, crypto, keys);
        r.consumed = used;
        reset_record();
        if (r.kind == Kind::Data) {
            without_data_ = 0;
        } else if (r.kind == Kind::NeedMore || r.kind == Kind::KeyUpdate ||
                   r.kind == Kind::Renegotiation) {
            if (++without_data_ > kMaxRecordsWithoutData) {
                r.kind = Kind::Fail;
                r.alert = alert::kUnexpectedMessage;
            }
        }
        if (r.kind == Kind::CloseNotify || r.kind == Kind::PeerAlert || r.kind == Kind::Fail)
            return end(r);
        if (r.kind != Kind::NeedMore) return r;
        // Passed over (an empty record, a warning alert): on to the next record.
    }
}

RecordReader::Event RecordReader::finish(uint8_t* body, size_t rec_len, RecordCrypto& crypto,
                                         TrafficKeys& keys) {
    Event e;
    auto fail = [&e](uint8_t a) {
        e.kind = Kind::Fail;
        e.alert = a;
        return e;
    };
    const bool v13 = keys.version == RecordVersion::Tls13;
    // RFC 8446 §5.3: a sequence number never wraps. The peer would have had to send
    // 2^64 - 1 records under one key: close rather than accept a repeated nonce.
    if (keys.seq == UINT64_MAX) return fail(alert::kInternalError);
    uint8_t nonce[kIvSize];
    uint8_t type;
    uint8_t* data;
    size_t plen;
    if (v13) {
        // RFC 8446 §5.2: decrypt with additional_data = the record header and
        // nonce = IV XOR sequence number (§5.3); a failure is bad_record_mac.
        const size_t clen = rec_len - kTagSize;
        xor_nonce(keys, nonce);
        if (!crypto.open(keys, nonce, header_, kHeaderSize, body, clen, body + clen))
            return fail(alert::kBadRecordMac);
        ++keys.seq;
        // §5.4: TLSInnerPlaintext is at most 2^14 + 1 bytes, else record_overflow.
        if (clen > kMaxInnerPlaintext) return fail(alert::kRecordOverflow);
        // §5.4: the content type is the last non-zero byte; padding is the zeros
        // after it. All zeros: unexpected_message.
        size_t i = clen;
        while (i > 0 && body[i - 1] == 0)
            --i;
        if (i == 0) return fail(alert::kUnexpectedMessage);
        type = body[i - 1];
        data = body;
        plen = i - 1;
    } else {
        // RFC 5246 §6.2.3.3: additional_data = seq || type || version || plaintext length.
        const size_t skip = is_tls12_gcm(keys) ? kGcmExplicitNonce : 0;
        type = header_[0];
        data = body + skip;
        plen = rec_len - skip - kTagSize;
        tls12_nonce(keys, body, nonce);
        uint8_t aad[13];
        tls12_aad(keys, type, plen, aad);
        if (!crypto.open(keys, nonce, aad, sizeof(aad), data, plen, data + plen))
            return fail(alert::kBadRecordMac);
        ++keys.seq;
        // §6.2.3: at most 2^14 bytes once decrypted.
        if (plen > kMaxPlaintext) return fail(alert::kRecordOverflow);
    }

    switch (static_cast<ContentType>(type)) {
        case ContentType::ApplicationData:
            // RFC 8446 §5.1: zero-length application data may be sent (as traffic-analysis
            // cover); pass over it, as OpenSSL does.
            if (plen == 0) return e;
            e.kind = Kind::Data;
            e.data = data;
            e.size = plen;
            return e;
        case ContentType::Alert: {
            // RFC 8446 §5.1: an alert is never fragmented or coalesced, so its record holds
            // exactly one (2 bytes); TLS 1.2 allows fragments, which no client sends.
            if (plen != 2) return fail(alert::kDecodeError);
            const uint8_t level = data[0];
            const uint8_t desc = data[1];
            // §6.1 (RFC 5246 §7.2.1): close_notify closes the peer's direction only.
            if (desc == alert::kCloseNotify) {
                e.kind = Kind::CloseNotify;
                return e;
            }
            // RFC 8446 §6: user_canceled is a warning (a close_notify follows), every other
            // alert is an error whatever its level. RFC 5246 §7.2: a warning may be ignored.
            if (v13 ? desc == alert::kUserCanceled : level == alert::kWarning) return e;
            e.kind = Kind::PeerAlert;
            e.alert = desc;
            return e;
        }
        case ContentType::Handshake:
            // RFC 8446 §5.1: no zero-length handshake fragments.
            if (plen == 0) return fail(alert::kUnexpectedMessage);
            if (!v13) {
                // RFC 5246 §7.4.1.2 and RFC 5746 §4.4: a ClientHello after the handshake asks
                // for a renegotiation, which a server may refuse with a warning
                // no_renegotiation (§7.2.2). Any other message from a client is out of place.
                if (data[0] != kClientHelloType) return fail(alert::kUnexpectedMessage);
                // One refusal per connection: a client that asks again after it is
                // closed, rather than answered with alert after alert.
                if (renegotiation_refused_) return fail(alert::kUnexpectedMessage);
                renegotiation_refused_ = true;
                e.kind = Kind::Renegotiation;
                return e;
            }
            // RFC 8446 §4.6: after the handshake a client may send only KeyUpdate (no
            // NewSessionTicket, §4.6.1; no post-handshake authentication was asked for).
            if (data[0] != kKeyUpdateType) return fail(alert::kUnexpectedMessage);
            // KeyUpdate is exactly 4 + 1 bytes; a message split across records would be
            // legal but is not reassembled here: no implementation splits 5 bytes.
            if (plen < 5) return fail(alert::kUnexpectedMessage);
            if (data[1] != 0 || data[2] != 0 || data[3] != 1) return fail(alert::kDecodeError);
            // §5.1: a KeyUpdate precedes a key change, so it must end its record.
            if (plen != 5) return fail(alert::kUnexpectedMessage);
            // §4.6.3: request_update is update_not_requested(0) or update_requested(1);
            // anything else is illegal_parameter.
            if (data[4] > 1) return fail(alert::kIllegalParameter);
            // §4.6.3: the receiver updates its receiving keys on receipt.
            if (!tls13_update(crypto, keys)) return fail(alert::kInternalError);
            e.kind = Kind::KeyUpdate;
            e.update_requested = data[4] == 1;
            return e;
        default:
            // RFC 8446 §5.4 (an inner change_cipher_spec or unknown type) and RFC 5246 §6.
            return fail(alert::kUnexpectedMessage);
    }
}

}  // namespace sb::tls
