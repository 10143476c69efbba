// tls::Connection over memory: a server (Connection::accept) and a client
// (Connection::connect) on one BlockPool, with every byte of ciphertext carried
// between them by a test Wire, cut at whatever sizes a test picks. Proves that the
// handshake completes both ways whatever the cuts; that plaintext crosses exactly, a
// 1 MiB payload included; that has_pending() covers record bytes OpenSSL holds after a
// read into a buffer smaller than the record (what the session's read loop relies on
// not to lose bytes); that close_notify reads as Closed; that garbage and corrupted
// ciphertext are errors with a reason; that plain HTTP on a TLS port is recognised;
// that verification refuses a wrong name; and that every block goes back to the pool.
#include "tls/connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tls/context.h"
#include "tls/record_layer.h"
#include "tls_test_util.h"
#include "uv/block_pool.h"

namespace sb::tls {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Status = Connection::Status;

// What the session reads into: a block less the headroom a Pipe keeps in front and
// the tailroom a sealed record needs (session::Endpoint, 32 bytes each): 16 KiB.
constexpr size_t kSessionReadCap = uv::BlockPool::kBlockSize - 64;

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131) ^ (i >> 9));
    return s;
}

// The certificates every test shares, made once: "main" has subjectAltNames
// (backend.test, *.wild.test, 127.0.0.1); "other" has only a common name
// (other.test), so a client verifying "other.test" passes only if SNI picked it.
class TlsFiles {
  public:
    TlsFiles() {
        auto key = test::make_key();
        auto cert = test::make_cert(key.get(), "backend.test",
                                    "DNS:backend.test,DNS:*.wild.test,IP:127.0.0.1");
        auto other_key = test::make_key();
        auto other = test::make_cert(other_key.get(), "other.test", "");
        auto stranger_key = test::make_key();
        auto stranger = test::make_cert(stranger_key.get(), "backend.test", "DNS:backend.test");
        test::write_cert_pem(cert_path(), cert.get());
        test::write_key_pem(key_path(), key.get());
        test::write_cert_pem(other_cert_path(), other.get());
        test::write_key_pem(other_key_path(), other_key.get());
        test::write_cert_pem(ca_path(), cert.get());
        test::write_cert_pem(ca_path(), other.get(), /*append=*/true);
        test::write_cert_pem(stranger_ca_path(), stranger.get());
    }
    std::string cert_path() const { return dir_.file("main.crt"); }
    std::string key_path() const { return dir_.file("main.key"); }
    std::string other_cert_path() const { return dir_.file("other.crt"); }
    std::string other_key_path() const { return dir_.file("other.key"); }
    std::string ca_path() const { return dir_.file("ca.pem"); }                 // both of ours
    std::string stranger_ca_path() const { return dir_.file("stranger.pem"); }  // neither

  private:
    test::TempDir dir_;
};

enum class Version { Tls12, Tls13 };

std::string version_name(const ::testing::TestParamInfo<Version>& info) {
    return info.param == Version::Tls12 ? "Tls12" : "Tls13";
}

class TlsConnectionTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { files_ = new TlsFiles(); }
    static void TearDownTestSuite() {
        delete files_;
        files_ = nullptr;
    }

    void SetUp() override {
        config::ListenerTlsConfig listener;
        listener.certificates.push_back({files_->cert_path(), files_->key_path(), {}});
        listener.certificates.push_back({files_->other_cert_path(), files_->other_key_path(), {}});
        std::string error;
        server_ctx_ = ServerContext::load(listener, std::make_shared<TicketKeys>(), error);
        ASSERT_NE(server_ctx_, nullptr) << error;
        client_ctx_ = load_client(true, files_->ca_path());
        ASSERT_NE(client_ctx_, nullptr);
    }

    void TearDown() override {
        client_.reset();
        server_.reset();
        EXPECT_EQ(pool_.in_use(), 0u) << "a block taken from the pool was not given back";
    }

    static std::shared_ptr<ClientContext> load_client(bool verify, const std::string& ca) {
        config::PoolTlsConfig pool;
        pool.verify = verify;
        pool.ca_file = ca;
        std::string error;
        auto ctx = ClientContext::load(pool, error);
        EXPECT_NE(ctx, nullptr) << error;
        return ctx;
    }

    void start(const std::string& name = "backend.test", bool verify = true) {
        server_ = Connection::accept(server_ctx_->default_context(), pool_);
        client_ = Connection::connect(client_ctx_->context(), name, verify, pool_);
        ASSERT_NE(server_, nullptr);
        ASSERT_NE(client_, nullptr);
    }

    // Runs both handshakes, carrying ciphertext `chunk` bytes at a time, until both
    // are done or a side fails. True when both are done.
    bool handshake(size_t chunk = uv::BlockPool::kBlockSize) {
        to_server_.set_chunk(chunk);
        to_client_.set_chunk(chunk);
        for (int i = 0; i < 1'000'000; ++i) {
            bool moved = to_server_.deliver(*server_);
            moved |= to_client_.deliver(*client_);
            client_status_ = client_->handshake();
            server_status_ = server_->handshake();
            moved |= to_server_.collect(*client_) > 0;
            moved |= to_client_.collect(*server_) > 0;
            if (client_status_ == Status::Error || server_status_ == Status::Error) return false;
            if (client_->handshake_done() && server_->handshake_done()) return true;
            if (!moved && !client_->has_input() && !server_->has_input()) return false;
        }
        return false;
    }

    // Carries everything on both wires and reads both sides with `cap`-byte reads
    // until nothing moves; plaintext lands in *_received_, the last read status in
    // *_status_. TLS 1.3 session tickets are consumed here too.
    void pump(size_t cap = kSessionReadCap) {
        std::vector<char> buf(cap);
        for (int i = 0; i < 10'000'000; ++i) {
            bool moved = read_side(*client_, to_client_, buf, client_received_, client_status_);
            moved |= read_side(*server_, to_server_, buf, server_received_, server_status_);
            moved |= to_server_.collect(*client_) > 0;
            moved |= to_client_.collect(*server_) > 0;
            if (!moved) return;
        }
        ADD_FAILURE() << "pump did not settle";
    }

    bool read_side(Connection& c, test::Wire& in, std::vector<char>& buf, std::string& received,
                   Status& status) {
        if (status == Status::Closed || status == Status::Error) return false;
        bool moved = in.deliver(c);
        while (c.has_pending()) {
            size_t n = 0;
            status = c.read(buf.data(), buf.size(), n);
            received.append(buf.data(), n);
            moved |= n > 0;
            if (status != Status::Ok) break;
        }
        return moved;
    }

    static TlsFiles* files_;
    uv::BlockPool pool_;
    test::Wire to_server_{pool_, uv::BlockPool::kBlockSize};
    test::Wire to_client_{pool_, uv::BlockPool::kBlockSize};
    std::shared_ptr<ServerContext> server_ctx_;
    std::shared_ptr<ClientContext> client_ctx_;
    std::unique_ptr<Connection> server_;
    std::unique_ptr<Connection> client_;
    Status client_status_ = Status::WantRead;
    Status server_status_ = Status::WantRead;
    std::string client_received_;
    std::string server_received_;
};

TlsFiles* TlsConnectionTest::files_ = nullptr;

// ---- both protocol versions ----

class TlsVersionTest : public TlsConnectionTest, public ::testing::WithParamInterface<Version> {
  protected:
    void SetUp() override {
        TlsConnectionTest::SetUp();
        if (GetParam() == Version::Tls12) {
            SSL_CTX_set_max_proto_version(client_ctx_->context(), TLS1_2_VERSION);
        }
    }
};

TEST_P(TlsVersionTest, HandshakeCompletesBothWays) {
    start();
    ASSERT_TRUE(handshake()) << "client: " << client_->error() << " server: " << server_->error();
    EXPECT_TRUE(client_->handshake_done());
    EXPECT_TRUE(server_->handshake_done());
    EXPECT_EQ(client_->error(), "");
    EXPECT_EQ(server_->error(), "");
    EXPECT_FALSE(client_->resumed());
    EXPECT_FALSE(server_->saw_plain_http());
}

TEST_P(TlsVersionTest, HandshakeCompletesWithCiphertextOneByteAtATime) {
    start();
    ASSERT_TRUE(handshake(1)) << "client: " << client_->error() << " server: " << server_->error();
    pump();
    EXPECT_TRUE(to_server_.empty());
    EXPECT_TRUE(to_client_.empty());
}

TEST_P(TlsVersionTest, PlaintextCrossesBothWaysExactly) {
    start();
    ASSERT_TRUE(handshake());
    pump();  // session tickets
    const std::string up = "hello from the client";
    static constexpr char kDown[] = "\0\xff binary \r\n from the server\x80";
    const std::string down(kDown, sizeof(kDown) - 1);
    ASSERT_TRUE(client_->write(up.data(), up.size()));
    ASSERT_TRUE(server_->write(down.data(), down.size()));
    pump();
    EXPECT_EQ(server_received_, up);
    EXPECT_EQ(client_received_, down);
}

