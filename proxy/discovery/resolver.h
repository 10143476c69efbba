// Resolver: finds the backends of the entries given by DNS name or SRV name (SPEC §3
// Health, Discovery) with c-ares on the main loop, never blocking it.
//
// c-ares runs on the main uv_loop: its sockets are watched by one uv_poll_t each
// (ARES_OPT_SOCK_STATE_CB tells which and for what), its timeouts by one uv_timer_t
// armed from ares_timeout(), and each name is looked up again every `resolve_interval`
// of its pool (±5% jitter, so names of many pools do not fire together) by a second
// timer armed for the earliest name due. A name is one (pool, entry): A/AAAA for
// "name:port" (ares_getaddrinfo, AF_UNSPEC), SRV for `srv` (ares_search + the SRV
// parser, then each target of the lowest priority resolved the same way). Each name's
// record set follows NameState's rules.
//
// When a lookup changes a name's set, `on_change` runs once on a later loop turn (all
// the changes of one turn together); the Server then builds a generation from the
// same Config and discovered() and publishes it, as a reload does.
//
// Owned by the Server, main thread only, for the process's lifetime; close() (or the
// destructor) closes its handles, after which the loop can end.
#pragma once

#include <ares.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "discovery/name_state.h"
#include "discovery/record.h"

namespace sb::discovery {

class Resolver {
  public:
    using OnChange = std::function<void()>;

    Resolver(uv_loop_t* loop, OnChange on_change);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Takes the discovered entries of `config`: names it keeps keep their state (set,
    // counters, schedule); new names are looked up at once; names it drops are
    // forgotten (a lookup in flight for them is ignored when it ends). Sets the DNS
    // servers ([server] resolvers, or the system's /etc/resolv.conf, read again at
    // each call). Returns false
    // with `error` when c-ares cannot be set up; the previous setup then stays.
    bool configure(const config::Config& config, std::string& error);

    // Every discovered entry of `config` with its current records (entries whose name
    // this Resolver does not know yet have none).
    Discovered discovered(const config::Config& config) const;

    // Whether every name has finished at least one lookup (startup waits for this,
    // for a bounded time, before opening the listeners).
    bool settled() const;
    // Called when a lookup ends and every name has been looked up once (the startup wait
    // stops the loop with it: a lookup answered from /etc/hosts ends inside a timer
    // callback, after which one loop turn would otherwise sleep until the next timer).
    std::function<void()> on_settled;
    bool has_names() const { return !names_.empty(); }

    // Each name's state, for /status and /metrics.
    std::vector<NameStatus> status() const;

    // Stops every lookup and closes the handles (idempotent).
    void close();

  private:
    struct Name;
    struct Lookup;
    struct Poll;
    // A host (A/AAAA) query waiting for its turn: at most kMaxHostQueries are in flight.
    struct PendingHost {
        Lookup* lookup;
        std::string host;
        uint16_t port;
        unsigned weight;
    };
    // An SRV name with thousands of targets would otherwise send two queries per target
    // in one burst, which overflows a socket buffer (the DNS server's or ours): queries
    // are lost, time out, and one lost target fails the whole lookup, every time.
    static constexpr unsigned kMaxHostQueries = 32;

    static std::string key_of(const std::string& pool, const config::BackendConfig& b);
    bool make_channel(const std::vector<config::SocketAddress>& servers, std::string& error);
    void destroy_channel();
    void start(const std::shared_ptr<Name>& name);
    void resolve_host(Lookup* lookup, const std::string& host, uint16_t port, unsigned weight);
    // Sends queued host queries while fewer than kMaxHostQueries are in flight; those of
    // a lookup that cannot succeed any more (failed, aborted, name removed, no channel)
    // end without being sent.
    void pump_hosts();
    void host_done(Lookup* lookup, int status, ares_addrinfo* result, uint16_t port,
                   unsigned weight, const std::string& host);
    void srv_done(Lookup* lookup, int status, unsigned char* answer, int length);
    void finish(Lookup* lookup);
    void schedule();
    void arm_ares_timer();
    void notify();
    void sock_state(ares_socket_t fd, bool readable, bool writable);

    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
    static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
    static void on_ares_timer(uv_timer_t* timer) noexcept;
    static void on_tick(uv_timer_t* timer) noexcept;
    static void on_notify(uv_timer_t* timer) noexcept;

    uv_loop_t* loop_;
    OnChange on_change_;
    ares_channel channel_ = nullptr;
    std::vector<config::SocketAddress> servers_;  // as configured ([] = system)
    uv_timer_t ares_timer_{};
    uv_timer_t tick_{};
    uv_timer_t notify_{};
    std::map<ares_socket_t, Poll*> polls_;
    std::deque<PendingHost> pending_hosts_;
    unsigned hosts_in_flight_ = 0;
    bool pumping_ = false;
    std::map<std::string, std::shared_ptr<Name>> names_;  // by key_of()
    std::mt19937 rng_;
    bool closed_ = false;
};

}  // namespace sb::discovery
