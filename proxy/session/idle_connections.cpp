#include "session/idle_connections.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

namespace sb::session {

struct IdleConnections::Entry {
    uv_poll_t poll;
    IdleConnections* owner;
    int fd;
    bool close_fd = true;  // false once handed out: the poll handle closes without it
    uint64_t expires_ms;
    List* list;
    List::iterator where;
};

namespace {

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

}  // namespace

IdleConnections::IdleConnections(uv_loop_t* loop) : loop_(loop) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    timer_open_ = true;
}

IdleConnections::~IdleConnections() {
    // The worker calls close_all() before its loop ends; whatever is left (a loop torn
    // down without a drain) at least gives its descriptors back.
    for (auto& [key, list] : by_key_) {
        for (Entry* e : list)
            ::close(e->fd);
    }
}

void IdleConnections::put(const std::string& key, int fd, uint64_t max_per_key, uint64_t idle_ms) {
    if (closed_ || max_per_key == 0 || (live_ && live_->count(key) == 0)) {
        ::close(fd);
        return;
    }
    auto* e = new Entry{};
    e->owner = this;
    e->fd = fd;
    e->expires_ms = uv_now(loop_) + idle_ms;
    if (uv_poll_init_socket(loop_, &e->poll, fd) != 0) {
        ::close(fd);
        delete e;
        return;
    }
    e->poll.data = e;
    List& list = by_key_[key];
    e->list = &list;
    e->where = list.insert(list.end(), e);
    ++count_;
    uv_poll_start(&e->poll, UV_READABLE | UV_DISCONNECT, &IdleConnections::on_poll);
    auto lent = lent_.find(key);
    uint64_t others = lent == lent_.end() ? 0 : lent->second;
    while (!list.empty() && list.size() + others > max_per_key)
        drop(list.front(), true);
    if (list.empty()) {
        by_key_.erase(key);
        arm_timer();
        return;
    }
    arm_timer();
}

int IdleConnections::take(const std::string& key) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return -1;
    List& list = it->second;
    while (!list.empty()) {
        Entry* e = list.back();
        int fd = e->fd;
        drop(e, false);
        if (silent(fd)) return fd;
        ::close(fd);
    }
    return -1;
}

bool IdleConnections::silent(int fd) {
    char c;
    ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void IdleConnections::drop(Entry* e, bool close_fd) {
    e->list->erase(e->where);
    --count_;
    e->close_fd = close_fd;
    // uv_close stops the poll and takes the descriptor out of the loop at once; the
    // Entry itself goes in the close callback.
    uv_close(as_handle(&e->poll), [](uv_handle_t* h) {
        auto* entry = static_cast<Entry*>(h->data);
        if (entry->close_fd) ::close(entry->fd);
        delete entry;
    });
}

void IdleConnections::on_poll(uv_poll_t* poll, int, int) noexcept {
    auto* e = static_cast<Entry*>(poll->data);
    e->owner->drop(e, true);
}

void IdleConnections::arm_timer() {
    if (!timer_open_) return;
    uint64_t first = std::numeric_limits<uint64_t>::max();
    for (auto& [key, list] : by_key_) {
        for (Entry* e : list)
            first = std::min(first, e->expires_ms);
    }
    if (first == std::numeric_limits<uint64_t>::max()) {
        uv_timer_stop(&timer_);
        return;
    }
    uint64_t now = uv_now(loop_);
    uv_timer_start(&timer_, &IdleConnections::on_timer, first > now ? first - now : 0, 0);
}

void IdleConnections::on_timer(uv_timer_t* timer) noexcept {
    auto* self = static_cast<IdleConnections*>(timer->data);
    uint64_t now = uv_now(self->loop_);
    for (auto& [key, list] : self->by_key_) {
        while (!list.empty() && list.front()->expires_ms <= now)
            self->drop(list.front(), true);
    }
    self->arm_timer();
}

bool IdleConnections::lend(const std::string& key, uint64_t max_per_key) {
    if (closed_ || max_per_key == 0) return false;
    uint64_t& lent = lent_[key];
    auto it = by_key_.find(key);
    uint64_t idle = it == by_key_.end() ? 0 : it->second.size();
    if (lent + idle >= max_per_key) {
        // Room is made by the oldest idle one, not by refusing the newest client.
        if (it == by_key_.end() || it->second.empty()) {
            if (lent == 0) lent_.erase(key);
            return false;
        }
        drop(it->second.front(), true);
    }
    ++lent;
    return true;
}

void IdleConnections::give_back(const std::string& key) {
    auto it = lent_.find(key);
    if (it == lent_.end()) return;
    if (--it->second == 0) lent_.erase(it);
}

void IdleConnections::keep_only(std::unordered_set<std::string> live) {
    for (auto& [key, list] : by_key_) {
        if (live.count(key) != 0) continue;
        while (!list.empty())
            drop(list.front(), true);
    }
    live_ = std::move(live);
}

void IdleConnections::close_all() {
    closed_ = true;
    for (auto& [key, list] : by_key_) {
        while (!list.empty())
            drop(list.front(), true);
    }
    if (timer_open_) {
        timer_open_ = false;
        uv_timer_stop(&timer_);
        uv_close(as_handle(&timer_), nullptr);
    }
}

}  // namespace sb::session
