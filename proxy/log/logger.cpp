#include "log/logger.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace sb::log {

namespace {

std::string_view level_name(Level level) {
    switch (level) {
        case Level::Error:
            return "error";
        case Level::Warn:
            return "warning";
        case Level::Info:
            return "info";
        case Level::Debug:
            return "debug";
    }
    return "info";
}

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (char c : v) {
        if (c == ' ' || c == '"' || c == '=' || c < 0x20) return true;
    }
    return false;
}

// A message in a text line keeps to its line: control characters (a newline in a
// config key quoted by an error message, say) are written as escapes, so no input
// can start a line of its own ("listening ..." lines are read by scripts, SPEC §1).
void append_message(std::string& line, std::string_view message) {
    static const char* kHex = "0123456789abcdef";
    for (char c : message) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u != 0x7F) {
            line.push_back(c);
        } else if (c == '\n') {
            line.append("\\n");
        } else if (c == '\r') {
            line.append("\\r");
        } else if (c == '\t') {
            line.append("\\t");
        } else {
            line.append("\\x");
            line.push_back(kHex[u >> 4]);
            line.push_back(kHex[u & 0xF]);
        }
    }
}

}  // namespace

Logger& Logger::get() {
    static Logger logger;
    return logger;
}

Logger::Logger() : stderr_(std::make_shared<Writer>(STDERR_FILENO, "")), access_(stderr_) {}

void Logger::configure(Level level, bool json) {
    level_.store(static_cast<int>(level), std::memory_order_relaxed);
    json_.store(json, std::memory_order_relaxed);
}

std::string Logger::timestamp() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[40];
    size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(ms % 1000));
    return buf;
}

void Logger::write(Level level, std::string_view message, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    std::string line;
    if (json_.load(std::memory_order_relaxed)) {
        nlohmann::ordered_json j;
        j["ts"] = timestamp();
        j["level"] = level_name(level);
        j["msg"] = message;
        for (const auto& f : fields)
            j[std::string(f.key)] = f.value;
        line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
        if (level != Level::Info) {
            line.append(level_name(level));
            line.append(": ");
        }
        append_message(line, message);
        for (const auto& f : fields) {
            line.push_back(' ');
            line.append(f.key);
            line.push_back('=');
            if (needs_quotes(f.value)) {
                line.append(nlohmann::json(f.value).dump(-1, ' ', false,
                                                         nlohmann::json::error_handler_t::replace));
            } else {
                line.append(f.value);
            }
        }
    }
    stderr_->write(line);
}

bool Logger::set_access_log(const std::string& destination, std::string& error) {
    std::shared_ptr<Writer> next;
    if (destination == "off") {
        next = nullptr;
    } else if (destination == "stderr") {
        next = stderr_;
    } else if (destination == "stdout") {
        std::lock_guard lock(access_mutex_);
        if (!stdout_) stdout_ = std::make_shared<Writer>(STDOUT_FILENO, "");
        next = stdout_;
    } else {
        std::lock_guard lock(access_mutex_);
        if (destination == access_destination_ && access_) return true;  // keep the open file
        next = Writer::open_file(destination, error);
        if (!next) return false;
    }
    std::lock_guard lock(access_mutex_);
    access_ = std::move(next);
    access_destination_ = destination;
    access_enabled_.store(access_ != nullptr, std::memory_order_relaxed);
    return true;
}

void Logger::access(std::string_view line) {
    std::shared_ptr<Writer> writer;
    {
        std::lock_guard lock(access_mutex_);
        writer = access_;
    }
    if (writer) writer->write(line);
}

bool Logger::reopen_access_log(std::string& error) {
    std::shared_ptr<Writer> writer;
    {
        std::lock_guard lock(access_mutex_);
        writer = access_;
    }
    return writer ? writer->reopen(error) : true;
}

void Logger::flush() {
    std::shared_ptr<Writer> writer;
    {
        std::lock_guard lock(access_mutex_);
        writer = access_;
    }
    if (writer) writer->flush();
    if (stdout_) stdout_->flush();
    stderr_->flush();
}

}  // namespace sb::log
