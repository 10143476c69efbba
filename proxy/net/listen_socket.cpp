#include "net/listen_socket.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace sb::net {

namespace {

std::string errno_text() {
    std::string text = std::strerror(errno);
    // "Address already in use" → "address already in use", as log lines read.
    if (!text.empty()) text[0] = static_cast<char>(std::tolower(text[0]));
    return text;
}

// SO_REUSEPORT would let a second process of the same user silently share a port
// that is already serving. Binding once without it first makes "port in use" an
// error, as operators expect; the probe is closed before the real sockets bind.
bool port_is_free(const config::SocketAddress& address, std::string& error) {
    int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = errno_text();
        return false;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (address.family() == AF_INET6)
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    bool ok = ::bind(fd, address.sockaddr_ptr(), address.sockaddr_len()) == 0;
    if (!ok) error = errno_text();
    ::close(fd);
    return ok;
}

int open_one(const config::SocketAddress& address, int backlog, std::string& error) {
    int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = "socket: " + errno_text();
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (address.family() == AF_INET6)
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (::bind(fd, address.sockaddr_ptr(), address.sockaddr_len()) != 0 ||
        ::listen(fd, backlog) != 0) {
        error = errno_text();
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

ListenSockets open_listen_sockets(const config::SocketAddress& address, unsigned count,
                                  int backlog) {
    ListenSockets out;
    config::SocketAddress target = address;
    if (address.port() != 0 && !port_is_free(address, out.error)) {
        out.error = "cannot listen on " + address.to_string() + ": " + out.error;
        return out;
    }
    for (unsigned i = 0; i < count; ++i) {
        int fd = open_one(target, backlog, out.error);
        if (fd < 0) {
            out.error = "cannot listen on " + target.to_string() + ": " + out.error;
            close_all(out.fds);
            return out;
        }
        if (i == 0) {
            sockaddr_storage ss{};
            socklen_t len = sizeof(ss);
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
            out.bound = config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
            target = out.bound;  // the other workers join the port the kernel chose
        }
        out.fds.push_back(fd);
    }
    return out;
}

void close_all(std::vector<int>& fds) {
    for (int fd : fds)
        ::close(fd);
    fds.clear();
}

}  // namespace sb::net
