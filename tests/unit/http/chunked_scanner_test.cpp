// http::ChunkedScanner on its own: where it says a body ends or breaks (`used`), that
// it stays ended or failed, and that chunk data is skipped by length whatever it holds.
// The rules themselves are tested through MessageParser (message_parser_framing_test).
#include "http/chunked_scanner.h"

#include <gtest/gtest.h>

#include <string>

namespace sb::http {
namespace {

using Result = ChunkedScanner::Result;

TEST(ChunkedScannerTest, EndsAfterTheFinalLf) {
    ChunkedScanner s;
    size_t used = 0;
    EXPECT_EQ(s.scan("3\r\nabc\r\n0\r\n\r\nNEXT", used), Result::Ended);
    EXPECT_EQ(used, 13u);
    EXPECT_TRUE(s.ended());
    EXPECT_EQ(s.scan("more", used), Result::Ended);
    EXPECT_EQ(used, 0u);
}

TEST(ChunkedScannerTest, ErrorSaysWhichByte) {
    ChunkedScanner s;
    size_t used = 0;
    EXPECT_EQ(s.scan("3\r\nabc\r\n0\r\n\n", used), Result::Error);
    EXPECT_EQ(used, 11u);
    EXPECT_NE(s.error(), nullptr);
    EXPECT_EQ(s.scan("\r\n", used), Result::Error);
}

TEST(ChunkedScannerTest, DataIsSkippedByLengthAcrossCalls) {
    ChunkedScanner s;
    size_t used = 0;
    ASSERT_EQ(s.scan("10000\r\n", used), Result::NeedMore);
    // 64 KiB of bytes that would each be an error on a chunk line.
    std::string data(0x10000, '\n');
    ASSERT_EQ(s.scan(data.substr(0, 1000), used), Result::NeedMore);
    EXPECT_EQ(used, 1000u);
    ASSERT_EQ(s.scan(data.substr(1000), used), Result::NeedMore);
    EXPECT_EQ(s.scan("\r\n0\r\n\r\n", used), Result::Ended);
    EXPECT_EQ(used, 7u);
}

TEST(ChunkedScannerTest, ExtensionLimitCountsEveryByteAfterTheSize) {
    // ";" and the name: 4096 bytes is the limit, the 4097th is refused at its offset.
    std::string line = "1;" + std::string(ChunkedScanner::kMaxExtension, 'x');
    ChunkedScanner s;
    size_t used = 0;
    EXPECT_EQ(s.scan(line, used), Result::Error);
    EXPECT_EQ(used, 1 + ChunkedScanner::kMaxExtension);
    EXPECT_STREQ(s.error(), "chunk extension over 4 KiB");
}

}  // namespace
}  // namespace sb::http
