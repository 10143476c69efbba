// SplicePipe: a worker's kernel pipe for moving payload bytes from one socket to
// another with splice(2), without copying them through the proxy's memory.
//
// A large WebSocket payload needs no inspection once its frame header is read (limits
// are checked against the header's length, and payloads are relayed masked as they
// came), so the Pipe splices it: socket -> kernel pipe -> socket, pages moved by
// reference. The kernel pipe is shared by every session of the worker, which is safe
// because a splice round runs to completion inside one read callback and leaves the
// pipe empty (what the destination refuses is read back out into read blocks).
//
// Opened on first use (a worker that never sees a large payload spends no
// descriptors); not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace sb::net {

class SplicePipe {
  public:
    // What the pipe holds (asked for when it opens): the most one fill can move.
    static constexpr size_t kCapacity = 128 * 1024;

    SplicePipe() = default;
    ~SplicePipe();
    SplicePipe(const SplicePipe&) = delete;
    SplicePipe& operator=(const SplicePipe&) = delete;

    // Opens the pipe if needed; false when it cannot be (out of descriptors): the
    // caller then relays by read and write as usual.
    bool ready();

    // About how many more bytes socket `fd`'s send buffer takes now (a conservative
    // estimate: half the buffer, which the kernel counts with its overhead, less what
    // is queued). Sizing each splice to it means a destination that stopped reading
    // leaves next to nothing to read back out and park.
    static size_t send_room(int fd);

    // socket -> pipe: up to `len` bytes (non-blocking). As splice(2): > 0 bytes
    // moved, 0 at end of stream, -1 with errno (EAGAIN: nothing to read now).
    ssize_t fill(int from_fd, size_t len);
    // pipe -> socket: up to `len` of the bytes held (non-blocking), as splice(2).
    ssize_t drain(int to_fd, size_t len);
    // Reads up to `len` held bytes into `buf` (the destination refused them).
    ssize_t read_back(char* buf, size_t len);
    // Throws away everything held, so the pipe is empty for the next session.
    void clear();

  private:
    int read_fd_ = -1;
    int write_fd_ = -1;
    bool failed_ = false;  // a failed open is not retried on every payload
};

}  // namespace sb::net
