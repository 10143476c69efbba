// SessionHarness, Peer and FakeBackend (see session_harness.h).
#include "session_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "config/loader.h"
#include "http/upgrade_response.h"
#include "log/logger.h"

namespace sb::test {

namespace {

uv_handle_t* as_handle(void* h) {
    return static_cast<uv_handle_t*>(h);
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The value of header `name` in an HTTP head, trimmed; empty if absent.
std::string header_value(std::string_view head, std::string_view name) {
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
        size_t start = pos + 2;
        size_t end = head.find("\r\n", start);
        if (end == std::string_view::npos) break;
        std::string_view line = head.substr(start, end - start);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
                v.remove_prefix(1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
                v.remove_suffix(1);
            return std::string(v);
        }
        pos = end;
    }
    return {};
}

// Loop time, for the guard: tests must not wait on the wall clock.
constexpr size_t kMaxIterations = 1'000'000;

}  // namespace

// ---- frames ----

uint16_t Frame::close_code() const {
    if (payload.size() < 2) return 1005;
    return static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                 static_cast<uint8_t>(payload[1]));
}

std::string encode_frame(uint8_t opcode, std::string_view payload, bool masked, bool fin,
                         uint32_t mask_key) {
    std::string out;
    out.push_back(static_cast<char>((fin ? 0x80 : 0) | (opcode & 0x0F)));
    const uint8_t mask_bit = masked ? 0x80 : 0;
    const uint64_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<char>(mask_bit | n));
    } else if (n < 65536) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((n >> shift) & 0xFF));
    }
    uint8_t key[4] = {static_cast<uint8_t>(mask_key >> 24), static_cast<uint8_t>(mask_key >> 16),
                      static_cast<uint8_t>(mask_key >> 8), static_cast<uint8_t>(mask_key)};
    if (masked) out.append(reinterpret_cast<const char*>(key), 4);
    size_t at = out.size();
    out.append(payload);
    if (masked) {
        for (size_t i = 0; i < payload.size(); ++i)
            out[at + i] = static_cast<char>(static_cast<uint8_t>(out[at + i]) ^ key[i & 3]);
    }
    return out;
}

std::string close_payload(uint16_t code, std::string_view reason) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}

size_t decode_frames(std::string_view bytes, std::vector<Frame>& out) {
    size_t pos = 0;
    for (;;) {
        std::string_view rest = bytes.substr(pos);
        if (rest.size() < 2) return pos;
        auto b0 = static_cast<uint8_t>(rest[0]);
        auto b1 = static_cast<uint8_t>(rest[1]);
        size_t header = 2;
        uint64_t len = b1 & 0x7F;
        if (len == 126) {
            if (rest.size() < 4) return pos;
            len = (uint64_t{static_cast<uint8_t>(rest[2])} << 8) | static_cast<uint8_t>(rest[3]);
            header = 4;
        } else if (len == 127) {
            if (rest.size() < 10) return pos;
            len = 0;
            for (size_t i = 2; i < 10; ++i)
                len = (len << 8) | static_cast<uint8_t>(rest[i]);
            header = 10;
        }
        bool masked = (b1 & 0x80) != 0;
        if (masked) header += 4;
        if (rest.size() < header || rest.size() - header < len) return pos;
        Frame f;
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0F;
        f.masked = masked;
        f.payload.assign(rest.substr(header, static_cast<size_t>(len)));
        if (masked) {
            const char* key = rest.data() + header - 4;
            for (size_t i = 0; i < f.payload.size(); ++i)
                f.payload[i] = static_cast<char>(f.payload[i] ^ key[i & 3]);
        }
        f.wire_size = header + static_cast<size_t>(len);
        out.push_back(std::move(f));
        pos += header + static_cast<size_t>(len);
    }
}

// ---- HTTP ----

std::string upgrade_request(std::string_view path, std::string_view key) {
    std::string r = "GET ";
    r += path;
    r += " HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: ";
    r += key;
    r += "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    return r;
}

size_t head_length(std::string_view bytes) {
    size_t end = bytes.find("\r\n\r\n");
    return end == std::string_view::npos ? 0 : end + 4;
}

