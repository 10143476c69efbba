// Writer: appends lines to a file descriptor from a background thread, so an event
// loop never blocks on a slow disk or a full pipe.
//
// Any thread may call write(); lines are queued and written in order. The queue is
// bounded: past kMaxPending bytes new lines are dropped and counted, and the count is
// reported once the writer catches up. reopen() swaps the file (logrotate, SIGUSR1)
// between two writes.
//
// Owned by the Logger; lives for the process; destroyed after every writer is idle.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace sb::log {

class Writer {
  public:
    static constexpr size_t kMaxPending = 8 * 1024 * 1024;

    // Writes to `fd`; `path` non-empty means the Writer opened it and may reopen it.
    Writer(int fd, std::string path);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Opens `path` for appending (creating it 0640). Returns nullptr and sets `error`.
    static std::unique_ptr<Writer> open_file(const std::string& path, std::string& error);

    // Queues `line` (a trailing newline is added).
    void write(std::string_view line);
    // Blocks until everything queued so far is written.
    void flush();
    // Reopens the file at the same path; returns false and keeps the old one on error.
    bool reopen(std::string& error);

    uint64_t dropped() const;
    const std::string& path() const { return path_; }

  private:
    void run();

    int fd_;
    std::string path_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable idle_;
    std::string pending_;
    bool writing_ = false;
    bool stop_ = false;
    uint64_t dropped_ = 0;
    uint64_t dropped_reported_ = 0;
    int reopen_fd_ = -1;  // a new fd handed over by reopen(), swapped in by run()
    std::thread thread_;
};

}  // namespace sb::log
