// Relay: the benchmark's floor, a bare TCP relay on one epoll loop. It accepts
// clients, connects each one to the single backend and copies bytes both ways with
// read(2) and write(2), nothing else: no HTTP, no WebSocket framing, no timers, no
// logging. Whatever a real proxy spends beyond this is the price of its features.
//
// Memory: a Connection owns its two sockets and two Pipes (one per direction). Bytes
// are read into one buffer shared by the whole relay and written out at once; only a
// partial write parks the rest in a block of the Pipe's own (fixed size, taken from a
// free list and given back once written), and the source is not read again until the
// block is empty. So an idle connection holds no data buffer, and a busy one at most
// one block per direction.
//
// Events: level-triggered epoll. A source is read once per wakeup (a short read means
// it is drained, so no extra read to see EAGAIN); interest changes (epoll_ctl) happen
// only when a Pipe blocks or unblocks, never per message.
//
// One per process, owned by main(); single-threaded; owns every Connection (deleted
// at the end of the loop iteration that closed it, since events of the same batch may
// still point at it).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sb::bench {

class Relay {
  public:
    // `block_bytes` is both the read size and the capacity of a Pipe's parking block.
    Relay(const sockaddr_storage& backend, size_t block_bytes);
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;
    ~Relay();

    // Creates the epoll instance and listens on `addr`. Returns 0 or an errno value;
    // `bound` receives the address actually bound (with the port picked for port 0).
    [[nodiscard]] int listen(const sockaddr_storage& addr, sockaddr_storage& bound);
    // Runs until SIGINT or SIGTERM (blocked by the caller and read through a
    // signalfd). Returns 0, or an errno value when epoll fails.
    [[nodiscard]] int run();

  private:
    struct Connection;
    struct Pipe;

    // What an epoll event points at: one socket of a Connection (or the listener,
    // or the signalfd, which have no connection).
    struct Endpoint {
        enum class Kind { Listener, Signal, Client, Backend };
        Kind kind;
        int fd = -1;
        uint32_t registered = 0;  // the epoll events currently asked for
        Connection* connection = nullptr;
    };

    void on_event(Endpoint& endpoint, uint32_t events);
    void accept_clients();
    void on_backend_connected(Connection& c);
    // Reads `pipe`'s source once and writes what came to its destination.
    void pump(Pipe& pipe);
    // Writes `pipe`'s parked bytes to its destination.
    void flush(Pipe& pipe);
    // Shuts down the destination's write side once the source ended and nothing is
    // parked; closes the connection once both directions ended.
    void finish_if_ended(Pipe& pipe);
    // Asks epoll for what each socket of `c` needs now.
    void update_interest(Connection& c);
    void set_interest(Endpoint& endpoint, uint32_t events);
    void close(Connection& c);

    std::unique_ptr<char[]> take_block();
    void give_block(std::unique_ptr<char[]> block);

    sockaddr_storage backend_;
    size_t block_bytes_;
    int epoll_fd_ = -1;
    Endpoint listener_{Endpoint::Kind::Listener};
    Endpoint signals_{Endpoint::Kind::Signal};
    bool stopping_ = false;
    std::unique_ptr<char[]> read_buffer_;  // shared by every read
    std::vector<std::unique_ptr<char[]>> free_blocks_;
    std::vector<Connection*> closed_;  // deleted after the current batch of events
    Connection* head_ = nullptr;       // live connections, to close them at exit
};

}  // namespace sb::bench
