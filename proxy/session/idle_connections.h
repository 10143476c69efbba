// IdleConnections: one worker's idle keep-alive connections to backends, kept between
// plain HTTP requests for the next request to the same backend (SPEC §3 HTTP requests,
// [pools.X.http] max_idle_connections and idle_timeout).
//
// A connection is kept as its bare socket descriptor: the Session that finished with
// it duplicates the descriptor before it closes its Endpoint, and the next Session to
// the same backend adopts it into its own Endpoint. (libuv handles cannot move from
// one Session's memory to another's; a descriptor can.) While it is kept:
//  - a uv_poll watches it: any byte or hang-up from the backend closes it, since an
//    idle HTTP connection has nothing to say (RFC 9112 §9.6: a server that closes an
//    idle connection is the usual case);
//  - it is closed after idle_timeout, and the oldest one of a backend goes when a
//    backend has max_idle_connections already (counting those its sessions keep with
//    their idle clients: lend());
//  - take() checks it once more (a peek without reading) before handing it out, so a
//    close the poll has not reported yet is still caught before a request is sent.
// Only plain, PROXY-less backend connections are kept: a PROXY header names one client,
// and a TLS connection's state lives in its OpenSSL object, which does not move.
//
// Owned by the WorkerContext; used only on the worker's thread. close_all() (drain)
// closes every kept connection and keeps nothing from then on.
#pragma once

#include <uv.h>

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace sb::session {

class IdleConnections {
  public:
    explicit IdleConnections(uv_loop_t* loop);
    ~IdleConnections();
    IdleConnections(const IdleConnections&) = delete;
    IdleConnections& operator=(const IdleConnections&) = delete;

    // Keeps `fd` (a connected socket to the backend `key`, owned from now on) for at
    // most `idle_ms`, and at most `max_per_key` per key (the oldest goes first).
    void put(const std::string& key, int fd, uint64_t max_per_key, uint64_t idle_ms);
    // The most recently kept connection to `key` that is still open and silent, handed
    // over (the caller owns the descriptor), or -1.
    int take(const std::string& key);
    // Closes every kept connection; later put()s close theirs at once (drain).
    void close_all();

    // Connections a session keeps open with its client between requests (for that
    // client's next request) are idle too: they count against max_per_key with the
    // ones kept here. lend() says whether one more may be kept so (and counts it);
    // give_back() uncounts it once it carries a request again, is put() here, or closes.
    bool lend(const std::string& key, uint64_t max_per_key);
    // After a reload (or a DNS change): only connections to `live` keys are kept; the
    // others close now, and later put()s of them close at once.
    void keep_only(std::unordered_set<std::string> live);
    void give_back(const std::string& key);

    size_t size() const { return count_; }

    // Nothing waits on a connection kept between requests: a byte or an EOF there
    // means the backend closed it (or broke the protocol) while it was idle. A peek,
    // which reads nothing.
    static bool silent(int fd);

  private:
    struct Entry;
    using List = std::list<Entry*>;

    static void on_poll(uv_poll_t* poll, int status, int events) noexcept;
    static void on_timer(uv_timer_t* timer) noexcept;
    // Stops watching `e`, unlinks it and closes its handle; closes the descriptor too
    // unless it is being handed out.
    void drop(Entry* e, bool close_fd);
    void arm_timer();

    uv_loop_t* loop_;
    uv_timer_t timer_;
    bool timer_open_ = false;
    bool closed_ = false;
    size_t count_ = 0;
    std::unordered_map<std::string, List> by_key_;  // oldest first
    std::unordered_map<std::string, uint64_t> lent_;
    std::optional<std::unordered_set<std::string>> live_;  // unset: every key
};

}  // namespace sb::session
