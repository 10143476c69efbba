// tls::ServerContext and ClientContext: which certificate answers for which SNI name
// (exact names first, then one-label wildcards, the first certificate by default), and
// what loading says when a file is missing, unreadable or does not match: one line
// naming the file and the cause, as --check and startup print it.
#include "tls/context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "tls_test_util.h"

namespace sb::tls {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(TlsNameMatches, AnExactNameMatchesOnlyItself) {
    EXPECT_TRUE(ServerContext::name_matches("chat.example.com", "chat.example.com"));
    EXPECT_FALSE(ServerContext::name_matches("chat.example.com", "example.com"));
    EXPECT_FALSE(ServerContext::name_matches("chat.example.com", "a.chat.example.com"));
    EXPECT_FALSE(ServerContext::name_matches("chat.example.com", ""));
}

TEST(TlsNameMatches, AWildcardMatchesExactlyOneLabel) {
    EXPECT_TRUE(ServerContext::name_matches("*.example.com", "a.example.com"));
    EXPECT_TRUE(ServerContext::name_matches("*.example.com", "chat-1.example.com"));
    EXPECT_FALSE(ServerContext::name_matches("*.example.com", "a.b.example.com"));
    EXPECT_FALSE(ServerContext::name_matches("*.example.com", "example.com"));
    EXPECT_FALSE(ServerContext::name_matches("*.example.com", ".example.com"));
    EXPECT_FALSE(ServerContext::name_matches("*.example.com", "a.example.org"));
    EXPECT_FALSE(ServerContext::name_matches("*.example.com", "aexample.com"));
}

TEST(TlsNameMatches, AStarThatIsNotALabelIsNoWildcard) {
    EXPECT_FALSE(ServerContext::name_matches("*", "a"));
    EXPECT_FALSE(ServerContext::name_matches("*.", "a."));
    EXPECT_FALSE(ServerContext::name_matches("a*.example.com", "ab.example.com"));
}

// Three certificates: "first" (SAN first.test and *.shared.test), "second" (SAN
// exact.shared.test) and "cn-only" (no SAN, common name Legacy.Test).
class TlsContextTest : public ::testing::Test {
  protected:
    void SetUp() override {
        add("first", "first.test", "DNS:first.test,DNS:*.shared.test");
        add("second", "second.test", "DNS:exact.shared.test");
        add("cn-only", "Legacy.Test", "");
    }

    void add(const std::string& name, const std::string& cn, const std::string& san) {
        auto key = test::make_key();
        auto cert = test::make_cert(key.get(), cn, san);
        test::write_cert_pem(dir_.file(name + ".crt"), cert.get());
        test::write_key_pem(dir_.file(name + ".key"), key.get());
    }

    config::CertificateFiles files(const std::string& cert, const std::string& key) {
        return {dir_.file(cert + ".crt"), dir_.file(key + ".key"), {}};
    }

    std::shared_ptr<ServerContext> load(std::initializer_list<config::CertificateFiles> certs) {
        config::ListenerTlsConfig c;
        c.certificates = certs;
        error_.clear();
        return ServerContext::load(c, std::make_shared<TicketKeys>(), error_);
    }

    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir_.file(name)) << text;
    }

    test::TempDir dir_;
    std::string error_;
};

TEST_F(TlsContextTest, ExactNamesWinOverWildcardsWhateverTheOrder) {
    auto ctx = load({files("first", "first"), files("second", "second")});
    ASSERT_NE(ctx, nullptr) << error_;
    SSL_CTX* first = ctx->default_context();
    SSL_CTX* second = ctx->context_for("exact.shared.test");
    ASSERT_NE(second, nullptr);
    EXPECT_NE(second, first) << "*.shared.test of the first must not shadow an exact name";
    EXPECT_EQ(ctx->context_for("other.shared.test"), first);
    EXPECT_EQ(ctx->context_for("first.test"), first);
    EXPECT_EQ(ctx->context_for("second.test"), nullptr) << "a CN is not used when SANs exist";
}

TEST_F(TlsContextTest, UnknownNamesGetNoContextSoTheDefaultAnswers) {
    auto ctx = load({files("first", "first"), files("second", "second")});
    ASSERT_NE(ctx, nullptr) << error_;
    EXPECT_EQ(ctx->context_for("nobody.test"), nullptr);
    EXPECT_EQ(ctx->context_for(""), nullptr);
    EXPECT_EQ(ctx->context_for("a.b.shared.test"), nullptr);
}

