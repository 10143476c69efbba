// Logger: the process's event log (stderr, text or JSON lines) and access log (JSON
// lines to stderr, stdout, a file, or nowhere).
//
// One process-wide instance, reconfigured on reload; safe to call from any thread.
// Lines go through Writers, so no event loop ever waits on log output.
//
// Text event lines are the message followed by key=value fields; levels other than
// info are prefixed ("error: ..."), so that info lines such as
// "listening public 127.0.0.1:8080" read exactly as SPEC §1 shows them. JSON lines
// carry "ts", "level", "msg" and the fields.
#pragma once

#include <atomic>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "log/writer.h"

namespace sb::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

struct Field {
    std::string_view key;
    std::string value;
};

class Logger {
  public:
    static Logger& get();

    void configure(Level level, bool json);
    bool enabled(Level level) const {
        return static_cast<int>(level) <= level_.load(std::memory_order_relaxed);
    }

    void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

    // Points the access log at "stderr", "stdout", "off" or a file path. On error keeps
    // the current destination and returns false.
    bool set_access_log(const std::string& destination, std::string& error);
    bool access_log_enabled() const { return access_enabled_.load(std::memory_order_relaxed); }
    // Queues one access log line (already formatted JSON).
    void access(std::string_view line);
    // Reopens a file access log (SIGUSR1).
    bool reopen_access_log(std::string& error);

    // Waits until every queued line is written (before exit).
    void flush();

    // ISO 8601 UTC with milliseconds, e.g. "2026-11-25T16:27:50.123Z".
    static std::string timestamp();

  private:
    Logger();

    std::atomic<int> level_{static_cast<int>(Level::Info)};
    std::atomic<bool> json_{false};
    std::shared_ptr<Writer> stderr_;
    std::shared_ptr<Writer> stdout_;

    mutable std::mutex access_mutex_;
    std::shared_ptr<Writer> access_;
    std::string access_destination_ = "stderr";
    std::atomic<bool> access_enabled_{true};
};

inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
    Logger::get().write(Level::Error, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
    Logger::get().write(Level::Warn, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
    Logger::get().write(Level::Info, m, f);
}
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
    if (Logger::get().enabled(Level::Debug)) Logger::get().write(Level::Debug, m, f);
}

}  // namespace sb::log
