#include "benchmark/relay.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sb::bench {

namespace {

// Free blocks kept for reuse; beyond this they go back to the allocator.
constexpr size_t kMaxFreeBlocks = 64;
constexpr int kMaxEvents = 256;

socklen_t address_length(const sockaddr_storage& addr) {
    return addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

// Small messages must leave at once: Nagle would hold an echo back for an ACK.
void set_no_delay(int fd) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// One direction of a Connection: bytes read from `source` are written to
// `destination`.
struct Relay::Pipe {
    Pipe(Endpoint* from, Endpoint* to) : source(from), destination(to) {}

    Endpoint* source;
    Endpoint* destination;
    std::unique_ptr<char[]> block;  // bytes the destination did not take yet, or null
    size_t parked_begin = 0;
    size_t parked_end = 0;
    bool source_ended = false;  // read() returned 0
    bool ended = false;         // and the destination's write side is shut down

    bool blocked() const { return block != nullptr; }
};

// A client and its backend connection.
struct Relay::Connection {
    Endpoint client{Endpoint::Kind::Client};
    Endpoint backend{Endpoint::Kind::Backend};
    Pipe to_backend{&client, &backend};
    Pipe to_client{&backend, &client};
    bool connecting = true;  // the backend has not answered the connect yet
    bool closed = false;
    Connection* prev = nullptr;
    Connection* next = nullptr;

    Connection() { client.connection = backend.connection = this; }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    // The Pipe whose source is `e`.
    Pipe& pipe_from(const Endpoint& e) { return &e == &client ? to_backend : to_client; }
};

Relay::Relay(const sockaddr_storage& backend, size_t block_bytes)
    : backend_(backend),
      block_bytes_(block_bytes),
      read_buffer_(std::make_unique<char[]>(block_bytes)) {}

Relay::~Relay() {
    while (head_ != nullptr)
        close(*head_);
    for (Connection* c : closed_)
        delete c;
    if (listener_.fd >= 0) ::close(listener_.fd);
    if (signals_.fd >= 0) ::close(signals_.fd);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

int Relay::listen(const sockaddr_storage& addr, sockaddr_storage& bound) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return errno;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    signals_.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signals_.fd < 0) return errno;

    listener_.fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener_.fd < 0) return errno;
    int one = 1;
    (void)setsockopt(listener_.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listener_.fd, reinterpret_cast<const sockaddr*>(&addr), address_length(addr)) != 0 ||
        ::listen(listener_.fd, SOMAXCONN) != 0) {
        return errno;
    }
    socklen_t length = sizeof(bound);
    if (getsockname(listener_.fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        return errno;
    }
    for (Endpoint* e : {&listener_, &signals_}) {
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = e;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, e->fd, &event) != 0) return errno;
        e->registered = EPOLLIN;
    }
    return 0;
}

int Relay::run() {
    epoll_event events[kMaxEvents];
    while (!stopping_) {
        int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        for (int i = 0; i < n; ++i) {
            on_event(*static_cast<Endpoint*>(events[i].data.ptr), events[i].events);
        }
        // Events later in this batch may have pointed at these; now nothing does.
        for (Connection* c : closed_)
            delete c;
        closed_.clear();
    }
    return 0;
}

void Relay::on_event(Endpoint& endpoint, uint32_t events) {
    switch (endpoint.kind) {
        case Endpoint::Kind::Listener:
            accept_clients();
            return;
        case Endpoint::Kind::Signal:
            stopping_ = true;
            return;
        case Endpoint::Kind::Client:
        case Endpoint::Kind::Backend:
            break;
    }
    Connection& c = *endpoint.connection;
    if (c.closed) return;
    if (c.connecting) {
        // Only the backend is registered for anything while connecting; an error on the
        // client (a reset) ends the connection too.
        if (&endpoint == &c.backend && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) {
            on_backend_connected(c);
        } else if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
            close(c);
        }
        return;
    }
    if ((events & EPOLLERR) != 0) {
        close(c);
        return;
    }
    Pipe& outgoing = c.pipe_from(endpoint);  // endpoint is its source
    Pipe& incoming = &outgoing == &c.to_backend ? c.to_client : c.to_backend;
    if ((events & EPOLLOUT) != 0 && incoming.blocked()) {
        flush(incoming);
        if (c.closed) return;
    }
    if ((events & EPOLLIN) != 0 && !outgoing.blocked() && !outgoing.source_ended) {
        pump(outgoing);
    } else if ((events & EPOLLHUP) != 0) {
        // Both directions of this socket are down and there is nothing it could still
        // be read for now. The floor does not try harder than closing.
        close(c);
    }
}