TEST_P(TlsVersionTest, OneMebibyteWrittenIn16KiBPiecesArrivesIntact) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    const std::string payload = pattern(1024 * 1024);
    constexpr size_t kPiece = 16 * 1024;
    for (size_t off = 0; off < payload.size(); off += kPiece) {
        ASSERT_TRUE(client_->write(payload.data() + off, kPiece)) << client_->error();
        // Ciphertext goes out as it is made, in 16 KiB blocks as the socket reads it.
        pump();
    }
    EXPECT_EQ(server_received_.size(), payload.size());
    EXPECT_TRUE(server_received_ == payload) << "the payload came out different";
}

TEST_P(TlsVersionTest, OneMebibyteWrittenAtOnceArrivesIntact) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    const std::string payload = pattern(1024 * 1024);
    ASSERT_TRUE(server_->write(payload.data(), payload.size())) << server_->error();
    pump();
    EXPECT_TRUE(client_received_ == payload) << "got " << client_received_.size() << " bytes";
}

// The hand-off the client side's Endpoint makes (issue 17): the server never calls
// SSL_read; its key-log callback (installed by ServerContext::load) and its BIO's
// record counters let take_record_keys derive both directions' keys, the client's
// first record (glued to its Finished in TLS 1.3) comes back from take_input, and
// after the SSL object is freed the record layer and OpenSSL's client agree both ways.
TEST_P(TlsVersionTest, TheServerHandsItsKeysAndUnreadInputToTheRecordLayer) {
    start();
    const std::string up = "first data, right behind the client's handshake";
    bool wrote = false;
    for (int i = 0; i < 1000 && !(server_->handshake_done() && wrote); ++i) {
        to_server_.deliver(*server_);
        to_client_.deliver(*client_);
        client_->handshake();
        if (client_->handshake_done() && !wrote) {
            ASSERT_TRUE(client_->write(up.data(), up.size()));
            wrote = true;
        }
        server_->handshake();
        to_server_.collect(*client_);
        to_client_.collect(*server_);
    }
    ASSERT_TRUE(server_->handshake_done() && wrote);

    RecordCrypto crypto;
    ASSERT_TRUE(crypto.ok());
    RecordKeys keys;
    std::string why;
    ASSERT_TRUE(server_->take_record_keys(crypto, keys, why)) << why;
    std::string in;
    size_t offset = 0;
    size_t len = 0;
    if (uv::Block* b = server_->take_input(offset, len)) {
        in.assign(b->data() + offset, len);
        pool_.give(b);
    }
    in += to_server_.bytes().substr(to_server_.bytes().size() - to_server_.size());
    server_.reset();  // what the switch is for

    RecordReader reader;
    std::string got;
    auto* p = reinterpret_cast<uint8_t*>(in.data());
    size_t left = in.size();
    while (left > 0) {
        auto e = reader.next(crypto, keys.read, p, left);
        p += e.consumed;
        left -= e.consumed;
        if (e.kind == RecordReader::Kind::NeedMore) break;
        ASSERT_EQ(e.kind, RecordReader::Kind::Data);
        got.append(reinterpret_cast<const char*>(e.data), e.size);
    }
    EXPECT_EQ(got, up);

    const std::string down = "the answer, sealed by the record layer";
    std::vector<uint8_t> record(seal_prefix(keys.write) + down.size() + seal_suffix(keys.write, 0));
    std::memcpy(record.data() + seal_prefix(keys.write), down.data(), down.size());
    Sealed sealed = seal(crypto, keys.write, ContentType::ApplicationData, record.data(),
                         down.size(), record.size());
    ASSERT_EQ(sealed.status, SealStatus::Ok);
    // Behind the tickets OpenSSL wrote before the switch.
    to_client_.bytes().append(reinterpret_cast<const char*>(record.data()), sealed.size);
    std::vector<char> buf(kSessionReadCap);
    for (int i = 0; i < 100 && client_received_.size() < down.size(); ++i) {
        to_client_.deliver(*client_);
        while (client_->has_pending()) {
            size_t n = 0;
            auto status = client_->read(buf.data(), buf.size(), n);
            client_received_.append(buf.data(), n);
            if (status != Status::Ok) break;
        }
    }
    EXPECT_EQ(client_received_, down);
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsVersionTest,
                         ::testing::Values(Version::Tls12, Version::Tls13), version_name);

