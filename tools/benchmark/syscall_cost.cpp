// sb-syscall-cost: what a system call costs on this machine, and what io_uring would
// save a relay that makes one per read and one per write.
//
// On a virtual machine a system call's entry and exit can cost more than the work it
// does on loopback (docs/benchmarks.md, "When the load's core is the bottleneck").
// This measures, in CPU time of this process:
//   - a system call that does nothing (getppid);
//   - a 64-byte send and the recv that takes it, on N loopback TCP connections, as one
//     system call each (what switchboard does through libuv), and as io_uring
//     operations, all 2N of a round submitted and waited for with one io_uring_enter.
// N = 1, 2, 4, 16 stands for the events a worker finds per wakeup.
//
//   sb-syscall-cost [--rounds R]     (R rounds of each; default 40,000 pairs per N)
//
// Loopback only; bounded by its rounds. Pin it (taskset -c 1) for steadier figures.
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// The least of io_uring this needs: one ring, filled and reaped by this thread only.
class Ring {
  public:
    Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() {
        if (rings_ != MAP_FAILED) munmap(rings_, rings_bytes_);
        if (sqes_ != nullptr) munmap(sqes_, sqes_bytes_);
        if (fd_ >= 0) close(fd_);
    }

    bool open(unsigned entries) {
        io_uring_params p{};
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        fd_ = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
        if (fd_ < 0) return false;
        if ((p.features & IORING_FEAT_SINGLE_MMAP) == 0) return false;
        size_t bytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
        bytes = std::max(bytes, p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
        rings_bytes_ = bytes;
        rings_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_,
                      IORING_OFF_SQ_RING);
        if (rings_ == MAP_FAILED) return false;
        sqes_bytes_ = p.sq_entries * sizeof(io_uring_sqe);
        void* sqes = mmap(nullptr, sqes_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                          fd_, IORING_OFF_SQES);
        if (sqes == MAP_FAILED) return false;
        sqes_ = static_cast<io_uring_sqe*>(sqes);
        auto* base = static_cast<char*>(rings_);
        sq_tail_ = reinterpret_cast<unsigned*>(base + p.sq_off.tail);
        sq_mask_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_mask);
        sq_array_ = reinterpret_cast<unsigned*>(base + p.sq_off.array);
        cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
        cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
        cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
        cqes_ = reinterpret_cast<io_uring_cqe*>(base + p.cq_off.cqes);
        return true;
    }

    void push(uint8_t op, int fd, void* buf, unsigned len) {
        const unsigned tail = *sq_tail_;
        const unsigned i = tail & sq_mask_;
        io_uring_sqe& s = sqes_[i];
        std::memset(&s, 0, sizeof(s));
        s.opcode = op;
        s.fd = fd;
        s.addr = reinterpret_cast<uintptr_t>(buf);
        s.len = len;
        s.msg_flags = MSG_DONTWAIT;
        sq_array_[i] = i;
        __atomic_store_n(sq_tail_, tail + 1, __ATOMIC_RELEASE);
    }

    // Submits what was pushed, waits for as many completions; how many were short.
    long submit_and_wait(unsigned n, int expect) {
        long rc = syscall(__NR_io_uring_enter, fd_, n, n, IORING_ENTER_GETEVENTS, nullptr, 0);
        if (rc != static_cast<long>(n)) return -1;
        long short_results = 0;
        unsigned head = *cq_head_;
        const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
        for (; head != tail; ++head)
            short_results += cqes_[head & cq_mask_].res != expect ? 1 : 0;
        __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
        return short_results;
    }

  private:
    int fd_ = -1;
    void* rings_ = MAP_FAILED;
    size_t rings_bytes_ = 0;
    size_t sqes_bytes_ = 0;
    unsigned* sq_tail_ = nullptr;
    unsigned sq_mask_ = 0;
    unsigned* sq_array_ = nullptr;
    unsigned* cq_head_ = nullptr;
    unsigned* cq_tail_ = nullptr;
    unsigned cq_mask_ = 0;
    io_uring_cqe* cqes_ = nullptr;
    io_uring_sqe* sqes_ = nullptr;
};

bool connect_pairs(int n, std::vector<int>& a, std::vector<int>& b) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listener, 64) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        return false;
    }
    const int one = 1;
    for (int i = 0; i < n; ++i) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
            return false;
        int s = accept(listener, nullptr, nullptr);
        if (s < 0) return false;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        a.push_back(c);
        b.push_back(s);
    }
    close(listener);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    long pairs = 40000;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--rounds" && i + 1 < argc) {
            pairs = std::strtol(argv[++i], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: sb-syscall-cost [--rounds R]\n");
            return 2;
        }
    }
    if (pairs <= 0) pairs = 1;

    double t0 = cpu_seconds();
    for (long i = 0; i < pairs; ++i)
        syscall(SYS_getppid);
    std::printf("a system call that does nothing (getppid): %.2f us\n",
                (cpu_seconds() - t0) * 1e6 / static_cast<double>(pairs));

    char message[64];
    std::memset(message, 7, sizeof(message));
    static char buffers[16][16384];
    for (int n : {1, 2, 4, 16}) {
        std::vector<int> a;
        std::vector<int> b;
        Ring ring;
        if (!connect_pairs(n, a, b) || !ring.open(64)) {
            std::fprintf(stderr, "sb-syscall-cost: setup failed: %s\n", std::strerror(errno));
            return 1;
        }
        const long rounds = pairs / n;
        t0 = cpu_seconds();
        for (long r = 0; r < rounds; ++r) {
            for (int i = 0; i < n; ++i)
                send(a[i], message, sizeof(message), MSG_DONTWAIT);
            for (int i = 0; i < n; ++i)
                recv(b[i], buffers[i], sizeof(buffers[i]), MSG_DONTWAIT);
        }
        const double calls = (cpu_seconds() - t0) * 1e6 / static_cast<double>(rounds * n);
        long short_results = 0;
        t0 = cpu_seconds();
        for (long r = 0; r < rounds && short_results >= 0; ++r) {
            for (int i = 0; i < n; ++i)
                ring.push(IORING_OP_SEND, a[i], message, sizeof(message));
            for (int i = 0; i < n; ++i)
                ring.push(IORING_OP_RECV, b[i], buffers[i], sizeof(buffers[i]));
            long s = ring.submit_and_wait(static_cast<unsigned>(2 * n), sizeof(message));
            short_results = s < 0 ? -1 : short_results + s;
        }
        const double uring = (cpu_seconds() - t0) * 1e6 / static_cast<double>(rounds * n);
        if (short_results != 0) {
            std::fprintf(stderr, "sb-syscall-cost: io_uring operations went short or failed\n");
            return 1;
        }
        std::printf(
            "N = %2d connections: send + recv %.2f us per pair as system calls, "
            "%.2f us with io_uring (one io_uring_enter per round)\n",
            n, calls, uring);
        for (int fd : a)
            close(fd);
        for (int fd : b)
            close(fd);
    }
    return 0;
}
