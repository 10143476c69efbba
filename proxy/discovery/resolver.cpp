#include "discovery/resolver.h"

#include <arpa/nameser.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "balance/node.h"
#include "discovery/weights.h"
#include "log/logger.h"

namespace sb::discovery {

namespace {

// One try waits 1 s and the second 2 s (c-ares doubles it): a DNS server that does not
// answer costs a name 3 s per lookup, well inside any resolve_interval (>= 1 s) plus
// the lookup's own time, since the next lookup is due only after this one ends.
constexpr int kTimeoutMs = 1000;
constexpr int kTries = 2;

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) {
        if (!out.empty()) out += ",";
        out += i;
    }
    return out;
}

// An address from c-ares with `port` set (c-ares returns port 0 without a service).
config::SocketAddress with_port(const sockaddr* sa, uint16_t port) {
    if (sa->sa_family == AF_INET6) {
        sockaddr_in6 v6;
        std::memcpy(&v6, sa, sizeof(v6));
        v6.sin6_port = htons(port);
        return config::SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&v6));
    }
    sockaddr_in v4;
    std::memcpy(&v4, sa, sizeof(v4));
    v4.sin_port = htons(port);
    return config::SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&v4));
}

bool aborted_status(int status) {
    return status == ARES_EDESTRUCTION || status == ARES_ECANCELLED;
}

}  // namespace

// One discovered name of one pool.
struct Resolver::Name {
    std::string pool;
    std::string source;  // as written, for logs, /status and metric labels
    std::string host;    // the name looked up (lower case)
    bool srv = false;
    uint16_t port = 0;    // A/AAAA: the port every record gets
    unsigned weight = 1;  // A/AAAA: the entry's weight (shown in /status)
    uint64_t interval_ms = 30000;
    NameState state;
    bool in_flight = false;
    bool removed = false;  // dropped by a reload: a lookup that ends is ignored
    uint64_t due_ms = 0;   // loop time of the next lookup
    uint64_t last_ms = 0;  // loop time the last lookup ended (valid once looked up)
};

// One lookup of one name: the A/AAAA query, or the SRV query and its targets' queries.
// Freed by finish() when its last query has answered.
struct Resolver::Lookup {
    Resolver* resolver = nullptr;
    std::shared_ptr<Name> name;
    unsigned outstanding = 0;
    bool aborted = false;   // the channel went away: not a result
    bool failed = false;    // an error or timeout somewhere: keep the last good set
    bool nxdomain = false;  // the name itself does not exist
    std::string error;
    RecordSet records;
};

namespace {

struct HostQuery {
    void* lookup;
    uint16_t port;
    unsigned weight;
    std::string host;
    bool srv_target;
};

}  // namespace

struct Resolver::Poll {
    uv_poll_t handle;
    Resolver* resolver;
    ares_socket_t fd;
};

Resolver::Resolver(uv_loop_t* loop, OnChange on_change)
    : loop_(loop), on_change_(std::move(on_change)), rng_(std::random_device{}()) {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    for (auto* t : {&ares_timer_, &tick_, &notify_}) {
        uv_timer_init(loop_, t);
        t->data = this;
    }
}

Resolver::~Resolver() {
    close();
}

void Resolver::close() {
    if (closed_) return;
    closed_ = true;
    destroy_channel();  // every lookup ends (ARES_EDESTRUCTION) and is freed
    pump_hosts();       // and so does every queued query's lookup, unsent
    names_.clear();
    for (auto* t : {&ares_timer_, &tick_, &notify_}) {
        if (!uv_is_closing(as_handle(t))) uv_close(as_handle(t), nullptr);
    }
}

std::string Resolver::key_of(const std::string& pool, const config::BackendConfig& b) {
    return pool + "\n" +
           (b.kind == config::BackendConfig::Kind::Srv ? "srv " + b.host
                                                       : b.host + ":" + std::to_string(b.port));
}

