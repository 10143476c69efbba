// StormRun and StormClient: the clients of tools/bench's storm scenario, N WebSocket
// clients on one uv loop that reconnect the way real client libraries do.
//
// Client i asks for `/?room=c<i>` (a room of its own, so a proxy that hashes by room
// spreads the clients like one that balances by connection). What an attempt's answer
// means:
//   101 with X-Backend    open: sb-echo-backend names itself in its 101, which tells
//                         a backend's 101 from a proxy's own (switchboard shedding
//                         with close_1013 answers 101 itself, then sends Close 1013)
//   101, then a Close     refused (close_1013 or close_other); wait N s when the
//                         reason says `retry after N s`. A 101 without X-Backend that
//                         no Close follows within kProvisionalMs counts as open.
//   another status        refused (http_<status>); wait Retry-After seconds if given
//   refused, reset, EOF   refused (refused, reset); backoff
//   no answer in time     error (timeout); backoff
//   a malformed answer    error (malformed); backoff
// Backoff is exponential with full jitter: U(0, min(10 s, 100 ms * 2^attempt)), the
// attempt counter going back to 0 whenever a connection opens. An open connection that
// ends (EOF or reset: 1006; any Close: its code, 1012 from a proxy whose backend died)
// is a drop: reconnect with the same backoff, from attempt 0.
//
// Until every client has been open once (the fill), at most kFillConcurrency attempts
// are in flight; from then on there is no limit. All times are uv_hrtime()
// (CLOCK_MONOTONIC), the clock of sb-echo-backend's --accept-log and of Python's
// time.monotonic().
//
// One StormRun per process, on the stack of main(); it owns the clients, which own
// their timer and, during an attempt, one Socket. Single-threaded.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/frame_codec.h"
#include "common/rng.h"
#include "http/message_parser.h"

namespace sb::tools {

class StormRun;

struct StormOptions {
    sockaddr_storage address{};
    std::string host_header;  // HOST:PORT
    size_t clients = 0;
    double max_seconds = 120;
    uint64_t handshake_timeout_ms = 10'000;
};

// One attempt's result, kept for clients that have dropped at least once.
struct AttemptRecord {
    double started = 0;
    double decided = 0;
    std::string kind;    // open, close_1013, http_503, refused, timeout, ...
    std::string detail;  // open: the backend's name; refusals: the seconds to wait
};

class StormClient {
  public:
    StormClient(StormRun& run, size_t index);
    StormClient(const StormClient&) = delete;
    StormClient& operator=(const StormClient&) = delete;

    // Starts the first attempt (through the run's fill gate).
    void start();
    // Called by the run's fill gate: makes one attempt now.
    void attempt();

    // FrameReader sink (see frame_codec.h): only a Close frame matters.
    bool on_frame_header(const FrameHeader& h);
    bool on_frame_payload(uint8_t* bytes, size_t n);
    bool on_frame_end(const FrameHeader& h);

    size_t index() const { return index_; }
    const std::vector<std::pair<double, int>>& drops() const { return drops_; }
    const std::vector<AttemptRecord>& attempts() const { return attempts_; }
    double back_at() const { return back_at_; }  // 0 = not open again yet

  private:
    enum class State {
        Idle,         // waiting for the timer to make the next attempt
        Connecting,   // TCP connect; the timer is the handshake timeout
        Handshake,    // request written, reading the answer's head
        Provisional,  // a 101 without X-Backend: open unless a Close follows
        Open,         // connected to a backend
        Closing,      // the socket is closing; the next attempt waits for its callback
    };
    struct Socket;  // one attempt's connection, freed in its close callback

    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_socket_closed(uv_handle_t* handle) noexcept;
    static void on_timer(uv_timer_t* timer) noexcept;

    void handle_connect(int status);
    void handle_read(ssize_t nread, const char* data);
    void handle_head();
    void handle_timer();
    // The attempt is decided: records it, and for anything but "open" closes the
    // socket and waits `wait_s` (< 0: backoff) before the next attempt.
    void decide(const std::string& kind, const std::string& detail, double wait_s);
    // An open connection ended with `code` (1006: without a Close).
    void drop(int code);
    void close_socket(double next_wait_s);
    double backoff();

    StormRun& run_;
    size_t index_;
    uv_timer_t timer_{};
    State state_ = State::Idle;
    Socket* socket_ = nullptr;
    unsigned tries_ = 0;                         // consecutive attempts since the last open
    double started_ = 0;                         // this attempt's start
    double next_wait_s_ = 0;                     // the wait after the socket has closed
    std::string backend_;                        // where the open connection is
    std::vector<std::pair<double, int>> drops_;  // (time, close code)
    std::vector<AttemptRecord> attempts_;        // after the first drop only
    double back_at_ = 0;
    // The answer being read (reset per attempt).
    std::string key_;
    std::string head_;
    std::unique_ptr<http::MessageParser> parser_;
    FrameReader frames_;
    bool in_close_ = false;
    std::string close_payload_;
};

class StormRun {
  public:
    static constexpr size_t kFillConcurrency = 256;
    static constexpr uint64_t kProvisionalMs = 1000;

    StormRun(uv_loop_t* loop, StormOptions options);
    StormRun(const StormRun&) = delete;
    StormRun& operator=(const StormRun&) = delete;
    ~StormRun();

    // Starts every client and the deadline; returns when the run is over (all back
    // after a drop, the deadline, or stop()). The caller then prints report().
    void run();
    // Ends the run at the next turn of the loop (SIGTERM, SIGINT).
    void stop();
    std::string report() const;

    uv_loop_t* loop() const { return loop_; }
    const StormOptions& options() const { return options_; }
    Rng& rng() { return rng_; }
    double now() const;

    // The fill gate: `c` makes its attempt now or when a slot frees.
    void want_attempt(StormClient* c);
    void attempt_done();
    void on_open(StormClient& c, const std::string& backend, bool after_drop);
    void on_drop(const std::string& backend);
    void note_outcome(const std::string& kind);  // before the first drop (the fill)

  private:
    static void on_deadline(uv_timer_t* timer) noexcept;

    uv_loop_t* loop_;
    StormOptions options_;
    Rng rng_;
    double started_ = 0;
    std::vector<std::unique_ptr<StormClient>> clients_;
    uv_timer_t deadline_{};
    size_t open_ = 0;
    size_t ever_open_ = 0;
    double filled_at_ = 0;
    double first_drop_ = 0;
    double all_back_at_ = 0;
    size_t in_flight_ = 0;
    std::deque<StormClient*> waiting_;
    std::map<std::string, size_t> fill_outcomes_;
    std::map<std::string, size_t> backends_;
};

}  // namespace sb::tools