// ---- Peer ----

struct Peer::WriteRequest {
    uv_write_t req;
    std::string bytes;
    Peer* peer;
};

namespace {
struct ShutdownRequest {
    uv_shutdown_t req;
};
constexpr size_t kReadBuffer = 64 * 1024;
}  // namespace

Peer::Peer(uv_loop_t* loop, Kind kind) : kind_(kind), buffer_(new char[kReadBuffer]) {
    if (kind == Kind::Pipe) {
        uv_pipe_init(loop, &handle_.pipe, 0);
    } else {
        uv_tcp_init(loop, &handle_.tcp);
    }
    handle_.stream.data = this;
    open_ = true;
}

Peer::~Peer() = default;

bool Peer::open(int fd) {
    int rc = kind_ == Kind::Pipe ? uv_pipe_open(&handle_.pipe, fd) : uv_tcp_open(&handle_.tcp, fd);
    if (rc != 0) {
        ::close(fd);
        close();
        return false;
    }
    start_reading();
    return true;
}

void Peer::start_reading() {
    if (!open_ || reading_ || ended()) return;
    if (uv_read_start(&handle_.stream, &Peer::on_alloc, &Peer::on_read_cb) == 0) reading_ = true;
}

void Peer::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* p = static_cast<Peer*>(h->data);
    *buf = uv_buf_init(p->buffer_.get(), kReadBuffer);
}

void Peer::on_read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* p = static_cast<Peer*>(s->data);
    if (n > 0) {
        p->received_.append(buf->base, static_cast<size_t>(n));
    } else if (n == UV_EOF) {
        p->eof_ = true;
    } else if (n < 0) {
        p->read_error_ = static_cast<int>(n);
    } else {
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        p->reading_ = false;
    }
    if (p->on_read) p->on_read(*p);
}

std::string_view Peer::received_after(size_t skip) const {
    std::string_view all = received_;
    return skip >= all.size() ? std::string_view() : all.substr(skip);
}

void Peer::write(std::string_view bytes) {
    if (!open_ || bytes.empty()) return;
    auto* w = new WriteRequest{{}, std::string(bytes), this};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    int rc = uv_write(&w->req, &handle_.stream, &buf, 1, &Peer::on_write);
    if (rc != 0) {
        write_error_ = rc;
        delete w;
        return;
    }
    ++writes_pending_;
}

void Peer::on_write(uv_write_t* req, int status) noexcept {
    auto* w = static_cast<WriteRequest*>(req->data);
    Peer* p = w->peer;
    --p->writes_pending_;
    if (status == 0) {
        p->bytes_written_ += w->bytes.size();
    } else if (status != UV_ECANCELED && p->write_error_ == 0) {
        p->write_error_ = status;
    }
    delete w;
}

void Peer::pause() {
    if (reading_) uv_read_stop(&handle_.stream);
    reading_ = false;
}

void Peer::resume() {
    start_reading();
}

void Peer::shutdown() {
    if (!open_) return;
    auto* s = new ShutdownRequest{};
    s->req.data = s;
    if (uv_shutdown(&s->req, &handle_.stream, &Peer::on_shutdown) != 0) delete s;
}

void Peer::on_shutdown(uv_shutdown_t* req, int) noexcept {
    delete static_cast<ShutdownRequest*>(req->data);
}

void Peer::close() {
    if (!open_) return;
    open_ = false;
    reading_ = false;
    uv_close(as_handle(&handle_), &Peer::on_close);
}

void Peer::reset() {
    if (!open_) return;
    if (kind_ == Kind::Tcp) {
        open_ = false;
        reading_ = false;
        if (uv_tcp_close_reset(&handle_.tcp, &Peer::on_close) == 0) return;
        open_ = true;
    }
    close();
}

void Peer::on_close(uv_handle_t* h) noexcept {
    static_cast<Peer*>(h->data)->closed_ = true;
}

// ---- FakeBackend ----

FakeBackend::FakeBackend(SessionHarness& harness, BackendScript script)
    : harness_(harness), script_(std::move(script)) {}

