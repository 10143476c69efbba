#include "net/splice_pipe.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

namespace sb::net {
namespace {

// A connected pair of stream sockets, both non-blocking, closed on scope exit.
struct SocketPair {
    int fds[2] = {-1, -1};
    SocketPair() {
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    }
    ~SocketPair() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('a' + (i * 7) % 26);
    return s;
}

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

TEST(SplicePipe, MovesBytesFromOneSocketToAnother) {
    SocketPair from;
    SocketPair to;
    SplicePipe pipe;
    ASSERT_TRUE(pipe.ready());
    std::string data = pattern(50'000);
    ASSERT_EQ(::write(from.fds[0], data.data(), data.size()), static_cast<ssize_t>(data.size()));

    // A splice may stop at a buffer boundary of the source: fill until all is held.
    size_t in = 0;
    while (in < data.size()) {
        ssize_t n = pipe.fill(from.fds[1], data.size() - in);
        ASSERT_GT(n, 0);
        in += static_cast<size_t>(n);
    }
    size_t out = 0;
    while (out < in) {
        ssize_t n = pipe.drain(to.fds[0], in - out);
        ASSERT_GT(n, 0);
        out += static_cast<size_t>(n);
    }
    EXPECT_EQ(read_all(to.fds[1]), data);
}

TEST(SplicePipe, FillWithNothingToReadSaysAgain) {
    SocketPair from;
    SplicePipe pipe;
    ASSERT_TRUE(pipe.ready());
    EXPECT_EQ(pipe.fill(from.fds[1], 1024), -1);
    EXPECT_EQ(errno, EAGAIN);
}

TEST(SplicePipe, WhatTheDestinationRefusesCanBeReadBackAndTheRestCleared) {
    SocketPair from;
    SocketPair to;
    int small = 4096;
    ASSERT_EQ(::setsockopt(to.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    ASSERT_EQ(::setsockopt(to.fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    SplicePipe pipe;
    ASSERT_TRUE(pipe.ready());
    std::string data = pattern(100'000);
    ASSERT_EQ(::write(from.fds[0], data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ssize_t in = pipe.fill(from.fds[1], data.size());
    ASSERT_GT(in, 0);
    auto held = static_cast<size_t>(in);

    // The destination takes part of it and then refuses.
    size_t sent = 0;
    for (;;) {
        ssize_t n = pipe.drain(to.fds[0], held - sent);
        if (n <= 0) {
            EXPECT_EQ(errno, EAGAIN);
            break;
        }
        sent += static_cast<size_t>(n);
    }
    ASSERT_LT(sent, held);
    // The refused bytes come back out in order, where the sent ones stopped.
    std::vector<char> back(1000);
    ASSERT_EQ(pipe.read_back(back.data(), back.size()), 1000);
    EXPECT_EQ(std::string(back.data(), back.size()), data.substr(sent, 1000));
    // Cleared, the pipe holds nothing for the next user.
    pipe.clear();
    EXPECT_EQ(pipe.read_back(back.data(), back.size()), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(read_all(to.fds[1]), data.substr(0, sent));
}

TEST(SplicePipe, SendRoomShrinksAsTheSendBufferFills) {
    SocketPair to;
    size_t empty = SplicePipe::send_room(to.fds[0]);
    EXPECT_GT(empty, 0U);
    std::string data = pattern(8192);
    ASSERT_EQ(::write(to.fds[0], data.data(), data.size()), static_cast<ssize_t>(data.size()));
    EXPECT_LT(SplicePipe::send_room(to.fds[0]), empty);
    EXPECT_EQ(SplicePipe::send_room(-1), 0U);  // no socket: no room
}

}  // namespace
}  // namespace sb::net
