#include "app/worker.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "log/logger.h"
#include "session/session.h"
#include "uv/ring.h"
#include "uv/slab.h"

namespace sb::app {

namespace {

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

// Spare 16 KiB read blocks a worker keeps once a burst of handshakes is over: enough
// for the relay's ordinary traffic without a malloc per read.
constexpr size_t kSpareBlocksAfterBurst = 16;

}  // namespace

Worker::Worker(unsigned index, std::function<void()> on_exit)
    : index_(index), on_exit_(std::move(on_exit)), rng_(std::random_device{}()) {
    uv_loop_init(&loop_);
    context_ = std::make_unique<session::WorkerContext>(&loop_, index, stats_);
    uv_async_init(&loop_, &async_, &Worker::on_async);
    async_.data = this;
    uv_timer_init(&loop_, &idle_timer_);
    idle_timer_.data = this;
    uv_timer_init(&loop_, &trim_timer_);
    trim_timer_.data = this;
    uv_unref(as_handle(&trim_timer_));
    // A burst of handshakes frees a few kilobytes each, scattered in the heap; once it
    // is over (and stays over for a moment), those pages go back to the kernel.
    context_->on_handshake_burst_end = [this] {
        uv_timer_start(&trim_timer_, &Worker::on_trim, 100, 0);
    };
}

Worker::~Worker() {
    join();
}

void Worker::start(pool::GenerationPtr generation, std::map<std::string, int> listen_fds) {
    // (Sessions find their context through a thread-local pointer that run() sets.)
    generation_ = std::move(generation);
    for (const auto& [name, fd] : listen_fds)
        adopt(name, fd);
    thread_ = std::thread([this] { run(); });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run() {
    session::WorkerContext::current = context_.get();
    // The ring is made on this thread: only its maker may submit (SINGLE_ISSUER).
    const uint32_t buffer_len =
        uv::BlockPool::kBlockSize - session::Endpoint::kHeadroom - session::Endpoint::kTailroom;
    int rc =
        session::WorkerContext::ring_disabled
            ? 0
            : context_->ring.open(context_->blocks, session::Endpoint::kHeadroom, buffer_len,
                                  &Worker::on_ring_completion, &session::Endpoint::send_awaited);
    // Whether the relay's reads and writes go through io_uring (a container's seccomp
    // profile or kernel.io_uring_disabled may refuse it): said by worker 0, and by any
    // other worker the kernel refuses.
    if (context_->ring.is_open()) {
        // Lazy sends (uv/ring.h) are off where the kernel did not keep their rules,
        // and coalescing (kCoalesceUs) before Linux 6.12.
        if (index_ == 0) {
            const uv::Ring& ring = context_->ring;
            log::info("relay I/O through io_uring",
                      {{"sends", ring.lazy_sends() ? "lazy" : "prompt"},
                       {"coalesce_us", ring.can_coalesce() ? std::to_string(uv::Ring::coalesce_us())
                                                           : std::string("off")}});
        }
    } else if (index_ == 0 || rc != 0) {
        log::info("relay I/O through libuv",
                  {{"worker", std::to_string(index_)},
                   {"detail", rc == 0 ? std::string("--debug-no-ring")
                                      : std::string("io_uring unavailable: ") + uv_strerror(rc)}});
    }
    if (context_->ring.is_open()) {
        run_on_ring();
    } else {
        uv_run(&loop_, UV_RUN_DEFAULT);
    }
    context_->ring.close();
    // Every handle is closed by now; closing the loop must succeed (libuv's rule).
    rc = uv_loop_close(&loop_);
    if (rc != 0) log::error("worker loop did not close cleanly", {{"detail", uv_strerror(rc)}});
    context_.reset();
    exited_.store(true, std::memory_order_release);
    if (on_exit_) on_exit_();
}

namespace {
// libuv's epoll descriptor was ready: the worker runs libuv (run_on_ring).
thread_local bool libuv_ready = false;
}  // namespace

void Worker::on_ring_completion(uint64_t user_data, int32_t res, uint32_t flags) noexcept {
    if ((user_data & uv::Ring::kTagMask) == uv::Ring::kPoll) {
        libuv_ready = true;
        return;
    }
    session::Endpoint::on_ring_completion(user_data, res, flags);
}

void Worker::run_on_ring() {
    // The worker waits in the ring. libuv's own epoll descriptor is one of the things
    // it waits for (a poll operation, armed again after each run), and libuv runs once,
    // without waiting, when that descriptor is ready, when a timer is due, or when it
    // has callbacks to make (closing handles, writes completed): what uv_run would have
    // done, at the moments it would have done it.
    uv::Ring& ring = context_->ring;
    const int backend = uv_backend_fd(&loop_);
    bool poll_armed = false;
    libuv_ready = true;
    bool alive = true;
    for (;;) {
        if (libuv_ready || uv_backend_timeout(&loop_) == 0) {
            libuv_ready = false;
            alive = uv_run(&loop_, UV_RUN_NOWAIT) != 0;
            // The loop has nothing left when its handles are closed; a closed side may
            // still wait for the ring to give its operations back (Endpoint::close).
            if (!alive && ring.in_flight() == 0) break;
        }
        if (!poll_armed && alive) poll_armed = ring.poll(backend);
        int timeout = alive ? uv_backend_timeout(&loop_) : -1;
        // Without the poll (the kernel took nothing), libuv is looked at every 10 ms.
        if (alive && !poll_armed && (timeout < 0 || timeout > 10)) timeout = 10;
        const int rc = ring.wait(timeout);
        if (rc == -EBADR) {
            // A completion is lost: some side will wait for it forever. Say so.
            log::error("io_uring dropped a completion (no kernel memory)");
        } else if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            // The kernel refuses the ring: wait in libuv's own descriptor instead of
            // spinning, and say so once.
            if (!enter_failed_) log::error("io_uring_enter failed", {{"detail", uv_strerror(rc)}});
            enter_failed_ = true;
            pollfd p{backend, POLLIN, 0};
            ::poll(&p, 1, timeout < 0 || timeout > 10 ? 10 : timeout);
        }
        // Handlers stamp activity and arm deadlines with uv_now(): it must say now.
        uv_update_time(&loop_);
        ring.dispatch();
        if (libuv_ready) poll_armed = false;
        if (alive && !poll_armed) libuv_ready = true;
    }
}

void Worker::post(Task task) {
    // uv_async_send under the lock: the worker closes async_ only after it has
    // stopped taking tasks under the same lock, so the handle is always valid here.
    std::lock_guard lock(inbox_mutex_);
    if (!taking_tasks_) return;
    inbox_.push_back(std::move(task));
    uv_async_send(&async_);
}

void Worker::on_async(uv_async_t* handle) noexcept {
    auto* w = static_cast<Worker*>(handle->data);
    std::vector<Task> tasks;
    {
        std::lock_guard lock(w->inbox_mutex_);
        tasks.swap(w->inbox_);
    }
    for (auto& task : tasks)
        task(*w);
}

void Worker::adopt(const std::string& name, int fd) {
    auto listener = std::make_unique<Listener>();
    Listener* raw = listener.get();
    raw->runtime = generation_->listener(name);
    raw->acceptor = new net::Acceptor(
        &loop_, fd, name, [this, raw](int client, const config::SocketAddress& peer) {
            session::Session::accept(*context_, generation_, *raw->runtime, client, peer);
        });
    if (!raw->acceptor->start()) {
        log::error("cannot accept on listener", {{"listener", name}});
        close_listener(std::move(listener));
        return;
    }
    listeners_[name] = std::move(listener);
}

void Worker::close_listener(std::unique_ptr<Listener> listener) {
    // The Acceptor frees itself once libuv has closed its handles.
    listener->acceptor->close_and_delete();
}

void Worker::use_generation(pool::GenerationPtr generation, std::map<std::string, int> added) {
    generation_ = std::move(generation);
    for (auto it = listeners_.begin(); it != listeners_.end();) {
        const auto* runtime = generation_->listener(it->first);
        if (runtime == nullptr || added.count(it->first)) {
            // Removed, or replaced by a socket on a new address: stop accepting; the
            // sessions it accepted live on with their own generation.
            close_listener(std::move(it->second));
            it = listeners_.erase(it);
        } else {
            it->second->runtime = runtime;
            ++it;
        }
    }
    for (const auto& [name, fd] : added)
        adopt(name, fd);

    // Idle backend connections go with their backends.
    std::unordered_set<std::string> live;
    for (const auto& [name, pool] : generation_->pools()) {
        for (const auto& b : pool->backends())
            live.insert(b->address());
    }
    context_->idle.keep_only(std::move(live));

    // Connections to a backend the new file removed are closed (1012, so clients
    // reconnect and are placed again), paced so they do not all return at once.
    std::vector<session::Session*> orphans;
    for (auto* s = context_->sessions.first(); s != nullptr; s = session::SessionList::next(s)) {
        if (s->backend() == nullptr || s->pool() == nullptr) continue;
        const pool::Pool* now = generation_->pool(s->pool()->name());
        if (now == nullptr || now->index_of(s->backend()) < 0) orphans.push_back(s);
    }
    auto spread = static_cast<uint64_t>(generation_->config().server.close_spread.count());
    uint64_t deadline = uv_now(&loop_) + spread + session::Session::kLingerMs;
    if (!orphans.empty()) {
        pace_close(std::move(orphans), metrics::CloseReason::BackendRemoved, ws::kServiceRestart,
                   spread, deadline);
    }
    // Kept-alive HTTP connections live on the generation they were accepted under: each
    // ends after its exchange (or at once when idle), paced, and the client's next
    // request meets the new routes and pools on a new connection, as nginx's old
    // workers do after a reload.
    std::vector<session::Session*> http;
    for (auto* s = context_->sessions.first(); s != nullptr; s = session::SessionList::next(s)) {
        if (&s->generation() == generation_.get()) continue;
        if (s->serves_http()) {
            http.push_back(s);
        } else if (s->state() == session::SessionState::ReadingRequest) {
            // A head still arriving: that request is served as it began, then the
            // connection ends (a plain request's answer says Connection: close).
            s->close_after_request();
        }
    }
    if (!http.empty()) {
        pace_close(std::move(http), metrics::CloseReason::Reload, ws::kGoingAway, spread, deadline);
    }
}

void Worker::pace_close(std::vector<session::Session*> sessions, metrics::CloseReason reason,
                        uint16_t code, uint64_t window_ms, uint64_t deadline_ms) {
    // Random order and a random offset inside each evenly sized slot: closes are spread
    // over the window, never bunched, and no client learns its turn from its position.
    std::shuffle(sessions.begin(), sessions.end(), rng_);
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    uint64_t now = uv_now(&loop_);
    double slot = static_cast<double>(window_ms) / static_cast<double>(sessions.size());
    for (size_t i = 0; i < sessions.size(); ++i) {
        auto offset = static_cast<uint64_t>(slot * (static_cast<double>(i) + jitter(rng_)));
        sessions[i]->schedule_close(reason, code, now + offset, deadline_ms);
    }
}

void Worker::drain(uint64_t window_ms, uint64_t timeout_ms) {
    stop_accepting();
    context_->idle.close_all();
    std::vector<session::Session*> all;
    for (auto* s = context_->sessions.first(); s != nullptr; s = session::SessionList::next(s)) {
        all.push_back(s);
    }
    if (!all.empty()) {
        pace_close(std::move(all), metrics::CloseReason::Shutdown, ws::kGoingAway, window_ms,
                   uv_now(&loop_) + timeout_ms);
    }
    exit_when_idle();
}

void Worker::abort_all() {
    for (auto* s = context_->sessions.first(); s != nullptr; s = session::SessionList::next(s)) {
        s->abort(metrics::CloseReason::Shutdown);
    }
}

void Worker::close_room(uint64_t room_id) {
    uint64_t deadline = uv_now(&loop_) + session::Session::kLingerMs;
    for (auto* s = context_->sessions.first(); s != nullptr; s = session::SessionList::next(s)) {
        if (s->room() != nullptr && s->room()->id == room_id) {
            s->close_gracefully(metrics::CloseReason::Rehome, ws::kServiceRestart, deadline);
        }
    }
}

void Worker::stop_accepting() {
    for (auto& [name, listener] : listeners_)
        close_listener(std::move(listener));
    listeners_.clear();
}

void Worker::exit_when_idle() {
    if (exiting_) return;
    exiting_ = true;
    check_idle();
    if (!uv_is_closing(as_handle(&idle_timer_))) {
        uv_timer_start(&idle_timer_, &Worker::on_idle_check, 20, 20);
    }
}

void Worker::on_trim(uv_timer_t* timer) noexcept {
    auto* w = static_cast<Worker*>(timer->data);
    if (w->context_->handshakes_in_flight > 0) return;  // a new burst: its end trims
    w->context_->handshakes_since_trim = 0;
    // The spare read blocks the burst left go first, so the heap trim can return them.
    w->context_->blocks.trim(kSpareBlocksAfterBurst);
    uv::Slab::trim_heap();
}

void Worker::on_idle_check(uv_timer_t* timer) noexcept {
    static_cast<Worker*>(timer->data)->check_idle();
}

void Worker::check_idle() {
    if (context_->sessions.empty()) shut_down_loop();
}

void Worker::shut_down_loop() {
    if (uv_is_closing(as_handle(&async_))) return;
    {
        std::lock_guard lock(inbox_mutex_);
        taking_tasks_ = false;
        inbox_.clear();
    }
    stop_accepting();
    uv_timer_stop(&idle_timer_);
    uv_close(as_handle(&idle_timer_), nullptr);
    uv_timer_stop(&trim_timer_);
    uv_close(as_handle(&trim_timer_), nullptr);
    uv_close(as_handle(&async_), nullptr);
    context_->timers.close();
    context_->idle.close_all();
}

}  // namespace sb::app
