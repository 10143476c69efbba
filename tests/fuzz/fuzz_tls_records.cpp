// Fuzzer (differential): the post-handshake record layer (tls/record_layer.h) against
// OpenSSL's own record layer.
//
// Each input runs a real TLS handshake in process (tests/support/tls_pair.h: an OpenSSL
// client and server over memory BIOs, TLS 1.3 with each AEAD suite or TLS 1.2 with
// AES-GCM or ChaCha20-Poly1305, 0 to 3 session tickets, the client's first data in the
// read with its Finished or not), switches the server's end to the record layer with
// the keys and sequence numbers take_keys() derives, and frees the server's SSL. The
// input then plans traffic both ways:
//   - client data of any size (OpenSSL's records, padded to a fuzzed block size), cut
//     into reads anywhere: the record layer must read exactly the bytes written;
//   - our data, sealed in records of fuzzed sizes with fuzzed TLS 1.3 padding (empty
//     records too): OpenSSL's client must read exactly the bytes sealed;
//   - KeyUpdates from the client (SSL_key_update) and from us, with and without
//     update_requested: the record layer reports the client's with its flag and answers
//     a requested one; OpenSSL answers ours, and both keep reading each other;
//   - close_notify either way, a fatal alert from us, or one byte of a client record
//     flipped (bad_record_mac, with nothing of that record delivered), which end the run.
// Every check is an exact comparison with what the other side put in.
//
// A handshake per input: about a millisecond (see docs/fuzzing.md for the rate).
// TLS_RECORDS_FUZZ_DEBUG=1 prints each step.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../support/tls_pair.h"
#include "fuzz_util.h"
#include "tls/record_handoff.h"
#include "tls/record_keys.h"
#include "tls/record_layer.h"