bool Resolver::make_channel(const std::vector<config::SocketAddress>& servers, std::string& error) {
    ares_options opts{};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    opts.sock_state_cb = &Resolver::on_sock_state;
    opts.sock_state_cb_data = this;
    opts.timeout = kTimeoutMs;
    opts.tries = kTries;
    char lookups[] = "b";
    if (!servers.empty()) {
        // Servers given: names go to them as written (no /etc/hosts, no search list).
        mask |= ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS;
        opts.lookups = lookups;
        opts.domains = nullptr;
        opts.ndomains = 0;
    }
    ares_channel fresh = nullptr;
    int rc = ares_init_options(&fresh, &opts, mask);
    if (rc != ARES_SUCCESS) {
        error = std::string("cannot set up DNS: ") + ares_strerror(rc);
        return false;
    }
    if (!servers.empty()) {
        std::vector<std::string> list;
        for (const auto& s : servers)
            list.push_back(s.to_string());
        rc = ares_set_servers_ports_csv(fresh, join(list).c_str());
        if (rc != ARES_SUCCESS) {
            ares_destroy(fresh);
            error = std::string("cannot use the resolvers: ") + ares_strerror(rc);
            return false;
        }
    }
    ares_channel old = channel_;
    channel_ = fresh;
    servers_ = servers;
    if (old != nullptr) {
        // Lookups in flight on the old channel end as aborted and run again at once on
        // the new one.
        ares_destroy(old);
    }
    return true;
}

void Resolver::destroy_channel() {
    if (channel_ == nullptr) return;
    ares_channel old = channel_;
    channel_ = nullptr;
    ares_destroy(old);
    uv_timer_stop(&ares_timer_);
}

bool Resolver::configure(const config::Config& config, std::string& error) {
    if (closed_) return false;
    // A new channel when the servers change, and at every reload that uses the
    // system's: c-ares reads /etc/resolv.conf only when a channel starts.
    if (channel_ == nullptr || !(servers_ == config.server.resolvers) ||
        config.server.resolvers.empty()) {
        if (!make_channel(config.server.resolvers, error)) return false;
    }
    std::map<std::string, std::shared_ptr<Name>> next;
    const uint64_t now = uv_now(loop_);
    for (const auto& [pool_name, pool] : config.pools) {
        for (const auto& b : pool.backends) {
            if (!b.discovered()) continue;
            std::string key = key_of(pool_name, b);
            auto it = names_.find(key);
            std::shared_ptr<Name> name;
            if (it != names_.end()) {
                name = it->second;
                if (name->interval_ms != static_cast<uint64_t>(pool.resolve_interval.count()) &&
                    !name->in_flight) {
                    name->due_ms = std::min(name->due_ms, now);  // a new interval starts now
                }
            } else {
                name = std::make_shared<Name>();
                name->pool = pool_name;
                name->host = b.host;
                name->srv = b.kind == config::BackendConfig::Kind::Srv;
                name->port = b.port;
                name->due_ms = now;
            }
            name->source = b.source();
            name->weight = b.weight;
            name->interval_ms = static_cast<uint64_t>(pool.resolve_interval.count());
            next[key] = std::move(name);
        }
    }
    for (auto& [key, name] : names_) {
        if (!next.count(key)) name->removed = true;
    }
    names_ = std::move(next);
    schedule();
    return true;
}

void Resolver::schedule() {
    if (closed_) return;
    uint64_t earliest = UINT64_MAX;
    for (const auto& [key, name] : names_) {
        if (!name->in_flight) earliest = std::min(earliest, name->due_ms);
    }
    if (earliest == UINT64_MAX) {
        uv_timer_stop(&tick_);
        return;
    }
    uint64_t now = uv_now(loop_);
    uv_timer_start(&tick_, &Resolver::on_tick, earliest > now ? earliest - now : 0, 0);
}

void Resolver::on_tick(uv_timer_t* timer) noexcept {
    auto* r = static_cast<Resolver*>(timer->data);
    uint64_t now = uv_now(r->loop_);
    // start() may finish a lookup at once and reschedule; names_ itself does not change.
    std::vector<std::shared_ptr<Name>> due;
    for (const auto& [key, name] : r->names_) {
        if (!name->in_flight && name->due_ms <= now) due.push_back(name);
    }
    for (const auto& name : due)
        r->start(name);
    r->schedule();
}