// ---- ciphertext cut at awkward sizes ----

class TlsSplitTest : public TlsConnectionTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(TlsSplitTest, PayloadArrivesIntactWhateverTheCiphertextCuts) {
    start();
    ASSERT_TRUE(handshake(GetParam()));
    pump();
    const std::string payload = pattern(100 * 1000 + 7);
    ASSERT_TRUE(client_->write(payload.data(), payload.size()));
    ASSERT_TRUE(server_->write(payload.data(), 5000));
    pump();
    EXPECT_TRUE(server_received_ == payload) << "got " << server_received_.size() << " bytes";
    EXPECT_EQ(client_received_, payload.substr(0, 5000));
}

INSTANTIATE_TEST_SUITE_P(Cuts, TlsSplitTest,
                         ::testing::Values(size_t{1}, size_t{2}, size_t{5}, size_t{6}, size_t{17},
                                           size_t{1000}, size_t{4097}, size_t{16383},
                                           size_t{16384}));

// ---- has_pending(): bytes OpenSSL holds ----

// Delivers ciphertext to the client until its first read produces plaintext.
TEST_F(TlsConnectionTest, HasPendingStaysTrueUntilA16KiBRecordIsReadOutIn1KiBReads) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    const std::string record = pattern(16 * 1024);  // the largest record: one write, one record
    ASSERT_TRUE(server_->write(record.data(), record.size()));
    to_client_.collect(*server_);
    ASSERT_GT(to_client_.size(), record.size()) << "one record, with its header and tag";

    std::string got;
    char buf[1024];
    size_t n = 0;
    Status s = Status::WantRead;
    while (n == 0) {
        ASSERT_TRUE(to_client_.deliver(*client_)) << "no plaintext after the whole record";
        s = client_->read(buf, sizeof(buf), n);
    }
    ASSERT_EQ(s, Status::Ok);
    ASSERT_EQ(n, sizeof(buf));
    got.append(buf, n);
    // The ciphertext is all consumed: only OpenSSL holds the rest of the record.
    EXPECT_FALSE(client_->has_input());
    EXPECT_TRUE(to_client_.empty());
    while (got.size() < record.size()) {
        ASSERT_TRUE(client_->has_pending())
            << "has_pending() false with " << record.size() - got.size() << " bytes unread";
        s = client_->read(buf, sizeof(buf), n);
        ASSERT_EQ(s, Status::Ok);
        ASSERT_EQ(n, sizeof(buf));
        got.append(buf, n);
    }
    EXPECT_EQ(got, record);
    EXPECT_FALSE(client_->has_pending());
    EXPECT_EQ(client_->read(buf, sizeof(buf), n), Status::WantRead);
    EXPECT_EQ(n, 0u);
}

// A read buffer smaller than a full record (a session's holds one whole, but any
// caller may give less): the record's tail stays inside OpenSSL and must be announced
// by has_pending().
TEST_F(TlsConnectionTest, HasPendingReportsTheTailOfARecordLargerThanTheReadBuffer) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    const std::string record = pattern(16 * 1024);
    ASSERT_TRUE(client_->write(record.data(), record.size()));
    to_server_.collect(*client_);
    const size_t kSmallRead = record.size() - 32;
    std::vector<char> buf(kSmallRead);
    size_t n = 0;
    Status s = Status::WantRead;
    while (n == 0 && to_server_.deliver(*server_))
        s = server_->read(buf.data(), buf.size(), n);
    ASSERT_EQ(s, Status::Ok);
    ASSERT_EQ(n, kSmallRead);
    EXPECT_FALSE(server_->has_input());
    ASSERT_TRUE(server_->has_pending());
    std::string got(buf.data(), n);
    s = server_->read(buf.data(), buf.size(), n);
    EXPECT_EQ(s, Status::Ok);
    EXPECT_EQ(n, record.size() - kSmallRead);
    got.append(buf.data(), n);
    EXPECT_EQ(got, record);
    EXPECT_FALSE(server_->has_pending());
}

