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

BINARY = os.environ.get("SB_BINARY", "switchboard")
TOOLS_DIR = os.environ.get("SB_TOOLS_DIR", "")
SOURCE_DIR = os.environ.get("SB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Polls predicate() until it returns a truthy value, or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Process:
    """A child process whose stdout and stderr lines are collected by threads."""

    def __init__(self, argv, env=None, cwd=None):
        self.argv = argv
        self.lines = []  # (stream, line) in arrival order
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
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

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
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

    def __init__(self, config, listeners=("public",), extra_args=(), wait=True, env=None):
        self.dir = tempfile.mkdtemp(prefix="sbtest-")
        self.config_path = os.path.join(self.dir, "switchboard.toml")
        self.write_config(config)
        super().__init__([BINARY, "-c", self.config_path, *extra_args], env=env)
        self.addresses = {}
        if wait:
            for name in listeners:
                self.wait_listening(name)

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

    def __init__(self, name="py", handler=None, subprotocols=None, port=0, **serve_kwargs):
        import websockets  # Debian's python3-websockets

        self.name = name
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
        async with self._websockets.serve(handler, "127.0.0.1", self.port,
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
        return f"127.0.0.1:{self.port}"

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


def accept_upgrade(conn):
    """Reads a WebSocket upgrade from a raw socket and answers 101 (for RawBackend)."""
    import base64
    import hashlib

    head = read_head(conn).decode("latin-1")
    key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    return head