FakeBackend::~FakeBackend() = default;

bool FakeBackend::start() {
    uv_tcp_init(harness_.loop(), &server_);
    server_.data = this;
    server_closed_ = false;
    listening_ = true;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&server_, reinterpret_cast<const sockaddr*>(&addr), 0) != 0 ||
        uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 64, &FakeBackend::on_connection) != 0) {
        stop();
        return false;
    }
    sockaddr_in bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
    return true;
}

void FakeBackend::stop() {
    if (!listening_) return;
    listening_ = false;
    uv_close(as_handle(&server_), &FakeBackend::on_close);
}

void FakeBackend::on_close(uv_handle_t* h) noexcept {
    static_cast<FakeBackend*>(h->data)->server_closed_ = true;
}

void FakeBackend::on_connection(uv_stream_t* server, int status) noexcept {
    auto* b = static_cast<FakeBackend*>(server->data);
    if (status != 0) return;
    Peer& p = b->harness_.make_peer(Peer::Kind::Tcp);
    if (uv_accept(server, p.stream()) != 0) {
        p.close();
        return;
    }
    b->connections_.push_back(std::make_unique<BackendConnection>());
    BackendConnection* c = b->connections_.back().get();
    c->peer = &p;
    if (b->script_.receive_buffer > 0) {
        int size = b->script_.receive_buffer;
        uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(p.stream()), &size);
    }
    p.on_read = [b, c](Peer&) { b->on_bytes(*c); };
    p.start_reading();
}

void FakeBackend::on_bytes(BackendConnection& c) {
    Peer& p = *c.peer;
    if (c.request_head.empty()) {
        size_t n = head_length(p.received());
        if (n == 0) return;
        c.request_head = p.received().substr(0, n);
        answer(c);
    }
    bool websocket = script_.answer == BackendScript::Answer::Upgrade ||
                     script_.answer == BackendScript::Answer::WrongAccept;
    if (c.answered && websocket) {
        std::vector<Frame> fresh;
        c.decoded +=
            decode_frames(c.stream().substr(std::min(c.decoded, c.stream().size())), fresh);
        for (Frame& f : fresh) {
            if (script_.echo && !c.close_seen && p.is_open()) {
                if (f.opcode == kClose) {
                    // The server answers the Close and closes TCP first (RFC 6455 §7.1.1).
                    p.write(server_frame(kClose, f.payload));
                    p.shutdown();
                } else if (f.opcode == kPing) {
                    p.write(server_frame(kPong, f.payload));
                } else if (f.opcode != kPong) {
                    p.write(server_frame(f.opcode, f.payload, f.fin));
                }
            }
            if (f.opcode == kClose) c.close_seen = true;
            c.frames.push_back(std::move(f));
        }
    }
    // An echoing backend hangs up once the proxy has (a real server would too).
    if (p.ended() && script_.echo && p.is_open()) p.close();
}

void FakeBackend::answer(BackendConnection& c) {
    Peer& p = *c.peer;
    c.answered = true;
    using Answer = BackendScript::Answer;
    if (!script_.interim.empty() &&
        (script_.answer == Answer::Upgrade || script_.answer == Answer::WrongAccept ||
         script_.answer == Answer::Raw)) {
        p.write(script_.interim);
    }
    switch (script_.answer) {
        case Answer::Upgrade:
        case Answer::WrongAccept: {
            std::string key = header_value(c.request_head, "sec-websocket-key");
            std::string accept = script_.answer == Answer::Upgrade
                                     ? http::websocket_accept(key)
                                     : http::websocket_accept("AAAAAAAAAAAAAAAAAAAAAA==");
            p.write(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                accept + "\r\n\r\n" + script_.after_answer);
            break;
        }
        case Answer::Raw:
            p.write(script_.raw_answer + script_.after_answer);
            break;
        case Answer::Silent:
            break;
        case Answer::Close:
            p.shutdown();
            break;
        case Answer::Reset:
            p.reset();
            break;
    }
}

// ---- SessionHarness ----

