// Probe: one active health check of one backend: a connection that connects, sends
// the pool's PROXY header if any, does the TLS handshake when the pool uses TLS, sends
// the check's request and reads the answer (probe_request.h says what passes), all
// within the check's timeout. Then it ends the connection politely (a masked Close
// 1000 for websocket, close_notify under TLS, then FIN) and waits a short while for
// the backend to close too, so the backend never sees a reset from a passing check.
//
// Created by the HealthChecker on the main loop; deletes itself once its handles have
// closed. It reports once, through `done`, and never from inside start(); abort()
// ends it without a report. Main thread only.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "config/config.h"
#include "http/message_parser.h"
#include "tls/connection.h"
#include "uv/block_pool.h"

namespace sb::health {

struct ProbeTarget {
    config::HealthCheckConfig check;
    config::ProxyProtocol proxy_protocol = config::ProxyProtocol::Off;
    std::string host;  // the backend's address as configured (Host header)
    config::SocketAddress address;
    SSL_CTX* tls = nullptr;  // null: plain TCP
    std::string tls_name;    // SNI / verification name
    bool tls_verify = true;
    std::shared_ptr<const void> keep;  // keeps `tls` alive (the generation)
};

class Probe {
  public:
    // ok, the error when not ok ("connect: connection refused", "status 503",
    // "timeout (response)"), and how long the check took.
    using Done = std::function<void(bool ok, const std::string& error, double latency_ms)>;

    static Probe* start(uv_loop_t* loop, uv::BlockPool& blocks, std::mt19937_64& rng,
                        ProbeTarget target, Done done);
    // Ends the probe without reporting.
    void abort();

  private:
    enum class Phase { Connecting, Handshaking, Awaiting, Ending };

    Probe(uv_loop_t* loop, uv::BlockPool& blocks, ProbeTarget target, Done done);
    ~Probe();
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;

    void begin(std::mt19937_64& rng);
    void on_connect(int status);
    void on_ready();  // connected, TLS done if any: send the request
    void on_bytes(const char* data, size_t n);
    void on_eof();
    void pump_tls();
    void send_plain(const std::string& bytes);  // through TLS when there is TLS
    void write_raw(std::string bytes);
    void flush_tls();
    void report(bool ok, std::string error);
    void end_politely();
    void close();
    void on_timeout();
    std::string phase_name() const;

    static void on_connect_cb(uv_connect_t* req, int status) noexcept;
    static void on_alloc_cb(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept;
    static void on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_write_cb(uv_write_t* req, int status) noexcept;
    static void on_shutdown_cb(uv_shutdown_t* req, int status) noexcept;
    static void on_timer_cb(uv_timer_t* timer) noexcept;
    static void on_close_cb(uv_handle_t* handle) noexcept;

    uv_loop_t* loop_;
    uv::BlockPool& blocks_;
    ProbeTarget target_;
    Done done_;
    uv_tcp_t tcp_{};
    uv_timer_t timer_{};
    uv_connect_t connect_req_{};
    uv_shutdown_t shutdown_req_{};
    int open_handles_ = 0;
    bool closing_ = false;
    bool reported_ = false;
    int start_error_ = 0;  // a connect that failed at once, reported from the timer
    Phase phase_ = Phase::Connecting;
    std::chrono::steady_clock::time_point started_;
    std::unique_ptr<tls::Connection> tls_;
    std::string key_;  // Sec-WebSocket-Key (websocket)
    uint32_t mask_ = 0;
    std::string answer_;
    http::MessageParser parser_{http::MessageParser::Kind::Response};
};

}  // namespace sb::health