void Resolver::start(const std::shared_ptr<Name>& name) {
    if (channel_ == nullptr) {  // never after configure() succeeded; no busy loop if so
        name->due_ms = uv_now(loop_) + name->interval_ms;
        return;
    }
    auto* lookup = new Lookup();
    lookup->resolver = this;
    lookup->name = name;
    name->in_flight = true;
    // One count for this function itself: c-ares may answer from inside the call (an
    // error found at once), and the lookup must not end before every query is sent.
    lookup->outstanding = 1;
    if (name->srv) {
        ++lookup->outstanding;
        ares_search(
            channel_, name->host.c_str(), ns_c_in, ns_t_srv,
            [](void* arg, int status, int, unsigned char* answer, int length) {
                auto* l = static_cast<Lookup*>(arg);
                l->resolver->srv_done(l, status, answer, length);
            },
            lookup);
    } else {
        resolve_host(lookup, name->host, name->port, 1);
    }
    if (--lookup->outstanding == 0) finish(lookup);
    arm_ares_timer();
}

void Resolver::resolve_host(Lookup* lookup, const std::string& host, uint16_t port,
                            unsigned weight) {
    ++lookup->outstanding;
    pending_hosts_.push_back({lookup, host, port, weight});
    pump_hosts();
}

void Resolver::pump_hosts() {
    // A query may end inside ares_getaddrinfo (and its callback pumps again): the loop
    // below, not a nested call, sends what that frees room for.
    if (pumping_) return;
    pumping_ = true;
    while (!pending_hosts_.empty() && hosts_in_flight_ < kMaxHostQueries) {
        PendingHost next = std::move(pending_hosts_.front());
        pending_hosts_.pop_front();
        Lookup* lookup = next.lookup;
        if (channel_ == nullptr || closed_ || lookup->aborted || lookup->failed ||
            lookup->name->removed) {
            // Its answer could change nothing: the lookup is an error, aborted or
            // ignored already (or about to be, without a channel).
            if (channel_ == nullptr || closed_) lookup->aborted = true;
            if (--lookup->outstanding == 0) finish(lookup);
            continue;
        }
        ++hosts_in_flight_;
        auto* query =
            new HostQuery{lookup, next.port, next.weight, std::move(next.host), lookup->name->srv};
        ares_addrinfo_hints hints{};
        hints.ai_family = AF_UNSPEC;  // A and AAAA
        hints.ai_flags = ARES_AI_NOSORT;
        ares_getaddrinfo(
            channel_, query->host.c_str(), nullptr, &hints,
            [](void* arg, int status, int, ares_addrinfo* result) {
                std::unique_ptr<HostQuery> q(static_cast<HostQuery*>(arg));
                auto* l = static_cast<Lookup*>(q->lookup);
                Resolver* r = l->resolver;
                --r->hosts_in_flight_;
                r->host_done(l, status, result, q->port, q->weight, q->host);
                r->pump_hosts();
            },
            query);
    }
    pumping_ = false;
}

void Resolver::host_done(Lookup* lookup, int status, ares_addrinfo* result, uint16_t port,
                         unsigned weight, const std::string& host) {
    if (status == ARES_SUCCESS && result != nullptr) {
        for (auto* node = result->nodes; node != nullptr; node = node->ai_next) {
            if (node->ai_addr == nullptr) continue;
            if (node->ai_family != AF_INET && node->ai_family != AF_INET6) continue;
            if (lookup->records.size() >= balance::SeenSet::kMaxNodes) break;
            lookup->records.push_back({with_port(node->ai_addr, port), weight, host});
        }
    } else if (aborted_status(status)) {
        lookup->aborted = true;
    } else if (status == ARES_ENOTFOUND) {
        // A target of an SRV record that does not exist adds nothing; the SRV name
        // itself exists (its own NXDOMAIN is seen in srv_done).
        if (!lookup->name->srv) lookup->nxdomain = true;
    } else if (status != ARES_ENODATA && status != ARES_SUCCESS) {
        lookup->failed = true;
        lookup->error =
            (lookup->name->srv ? "target " + host + ": " : std::string()) + ares_strerror(status);
    }
    if (result != nullptr) ares_freeaddrinfo(result);
    if (--lookup->outstanding == 0) finish(lookup);
}