std::string TeardownReport::describe() const {
    std::string s = "open handles: [";
    for (size_t i = 0; i < open_handles.size(); ++i)
        s += (i ? ", " : "") + open_handles[i];
    s += "], uv_loop_close: " + std::to_string(loop_close) +
         ", sessions left: " + std::to_string(sessions_left) +
         ", blocks in use: " + std::to_string(blocks_in_use) +
         ", pauses: " + std::to_string(pauses) + ", resumes: " + std::to_string(resumes);
    return s;
}

SessionHarness::SessionHarness(HarnessOptions options) {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &guard_);
    guard_.data = this;
    context_ = std::make_unique<session::WorkerContext>(&loop_, 0, stats_);
    previous_context_ = session::WorkerContext::current;
    session::WorkerContext::current = context_.get();

    // Refusals are logged at info: keep the test output to real errors, and the
    // access log (a writer thread) off.
    log::Logger::get().configure(log::Level::Error, false);
    std::string ignored;
    log::Logger::get().set_access_log("off", ignored);

    backend_ = std::make_unique<FakeBackend>(*this, std::move(options.script));
    if (!backend_->start()) {
        error_ = "the fake backend cannot listen on 127.0.0.1:0";
        return;
    }
    std::string toml =
        "[[listeners]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n"
        "pool = \"chat\"\n" +
        options.listener_toml + "\n\n[pools.chat]\nbackends = [{ address = \"127.0.0.1:" +
        std::to_string(backend_->port()) + "\" }]\nretries = 0\n" + options.pool_toml +
        "\n\n[pools.chat.websocket]\n" + options.websocket_toml + "\n";
    auto loaded = config::load_string(toml, "component.toml");
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors)
            error_ += e.to_string() + "\n";
        return;
    }
    std::vector<config::ConfigError> errors;
    generation_ = pool::Generation::build(loaded.config, 1, nullptr, errors);
    if (!generation_) {
        for (const auto& e : errors)
            error_ += e.to_string() + "\n";
        return;
    }
    listener_ = generation_->listener("public");
    if (listener_ == nullptr) error_ = "no listener \"public\" in the generation";
}

SessionHarness::~SessionHarness() {
    teardown();
    session::WorkerContext::current = previous_context_;
    // The loop is closed: the context's handles (its timer) are too.
    context_.reset();
}

Peer& SessionHarness::make_peer(Peer::Kind kind) {
    peers_.push_back(std::make_unique<Peer>(&loop_, kind));
    return *peers_.back();
}

Peer* SessionHarness::connect_client(Transport transport) {
    if (!ok()) return nullptr;
    int session_fd = -1;
    Peer* peer = nullptr;
    sockaddr_storage from{};
    if (transport == Transport::SocketPair) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
            error_ = "socketpair failed";
            return nullptr;
        }
        peer = &make_peer(Peer::Kind::Pipe);
        if (!peer->open(fds[1])) {
            ::close(fds[0]);
            error_ = "libuv refused the socketpair end";
            return nullptr;
        }
        session_fd = fds[0];
        auto* v4 = reinterpret_cast<sockaddr_in*>(&from);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(40000);
        v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        // A loopback pair made synchronously: the kernel completes a loopback connect
        // before connect() returns, so accept() does not wait.
        int listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        int client_fd = -1;
        bool made = listen_fd >= 0 &&
                    ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::listen(listen_fd, 1) == 0 &&
                    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
                    (client_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
                    ::connect(client_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (made) {
            socklen_t from_len = sizeof from;
            session_fd =
                ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_CLOEXEC);
        }
        if (listen_fd >= 0) ::close(listen_fd);
        if (session_fd < 0) {
            if (client_fd >= 0) ::close(client_fd);
            error_ = "cannot make a TCP loopback pair";
            return nullptr;
        }
        peer = &make_peer(Peer::Kind::Tcp);
        if (!peer->open(client_fd)) {
            ::close(session_fd);
            error_ = "libuv refused the TCP client socket";
            return nullptr;
        }
    }
    auto address = config::SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&from));
    session::Session::accept(*context_, generation_, *listener_, session_fd, address);
    return peer;
}

