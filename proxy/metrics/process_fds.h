// The process's file descriptors: how many are open and how many it may open. Every
// client connection holds one and its backend connection another, so the descriptor
// limit caps connections whatever max_connections says (SPEC §2 [server]); /metrics
// shows both so that an alert can fire before accept() starts failing with EMFILE.
#pragma once

#include <cstdint>

namespace sb::metrics {

struct FdUsage {
    uint64_t open = 0;  // entries of /proc/self/fd; 0 when /proc cannot be read
    uint64_t max = 0;   // the soft RLIMIT_NOFILE, the limit open() and accept() meet
};

// Reads both now. Linux only (/proc); cost grows with the number of open descriptors,
// which is why it runs at scrape time on the main thread, never on a worker.
FdUsage process_fds();

}  // namespace sb::metrics
