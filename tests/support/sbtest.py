"""Test harness for switchboard integration tests.

Starts the real binary (SB_BINARY) with an inline configuration in a temporary
directory, reads back the addresses it bound from its `listening NAME ADDRESS` lines,
and starts real backends: the project's C++ echo backend (SB_TOOLS_DIR) or Python
backends built on Debian's python3-websockets that transform what they echo and record
the handshake they received, proving bytes really crossed the proxy.

Every wait is bounded; every process a test starts is stopped by its PID at teardown.
Nothing here sleeps to synchronise: helpers poll a condition with a deadline.
"""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

BINARY = os.environ.get("SB_BINARY", "switchboard")
TOOLS_DIR = os.environ.get("SB_TOOLS_DIR", "")
SOURCE_DIR = os.environ.get("SB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


_io_uring_works = None
_io_uring_features = 0


def io_uring_works():
    """Whether this kernel lets a process set up an io_uring as switchboard's ring does
    (uv/ring.cpp: IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, Linux 6.1,
    with a completion queue of 16,384 entries), asked of the kernel directly
    (io_uring_setup is system call 425 on x86-64 and arm64; elsewhere: no)."""
    global _io_uring_works, _io_uring_features
    if _io_uring_works is None:
        import ctypes
        import platform
        if platform.machine() not in ("x86_64", "aarch64"):
            _io_uring_works = False
            return False
        libc = ctypes.CDLL(None, use_errno=True)
        params = (ctypes.c_uint32 * 30)()  # struct io_uring_params, 120 bytes
        params[1] = 16384  # cq_entries
        params[2] = (1 << 12) | (1 << 13) | (1 << 3)  # flags, with IORING_SETUP_CQSIZE
        fd = libc.syscall(425, 256, params)
        _io_uring_works = fd >= 0
        if fd >= 0:
            _io_uring_features = params[5]
            os.close(fd)
    return _io_uring_works


def io_uring_holds_waits():
    """Whether this kernel's io_uring can hold a wait for more completions
    (IORING_FEAT_MIN_TIMEOUT, Linux 6.12), which switchboard's ring coalesces wakeups
    with (uv/ring.h, kCoalesceUs)."""
    return io_uring_works() and bool(_io_uring_features & (1 << 15))


def _poll(predicate, deadline, timeout, what):
    """predicate()'s value; fails once it is still falsy past the deadline."""
    value = predicate()
    if not value and time.monotonic() > deadline:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return value


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Polls predicate() until it returns a truthy value, or fails after timeout."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(predicate, deadline, timeout, what)):
        time.sleep(interval)
    return value


async def wait_for_async(predicate, timeout=10.0, interval=0.02, what="condition"):
    """wait_for for coroutines: polls predicate() (a plain function) without blocking
    the event loop."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(predicate, deadline, timeout, what)):
        await asyncio.sleep(interval)
    return value


class Process:
    """A child process whose stdout and stderr lines are collected by threads."""

    def __init__(self, argv, env=None, cwd=None, preexec_fn=None):
        self.argv = argv
        self.lines = []  # (stream, line) in arrival order
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, preexec_fn=preexec_fn)
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, name):
        for raw in iter(stream.readline, b""):
            with self._lock:
                self.lines.append((name, raw.decode("utf-8", "replace").rstrip("\n")))
        stream.close()

    @property
    def pid(self):
        return self.proc.pid

    def output(self, stream=None):
        with self._lock:
            return [line for s, line in self.lines if stream is None or s == stream]

    def wait_line(self, pattern, timeout=10.0, stream=None):
        """Returns the first re.match of pattern against an output line."""
        regex = re.compile(pattern)

        def find():
            if self.proc.poll() is not None and not self._threads[0].is_alive():
                # Exited: one last look, then fail with what it said.
                for line in self.output(stream):
                    m = regex.search(line)
                    if m:
                        return m
                raise AssertionError(
                    f"{self.argv[0]} exited with {self.proc.returncode} before printing "
                    f"{pattern!r}; output:\n" + "\n".join(self.output()))
            for line in self.output(stream):
                m = regex.search(line)
                if m:
                    return m
            return None

        return wait_for(find, timeout, what=f"line {pattern!r} from {self.argv[0]}")

    def signal(self, signum):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def wait(self, timeout=15.0):
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=3.0):
        """SIGTERM; if it has not exited in `timeout` (a drain waiting for peers that
        never answer), SIGTERM again, which exits at once; SIGKILL as a last resort.
        Returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            for signum in (signal.SIGTERM, signal.SIGKILL):
                try:
                    self.proc.wait(timeout=timeout)
                    break
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signum)
            self.proc.wait(timeout=5)
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class Switchboard(Process):
    """The switchboard binary running on an inline configuration.

    `config` is TOML text; it is written to a fresh temporary directory, which tests
    may also use for their own files (`self.dir`).
    """

    def __init__(self, config, listeners=("public",), extra_args=(), wait=True, env=None,
                 preexec_fn=None):
        self.dir = tempfile.mkdtemp(prefix="sbtest-")
        self.config_path = os.path.join(self.dir, "switchboard.toml")
        self.write_config(config)
        # SB_NO_RING=1 (set by ctest for the suites it runs twice): the relay's I/O
        # goes through libuv, as on a kernel without io_uring.
        if os.environ.get("SB_NO_RING") == "1":
            extra_args = ("--debug-no-ring", *extra_args)
        super().__init__([BINARY, "-c", self.config_path, *extra_args], env=env,
                         preexec_fn=preexec_fn)
        self.addresses = {}
        # "io_uring" or "libuv": what worker 0 said its relay uses (None: not said).
        self.relay_io = None
        # What worker 0 said of coalescing on the ring: its bound in microseconds as a
        # string, "off", or None (no ring).
        self.ring_coalesce_us = None
        if wait:
            for name in listeners:
                self.wait_listening(name)
            if listeners:
                self._check_relay_io(forced_libuv="--debug-no-ring" in extra_args)

    def _check_relay_io(self, forced_libuv):
        """Reads which I/O the relay uses (worker 0 says it from its own thread, maybe
        after the listeners), and fails where this kernel offers switchboard's ring and
        the relay runs on libuv anyway, untold: a ring that stopped opening would
        otherwise only make the ring's tests skip and every other test pass on libuv.
        Where the kernel ran out of memory for the ring, libuv is the right answer."""
        try:
            m = self.wait_line(r"relay I/O through (io_uring|libuv)(.*)", 10.0, stream="err")
        except AssertionError:
            self.stop()
            raise
        self.relay_io = m.group(1)
        c = re.search(r"coalesce_us=(\S+)", m.group(2))
        self.ring_coalesce_us = c.group(1) if c else None
        if (self.relay_io == "libuv" and not forced_libuv and io_uring_works()
                and "not enough memory" not in m.group(2)):
            self.stop()
            raise AssertionError("this kernel sets up an io_uring as switchboard's ring "
                                 f"needs, but the relay runs on libuv:{m.group(2)}")

    def write_config(self, config):
        with open(self.config_path, "w") as f:
            f.write(config)

    def wait_listening(self, name, timeout=10.0):
        m = self.wait_line(rf"^listening {re.escape(name)} (\S+)$", timeout, stream="err")
        host, port = split_address(m.group(1))
        self.addresses[name] = (host, port)
        return host, port

    def port(self, name="public"):
        return self.addresses[name][1]

    def url(self, path="/", name="public"):
        host, port = self.addresses[name]
        return f"ws://{host}:{port}{path}"

    def access_log(self):
        """Access log lines (JSON objects with a "listener" key) printed so far."""
        records = []
        for line in self.output("err"):
            if line.startswith("{") and '"listener"' in line:
                records.append(json.loads(line))
        return records

    def wait_access_log(self, count, timeout=10.0):
        return wait_for(lambda: len(self.access_log()) >= count and self.access_log(),
                        timeout, what=f"{count} access log lines")


