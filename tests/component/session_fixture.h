// The fixture of every component test: a SessionHarness per test, and the checks
// each test ends with (STYLE.md §5, §11): no handle left open, uv_loop_close() == 0,
// no session alive, every BlockPool block given back, every paused read resumed.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "session_harness.h"

namespace sb::test {

class SessionTest : public ::testing::Test {
  protected:
    // Makes the harness; a test calls it once, first (ASSERT_NO_FATAL_FAILURE).
    void start(HarnessOptions options = {}) {
        harness_ = std::make_unique<SessionHarness>(std::move(options));
        ASSERT_TRUE(harness_->ok()) << harness_->error();
    }
    SessionHarness& h() { return *harness_; }

    void TearDown() override {
        if (!harness_) return;
        TeardownReport r = harness_->teardown();
        EXPECT_TRUE(r.open_handles.empty()) << r.describe();
        EXPECT_EQ(r.loop_close, 0) << r.describe();
        EXPECT_EQ(r.sessions_left, 0u)
            << "sessions did not end once both peers hung up; " << r.describe();
        EXPECT_EQ(r.blocks_in_use, 0u) << "blocks never given back; " << r.describe();
        if (every_pause_resumed_) {
            EXPECT_EQ(r.pauses, r.resumes) << "a paused read was never resumed; " << r.describe();
        }
        harness_.reset();
    }

    // For a test that ends a session while a read is paused on purpose.
    void allow_unresumed_pause() { every_pause_resumed_ = false; }

    // ---- looking at what a peer received ----

    // Where the frames start in what a client received: after the 101 head.
    static size_t after_101(const Peer& client) {
        size_t at = client.received().find("HTTP/1.1 101");
        if (at == std::string::npos) return client.received().size();
        return at + head_length(client.received_after(at));
    }
    static std::vector<Frame> frames_of(std::string_view bytes) {
        std::vector<Frame> out;
        decode_frames(bytes, out);
        return out;
    }
    static std::vector<Frame> client_frames(const Peer& client) {
        return frames_of(client.received_after(after_101(client)));
    }
    // The first Close frame in `frames`, if any (a copy: `frames` is often a temporary).
    static std::optional<Frame> close_of(const std::vector<Frame>& frames) {
        for (const auto& f : frames)
            if (f.opcode == kClose) return f;
        return std::nullopt;
    }
    // The status code of a proxy answer ("HTTP/1.1 502 ..."), or 0.
    static int status_of(std::string_view bytes) {
        if (bytes.size() < 12 || bytes.substr(0, 9) != "HTTP/1.1 ") return 0;
        return std::stoi(std::string(bytes.substr(9, 3)));
    }

    // ---- waiting ----

    bool wait_backend_connection() {
        return h().run_until([&] {
            return h().backend().connections() > 0 &&
                   !h().backend().connection().request_head.empty();
        });
    }
    bool wait_client_frames(const Peer& client, size_t n) {
        return h().run_until([&] { return client_frames(client).size() >= n; });
    }
    bool wait_backend_frames(size_t n) {
        return h().run_until([&] {
            return h().backend().connections() > 0 && h().backend().connection().frames.size() >= n;
        });
    }
    bool wait_no_session() {
        return h().run_until([&] { return h().sessions() == 0; });
    }

  private:
    std::unique_ptr<SessionHarness> harness_;
    bool every_pause_resumed_ = true;
};

}  // namespace sb::test