void SessionHarness::on_guard(uv_timer_t* t) noexcept {
    static_cast<SessionHarness*>(t->data)->guard_fired_ = true;
}

bool SessionHarness::run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    if (torn_down_) return done();
    guard_fired_ = false;
    uv_update_time(&loop_);
    uv_timer_start(&guard_, &SessionHarness::on_guard, static_cast<uint64_t>(limit.count()), 0);
    bool held = false;
    for (size_t i = 0; i < kMaxIterations; ++i) {
        sample();
        if (done()) {
            held = true;
            break;
        }
        if (guard_fired_) break;
        // Blocks until something happens: at the latest, the guard timer fires.
        uv_run(&loop_, UV_RUN_ONCE);
    }
    uv_timer_stop(&guard_);
    return held;
}

void SessionHarness::run_iterations(int n) {
    for (int i = 0; i < n && !torn_down_; ++i) {
        uv_run(&loop_, UV_RUN_NOWAIT);
        sample();
    }
}

Peer* SessionHarness::open_websocket(std::string_view glued, Transport transport) {
    Peer* client = connect_client(transport);
    if (client == nullptr) return nullptr;
    client->write(upgrade_request() + std::string(glued));
    bool upgraded = run_until([&] {
        size_t at = client->received().find("HTTP/1.1 101");
        return at != std::string::npos && head_length(client->received_after(at)) > 0;
    });
    return upgraded ? client : nullptr;
}

TeardownReport SessionHarness::teardown() {
    if (torn_down_) return report_;
    torn_down_ = true;
    TeardownReport& r = report_;

    // Hang up every peer; a session must end on its own once both of its peers are gone.
    for (auto& p : peers_)
        p->close();
    backend_->stop();
    auto no_sessions = [&] { return context_->sessions.empty(); };
    torn_down_ = false;  // run_until is still needed below
    // At the latest, a session whose peers are gone ends at its linger deadline.
    run_until(no_sessions, std::chrono::milliseconds(session::Session::kLingerMs + 1000));
    r.sessions_left = context_->sessions.size();
    if (r.sessions_left > 0) {
        // Reported above; aborted so that the rest of the checks still mean something.
        for (auto* s = context_->sessions.first(); s != nullptr;
             s = session::SessionList::next(s)) {
            s->abort(metrics::CloseReason::Shutdown);
        }
        run_until(no_sessions, std::chrono::milliseconds(2000));
    }
    torn_down_ = true;

    // The harness's own handles: the guard timer and the context's deadline timer.
    uv_timer_stop(&guard_);
    uv_close(as_handle(&guard_), nullptr);
    if (context_->timers.size() == 0) context_->timers.close();
    context_->idle.close_all();  // as a draining worker does
    for (int i = 0; i < 100 && uv_loop_alive(&loop_) != 0; ++i)
        uv_run(&loop_, UV_RUN_NOWAIT);
    uv_run(&loop_, UV_RUN_NOWAIT);

    // Whatever is still there was leaked by someone: name it, then close it so that
    // the loop itself can close.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void* arg) {
            auto* names = static_cast<std::vector<std::string>*>(arg);
            std::string name = uv_handle_type_name(uv_handle_get_type(h));
            if (uv_is_closing(h)) name += " (closing)";
            if (uv_is_active(h)) name += " (active)";
            names->push_back(name);
        },
        &r.open_handles);
    if (!r.open_handles.empty()) {
        uv_walk(
            &loop_,
            [](uv_handle_t* h, void*) {
                if (!uv_is_closing(h)) uv_close(h, nullptr);
            },
            nullptr);
        for (int i = 0; i < 100 && uv_loop_alive(&loop_) != 0; ++i)
            uv_run(&loop_, UV_RUN_NOWAIT);
    }
    r.loop_close = uv_loop_close(&loop_);
    r.blocks_in_use = context_->blocks.in_use();
    r.pauses = stats_.pauses.value();
    r.resumes = stats_.resumes.value();
    return r;
}

}  // namespace sb::test