def split_address(text):
    if text.startswith("["):
        host, _, port = text[1:].rpartition("]:")
        return host, int(port)
    host, _, port = text.rpartition(":")
    return host, int(port)


class EchoBackend(Process):
    """The project's C++ echo backend (tools/sb-echo-backend)."""

    def __init__(self, name="echo"):
        binary = os.path.join(TOOLS_DIR, "sb-echo-backend")
        super().__init__([binary, "--listen", "127.0.0.1:0", "--name", name])
        m = self.wait_line(r"^listening (\S+)$", stream="out")
        self.host, self.port = split_address(m.group(1))
        self.name = name

    @property
    def address(self):
        return f"{self.host}:{self.port}"


class PyBackend:
    """A backend on Debian's python3-websockets, in its own thread and event loop.

    `handler(ws, path)` is an async function run per connection; the default echoes
    each message prefixed with "<name>:" for text (reversed for binary), so a test can
    prove the message really crossed both ways. Every handshake's request headers are
    recorded in `self.handshakes` (list of dicts, lower-case names).
    """

    def __init__(self, name="py", handler=None, subprotocols=None, port=0, host="127.0.0.1",
                 keep_messages=True, **serve_kwargs):
        import websockets  # Debian's python3-websockets

        self.name = name
        # False: `received` stays empty (a long or heavy test's messages are not kept).
        self.keep_messages = keep_messages
        self.host = host  # any 127.0.0.0/8 address reaches loopback (DNS tests use several)
        self.port = port
        self.handshakes = []
        self.paths = []
        self.received = []
        self._handler = handler or self._transform_echo
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = None
        self._serve_kwargs = dict(max_size=None, subprotocols=subprotocols, **serve_kwargs)
        self._websockets = websockets
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("python backend did not start")

    async def _transform_echo(self, ws, path):
        try:
            async for message in ws:
                if self.keep_messages:
                    self.received.append(message)
                if isinstance(message, str):
                    await ws.send(f"{self.name}:{message}")
                else:
                    await ws.send(message[::-1])
        except self._websockets.ConnectionClosed:
            pass

    async def _serve(self):
        async def handler(ws, path):
            self.handshakes.append({k.lower(): v for k, v in ws.request_headers.raw_items()})
            self.paths.append(path)
            await self._handler(ws, path)

        self._stop = asyncio.get_running_loop().create_future()
        async with self._websockets.serve(handler, self.host, self.port,
                                          **self._serve_kwargs) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop
            # Stopping means gone: cut the connections too, as a killed server would.
            for ws in list(server.websockets):
                ws.transport.abort()

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def stop(self):
        if self._stop is not None and not self._stop.done():
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


