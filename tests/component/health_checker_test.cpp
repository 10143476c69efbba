// HealthChecker on a real uv loop against backends on 127.0.0.1: a passing http probe,
// a refused port marked down after `fall`, following a generation that drops the
// health_check table, and close() leaving no handle open (uv_loop_close succeeds), so
// a draining process exits. The backend is a blocking socket server in a thread,
// bounded in connections and time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "config/loader.h"
#include "health/health_checker.h"
#include "pool/generation.h"

namespace sb::health {
namespace {

// Answers `answer` to each request head, up to 50 connections or until stopped.
class HttpServer {
  public:
    explicit HttpServer(std::string answer) : answer_(std::move(answer)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        ::listen(fd_, 16);
        socklen_t len = sizeof(a);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~HttpServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    void set_answer(std::string answer) {
        std::lock_guard lock(mutex_);
        answer_ = std::move(answer);
    }
    int requests() const { return requests_; }

  private:
    void serve() {
        for (int n = 0; n < 50 && !stop_;) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            ++n;
            std::string head;
            char buf[1024];
            pollfd pc{c, POLLIN, 0};
            while (head.find("\r\n\r\n") == std::string::npos && ::poll(&pc, 1, 1000) > 0) {
                ssize_t r = ::read(c, buf, sizeof(buf));
                if (r <= 0) break;
                head.append(buf, static_cast<size_t>(r));
            }
            if (head.find("\r\n\r\n") != std::string::npos) {
                ++requests_;
                std::string answer;
                {
                    std::lock_guard lock(mutex_);
                    answer = answer_;
                }
                (void)!::write(c, answer.data(), answer.size());
            }
            ::close(c);
        }
    }

    std::mutex mutex_;
    std::string answer_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> requests_{0};
    std::thread thread_;
};

pool::GenerationPtr generation(const std::string& backends, const std::string& check,
                               const pool::Generation* previous = nullptr) {
    auto loaded = config::load_string(R"(
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [)" + backends + "]\n" + check,
                                      "t.toml");
    EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    if (!loaded.ok()) return nullptr;
    std::vector<config::ConfigError> errors;
    return pool::Generation::build(loaded.config, previous ? previous->number() + 1 : 1, previous,
                                   errors);
}

class HealthCheckerTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
    void TearDown() override {
        checker_.reset();
        uv_run(&loop_, UV_RUN_DEFAULT);  // close callbacks
        EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle was left open";
    }

    // Runs the loop until `done` or 5 s.
    bool run_until(const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            uv_run(&loop_, UV_RUN_NOWAIT);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return true;
    }
    void make_checker() {
        checker_ = std::make_unique<HealthChecker>(
            &loop_, [this](const std::string& pool) { ups_.push_back(pool); });
    }
    void close_checker() {
        checker_->close();
        uv_run(&loop_, UV_RUN_DEFAULT);  // nothing may keep the loop alive after close()
    }

    uv_loop_t loop_{};
    std::unique_ptr<HealthChecker> checker_;
    std::vector<std::string> ups_;
};

TEST_F(HealthCheckerTest, AnHttpProbeThatPassesIsRecorded) {
    HttpServer server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    auto g = generation("{ address = \"" + server.address() + "\" }",
                        "[pools.chat.health_check]\ninterval = \"100ms\"\n");
    ASSERT_TRUE(g);
    make_checker();
    checker_->use_generation(g);
    EXPECT_EQ(checker_->targets(), 1u);
    auto& b = *g->pool("chat")->backends()[0];
    EXPECT_TRUE(b.actively_checked());
    ASSERT_TRUE(run_until([&] { return b.health_report().ok_total >= 2; }));
    EXPECT_TRUE(b.health_report().last_ok);
    EXPECT_EQ(b.health_report().last_error, "");
    EXPECT_GE(server.requests(), 2);
    EXPECT_FALSE(b.marked_down());
    close_checker();
}

TEST_F(HealthCheckerTest, ARefusedPortIsMarkedDownAfterFall) {
    // A port that was free a moment ago: connects are refused.
    std::string address;
    {
        HttpServer gone("");
        address = gone.address();
    }
    auto g =
        generation("{ address = \"" + address + "\" }",
                   "[pools.chat.health_check]\nkind = \"tcp\"\ninterval = \"100ms\"\nfall = 2\n");
    ASSERT_TRUE(g);
    make_checker();
    checker_->use_generation(g);
    auto& b = *g->pool("chat")->backends()[0];
    ASSERT_TRUE(run_until([&] { return b.marked_down(); }));
    EXPECT_EQ(b.health_report().last_error, "connect: connection refused");
    EXPECT_GE(b.health_report().failed_total, 2u);
    EXPECT_FALSE(b.is_up(std::chrono::steady_clock::now() + std::chrono::hours(1)));
    close_checker();
}

TEST_F(HealthCheckerTest, A503FailsAndRiseBringsItBackWithOnUp) {
    HttpServer bad("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    auto g = generation("{ address = \"" + bad.address() + "\" }",
                        "[pools.chat.health_check]\ninterval = \"100ms\"\nfall = 1\nrise = 1\n");
    ASSERT_TRUE(g);
    make_checker();
    checker_->use_generation(g);
    auto& b = *g->pool("chat")->backends()[0];
    ASSERT_TRUE(run_until([&] { return b.marked_down(); }));
    EXPECT_EQ(b.health_report().last_error, "status 503");
    EXPECT_TRUE(ups_.empty());
    bad.set_answer("HTTP/1.1 204 No Content\r\n\r\n");
    ASSERT_TRUE(run_until([&] { return !b.marked_down(); }));
    ASSERT_EQ(ups_.size(), 1u);  // the server's rehome scan is asked for
    EXPECT_EQ(ups_[0], "chat");
    EXPECT_LT(b.slow_start_fraction(std::chrono::seconds(60)), 1.0);  // slow start began
    close_checker();
}

TEST_F(HealthCheckerTest, FollowsAGenerationWithoutTheTable) {
    HttpServer server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    std::string backend = "{ address = \"" + server.address() + "\" }";
    auto g1 = generation(backend, "[pools.chat.health_check]\ninterval = \"100ms\"\n");
    ASSERT_TRUE(g1);
    make_checker();
    checker_->use_generation(g1);
    auto& b = *g1->pool("chat")->backends()[0];
    ASSERT_TRUE(run_until([&] { return b.health_report().checked; }));
    auto g2 = generation(backend, "", g1.get());
    ASSERT_TRUE(g2);
    EXPECT_EQ(g2->pool("chat")->backends()[0].get(), &b);  // the same Backend object
    checker_->use_generation(g2);
    EXPECT_EQ(checker_->targets(), 0u);
    EXPECT_FALSE(b.actively_checked());
    auto started = checker_->probes_started();
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    run_until([&] { return std::chrono::steady_clock::now() > until; });
    EXPECT_EQ(checker_->probes_started(), started);
    close_checker();
}

}  // namespace
}  // namespace sb::health