TEST_F(TlsConnectionTest, HasPendingCoversAPartialRecordAlreadyConsumedFromTheInput) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    ASSERT_TRUE(client_->write("0123456789", 10));
    to_server_.collect(*client_);
    to_server_.set_chunk(to_server_.size() - 1);  // all but the record's last byte
    ASSERT_TRUE(to_server_.deliver(*server_));
    char buf[64];
    size_t n = 0;
    EXPECT_EQ(server_->read(buf, sizeof(buf), n), Status::WantRead);
    EXPECT_EQ(n, 0u);
    EXPECT_FALSE(server_->has_input()) << "the BIO handed every byte to OpenSSL";
    EXPECT_TRUE(server_->has_pending()) << "OpenSSL holds a partial record";
    ASSERT_TRUE(to_server_.deliver(*server_));
    EXPECT_EQ(server_->read(buf, sizeof(buf), n), Status::Ok);
    EXPECT_EQ(std::string(buf, n), "0123456789");
    EXPECT_FALSE(server_->has_pending());
}

// ---- end of stream and failures ----

TEST_F(TlsConnectionTest, CloseNotifyReadsAsClosedOnTheServer) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    ASSERT_TRUE(client_->write("last words", 10));
    client_->close_notify();
    pump();
    EXPECT_EQ(server_received_, "last words");
    EXPECT_EQ(server_status_, Status::Closed);
    EXPECT_EQ(server_->error(), "");
}

TEST_F(TlsConnectionTest, CloseNotifyReadsAsClosedOnTheClient) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    server_->close_notify();
    pump();
    EXPECT_EQ(client_status_, Status::Closed);
    EXPECT_EQ(client_->error(), "");
}

TEST_F(TlsConnectionTest, GarbageCiphertextIsAnErrorWithAReason) {
    server_ = Connection::accept(server_ctx_->default_context(), pool_);
    uv::Block* b = pool_.take();
    for (uint32_t i = 0; i < 64; ++i)
        b->data()[i] = static_cast<char>(0xAB + i);
    server_->give_input(b, b->data(), 64);
    EXPECT_EQ(server_->handshake(), Status::Error);
    EXPECT_NE(server_->error(), "");
    EXPECT_FALSE(server_->saw_plain_http());
}

TEST_F(TlsConnectionTest, GarbageBeforeTheServerHelloIsAnErrorOnTheClient) {
    start();
    ASSERT_EQ(client_->handshake(), Status::WantRead);
    to_server_.collect(*client_);  // the ClientHello, never answered
    uv::Block* b = pool_.take();
    std::memcpy(b->data(), "\x16\x03\x03\x00\x04zzzz", 9);
    client_->give_input(b, b->data(), 9);
    EXPECT_EQ(client_->handshake(), Status::Error);
    EXPECT_NE(client_->error(), "");
}

TEST_F(TlsConnectionTest, ACorruptedRecordAfterTheHandshakeIsAnError) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    ASSERT_TRUE(client_->write("attack at dawn", 14));
    to_server_.collect(*client_);
    to_server_.bytes().back() = static_cast<char>(to_server_.bytes().back() ^ 0x01);
    pump();
    EXPECT_EQ(server_status_, Status::Error);
    EXPECT_NE(server_->error(), "");
    EXPECT_EQ(server_received_, "");
}

TEST_F(TlsConnectionTest, PlainHttpOnTheTlsPortIsRecognised) {
    server_ = Connection::accept(server_ctx_->default_context(), pool_);
    const std::string request = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    uv::Block* b = pool_.take();
    std::memcpy(b->data(), request.data(), request.size());
    server_->give_input(b, b->data(), request.size());
    EXPECT_TRUE(server_->saw_plain_http());
    EXPECT_EQ(server_->handshake(), Status::Error);
    EXPECT_NE(server_->error(), "");
}

TEST_F(TlsConnectionTest, PlainHttpIsJudgedOnTheFirstBytesOnly) {
    server_ = Connection::accept(server_ctx_->default_context(), pool_);
    uv::Block* b = pool_.take();
    std::memcpy(b->data(), "\x16\x03\x01", 3);
    server_->give_input(b, b->data(), 3);
    EXPECT_EQ(server_->handshake(), Status::WantRead);
    b = pool_.take();
    std::memcpy(b->data(), "GET / HTTP/1.1\r\n", 16);
    server_->give_input(b, b->data(), 16);
    EXPECT_FALSE(server_->saw_plain_http());
    server_.reset();
}

TEST_F(TlsConnectionTest, AClientHelloIsNotPlainHttp) {
    start();
    ASSERT_TRUE(handshake());
    EXPECT_FALSE(server_->saw_plain_http());
    EXPECT_FALSE(client_->saw_plain_http());
}

