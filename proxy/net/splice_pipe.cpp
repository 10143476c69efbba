#include "net/splice_pipe.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace sb::net {

SplicePipe::~SplicePipe() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (write_fd_ >= 0) ::close(write_fd_);
}

bool SplicePipe::ready() {
    if (read_fd_ >= 0) return true;
    if (failed_) return false;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        // Out of descriptors may pass, so a later payload tries again; any other
        // failure (pipes forbidden) is for good.
        failed_ = errno != EMFILE && errno != ENFILE;
        return false;
    }
    // 64 KiB by default; a smaller pipe (a lower system limit) only means shorter
    // splices.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kCapacity));
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    return true;
}

size_t SplicePipe::send_room(int fd) {
    int buffer = 0;
    socklen_t len = sizeof buffer;
    int queued = 0;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, &len) != 0 ||
        ::ioctl(fd, SIOCOUTQ, &queued) != 0) {
        return 0;
    }
    int room = buffer / 2 - queued;
    return room > 0 ? static_cast<size_t>(room) : 0;
}

ssize_t SplicePipe::fill(int from_fd, size_t len) {
    return ::splice(from_fd, nullptr, write_fd_, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t SplicePipe::drain(int to_fd, size_t len) {
    return ::splice(read_fd_, nullptr, to_fd, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t SplicePipe::read_back(char* buf, size_t len) {
    return ::read(read_fd_, buf, len);
}

void SplicePipe::clear() {
    char sink[4096];
    while (::read(read_fd_, sink, sizeof sink) > 0) {
    }
}

}  // namespace sb::net
