#include "log/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace sb::log {

namespace {

void write_all(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // a broken log destination must not stop the proxy
        done += static_cast<size_t>(n);
    }
}

}  // namespace

Writer::Writer(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
    if (!path_.empty()) ::close(fd_);
    if (reopen_fd_ >= 0) ::close(reopen_fd_);
}

std::unique_ptr<Writer> Writer::open_file(const std::string& path, std::string& error) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        error = "cannot open " + path + ": " + std::strerror(errno);
        return nullptr;
    }
    return std::make_unique<Writer>(fd, path);
}

void Writer::write(std::string_view line) {
    {
        std::lock_guard lock(mutex_);
        if (pending_.size() + line.size() + 1 > kMaxPending) {
            ++dropped_;
            return;
        }
        pending_.append(line);
        pending_.push_back('\n');
    }
    wake_.notify_one();
}

void Writer::flush() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return pending_.empty() && !writing_; });
}

bool Writer::reopen(std::string& error) {
    if (path_.empty()) return true;  // stderr and stdout need no reopening
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        error = "cannot reopen " + path_ + ": " + std::strerror(errno);
        return false;
    }
    {
        std::lock_guard lock(mutex_);
        if (reopen_fd_ >= 0) ::close(reopen_fd_);
        reopen_fd_ = fd;
    }
    wake_.notify_one();
    return true;
}

uint64_t Writer::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

void Writer::run() {
    std::string batch;
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stop_ || !pending_.empty() || reopen_fd_ >= 0; });
        if (reopen_fd_ >= 0) {
            ::close(fd_);
            fd_ = reopen_fd_;
            reopen_fd_ = -1;
        }
        if (pending_.empty() && stop_) break;
        batch.swap(pending_);
        if (dropped_ > dropped_reported_) {
            batch += "log writer: dropped " + std::to_string(dropped_ - dropped_reported_) +
                     " lines while the destination was slow\n";
            dropped_reported_ = dropped_;
        }
        writing_ = true;
        lock.unlock();
        write_all(fd_, batch);
        batch.clear();
        lock.lock();
        writing_ = false;
        if (pending_.empty()) idle_.notify_all();
    }
    idle_.notify_all();
}

}  // namespace sb::log