namespace {

using namespace sb::tls;
using sb::test::TlsPair;
using Kind = RecordReader::Kind;

struct Suite {
    int version;
    const char* suites;
    const char* ciphers;
};
constexpr Suite kSuites[] = {
    {TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", ""},
    {TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", ""},
    {TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", ""},
    {TLS1_2_VERSION, "", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {TLS1_2_VERSION, "", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {TLS1_2_VERSION, "", "ECDHE-ECDSA-CHACHA20-POLY1305"},
};

RecordCrypto& crypto() {
    static RecordCrypto c;  // one per worker in the proxy; one per process here
    return c;
}

class Run {
  public:
    Run(FuzzedDataProvider& in, const TlsPair::Options& o, SSL_CTX* server_ctx, SSL_CTX* client_ctx)
        : in_(in), pair_(o, server_ctx, client_ctx) {
        v13_ = o.version == TLS1_3_VERSION;
    }

    // The handshake and the switch; false if it did not happen (nothing to check).
    bool start(const std::string& client_first) {
        SB_FUZZ_CHECK(pair_.handshake(client_first), "handshake failed");
        std::string unread, why;
        SB_FUZZ_CHECK(pair_.switch_server(crypto(), keys_, unread, why), "%s", why.c_str());
        // The client's first data, unread by OpenSSL, is the record layer's to read.
        std::string got;
        std::vector<RecordReader::Event> events;
        feed(unread, got, events);
        SB_FUZZ_CHECK(got == client_first && events.empty(), "first data: %zu of %zu bytes",
                      got.size(), client_first.size());
        return true;
    }

    // One planned step; false when the run is over.
    bool step() {
        static const bool debug = std::getenv("TLS_RECORDS_FUZZ_DEBUG") != nullptr;
        int op = in_.ConsumeIntegralInRange<int>(0, 9);
        if (debug)
            std::fprintf(stderr, "step %d (read seq %llu, write seq %llu)\n", op,
                         static_cast<unsigned long long>(keys_.read.seq),
                         static_cast<unsigned long long>(keys_.write.seq));
        switch (op) {
            case 0:
            case 1:
            case 2:
                client_data();
                return true;
            case 3:
            case 4:
            case 5:
                server_data();
                return true;
            case 6:
                if (v13_) client_key_update(in_.ConsumeBool());
                return true;
            case 7:
                if (v13_) server_key_update(in_.ConsumeBool());
                return true;
            case 8:
                return close(in_.ConsumeIntegralInRange<int>(0, 2));
            default:
                corrupt();
                return false;
        }
    }

  private:
    std::string payload(size_t max) {
        size_t n = in_.ConsumeIntegralInRange<size_t>(0, max);
        if (in_.ConsumeBool()) return in_.ConsumeBytesAsString(n);
        std::string s(n, '\0');
        uint8_t seed = in_.ConsumeIntegral<uint8_t>();
        for (size_t i = 0; i < n; ++i)
            s[i] = static_cast<char>(seed + i * 7 + (i >> 9));
        return s;
    }

    // Gives client ciphertext to the record layer in fuzzed cuts; collects what it
    // opens. Stops at an event that ends the connection.
    void feed(std::string wire, std::string& got, std::vector<RecordReader::Event>& events) {
        size_t off = 0;
        while (off < wire.size()) {
            size_t left = wire.size() - off;
            size_t n = left;
            // A spent input reads 0 from here on: then the rest goes in whole.
            switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
                case 1:
                    n = 1;
                    break;
                case 2:
                    n = in_.ConsumeIntegralInRange<size_t>(1, 40);
                    break;
                case 3:
                    n = in_.ConsumeIntegralInRange<size_t>(1, 20000);
                    break;
                default:
                    break;
            }
            n = std::min(n, left);
            auto* p = reinterpret_cast<uint8_t*>(wire.data() + off);
            size_t used = 0;
            for (;;) {
                auto e = reader_.next(crypto(), keys_.read, p + used, n - used);
                SB_FUZZ_CHECK(e.consumed <= n - used, "consumed more than given");
                used += e.consumed;
                if (e.kind == Kind::NeedMore) break;
                if (e.kind == Kind::Data) {
                    SB_FUZZ_CHECK(e.size > 0 && e.size <= kMaxPlaintext, "data of %zu bytes",
                                  e.size);
                    got.append(reinterpret_cast<char*>(e.data), e.size);
                    client_quiet_ = 0;
                    continue;
                }
                if (e.kind == Kind::KeyUpdate) ++client_quiet_;
                events.push_back(e);
                if (e.kind == Kind::KeyUpdate && e.update_requested) answer_key_update();
                if (e.kind == Kind::CloseNotify || e.kind == Kind::PeerAlert ||
                    e.kind == Kind::Fail)
                    return;
            }
            SB_FUZZ_CHECK(used == n, "took %zu of %zu bytes", used, n);
            off += n;
        }
        SB_FUZZ_CHECK(reader_.partial() == 0 && !reader_.buffering(), "a record left over");
    }

    void give_client(const uint8_t* p, size_t n) { pair_.give_client(p, n); }

    // RFC 8446 §4.6.3: a requested update is answered before more data is sent.
    void answer_key_update() {
        uint8_t buf[64];
        Sealed s = seal_key_update(crypto(), keys_.write, false, buf, sizeof(buf));
        SB_FUZZ_CHECK(s.status == SealStatus::Ok, "our KeyUpdate not sealed");
        give_client(buf, s.size);
    }

    void client_data() {
        if (v13_) {
            static constexpr size_t kBlocks[] = {0, 0, 1, 16, 255, 4096, 16384};
            size_t block = kBlocks[in_.ConsumeIntegralInRange<size_t>(0, 6)];
            SB_FUZZ_CHECK(SSL_set_block_padding(pair_.client(), block) == 1, "padding");
        }
        std::string data = payload(40000);
        if (data.empty()) return;
        SB_FUZZ_CHECK(pair_.client_write(data), "client write");
        std::string got;
        std::vector<RecordReader::Event> events;
        feed(pair_.take_client_output(), got, events);
        take_answers(events, true);
        SB_FUZZ_CHECK(events.empty(), "unexpected event %d (alert %d)",
                      static_cast<int>(events[0].kind), events[0].alert);
        SB_FUZZ_CHECK(got == data, "the record layer read %zu bytes of %zu", got.size(),
                      data.size());
    }

    void server_data() {
        std::string data = payload(40000);
        // At most 256 records and 256 KiB of padding per step: a 1-byte record with 16 KiB
        // of padding, 40,000 times over, tests nothing more and takes seconds.
        size_t max_record = in_.ConsumeIntegralInRange<size_t>(1, kMaxPlaintext);
        max_record = std::max(max_record, (data.size() + 255) / 256);
        size_t max_padding = v13_ ? in_.ConsumeIntegralInRange<size_t>(0, kMaxPlaintext) : 0;
        size_t padding_left = 256 * 1024;
        std::vector<uint8_t> buf(kMaxSealedRecord + kMaxPlaintext);
        size_t off = 0;
        while (off < data.size()) {
            size_t n = std::min(max_record, data.size() - off);
            // An empty record now and then; not on a spent input, whose choices are all
            // the lowest value, and not more than OpenSSL takes in a row (32, its
            // MAX_EMPTY_RECORDS guard).
            if (in_.ConsumeIntegralInRange<int>(0, 15) == 15 && empties_in_a_row_ < 16) n = 0;
            empties_in_a_row_ = n == 0 ? empties_in_a_row_ + 1 : 0;
            size_t padding = 0;
            if (max_padding > 0) {
                padding = in_.ConsumeIntegralInRange<size_t>(0, max_padding);
                padding = std::min({padding, kMaxPlaintext - n, padding_left});  // §5.4
                padding_left -= padding;
            }
            std::memcpy(buf.data() + seal_prefix(keys_.write), data.data() + off, n);
            Sealed s = seal(crypto(), keys_.write, ContentType::ApplicationData, buf.data(), n,
                            buf.size(), padding);
            SB_FUZZ_CHECK(s.status == SealStatus::Ok, "seal: %d", static_cast<int>(s.status));
            give_client(buf.data(), s.size);
            off += n;
        }
        std::string got;
        int err = pair_.client_read(got);
        SB_FUZZ_CHECK(err == SSL_ERROR_WANT_READ, "client read error %d: %s", err,
                      ERR_reason_error_string(ERR_peek_last_error()));
        SB_FUZZ_CHECK(got == data, "OpenSSL read %zu bytes of %zu", got.size(), data.size());
    }

    void client_key_update(bool requested) {
        // The record layer takes at most kMaxRecordsWithoutData records in a row without
        // data: this update and the answers OpenSSL may still owe must fit.
        if (client_quiet_ + answers_due_ + 1 > kMaxRecordsWithoutData) return;
        SB_FUZZ_CHECK(SSL_key_update(pair_.client(), requested ? SSL_KEY_UPDATE_REQUESTED
                                                               : SSL_KEY_UPDATE_NOT_REQUESTED) == 1,
                      "SSL_key_update");
        SB_FUZZ_CHECK(SSL_do_handshake(pair_.client()) == 1, "sending the KeyUpdate");
        std::string got;
        std::vector<RecordReader::Event> events;
        feed(pair_.take_client_output(), got, events);
        // Answers to our requests sent during earlier reads may come first; a pending one
        // is replaced by this update (SSL_key_update overwrites it).
        SB_FUZZ_CHECK(!events.empty() && events.back().kind == Kind::KeyUpdate &&
                          events.back().update_requested == requested,
                      "the client's KeyUpdate was not reported as sent");
        events.pop_back();
        take_answers(events, false);
        answers_due_ = 0;
        SB_FUZZ_CHECK(got.empty() && events.empty(), "more than KeyUpdates");
    }

    void server_key_update(bool requested) {
        // Each request may get an answer of its own: a record without data from the client.
        if (client_quiet_ + answers_due_ + 1 > kMaxRecordsWithoutData) requested = false;
        uint8_t buf[64];
        Sealed s = seal_key_update(crypto(), keys_.write, requested, buf, sizeof(buf));
        SB_FUZZ_CHECK(s.status == SealStatus::Ok, "KeyUpdate not sealed");
        give_client(buf, s.size);
        std::string got;
        int err = pair_.client_read(got);
        SB_FUZZ_CHECK(err == SSL_ERROR_WANT_READ && got.empty(), "client read error %d", err);
        // OpenSSL answers a requested update with a KeyUpdate of its own: in a later
        // SSL_read or before its next data record, once per request or once for several
        // (RFC 8446 §4.6.3 allows both).
        if (requested) ++answers_due_;
    }

    // Takes OpenSSL's answers to our requested KeyUpdates off the front of `events`:
    // at most one per request, and at least one if the client has written data since.
    void take_answers(std::vector<RecordReader::Event>& events, bool wrote_data) {
        size_t n = 0;
        while (n < events.size() && events[n].kind == Kind::KeyUpdate &&
               !events[n].update_requested)
            ++n;
        SB_FUZZ_CHECK(n <= answers_due_, "%zu KeyUpdates for %zu requests", n, answers_due_);
        SB_FUZZ_CHECK(!wrote_data || answers_due_ == 0 || n > 0,
                      "data before the KeyUpdate we asked for");
        events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(n));
        if (n > 0 || wrote_data) answers_due_ = 0;
    }

    // 0: the client's close_notify; 1: ours; 2: a fatal alert of ours.
    bool close(int how) {
        if (how == 0) {
            SB_FUZZ_CHECK(SSL_shutdown(pair_.client()) == 0, "client shutdown");
            std::string got;
            std::vector<RecordReader::Event> events;
            feed(pair_.take_client_output(), got, events);
            take_answers(events, false);
            SB_FUZZ_CHECK(got.empty() && events.size() == 1 && events[0].kind == Kind::CloseNotify,
                          "close_notify not reported");
            return false;
        }
        uint8_t buf[64];
        Sealed s = how == 1 ? seal_alert(crypto(), keys_.write, alert::kWarning,
                                         alert::kCloseNotify, buf, sizeof(buf))
                            : seal_alert(crypto(), keys_.write, alert::kFatal,
                                         alert::kInternalError, buf, sizeof(buf));
        SB_FUZZ_CHECK(s.status == SealStatus::Ok, "alert not sealed");
        give_client(buf, s.size);
        std::string got;
        int err = pair_.client_read(got);
        SB_FUZZ_CHECK(got.empty() && err == (how == 1 ? SSL_ERROR_ZERO_RETURN : SSL_ERROR_SSL),
                      "client read error %d after our alert", err);
        return false;
    }

    // One byte of one client record's body flipped: that record must fail to open,
    // everything before it must arrive intact, nothing of it or after it.
    void corrupt() {
        // Answers to our KeyUpdates would be records before the data: have them sent and
        // read first, so that the records written here are data records only.
        if (answers_due_ > 0) {
            SB_FUZZ_CHECK(pair_.client_write("a"), "client write");
            std::string got;
            std::vector<RecordReader::Event> events;
            feed(pair_.take_client_output(), got, events);
            take_answers(events, true);
            SB_FUZZ_CHECK(got == "a" && events.empty(), "before the corruption");
        }
        std::string data = payload(40000);
        if (data.empty()) data = "x";
        SB_FUZZ_CHECK(pair_.client_write(data), "client write");
        std::string wire = pair_.take_client_output();
        // The records' boundaries, from their headers.
        std::vector<size_t> starts;
        for (size_t off = 0; off + kHeaderSize <= wire.size();) {
            starts.push_back(off);
            off += kHeaderSize + (size_t{static_cast<uint8_t>(wire[off + 3])} << 8 |
                                  static_cast<uint8_t>(wire[off + 4]));
        }
        size_t rec = in_.ConsumeIntegralInRange<size_t>(0, starts.size() - 1);
        size_t end = rec + 1 < starts.size() ? starts[rec + 1] : wire.size();
        size_t at = in_.ConsumeIntegralInRange<size_t>(starts[rec] + kHeaderSize, end - 1);
        wire[at] = static_cast<char>(wire[at] ^ (1 << in_.ConsumeIntegralInRange<int>(0, 7)));
        // The plaintext of the records before it (each record carries at most 2^14).
        size_t before = std::min(data.size(), rec * kMaxPlaintext);
        std::string got;
        std::vector<RecordReader::Event> events;
        feed(wire, got, events);
        SB_FUZZ_CHECK(events.size() == 1 && events[0].kind == Kind::Fail &&
                          events[0].alert == alert::kBadRecordMac,
                      "a flipped byte was not bad_record_mac");
        SB_FUZZ_CHECK(got == data.substr(0, before), "read %zu bytes, expected %zu", got.size(),
                      before);
    }

    FuzzedDataProvider& in_;
    TlsPair pair_;
    RecordKeys keys_;
    RecordReader reader_;
    bool v13_ = false;
    size_t answers_due_ = 0;
    size_t client_quiet_ = 0;      // client records without data in a row, as the reader counts
    size_t empties_in_a_row_ = 0;  // empty records sealed since the last non-empty one  //
                                   // KeyUpdates we requested that OpenSSL may still answer
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    const size_t which = in.ConsumeIntegralInRange<size_t>(0, 5);
    const Suite& suite = kSuites[which];
    TlsPair::Options o;
    o.version = suite.version;
    o.suites = suite.suites;
    o.ciphers = suite.ciphers;
    o.tickets = in.ConsumeIntegralInRange<int>(0, 3);
    std::string first;
    if (suite.version == TLS1_3_VERSION && in.ConsumeBool())
        first = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(1, 3000));
    // Contexts made once per suite: only the handshake is per input.
    static SSL_CTX* contexts[6][2] = {};
    if (contexts[which][0] == nullptr) {
        contexts[which][0] = TlsPair::make_context(o, true);
        contexts[which][1] = TlsPair::make_context(o, false);
    }
    Run run(in, o, contexts[which][0], contexts[which][1]);
    if (!run.start(first)) return 0;
    for (int i = 0; i < 64 && in.remaining_bytes() > 0; ++i) {
        if (!run.step()) break;
    }
    return 0;
}
