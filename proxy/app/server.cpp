#include "app/server.h"

#include <sched.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <utility>

#include "http/upgrade_response.h"
#include "log/logger.h"
#include "net/listen_socket.h"
#include "session/session.h"

namespace sb::app {

namespace {

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

log::Level to_log_level(config::LogLevel level) {
    switch (level) {
        case config::LogLevel::Error:
            return log::Level::Error;
        case config::LogLevel::Warn:
            return log::Level::Warn;
        case config::LogLevel::Info:
            return log::Level::Info;
        case config::LogLevel::Debug:
            return log::Level::Debug;
    }
    return log::Level::Info;
}

// systemd's notification protocol; a no-op unless NOTIFY_SOCKET is set.
void notify_systemd(const std::string& state) {
    sd_notify(0, state.c_str());
}

std::string reloading_state() {
    // MONOTONIC_USEC lets systemd (Type=notify-reload) match this reload to its request.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull +
                static_cast<unsigned long long>(ts.tv_nsec) / 1000ull;
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace

Server::Server(std::string config_path) : config_path_(std::move(config_path)) {
    uv_loop_init(&loop_);
}

Server::~Server() {
    for (auto& w : workers_)
        w->join();
    workers_.clear();
    close_main_handles();
    uv_run(&loop_, UV_RUN_DEFAULT);  // let close callbacks run
    uv_loop_close(&loop_);
}

unsigned Server::worker_count(const config::Config& config) const {
    if (config.server.workers > 0) return config.server.workers;
    // One per CPU this process may run on (taskset and cgroups included).
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<unsigned>(n);
    }
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? n : 1;
}

bool Server::configure_logging(const config::Config& config) {
    // The access log first: it is the step that can fail, and failing must change nothing.
    std::string error;
    if (!log::Logger::get().set_access_log(config.log.access_log, error)) {
        log::error("cannot open the access log", {{"detail", error}});
        return false;
    }
    log::Logger::get().configure(to_log_level(config.log.level),
                                 config.log.format == config::LogFormat::Json);
    return true;
}

void Server::post_to_main(std::function<void()> task) {
    std::lock_guard lock(main_mutex_);
    if (handles_closed_) return;
    main_tasks_.push_back(std::move(task));
    uv_async_send(&main_async_);
}

void Server::on_main_async(uv_async_t* handle) noexcept {
    static_cast<Server*>(handle->data)->run_main_tasks();
}

void Server::run_main_tasks() {
    std::vector<std::function<void()>> tasks;
    {
        std::lock_guard lock(main_mutex_);
        tasks.swap(main_tasks_);
    }
    for (auto& task : tasks)
        task();
}

admin::AdminSources Server::admin_sources() {
    admin::AdminSources sources;
    sources.generation = [this] { return generation_; };
    sources.listeners = [this] {
        std::vector<admin::ListenerAddress> out;
        for (const auto& l : listeners_)
            out.push_back({l.name, l.bound.to_string()});
        return out;
    };
    sources.workers = [this] {
        std::vector<const metrics::WorkerStats*> out;
        for (const auto& w : workers_)
            out.push_back(&w->stats());
        return out;
    };
    sources.draining = [this] { return draining_; };
    sources.reloads_ok = [this] { return reloads_.ok.load(std::memory_order_relaxed); };
    sources.reloads_failed = [this] { return reloads_.failed.load(std::memory_order_relaxed); };
    sources.discovery = [this] {
        return resolver_ ? resolver_->status() : std::vector<discovery::NameStatus>{};
    };
    return sources;
}

bool Server::configure_admin(const config::Config& config) {
    const auto& wanted = config.admin;
    if (admin_ && wanted && admin_address_ == wanted->listen) return true;  // unchanged
    std::unique_ptr<admin::AdminServer> next;
    if (wanted) {
        next = std::make_unique<admin::AdminServer>(&loop_, admin_sources());
        std::string error;
        if (!next->listen(wanted->listen, error)) {
            log::error("admin listener: " + error);
            next->close();
            retired_admin_.push_back(std::move(next));
            return false;
        }
    }
    if (admin_) {
        admin_->close();
        retired_admin_.push_back(std::move(admin_));  // freed after its handles close
    }
    admin_ = std::move(next);
    if (admin_) {
        admin_address_ = wanted->listen;
        log::info("listening admin " + admin_->bound().to_string());
    }
    return true;
}

bool Server::start() {
    auto loaded = config::load_file(config_path_);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        return false;
    }
    uv_async_init(&loop_, &main_async_, &Server::on_main_async);
    main_async_.data = this;
    uv_timer_init(&loop_, &drain_timer_);
    drain_timer_.data = this;
    rehomer_ = std::make_unique<Rehomer>(&loop_, [this](uint64_t room_id) {
        for (auto& w : workers_)
            w->post([room_id](Worker& worker) { worker.close_room(room_id); });
    });
    health_ = std::make_unique<health::HealthChecker>(
        &loop_, [this](const std::string& pool) { on_backend_up(pool); });
    resolver_ = std::make_unique<discovery::Resolver>(&loop_, [this] { on_discovery_change(); });
    {
        std::string error;
        if (!resolver_->configure(*loaded.config, error)) {
            std::fprintf(stderr, "%s\n", error.c_str());
            return false;
        }
    }
    // Names are looked up before any signal handler is set: nothing is announced yet,
    // so a signal may still end the process as it would before the loop runs.
    wait_first_lookups();
    // Signals are caught before the first listener is announced: a script that sees
    // "listening NAME ADDRESS" may send SIGHUP or SIGTERM at once, and their default
    // action would end the process. They are handled once the loop runs.
    for (auto [handle, signum] : {std::pair{&sigterm_, SIGTERM}, std::pair{&sigint_, SIGINT},
                                  std::pair{&sighup_, SIGHUP}, std::pair{&sigusr1_, SIGUSR1}}) {
        uv_signal_init(&loop_, handle);
        handle->data = this;
        uv_signal_start(handle, &Server::on_signal, signum);
    }
    // OpenSSL loads its digest provider on the first use of SHA-1 (about 2 MB of
    // libcrypto pages): do it now, not in the first client's handshake, so memory per
    // connection is per connection.
    (void)http::websocket_accept("warm-up");
    if (!apply(loaded.config, true)) return false;