// ---- verification ----

TEST_F(TlsConnectionTest, VerificationRefusesAWrongName) {
    start("wrong.test", /*verify=*/true);
    EXPECT_FALSE(handshake());
    EXPECT_EQ(client_status_, Status::Error);
    EXPECT_THAT(client_->error(), HasSubstr("certificate verify failed"));
    EXPECT_THAT(client_->error(), HasSubstr("hostname mismatch"));
    // The client's alert reaches the server, which fails too.
    to_server_.collect(*client_);
    pump();
    EXPECT_EQ(server_status_, Status::Error);
}

TEST_F(TlsConnectionTest, AWrongNamePassesWhenVerifyIsOff) {
    start("wrong.test", /*verify=*/false);
    EXPECT_TRUE(handshake()) << client_->error();
}

TEST_F(TlsConnectionTest, VerificationAcceptsAOneLabelWildcard) {
    start("chat.wild.test");
    EXPECT_TRUE(handshake()) << client_->error();
}

TEST_F(TlsConnectionTest, VerificationRefusesATwoLabelWildcardMatch) {
    start("a.chat.wild.test");
    EXPECT_FALSE(handshake());
    EXPECT_THAT(client_->error(), HasSubstr("hostname mismatch"));
}

TEST_F(TlsConnectionTest, VerificationChecksAnIpAddressAgainstTheIpEntries) {
    start("127.0.0.1");
    EXPECT_TRUE(handshake()) << client_->error();
}

TEST_F(TlsConnectionTest, VerificationRefusesAnotherIpAddress) {
    start("127.0.0.2");
    EXPECT_FALSE(handshake());
    EXPECT_THAT(client_->error(), HasSubstr("certificate verify failed"));
    EXPECT_THAT(client_->error(), Not(HasSubstr("hostname")));  // an IP mismatch
}

TEST_F(TlsConnectionTest, VerificationRefusesACertificateFromAnUnknownIssuer) {
    client_ctx_ = load_client(true, files_->stranger_ca_path());
    start("backend.test");
    EXPECT_FALSE(handshake());
    EXPECT_THAT(client_->error(), HasSubstr("certificate verify failed"));
}

TEST_F(TlsConnectionTest, SniPicksTheCertificateForTheRequestedName) {
    // "other.test" is only the common name of the second certificate: verification
    // passes only if the server switched to it.
    start("other.test");
    EXPECT_TRUE(handshake()) << client_->error();
}

TEST_F(TlsConnectionTest, SniIgnoresTheCaseOfTheRequestedName) {
    start("Other.TEST");
    EXPECT_TRUE(handshake()) << client_->error();
}

TEST_F(TlsConnectionTest, AnUnknownSniNameGetsTheDefaultCertificate) {
    start("nobody.test", /*verify=*/false);
    EXPECT_TRUE(handshake()) << client_->error();
}

// ---- blocks ----

TEST_F(TlsConnectionTest, DestroyingAConnectionGivesBackItsInputAndOutputBlocks) {
    start();
    ASSERT_EQ(client_->handshake(), Status::WantRead);
    EXPECT_TRUE(client_->has_output());  // the ClientHello, never taken
    uv::Block* b = pool_.take();
    std::memcpy(b->data(), "\x16\x03", 2);
    server_->give_input(b, b->data(), 2);  // never consumed
    EXPECT_GT(pool_.in_use(), 1u);
    client_.reset();
    server_.reset();
    EXPECT_EQ(pool_.in_use(), 0u);
}

TEST_F(TlsConnectionTest, AnIdleConnectionHoldsNoBlock) {
    start();
    ASSERT_TRUE(handshake());
    pump();
    ASSERT_TRUE(client_->write("ping", 4));
    pump();
    EXPECT_EQ(server_received_, "ping");
    EXPECT_FALSE(client_->has_output());
    EXPECT_FALSE(server_->has_input());
    EXPECT_EQ(pool_.in_use(), 0u);
}

TEST_F(TlsConnectionTest, ReleaseChainGivesBackEveryBlockOfAChain) {
    uv::Block* a = pool_.take();
    a->next = pool_.take();
    a->next->next = pool_.take();
    EXPECT_EQ(pool_.in_use(), 3u);
    release_chain(pool_, a);
    EXPECT_EQ(pool_.in_use(), 0u);
    release_chain(pool_, nullptr);
    EXPECT_EQ(pool_.in_use(), 0u);
}

}  // namespace
}  // namespace sb::tls