async def whoami(url, message="who", **kwargs):
    """Connects, sends one text message and returns the name of the PyBackend that
    answered ("name:message" comes back)."""
    import websockets

    async with websockets.connect(url, **kwargs) as ws:
        await ws.send(message)
        reply = await ws.recv()
        return reply.split(":", 1)[0]


async def gather_limited(coros, limit=50):
    """Runs coroutines with at most `limit` at a time; returns their results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(c):
        async with semaphore:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


def free_port():
    """A port nothing listens on (bound then released), for 'backend refused' tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_dns_port():
    """A port free for both UDP and TCP on 127.0.0.1, for a DNS server (dnsmasq binds
    both). Taken below the kernel's ephemeral range (ip_local_port_range starts at
    32768), so the outgoing connections of tests running in parallel, which take
    ephemeral ports, cannot be holding it when the server starts or restarts."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free for both UDP and TCP")


DNSMASQ = "/usr/sbin/dnsmasq"  # Debian's dnsmasq-base


class Dnsmasq:
    """dnsmasq in the foreground on 127.0.0.1:PORT, answering only from its own hosts
    file and SRV records (--local=/test/: names under .test it does not know get
    NXDOMAIN, nothing is forwarded). Logs queries to stderr."""

    def __init__(self, directory, port=None, hosts=(), srv=()):
        self.dir = directory
        self.port = port or free_dns_port()
        self.hosts_path = os.path.join(directory, "hosts")
        self.srv = list(srv)
        self.write_hosts(hosts)
        self.proc = None
        self.start()

    def write_hosts(self, hosts):
        """hosts: (ip, name) pairs."""
        tmp = self.hosts_path + ".tmp"
        with open(tmp, "w") as f:
            for ip, name in hosts:
                f.write(f"{ip} {name}\n")
        os.replace(tmp, self.hosts_path)

    def start(self):
        argv = [DNSMASQ, "--keep-in-foreground", f"--port={self.port}",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                f"--addn-hosts={self.hosts_path}", "--local=/test/", "--pid-file=",
                "--log-facility=-", "--log-queries", "--cache-size=0", "--local-ttl=0"]
        if os.geteuid() == 0:
            argv.append("--user=root")  # dnsmasq drops to "nobody" otherwise
        for name, target, port, priority, weight in self.srv:
            argv.append(f"--srv-host={name},{target},{port},{priority},{weight}")
        self.proc = Process(argv)
        self.proc.wait_line(r"read .*hosts", timeout=10)

    def reload_hosts(self, hosts):
        self.write_hosts(hosts)
        self.proc.signal(signal.SIGHUP)

    def restart(self, srv=None):
        self.stop()
        if srv is not None:
            self.srv = list(srv)
        self.start()

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


def admin_get(sb, path):
    """The body of GET `path` on the admin listener of `sb` (started with "admin" in its
    listeners)."""
    host, port = sb.addresses["admin"]
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as r:
        return r.read().decode()


def raw_exchange(port, data, timeout=5.0, host="127.0.0.1"):
    """Sends raw bytes, returns everything the peer sent until it closed or timed out."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