void Resolver::srv_done(Lookup* lookup, int status, unsigned char* answer, int length) {
    if (aborted_status(status)) {
        lookup->aborted = true;
    } else if (status == ARES_ENOTFOUND) {
        lookup->nxdomain = true;
    } else if (status == ARES_ENODATA) {
        // The name exists without SRV records: an empty answer.
    } else if (status != ARES_SUCCESS) {
        lookup->failed = true;
        lookup->error = ares_strerror(status);
    } else {
        ares_srv_reply* reply = nullptr;
        int rc = ares_parse_srv_reply(answer, length, &reply);
        if (rc == ARES_SUCCESS) {
            // RFC 2782: only the lowest priority is used while it has targets; a
            // target of "." says the service is not offered.
            unsigned short lowest = 0xFFFF;
            for (auto* r = reply; r != nullptr; r = r->next) {
                if (r->host != nullptr && r->host[0] != '\0' && std::strcmp(r->host, ".") != 0) {
                    lowest = std::min(lowest, r->priority);
                }
            }
            struct Target {
                std::string host;
                uint16_t port;
            };
            std::vector<Target> targets;
            std::vector<uint16_t> raw;
            for (auto* r = reply; r != nullptr; r = r->next) {
                if (r->host == nullptr || r->host[0] == '\0' || std::strcmp(r->host, ".") == 0)
                    continue;
                if (r->priority != lowest || targets.size() >= balance::SeenSet::kMaxNodes)
                    continue;
                targets.push_back({r->host, r->port});
                raw.push_back(r->weight);
            }
            ares_free_data(reply);
            auto weights = scale_srv_weights(raw);
            for (size_t i = 0; i < targets.size(); ++i)
                resolve_host(lookup, targets[i].host, targets[i].port, weights[i]);
        } else if (rc != ARES_ENODATA) {
            lookup->failed = true;
            lookup->error = std::string("bad SRV answer: ") + ares_strerror(rc);
        }
    }
    if (--lookup->outstanding == 0) finish(lookup);
}

void Resolver::finish(Lookup* lookup) {
    std::unique_ptr<Lookup> owned(lookup);
    auto name = lookup->name;
    name->in_flight = false;
    if (closed_ || name->removed) return;
    uint64_t now = uv_now(loop_);
    if (lookup->aborted) {
        name->due_ms = now;  // the channel changed: look up again on the new one
        schedule();
        return;
    }
    Outcome outcome = lookup->failed             ? Outcome::Error
                      : !lookup->records.empty() ? Outcome::Ok
                      : lookup->nxdomain         ? Outcome::NxDomain
                                                 : Outcome::Empty;
    canonicalize(lookup->records);
    RecordSet before = name->state.records();
    bool changed = name->state.apply(outcome, std::move(lookup->records), lookup->error);
    name->last_ms = now;
    if (on_settled && settled()) on_settled();
    std::uniform_real_distribution<double> jitter(-0.05, 0.05);
    auto interval = static_cast<double>(name->interval_ms);
    name->due_ms = now + static_cast<uint64_t>(interval + interval * jitter(rng_));

    const auto& state = name->state;
    if (changed) {
        auto d = diff(before, state.records());
        log::info("dns: backends changed", {{"pool", name->pool},
                                            {"name", name->source},
                                            {"result", outcome_name(outcome)},
                                            {"added", join(d.added)},
                                            {"removed", join(d.removed)},
                                            {"records", std::to_string(state.records().size())}});
        notify();
    } else if (outcome == Outcome::Error) {
        log::warn("dns: lookup failed; keeping the last good set",
                  {{"pool", name->pool},
                   {"name", name->source},
                   {"error", state.last_error()},
                   {"records", std::to_string(state.records().size())}});
    } else if (outcome != Outcome::Ok) {
        log::warn(state.records().empty()
                      ? "dns: no records"
                      : "dns: no records; keeping the set until " +
                            std::to_string(NameState::kStrikes) + " lookups in a row say so",
                  {{"pool", name->pool},
                   {"name", name->source},
                   {"result", outcome_name(outcome)},
                   {"in_a_row", std::to_string(state.empty_streak())},
                   {"records", std::to_string(state.records().size())}});
    } else {
        log::debug("dns: lookup", {{"pool", name->pool},
                                   {"name", name->source},
                                   {"records", std::to_string(state.records().size())}});
    }
    schedule();
}

void Resolver::notify() {
    // One on_change for all the names that changed in this loop turn.
    if (!closed_ && !uv_is_active(as_handle(&notify_))) {
        uv_timer_start(&notify_, &Resolver::on_notify, 0, 0);
    }
}

void Resolver::on_notify(uv_timer_t* timer) noexcept {
    auto* r = static_cast<Resolver*>(timer->data);
    if (!r->closed_ && r->on_change_) r->on_change_();
}

