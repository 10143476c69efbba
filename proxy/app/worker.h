// Worker: one event-loop thread. It owns a libuv loop, its own listening socket for
// each listener (SO_REUSEPORT), the sessions it accepted, and their WorkerContext.
// Workers share nothing on the hot path: a connection lives and dies on the worker
// that accepted it.
//
// Owned by the Server (main thread). The main thread talks to a worker only through
// post(), which queues a task and wakes the worker's loop; everything else a Worker
// does runs on its own thread.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/acceptor.h"
#include "pool/generation.h"
#include "session/context.h"

namespace sb::app {

class Worker {
  public:
    using Task = std::function<void(Worker&)>;

    // `on_exit` runs on the worker's thread once its loop has stopped for good.
    Worker(unsigned index, std::function<void()> on_exit);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Starts the thread with `generation` and the listening descriptors (by listener
    // name) this worker adopts.
    void start(pool::GenerationPtr generation, std::map<std::string, int> listen_fds);
    // Queues `task` to run on the worker's thread. Thread-safe. A worker that has
    // begun to exit drops the task.
    void post(Task task);
    void join();
    // The worker's loop has ended. Thread-safe.
    bool exited() const { return exited_.load(std::memory_order_acquire); }

    // ---- only on the worker's thread (inside tasks) ----

    // Switches new connections to `generation`; adopts `added` listening descriptors
    // and stops accepting on listeners the generation no longer has. Sessions on a
    // backend the generation removed are closed with 1012, paced over close_spread.
    void use_generation(pool::GenerationPtr generation, std::map<std::string, int> added);
    // Stops accepting on every listener.
    void stop_accepting();
    // Graceful drain: stop accepting, close every session with 1001 paced over
    // `window_ms`, each waiting for its peers until `timeout_ms` from now; then exit
    // once no session is left.
    void drain(uint64_t window_ms, uint64_t timeout_ms);
    // Ends every session now (drain deadline).
    void abort_all();
    // Closes the sessions of room `room_id` with 1012 (rehome).
    void close_room(uint64_t room_id);
    // Ends the loop as soon as no session is left (after stop_accepting()).
    void exit_when_idle();

    session::WorkerContext& context() { return *context_; }
    // The worker's counters; readable from any thread for as long as the Worker lives.
    const metrics::WorkerStats& stats() const { return stats_; }
    unsigned index() const { return index_; }
    const pool::Generation& generation() const { return *generation_; }

  private:
    struct Listener {
        net::Acceptor* acceptor;  // frees itself once closed
        const pool::ListenerRuntime* runtime;
    };

    void run();
    // Schedules close_gracefully for `sessions` evenly over `window_ms`, in random
    // order, each with a random offset within its slot.
    void pace_close(std::vector<session::Session*> sessions, metrics::CloseReason reason,
                    uint16_t code, uint64_t window_ms, uint64_t deadline_ms);
    void adopt(const std::string& name, int fd);
    void close_listener(std::unique_ptr<Listener> listener);
    void check_idle();
    void shut_down_loop();
    // The worker's loop when it has a ring (uv/ring.h): waits there, runs libuv when due.
    void run_on_ring();
    bool enter_failed_ = false;  // io_uring_enter refused, said once
    static void on_ring_completion(uint64_t user_data, int32_t res, uint32_t flags) noexcept;
    static void on_async(uv_async_t* handle) noexcept;
    static void on_idle_check(uv_timer_t* timer) noexcept;
    static void on_trim(uv_timer_t* timer) noexcept;

    const unsigned index_;
    std::function<void()> on_exit_;
    uv_loop_t loop_;
    uv_async_t async_;
    uv_timer_t idle_timer_;
    uv_timer_t trim_timer_;  // gives freed handshake memory back after a burst
    metrics::WorkerStats stats_;
    std::unique_ptr<session::WorkerContext> context_;
    pool::GenerationPtr generation_;
    std::map<std::string, std::unique_ptr<Listener>> listeners_;
    std::mutex inbox_mutex_;
    std::vector<Task> inbox_;
    bool taking_tasks_ = true;  // guarded by inbox_mutex_
    std::atomic<bool> exited_{false};
    bool exiting_ = false;
    std::mt19937_64 rng_;
    std::thread thread_;
};

}  // namespace sb::app