def upgrade_request(path="/", host="example.com", extra="", version="13",
                    key="dGhlIHNhbXBsZSBub25jZQ=="):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: {version}\r\n{extra}\r\n").encode()


def handshake_status(port, request, timeout=5.0):
    """Sends a request head and returns the status of the answer's head, without
    waiting for the connection to end (a 101 keeps it open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return status_of(read_head(s))


def status_of(response):
    """The status code of a raw HTTP response, or None."""
    m = re.match(rb"HTTP/1\.1 (\d{3})", response)
    return int(m.group(1)) if m else None


def run(coro, timeout=60.0):
    """Runs a coroutine on a fresh event loop with a hard timeout."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def config(backends, pool="chat", listener_extra="", pool_extra="", top="", workers=2):
    """A one-listener, one-pool configuration on 127.0.0.1:0."""
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    return f"""
{top}
[server]
workers = {workers}

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "{pool}"
{listener_extra}

[pools.{pool}]
backends = [ {backend_list} ]
{pool_extra}
"""


class RawBackend:
    """A plain TCP server whose per-connection behaviour is a function of the socket:
    for backends that misbehave (never answer, answer garbage, reset)."""

    def __init__(self, behaviour):
        self._behaviour = behaviour
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.connections = []
        self._running = True
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self):
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self._behaviour(conn)
        except OSError:
            pass

    def stop(self):
        self._running = False
        self._thread.join(timeout=5)
        self._sock.close()
        for c in self.connections:
            try:
                c.close()
            except OSError:
                pass


def read_head(conn, timeout=5.0):
    """Reads an HTTP head from a socket (until CRLFCRLF)."""
    conn.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def accept_upgrade(conn, then=b""):
    """Reads a WebSocket upgrade from a raw socket and answers 101 (for RawBackend);
    `then` goes out in the same write, right behind the 101's head."""
    import base64
    import hashlib

    head = read_head(conn).decode("latin-1")
    key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode()
                 + then)
    return head


class RawWebSocket:
    """A WebSocket client on a raw socket, for tests where a real client would be too
    polite: it can send unmasked or malformed frames, and never answers pings unless
    told to."""

    def __init__(self, port, path="/", host="127.0.0.1", extra="", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(upgrade_request(path, extra=extra))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise AssertionError(f"closed during the handshake: {head!r}")
            head += chunk
        self.head = head
        self.status = status_of(head)
        self._buffer = b""

    def send_frame(self, opcode, payload=b"", fin=True, masked=True, rsv=0):
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, masked=masked, rsv=rsv))

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next frame, or None when the peer closed."""
        self.sock.settimeout(timeout)
        frame = decode_frame(self._buffer)
        while frame is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
            frame = decode_frame(self._buffer)
        fin, opcode, payload, used = frame
        self._buffer = self._buffer[used:]
        return fin, opcode, payload

    def recv_close(self, timeout=5.0, answer=True):
        """Reads frames until a Close; returns its code (None if the socket closed
        first). Answers it with a Close of its own, as RFC 6455 asks, unless told not to."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if frame is None:
                return None
            if frame[1] == 8:
                if answer:
                    try:
                        self.send_frame(8, frame[2][:2])
                    except OSError:
                        pass
                return int.from_bytes(frame[2][:2], "big") if len(frame[2]) >= 2 else 1005
        raise AssertionError("no Close frame in time")

    def close(self):
        self.sock.close()