void Resolver::arm_ares_timer() {
    if (channel_ == nullptr || closed_) return;
    timeval tv{};
    timeval* next = ares_timeout(channel_, nullptr, &tv);
    if (next == nullptr) {
        uv_timer_stop(&ares_timer_);
        return;
    }
    auto ms = static_cast<uint64_t>(next->tv_sec) * 1000 +
              static_cast<uint64_t>(next->tv_usec + 999) / 1000;
    uv_timer_start(&ares_timer_, &Resolver::on_ares_timer, ms, 0);
}

void Resolver::on_ares_timer(uv_timer_t* timer) noexcept {
    auto* r = static_cast<Resolver*>(timer->data);
    if (r->channel_ == nullptr) return;
    ares_process_fd(r->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    r->arm_ares_timer();
}

void Resolver::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Resolver*>(data)->sock_state(fd, readable != 0, writable != 0);
}

void Resolver::sock_state(ares_socket_t fd, bool readable, bool writable) {
    auto it = polls_.find(fd);
    if (!readable && !writable) {
        // c-ares is about to close the socket: stop watching it first.
        if (it != polls_.end()) {
            uv_poll_stop(&it->second->handle);
            uv_close(as_handle(&it->second->handle),
                     [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
            polls_.erase(it);
        }
        return;
    }
    Poll* poll = nullptr;
    if (it == polls_.end()) {
        poll = new Poll{{}, this, fd};
        if (uv_poll_init_socket(loop_, &poll->handle, fd) != 0) {
            // c-ares times the query out; nothing else can be done for it.
            delete poll;
            log::error("dns: cannot watch a resolver socket");
            return;
        }
        poll->handle.data = poll;
        polls_[fd] = poll;
    } else {
        poll = it->second;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(&poll->handle, events, &Resolver::on_poll);
}

void Resolver::on_poll(uv_poll_t* handle, int status, int events) noexcept {
    auto* poll = static_cast<Poll*>(handle->data);
    Resolver* r = poll->resolver;
    if (r->channel_ == nullptr) return;
    ares_socket_t fd = poll->fd;
    ares_socket_t read_fd = ARES_SOCKET_BAD;
    ares_socket_t write_fd = ARES_SOCKET_BAD;
    if (status < 0) {
        // An error on the socket: let c-ares read and write it to find out and give up.
        read_fd = write_fd = fd;
    } else {
        if (events & UV_READABLE) read_fd = fd;
        if (events & UV_WRITABLE) write_fd = fd;
    }
    // May close this socket (and so this Poll, freed on a later loop turn).
    ares_process_fd(r->channel_, read_fd, write_fd);
    r->arm_ares_timer();
}

Discovered Resolver::discovered(const config::Config& config) const {
    Discovered out;
    for (const auto& [pool_name, pool] : config.pools) {
        std::vector<RecordSet> entries(pool.backends.size());
        bool any = false;
        for (size_t i = 0; i < pool.backends.size(); ++i) {
            const auto& b = pool.backends[i];
            if (!b.discovered()) continue;
            any = true;
            auto it = names_.find(key_of(pool_name, b));
            if (it != names_.end()) entries[i] = it->second->state.records();
        }
        if (any) out.emplace(pool_name, std::move(entries));
    }
    return out;
}

bool Resolver::settled() const {
    return std::all_of(names_.begin(), names_.end(),
                       [](const auto& entry) { return entry.second->state.looked_up(); });
}

std::vector<NameStatus> Resolver::status() const {
    std::vector<NameStatus> out;
    uint64_t now = closed_ ? 0 : uv_now(loop_);
    for (const auto& [key, name] : names_) {
        NameStatus s;
        s.pool = name->pool;
        s.name = name->source;
        s.srv = name->srv;
        s.looked_up = name->state.looked_up();
        s.last = name->state.last();
        s.last_error = name->state.last_error();
        s.empty_streak = name->state.empty_streak();
        for (size_t i = 0; i < kOutcomeCount; ++i)
            s.lookups[i] = name->state.lookups(static_cast<Outcome>(i));
        s.records = name->state.records();
        if (!name->srv) {
            for (auto& r : s.records)
                r.weight = name->weight;
        }
        if (s.looked_up && now >= name->last_ms) {
            s.seconds_since_lookup = static_cast<double>(now - name->last_ms) / 1000.0;
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace sb::discovery