void Relay::accept_clients() {
    for (;;) {
        int fd = accept4(listener_.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                std::fprintf(stderr, "sb-bench-relay: accept: %s\n", std::strerror(errno));
            }
            return;
        }
        set_no_delay(fd);
        int backend_fd = socket(backend_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (backend_fd < 0) {
            ::close(fd);
            continue;
        }
        set_no_delay(backend_fd);
        int rc = connect(backend_fd, reinterpret_cast<const sockaddr*>(&backend_),
                         address_length(backend_));
        if (rc != 0 && errno != EINPROGRESS) {
            ::close(fd);
            ::close(backend_fd);
            continue;
        }
        auto* c = new Connection();
        c->client.fd = fd;
        c->backend.fd = backend_fd;
        c->next = head_;
        if (head_ != nullptr) head_->prev = c;
        head_ = c;
        // The client is not read until its backend is connected: it waits registered
        // for nothing (errors still arrive), the backend for the connect's answer.
        for (Endpoint* e : {&c->client, &c->backend}) {
            epoll_event event{};
            event.events = e == &c->backend ? uint32_t{EPOLLOUT} : 0U;
            event.data.ptr = e;
            (void)epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, e->fd, &event);
            e->registered = event.events;
        }
    }
}

void Relay::on_backend_connected(Connection& c) {
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(c.backend.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
        close(c);
        return;
    }
    c.connecting = false;
    update_interest(c);
}

void Relay::pump(Pipe& pipe) {
    Connection& c = *pipe.source->connection;
    ssize_t n = ::read(pipe.source->fd, read_buffer_.get(), block_bytes_);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close(c);
        return;
    }
    if (n == 0) {
        pipe.source_ended = true;
        finish_if_ended(pipe);
        return;
    }
    auto length = static_cast<size_t>(n);
    ssize_t w = ::write(pipe.destination->fd, read_buffer_.get(), length);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            close(c);
            return;
        }
        w = 0;
    }
    auto written = static_cast<size_t>(w);
    if (written == length) return;  // the common case: no state changes, no epoll_ctl
    // The destination is full: park the rest and stop reading until it drains.
    pipe.block = take_block();
    std::memcpy(pipe.block.get(), read_buffer_.get() + written, length - written);
    pipe.parked_begin = 0;
    pipe.parked_end = length - written;
    update_interest(c);
}

void Relay::flush(Pipe& pipe) {
    Connection& c = *pipe.source->connection;
    ssize_t w = ::write(pipe.destination->fd, pipe.block.get() + pipe.parked_begin,
                        pipe.parked_end - pipe.parked_begin);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close(c);
        return;
    }
    pipe.parked_begin += static_cast<size_t>(w);
    if (pipe.parked_begin < pipe.parked_end) return;
    give_block(std::move(pipe.block));
    pipe.block = nullptr;
    if (pipe.source_ended) {
        finish_if_ended(pipe);
    } else {
        update_interest(c);
    }
}

void Relay::finish_if_ended(Pipe& pipe) {
    Connection& c = *pipe.source->connection;
    if (pipe.source_ended && !pipe.blocked() && !pipe.ended) {
        (void)shutdown(pipe.destination->fd, SHUT_WR);
        pipe.ended = true;
    }
    if (c.to_backend.ended && c.to_client.ended) {
        close(c);
    } else {
        update_interest(c);
    }
}

void Relay::update_interest(Connection& c) {
    if (c.closed) return;
    auto wants = [](const Pipe& outgoing, const Pipe& incoming) {
        uint32_t events = 0;
        if (!outgoing.source_ended && !outgoing.blocked()) events |= EPOLLIN;
        if (incoming.blocked()) events |= EPOLLOUT;
        return events;
    };
    if (c.connecting) {
        set_interest(c.client, 0);
        set_interest(c.backend, EPOLLOUT);
        return;
    }
    set_interest(c.client, wants(c.to_backend, c.to_client));
    set_interest(c.backend, wants(c.to_client, c.to_backend));
}

void Relay::set_interest(Endpoint& endpoint, uint32_t events) {
    if (endpoint.registered == events) return;
    epoll_event event{};
    event.events = events;
    event.data.ptr = &endpoint;
    (void)epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, endpoint.fd, &event);
    endpoint.registered = events;
}

void Relay::close(Connection& c) {
    if (c.closed) return;
    c.closed = true;
    // Closing a descriptor also removes it from the epoll set.
    ::close(c.client.fd);
    ::close(c.backend.fd);
    for (Pipe* p : {&c.to_backend, &c.to_client}) {
        if (p->block != nullptr) give_block(std::move(p->block));
    }
    if (c.prev != nullptr) c.prev->next = c.next;
    if (c.next != nullptr) c.next->prev = c.prev;
    if (head_ == &c) head_ = c.next;
    closed_.push_back(&c);
}

std::unique_ptr<char[]> Relay::take_block() {
    if (free_blocks_.empty()) return std::make_unique<char[]>(block_bytes_);
    std::unique_ptr<char[]> block = std::move(free_blocks_.back());
    free_blocks_.pop_back();
    return block;
}

void Relay::give_block(std::unique_ptr<char[]> block) {
    if (free_blocks_.size() < kMaxFreeBlocks) free_blocks_.push_back(std::move(block));
}

}  // namespace sb::bench