def encode_frame(opcode, payload=b"", fin=True, masked=True, rsv=0):
    import os as _os

    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = _os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def decode_frame(data):
    """(fin, opcode, unmasked payload, bytes used) or None if incomplete."""
    if len(data) < 2:
        return None
    fin = bool(data[0] & 0x80)
    opcode = data[0] & 0x0F
    masked = bool(data[1] & 0x80)
    n = data[1] & 0x7F
    at = 2
    if n == 126:
        if len(data) < 4:
            return None
        n = int.from_bytes(data[2:4], "big")
        at = 4
    elif n == 127:
        if len(data) < 10:
            return None
        n = int.from_bytes(data[2:10], "big")
        at = 10
    key = b""
    if masked:
        if len(data) < at + 4:
            return None
        key = data[at:at + 4]
        at += 4
    if len(data) < at + n:
        return None
    payload = data[at:at + n]
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return fin, opcode, payload, at + n


class RecordingBackend(RawBackend):
    """A raw WebSocket backend that answers 101, then records every frame it receives
    (with whether it was masked) and echoes data frames unmasked."""

    def __init__(self):
        self.frames = []  # (opcode, payload, masked)
        super().__init__(self._serve_one)

    def _serve_one(self, conn):
        accept_upgrade(conn)
        buffer = b""
        conn.settimeout(30)
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                conn.close()  # the proxy passed on the client's hang-up: hang up too
                return
            buffer += chunk
            while True:
                if len(buffer) < 2:
                    break
                masked = bool(buffer[1] & 0x80)
                frame = decode_frame(buffer)
                if frame is None:
                    break
                fin, opcode, payload, used = frame
                buffer = buffer[used:]
                self.frames.append((opcode, payload, masked))
                if opcode in (1, 2):
                    conn.sendall(encode_frame(opcode, payload, masked=False))
                elif opcode == 8:
                    conn.sendall(encode_frame(8, payload[:2], masked=False))
                    conn.close()
                    return


class TestPki:
    """A throwaway certificate authority and leaf certificates made with the `openssl`
    command, in a temporary directory."""

    def __init__(self, name="Test CA"):
        self.dir = tempfile.mkdtemp(prefix="sbpki-")
        self.ca_key = os.path.join(self.dir, f"{_slug(name)}.key")
        self.ca = os.path.join(self.dir, f"{_slug(name)}.pem")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-days", "2", "-nodes", "-keyout", self.ca_key, "-out", self.ca,
                      "-subj", f"/CN={name}")

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def leaf(self, name, dns=(), ips=(), kind="rsa"):
        """Issues a certificate; returns (certificate path, key path)."""
        base = os.path.join(self.dir, _slug(name) + "-" + kind)
        key, csr, cert, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
        newkey = (["-newkey", "rsa:2048"] if kind == "rsa"
                  else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        self._openssl("req", "-new", *newkey, "-nodes", "-keyout", key, "-out", csr,
                      "-subj", f"/CN={name}")
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\n" if sans else "\n")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-days", "2", "-out", cert, "-extfile", ext)
        return cert, key

    def client_context(self):
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx

    def server_context(self, cert, key):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx


def _slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def s_client(port, *args, stdin=b"", timeout=10):
    """Runs `openssl s_client` against 127.0.0.1:port; returns its combined output."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=stdin, capture_output=True, timeout=timeout)
    return (r.stdout + r.stderr).decode("utf-8", "replace")