    uv_timer_init(&loop_, &ticket_timer_);
    ticket_timer_.data = this;
    uv_timer_start(&ticket_timer_, &Server::on_ticket_rotation, kTicketRotationMs,
                   kTicketRotationMs);
    notify_systemd("READY=1");
    return true;
}

bool Server::apply(const config::ConfigPtr& config, bool first) {
    const config::Config& c = *config;
    unsigned count = first ? worker_count(c) : static_cast<unsigned>(workers_.size());
    // Load certificates first: a bad one rejects the whole file, and the running
    // configuration (with its certificates) stays.
    auto previous = generation_;
    uint64_t number = previous ? previous->number() + 1 : 1;
    std::vector<config::ConfigError> errors;
    // The names the new file keeps have their records already; new names have none until
    // the Resolver's first lookup of them (just after this), which publishes again.
    auto records = resolver_->discovered(c);
    auto next_generation =
        pool::Generation::build(config, number, previous.get(), errors, &records);
    if (!next_generation) {
        for (const auto& e : errors) {
            if (first) {
                std::fprintf(stderr, "%s\n", e.to_string().c_str());
            } else {
                log::error("reload: " + e.to_string());
            }
        }
        return false;
    }
    if (!first && worker_count(c) != count) {
        log::warn("server.workers changed: the new count takes effect at the next restart");
    }

    // Open every new listener before changing anything: a port in use fails the whole
    // start or reload with one clear line, and the running configuration stays.
    std::vector<OpenListener> next;
    std::map<std::string, net::ListenSockets> added;
    auto abandon = [&] {
        for (auto& [name, sockets] : added)
            net::close_all(sockets.fds);
    };
    for (const auto& l : c.listeners) {
        auto old = std::find_if(listeners_.begin(), listeners_.end(),
                                [&](const OpenListener& o) { return o.name == l.name; });
        if (old != listeners_.end() && old->configured == l.listen) {
            next.push_back(*old);  // unchanged: its sockets stay open in the workers
            continue;
        }
        auto opened = net::open_listen_sockets(l.listen, count);
        if (!opened.ok()) {
            log::error("listener \"" + l.name + "\": " + opened.error);
            abandon();
            return false;
        }
        next.push_back({l.name, l.listen, opened.bound});
        added[l.name] = std::move(opened);
    }
    if (!configure_admin(c)) {
        abandon();
        return false;
    }
    if (!configure_logging(c)) {
        abandon();
        return false;
    }
    if (!first) {
        std::string error;
        if (!resolver_->configure(c, error)) {
            log::error("reload: " + error);
            abandon();
            return false;
        }
    }

    generation_ = std::move(next_generation);
    auto fds_for = [&](unsigned worker) {
        std::map<std::string, int> fds;
        for (const auto& [name, sockets] : added)
            fds[name] = sockets.fds[worker];
        return fds;
    };
    if (first) {
        for (unsigned i = 0; i < count; ++i) {
            workers_.push_back(std::make_unique<Worker>(
                i, [this] { post_to_main([this] { on_worker_exit(); }); }));
            workers_.back()->context().on_backend_up = [this](const std::string& pool) {
                post_to_main([this, pool] { on_backend_up(pool); });
            };
        }
        for (unsigned i = 0; i < count; ++i)
            workers_[i]->start(generation_, fds_for(i));
    } else {
        for (unsigned i = 0; i < count; ++i) {
            workers_[i]->post(
                [g = generation_, fds = fds_for(i)](Worker& w) { w.use_generation(g, fds); });
        }
    }
    health_->use_generation(generation_);
    listeners_ = std::move(next);
    for (const auto& l : c.listeners) {
        // SPEC §2: [] trusts any source; worth saying, since a client that can reach the
        // listener directly could then claim any address.
        if (l.proxy_protocol && l.proxy_protocol_from.empty()) {
            log::warn("listener \"" + l.name +
                      "\" trusts a PROXY header from any source (proxy_protocol_from = []): "
                      "list the balancers' networks unless only they can reach it");
        }
    }
    for (const auto& l : listeners_) {
        if (added.count(l.name)) log::info("listening " + l.name + " " + l.bound.to_string());
    }
    if (previous) rehome_changed_pools(previous);
    return true;
}

void Server::rehome_changed_pools(const pool::GenerationPtr& previous) {
    // Pools whose backend set or weights changed: rooms may have a new home.
    for (const auto& [name, pool] : generation_->pools()) {
        const pool::Pool* old = previous->pool(name);
        if (old != nullptr && old->table() != pool->table()) rehomer_->scan(generation_, name);
    }
}

void Server::wait_first_lookups() {
    if (!resolver_->has_names()) return;
    uv_update_time(&loop_);
    const uint64_t deadline = uv_now(&loop_) + kFirstLookupWaitMs;
    // The Resolver's timers bound each turn (c-ares gives up on a silent server in
    // 3 s), so this loop ends by the deadline whatever the DNS servers do.
    resolver_->on_settled = [this] { uv_stop(&loop_); };
    while (!resolver_->settled() && uv_now(&loop_) < deadline) {
        uv_run(&loop_, UV_RUN_ONCE);
    }
    resolver_->on_settled = nullptr;
    if (!resolver_->settled()) {
        log::warn("dns: some names are not resolved yet; their pools start without them");
    }
}

struct Server::DiscoveryBuild {
    uv_work_t req{};
    Server* server = nullptr;
    pool::GenerationPtr previous;
    discovery::Discovered records;
    pool::GenerationPtr next;  // null when the build failed (errors say why)
    std::vector<config::ConfigError> errors;
};

void Server::on_discovery_change() {
    if (!generation_ || draining_ || handles_closed_) return;  // startup publishes once it applies
    if (discovery_building_) {
        discovery_again_ = true;
        return;
    }
    auto* build = new DiscoveryBuild();
    build->req.data = build;
    build->server = this;
    build->previous = generation_;
    build->records = resolver_->discovered(generation_->config());
    discovery_building_ = true;
    int rc = uv_queue_work(
        &loop_, &build->req,
        [](uv_work_t* req) {
            // Thread pool: reads the previous generation (immutable) and makes new
            // Backends and tables; nothing the main loop changes.
            auto* b = static_cast<DiscoveryBuild*>(req->data);
            // The same Config and generation number: only the backends of discovered
            // entries change (certificates are reused, not loaded again).
            b->next = pool::Generation::build(b->previous->config_ptr(), b->previous->number(),
                                              b->previous.get(), b->errors, &b->records);
        },
        [](uv_work_t* req, int status) {
            std::unique_ptr<DiscoveryBuild> b(static_cast<DiscoveryBuild*>(req->data));
            b->server->on_discovery_built(*b, status);
        });
    if (rc != 0) {
        discovery_building_ = false;
        log::error("dns: cannot apply new records: " + std::string(uv_strerror(rc)));
        delete build;
    }
}

void Server::on_discovery_built(DiscoveryBuild& build, int status) {
    discovery_building_ = false;
    const bool again = std::exchange(discovery_again_, false);
    if (draining_ || handles_closed_ || status != 0) return;
    if (generation_ != build.previous) {
        // A reload published meanwhile, with the records of its time (ours or newer):
        // this build is stale. Only a change after it still needs publishing.
        if (again) on_discovery_change();
        return;
    }
    if (!build.next) {
        for (const auto& e : build.errors)
            log::error("dns: cannot apply new records: " + e.to_string());
    } else {
        auto previous = generation_;
        generation_ = std::move(build.next);
        for (auto& w : workers_)
            w->post([g = generation_](Worker& worker) { worker.use_generation(g, {}); });
        // Records that appear are probed from now on; those that went are not.
        health_->use_generation(generation_);
        rehome_changed_pools(previous);
    }
    if (again) on_discovery_change();
}

int Server::run() {
    // Writes to a peer that has gone must fail with EPIPE, not kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    if (!start()) {
        close_main_handles();
        log::Logger::get().flush();
        return 1;
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    for (auto& w : workers_)
        w->join();
    log::info("stopped");
    log::Logger::get().flush();
    return 0;
}

void Server::on_signal(uv_signal_t* handle, int signum) noexcept {
    auto* server = static_cast<Server*>(handle->data);
    switch (signum) {
        case SIGTERM:
        case SIGINT:
            if (server->draining_) {
                log::warn("second signal: exiting now");
                log::Logger::get().flush();
                std::_Exit(0);
            }
            server->begin_drain();
            break;
        case SIGHUP:
            server->reload();
            break;
        case SIGUSR1: {
            std::string error;
            if (log::Logger::get().reopen_access_log(error)) {
                log::info("access log reopened");
            } else {
                log::error("cannot reopen the access log", {{"detail", error}});
            }
            break;
        }
        default:
            break;
    }
}

void Server::reload() {
    if (draining_) return;
    notify_systemd(reloading_state());
    auto loaded = config::load_file(config_path_);
    bool ok = loaded.ok();
    if (!ok) {
        for (const auto& e : loaded.errors)
            log::error("reload: " + e.to_string());
    } else {
        ok = apply(loaded.config, false);
    }
    if (ok) {
        reloads_.ok.fetch_add(1, std::memory_order_relaxed);
        log::info("configuration reloaded",
                  {{"generation", std::to_string(generation_->number())}});
    } else {
        reloads_.failed.fetch_add(1, std::memory_order_relaxed);
        log::error("reload failed: keeping the running configuration",
                   {{"generation", std::to_string(generation_->number())}});
    }
    notify_systemd("READY=1");
}

void Server::begin_drain() {
    draining_ = true;
    notify_systemd("STOPPING=1");
    const auto& server_config = generation_->config().server;
    auto timeout = static_cast<uint64_t>(server_config.drain_timeout.count());
    // Closes are spread over close_spread, but end by half of drain_timeout: the rest
    // is for the peers to answer.
    auto window =
        std::min<uint64_t>(static_cast<uint64_t>(server_config.close_spread.count()), timeout / 2);
    log::info("draining", {{"spread", std::to_string(window) + "ms"},
                           {"timeout", std::to_string(timeout) + "ms"}});
    rehomer_->close();
    if (resolver_) resolver_->close();  // no new generation while draining
    health_->close();  // nothing is placed any more: the checks would only keep us alive
    for (auto& w : workers_) {
        w->post([window, timeout](Worker& worker) { worker.drain(window, timeout); });
    }
    uv_timer_start(&drain_timer_, &Server::on_drain_deadline, timeout, 0);
}

void Server::on_drain_deadline(uv_timer_t* timer) noexcept {
    auto* server = static_cast<Server*>(timer->data);
    log::warn("drain timeout: closing the remaining connections");
    for (auto& w : server->workers_)
        w->post([](Worker& worker) { worker.abort_all(); });
}

void Server::on_ticket_rotation(uv_timer_t* timer) noexcept {
    auto* server = static_cast<Server*>(timer->data);
    for (const auto& l : server->generation_->listeners()) {
        if (l->tls) l->tls->ticket_keys()->rotate();
    }
}

void Server::on_backend_up(const std::string& pool) {
    if (!draining_) rehomer_->scan(generation_, pool);
}

void Server::on_worker_exit() {
    for (auto& w : workers_) {
        if (!w->exited()) return;
    }
    // The last proxied connection is gone: the admin listener, which answered 503 on
    // /healthz through the drain, closes with the other main handles so the loop ends.
    close_main_handles();
}

void Server::close_main_handles() {
    {
        std::lock_guard lock(main_mutex_);
        if (handles_closed_) return;
        handles_closed_ = true;
    }
    for (auto* h :
         {as_handle(&sigterm_), as_handle(&sigint_), as_handle(&sighup_), as_handle(&sigusr1_),
          as_handle(&main_async_), as_handle(&drain_timer_), as_handle(&ticket_timer_)}) {
        if (h->loop != nullptr && !uv_is_closing(h)) uv_close(h, nullptr);
    }
    if (rehomer_) rehomer_->close();    // freed with the Server, after its handle closed
    if (resolver_) resolver_->close();  // likewise
    if (health_) health_->close();      // likewise: its handles close on the next loop run
    // The admin listener and its connections (/events subscribers, half-sent requests)
    // would otherwise keep the main loop, and so the process, alive after a drain.
    if (admin_) admin_->close();  // freed with the Server, after its handles closed
}

}  // namespace sb::app
