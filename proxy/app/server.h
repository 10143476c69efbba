// Server: the process. Loads the configuration, opens every listener, starts the
// workers, then runs the main loop: signals (reload, drain, log reopening), rehoming,
// systemd notifications and the admin listener.
//
// Drain (SIGTERM, SIGINT): workers stop accepting and close their sessions; the admin
// listener keeps answering (/healthz 503) until the last worker has exited, then
// closes with the main loop's other handles, so run() returns and the process exits 0.
//
// Lives on the main thread for the whole run; owns the workers and the current
// generation. Workers only ever receive work from it through Worker::post(); they
// report back through post_to_main().
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "app/rehome.h"
#include "app/worker.h"
#include "config/config.h"
#include "config/loader.h"
#include "discovery/resolver.h"
#include "health/health_checker.h"
#include "pool/generation.h"

namespace sb::app {

class Server {
  public:
    explicit Server(std::string config_path);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Runs until drained; returns the process exit code.
    int run();

    // Queues `task` for the main thread. Thread-safe (workers report through it).
    void post_to_main(std::function<void()> task);

    // Counters for /metrics.
    struct Reloads {
        std::atomic<uint64_t> ok{0};
        std::atomic<uint64_t> failed{0};
    };
    const Reloads& reloads() const { return reloads_; }

  private:
    struct OpenListener {
        std::string name;
        config::SocketAddress configured;  // as written in the file
        config::SocketAddress bound;       // as bound (port 0 resolved)
    };

    bool start();
    // Applies a loaded configuration: opens listeners it adds, swaps the generation in
    // every worker, closes what it removes. On failure nothing changes.
    bool apply(const config::ConfigPtr& config, bool first);
    bool configure_logging(const config::Config& config);
    // Opens, moves or closes the admin listener to match `config`; false on failure.
    bool configure_admin(const config::Config& config);
    admin::AdminSources admin_sources();
    unsigned worker_count(const config::Config& config) const;
    void reload();
    void begin_drain();
    void on_worker_exit();
    void on_backend_up(const std::string& pool);
    // A discovered name's records changed: a generation from the same Config and the
    // new records is published as a reload's is (removed backends get 1012, paced).
    //
    // The generation is built on the libuv thread pool: a ring of discovered weights
    // can hold millions of points (seconds to build), and the main loop must keep
    // answering the admin listener, signals and health probes meanwhile. One build at
    // a time; a change during a build starts another after it.
    void on_discovery_change();
    struct DiscoveryBuild;
    void on_discovery_built(DiscoveryBuild& build, int status);
    // Asks the Rehomer to scan the pools whose table differs from `previous`'s.
    void rehome_changed_pools(const pool::GenerationPtr& previous);
    // Startup: waits (running the main loop, for at most kFirstLookupWaitMs) until
    // every name has been looked up once, so the listeners open with backends.
    void wait_first_lookups();
    void run_main_tasks();
    void close_main_handles();

    static void on_signal(uv_signal_t* handle, int signum) noexcept;
    static void on_main_async(uv_async_t* handle) noexcept;
    static void on_drain_deadline(uv_timer_t* timer) noexcept;
    static void on_ticket_rotation(uv_timer_t* timer) noexcept;

    std::string config_path_;
    uv_loop_t loop_;
    // Value-initialized: a handle whose `loop` is still null was never started.
    uv_signal_t sigterm_{};
    uv_signal_t sigint_{};
    uv_signal_t sighup_{};
    uv_signal_t sigusr1_{};
    uv_async_t main_async_{};
    uv_timer_t drain_timer_{};
    uv_timer_t ticket_timer_{};
    // TLS session ticket keys rotate hourly: a ticket resumes for one to two hours.
    static constexpr uint64_t kTicketRotationMs = 3600 * 1000;
    std::unique_ptr<Rehomer> rehomer_;
    // DNS discovery of backends (null until start()).
    std::unique_ptr<discovery::Resolver> resolver_;
    static constexpr uint64_t kFirstLookupWaitMs = 10000;
    // Active health checks: one checker for the process, on this loop.
    std::unique_ptr<health::HealthChecker> health_;
    std::unique_ptr<admin::AdminServer> admin_;
    config::SocketAddress admin_address_;  // as configured
    // Admin servers closed by a reload; kept until the Server goes, since libuv frees
    // their handles only on a later loop turn.
    std::vector<std::unique_ptr<admin::AdminServer>> retired_admin_;
    std::vector<std::unique_ptr<Worker>> workers_;
    pool::GenerationPtr generation_;
    std::vector<OpenListener> listeners_;
    std::mutex main_mutex_;
    std::vector<std::function<void()>> main_tasks_;
    Reloads reloads_;
    bool discovery_building_ = false;  // a DiscoveryBuild is on the thread pool
    bool discovery_again_ = false;     // records changed during it: build again after
    bool draining_ = false;
    bool handles_closed_ = false;
};

}  // namespace sb::app
