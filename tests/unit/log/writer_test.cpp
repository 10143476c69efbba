// log::Writer: lines come out whole and in order, one newline each, from any number of
// threads; a file is opened for appending and created 0640; reopen() moves to a new
// file at the same path (logrotate) and keeps the old one when it cannot; and a
// destination that stops reading (a full pipe) never blocks the caller: lines past the
// bound are dropped, counted, and the count is reported once the writer catches up.
#include "log/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "log_test_util.h"

namespace sb::log {
namespace {

using ::testing::HasSubstr;

class WriterTest : public ::testing::Test {
  protected:
    std::unique_ptr<Writer> open(const std::string& path) {
        std::string error;
        auto w = Writer::open_file(path, error);
        EXPECT_NE(w, nullptr) << error;
        return w;
    }

    test::TempDir dir_;
};

TEST_F(WriterTest, LinesComeOutInOrderWithOneNewlineEach) {
    const std::string path = dir_.file("a.log");
    auto w = open(path);
    ASSERT_NE(w, nullptr);
    w->write("first");
    w->write("");
    w->write("third line");
    w->flush();
    EXPECT_EQ(test::read_file(path), "first\n\nthird line\n");
    EXPECT_EQ(w->path(), path);
    EXPECT_EQ(w->dropped(), 0u);
}

TEST_F(WriterTest, LinesFromManyThreadsAreNeverInterleaved) {
    const std::string path = dir_.file("a.log");
    auto w = open(path);
    ASSERT_NE(w, nullptr);
    constexpr int kThreads = 4;
    constexpr int kLines = 2000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&w, t] {
            for (int i = 0; i < kLines; ++i)
                w->write("thread " + std::to_string(t) + " line " + std::to_string(i) + " " +
                         std::string(static_cast<size_t>(i % 97), 'x'));
        });
    }
    for (auto& t : threads)
        t.join();
    w->flush();
    auto lines = test::lines_of(test::read_file(path));
    ASSERT_EQ(lines.size(), size_t{kThreads * kLines});
    std::vector<int> next(kThreads, 0);
    const std::regex shape(R"(thread (\d) line (\d+) x*)");
    for (const auto& line : lines) {
        std::smatch m;
        ASSERT_TRUE(std::regex_match(line, m, shape)) << "torn line: " << line;
        int t = std::stoi(m[1]);
        int i = std::stoi(m[2]);
        EXPECT_EQ(i, next[static_cast<size_t>(t)]++) << "thread " << t << " out of order";
    }
}

TEST_F(WriterTest, OpenFileAppendsToAnExistingFile) {
    const std::string path = dir_.file("a.log");
    {
        std::FILE* f = std::fopen(path.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fputs("kept\n", f);
        std::fclose(f);
    }
    auto w = open(path);
    ASSERT_NE(w, nullptr);
    w->write("added");
    w->flush();
    EXPECT_EQ(test::read_file(path), "kept\nadded\n");
}

TEST_F(WriterTest, OpenFileCreatesTheFileReadableByItsGroupOnly) {
    const std::string path = dir_.file("new.log");
    mode_t old_mask = ::umask(022);
    auto w = open(path);
    ::umask(old_mask);
    ASSERT_NE(w, nullptr);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(WriterTest, OpenFileInAMissingDirectorySaysWhy) {
    std::string error;
    const std::string path = dir_.file("missing/a.log");
    EXPECT_EQ(Writer::open_file(path, error), nullptr);
    EXPECT_EQ(error, "cannot open " + path + ": No such file or directory");
}

TEST_F(WriterTest, ReopenMovesToANewFileAtTheSamePath) {
    const std::string path = dir_.file("a.log");
    auto w = open(path);
    ASSERT_NE(w, nullptr);
    w->write("before");
    w->flush();
    ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
    std::string error;
    ASSERT_TRUE(w->reopen(error)) << error;
    w->write("after");
    w->flush();
    EXPECT_EQ(test::read_file(path + ".1"), "before\n");
    EXPECT_EQ(test::read_file(path), "after\n");
}

TEST_F(WriterTest, TwoReopensInARowLeaveOneFileOpenAtThePath) {
    const std::string path = dir_.file("a.log");
    auto w = open(path);
    ASSERT_NE(w, nullptr);
    std::string error;
    ASSERT_TRUE(w->reopen(error)) << error;
    ASSERT_TRUE(w->reopen(error)) << error;
    w->write("x");
    w->flush();
    EXPECT_EQ(test::read_file(path), "x\n");
}

TEST_F(WriterTest, ReopenThatFailsKeepsWritingToTheOldFile) {
    const std::string sub = dir_.file("sub");
    ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
    const std::string path = sub + "/a.log";
    auto w = open(path);
    ASSERT_NE(w, nullptr);
    // logrotate moved the file out and the directory is gone.
    const std::string moved = dir_.file("a.log.1");
    ASSERT_EQ(std::rename(path.c_str(), moved.c_str()), 0);
    ASSERT_EQ(::rmdir(sub.c_str()), 0);
    std::string error;
    EXPECT_FALSE(w->reopen(error));
    EXPECT_EQ(error, "cannot reopen " + path + ": No such file or directory");
    w->write("still written");
    w->flush();
    EXPECT_EQ(test::read_file(moved), "still written\n");
}

TEST_F(WriterTest, ReopenOfADescriptorItDidNotOpenIsANoOp) {
    int fd = ::open(dir_.file("fd.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    {
        Writer w(fd, "");
        std::string error;
        EXPECT_TRUE(w.reopen(error));
        EXPECT_EQ(error, "");
        w.write("x");
        w.flush();
    }
    // The Writer did not close a descriptor it was given.
    EXPECT_EQ(::write(fd, "y\n", 2), 2);
    ::close(fd);
    EXPECT_EQ(test::read_file(dir_.file("fd.log")), "x\ny\n");
}

TEST_F(WriterTest, AStalledDestinationDropsLinesPastTheBoundAndReportsHowMany) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    auto w = std::make_unique<Writer>(fds[1], "");
    // Nobody reads the pipe: the writer's thread blocks on this line (larger than a
    // pipe's buffer), and what follows queues up to kMaxPending, then is dropped.
    w->write(std::string(1024 * 1024, 'a'));
    const std::string line(1023, 'b');
    size_t written = 0;
    for (size_t queued = 0; queued < 3 * Writer::kMaxPending; queued += line.size() + 1) {
        w->write(line);
        ++written;
    }
    const uint64_t dropped = w->dropped();
    EXPECT_GT(dropped, 0u);
    EXPECT_LT(dropped, written);

    std::string out;
    std::thread reader([&] {
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(fds[0], buf, sizeof(buf));
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
    });
    w->flush();
    w.reset();
    ::close(fds[1]);
    reader.join();
    ::close(fds[0]);

    size_t b_lines = 0;
    std::string report;
    for (const auto& l : test::lines_of(out)) {
        if (l == line) {
            ++b_lines;
        } else if (l.rfind("log writer:", 0) == 0) {
            report = l;
        }
    }
    EXPECT_EQ(b_lines, written - dropped) << "every line not dropped comes out whole";
    EXPECT_EQ(report, "log writer: dropped " + std::to_string(dropped) +
                          " lines while the destination was slow");
}

}  // namespace
}  // namespace sb::log