TEST_F(TlsContextTest, ACertificateWithoutSansAnswersForItsCommonNameInLowerCase) {
    auto ctx = load({files("first", "first"), files("cn-only", "cn-only")});
    ASSERT_NE(ctx, nullptr) << error_;
    SSL_CTX* legacy = ctx->context_for("legacy.test");
    ASSERT_NE(legacy, nullptr);
    EXPECT_NE(legacy, ctx->default_context());
}

TEST_F(TlsContextTest, TheTicketKeysAreShared) {
    auto keys = std::make_shared<TicketKeys>();
    config::ListenerTlsConfig c;
    c.certificates = {files("first", "first")};
    auto ctx = ServerContext::load(c, keys, error_);
    ASSERT_NE(ctx, nullptr) << error_;
    EXPECT_EQ(ctx->ticket_keys(), keys);
}

TEST_F(TlsContextTest, AMissingCertificateIsNamedWithTheSystemsReason) {
    config::CertificateFiles missing{dir_.file("missing.crt"), dir_.file("first.key"), {}};
    EXPECT_EQ(load({missing}), nullptr);
    EXPECT_EQ(error_, dir_.file("missing.crt") + ": cannot read: No such file or directory");
}

TEST_F(TlsContextTest, AMissingKeyIsNamed) {
    config::CertificateFiles missing{dir_.file("first.crt"), dir_.file("missing.key"), {}};
    EXPECT_EQ(load({missing}), nullptr);
    EXPECT_THAT(error_, StartsWith(dir_.file("missing.key") + ": cannot read"));
}

TEST_F(TlsContextTest, AKeyOfAnotherCertificateIsNamedAsNotMatching) {
    EXPECT_EQ(load({files("first", "second")}), nullptr);
    EXPECT_EQ(error_, dir_.file("second.key") + ": the private key does not match " +
                          dir_.file("first.crt"));
}

TEST_F(TlsContextTest, AFileThatIsNoCertificateIsNamed) {
    write("garbage.crt", "not a certificate\n");
    config::CertificateFiles bad{dir_.file("garbage.crt"), dir_.file("first.key"), {}};
    EXPECT_EQ(load({bad}), nullptr);
    EXPECT_THAT(error_, StartsWith(dir_.file("garbage.crt") + ": cannot load the certificate"));
}

TEST_F(TlsContextTest, AFileThatIsNoKeyIsNamed) {
    write("garbage.key", "not a key\n");
    config::CertificateFiles bad{dir_.file("first.crt"), dir_.file("garbage.key"), {}};
    EXPECT_EQ(load({bad}), nullptr);
    EXPECT_THAT(error_, StartsWith(dir_.file("garbage.key") + ": cannot load the private key"));
}

TEST_F(TlsContextTest, ABadSecondCertificateFailsTheWholeListener) {
    config::CertificateFiles missing{dir_.file("missing.crt"), dir_.file("first.key"), {}};
    EXPECT_EQ(load({files("first", "first"), missing}), nullptr);
    EXPECT_THAT(error_, HasSubstr("missing.crt"));
}

TEST_F(TlsContextTest, NoCertificateIsAnError) {
    EXPECT_EQ(load({}), nullptr);
    EXPECT_EQ(error_, "no certificate");
}

TEST_F(TlsContextTest, AClientContextWithAMissingCaFileIsNamed) {
    config::PoolTlsConfig pool;
    pool.ca_file = dir_.file("missing-ca.pem");
    std::string error;
    EXPECT_EQ(ClientContext::load(pool, error), nullptr);
    EXPECT_EQ(error, dir_.file("missing-ca.pem") + ": cannot read: No such file or directory");
}

TEST_F(TlsContextTest, AClientContextWithoutVerificationNeedsNoCaFile) {
    config::PoolTlsConfig pool;
    pool.verify = false;
    pool.ca_file = dir_.file("missing-ca.pem");
    std::string error;
    auto ctx = ClientContext::load(pool, error);
    ASSERT_NE(ctx, nullptr) << error;
    EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->context()), SSL_VERIFY_NONE);
    EXPECT_FALSE(ctx->config().verify);
}

TEST_F(TlsContextTest, AClientContextVerifiesAgainstItsCaFile) {
    config::PoolTlsConfig pool;
    pool.ca_file = dir_.file("first.crt");
    std::string error;
    auto ctx = ClientContext::load(pool, error);
    ASSERT_NE(ctx, nullptr) << error;
    EXPECT_EQ(SSL_CTX_get_verify_mode(ctx->context()), SSL_VERIFY_PEER);
}

}  // namespace
}  // namespace sb::tls
