// Listening sockets. Each worker accepts on a socket of its own, all bound to the
// same address with SO_REUSEPORT, so the kernel spreads new connections across
// workers and no accept lock or shared queue exists between them.
//
// The main thread opens the sockets (so a bind error is reported before anything
// starts, and a reload can fail cleanly); each worker then adopts its descriptor.
#pragma once

#include <string>
#include <vector>

#include "config/address.h"

namespace sb::net {

struct ListenSockets {
    std::vector<int> fds;         // one per worker
    config::SocketAddress bound;  // the address actually bound (port 0 resolved)
    std::string error;            // set when fds is empty

    bool ok() const { return error.empty(); }
};

// Opens `count` listening sockets on `address`. With port 0, the first socket gets
// a free port from the kernel and the others join it. IPv6 sockets are IPv6-only
// (as nginx does), so "0.0.0.0:80" and "[::]:80" can both be listed.
ListenSockets open_listen_sockets(const config::SocketAddress& address, unsigned count,
                                  int backlog = 4096);

// Closes descriptors that were opened but never adopted by a worker.
void close_all(std::vector<int>& fds);

}  // namespace sb::net
