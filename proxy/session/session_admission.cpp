// The admission half of a Session (SPEC §3 Admission): what a connection that
// placement shed is told, and the per-address connection rate.
//
// The buckets themselves are the Pool's and the Backend's (pool.h, SharedBucket);
// placement decides. Here a shed request is answered: a plain request, or an upgrade
// under shed = "http_503", gets 503 with Retry-After; an upgrade under "close_1013"
// gets switchboard's own 101 and at once a Close 1013 whose reason says when to come
// back, which a browser shows to the page (a refused upgrade shows only as 1006).
#include <chrono>
#include <cmath>
#include <random>

#include "http/upgrade_response.h"
#include "limits/shared_bucket.h"
#include "session/handshake_state.h"
#include "session/session.h"
#include "ws/protocol.h"

namespace sb::session {

namespace {

// How long a client shed with 1013 has to answer with its Close (SPEC §3).
constexpr uint64_t kShedLingerMs = 1000;

// Looks for the client's Close frame among whatever it sends after our Close.
struct CloseFinder {
    bool found = false;
    bool on_header(const ws::FrameHeader&, size_t) { return true; }
    bool on_frame_end(const ws::FrameHeader& h, size_t, std::span<const uint8_t>) {
        found = h.opcode == ws::kClose;
        return !found;
    }
};

}  // namespace

unsigned Session::retry_hint(config::Duration retry_after) {
    // ±50% per client, so that the clients of one storm come back spread over a
    // whole retry_after rather than together.
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    double seconds = std::chrono::duration<double>(retry_after).count() * jitter(ctx().rng);
    return std::max(1u, static_cast<unsigned>(std::ceil(seconds)));
}

bool Session::take_connect_token() {
    uint64_t rate = listener_.config.max_connects_per_ip_per_second;
    if (rate == 0) return true;
    int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
    int64_t wait_ns = 0;
    if (listener_.counters->connect_rates.try_take(client_address_.ip_string(), rate, now_ns,
                                                   wait_ns)) {
        return true;
    }
    // Refused once the request head is read (an HTTP answer needs one), like the
    // other per-client limits; Retry-After says when a token is there again.
    handshake_->over_limit = CloseReason::ConnectRateLimited;
    handshake_->connect_retry_after = static_cast<unsigned>(std::max<int64_t>(
        1, (wait_ns + limits::SharedBucket::kSecondNs - 1) / limits::SharedBucket::kSecondNs));
    return false;
}

void Session::shed(CloseReason reason) {
    auto& hs = *handshake_;
    const auto& admission = *pool_->config().admission;  // only admission sheds
    unsigned seconds = retry_hint(admission.retry_after);
    // A backend tried before (a connect that failed) is not where this shed happened:
    // the access log names no backend for a shed.
    backend_ = nullptr;
    std::string why = reason == CloseReason::ShedPoolRate
                          ? "the pool takes no more new connections now"
                          : "the backend takes no more new connections now";
    if (hs.http || admission.shed == config::AdmissionConfig::Shed::Http503) {
        refuse(reason, why, seconds);
        return;
    }
    // shed = "close_1013": the upgrade is ours to complete. No backend is contacted;
    // a connection kept from an earlier request of this client serves other clients.
    decide(reason);
    status_ = 101;
    close_code_ = ws::kTryAgainLater;
    log_event("shed", std::string(metrics::info(reason).log_reason) + ": " + why);
    if (hs.kept != nullptr) park_kept_connection();
    backend_side_.close();
    enter(SessionState::Closing);
    state_due_ = uv_now(ctx().loop) + kShedLingerMs;
    rearm();
    std::string out = http::own_upgrade_response(
        hs.client_key, http::first_subprotocol(hs.request, hs.request_parser));
    if (log_) log_->head_out += static_cast<uint32_t>(out.size());
    out += ws::close_frame(ws::kTryAgainLater, "retry after " + std::to_string(seconds) + " s",
                           false, 0);
    hs.shedding = true;
    if (!client_.write_copy(out)) return;
    // Frames the client sent behind its request, and its answer to our Close.
    client_.deliver_to(Endpoint::Consumer::Handshake);
    client_.resume();
}

void Session::on_shed_bytes(uv::Block* block, char* data, size_t n) {
    CloseFinder finder;
    handshake_->shed_frames.scan(reinterpret_cast<const uint8_t*>(data), n, finder);
    ctx().blocks.give(block);
    // The close handshake is complete: the server closes the TCP connection first
    // (RFC 6455 §7.1.1).
    if (finder.found) finish(reason_);
}

}  // namespace sb::session
