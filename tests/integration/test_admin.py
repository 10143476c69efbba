"""The admin listener through the real binary (SPEC §4, §5): /healthz, /metrics with
exact deltas for known traffic (parsed by Debian's python3-prometheus-client), /status,
/route agreeing with where real clients land, access log lines, 404/405, and the live
status page loaded in headless Chromium (driven over the DevTools protocol); and the
hardening of issue 13: a /route key that is not UTF-8, HEAD, the request timeout and the
connection cap."""

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import websockets

from sbtest import (PyBackend, RawWebSocket, Switchboard, gather_limited, handshake_status, run,
                    status_of, upgrade_request, wait_for, whoami)


def admin_config(backends, extra_pool="", extra_listener="", workers=2):
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    return f"""
[server]
workers = {workers}

[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
{extra_listener}

[pools.chat]
backends = [ {backend_list} ]
hash_key = "query:room"
{extra_pool}
"""


def get(sb, path, method="GET"):
    host, port = sb.addresses["admin"]
    request = urllib.request.Request(f"http://{host}:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def raw_admin(sb, request, timeout=5.0):
    """Sends raw request bytes to the admin listener; returns (status line, headers as
    a dict, body bytes) of everything it answers before closing."""
    host, port = sb.addresses["admin"]
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def closed_by_peer(sock, timeout):
    """Whether the peer closes `sock` within `timeout` seconds (what it sent is ignored)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def scrape(sb):
    """Every sample of /metrics as {(name, frozenset(labels)): value}, parsed by the
    reference client library's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    status, content_type, text = get(sb, "/metrics")
    assert status == 200 and content_type.startswith("text/plain"), (status, content_type)
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class AdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backends = [PyBackend(f"b{i}") for i in range(3)]
        cls.sb = Switchboard(admin_config(
            [b.address for b in cls.backends], extra_listener="max_connections_per_ip = 50",
            extra_pool="[pools.chat.websocket]\nmax_message_bytes = 1000"),
            listeners=("admin", "public"))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        for b in cls.backends:
            b.stop()

    def test_healthz(self):
        self.assertEqual(get(self.sb, "/healthz")[::2], (200, "ok\n"))

    def test_unknown_paths_404_and_other_methods_405(self):
        self.assertEqual(get(self.sb, "/nope")[0], 404)
        self.assertEqual(get(self.sb, "/metrics", method="POST")[0], 405)
        self.assertEqual(get(self.sb, "/healthz", method="DELETE")[0], 405)
        status, headers, _ = raw_admin(self.sb, b"PUT /status HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual((status, headers["Allow"]), ("HTTP/1.1 405 Method Not Allowed", "GET, HEAD"))

    def test_head_is_answered_like_get_without_a_body(self):
        for path in ("/healthz", "/", "/nope", "/route?pool=chat&key=r1", "/route?pool=x&key=r1"):
            got = raw_admin(self.sb, f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            head = raw_admin(self.sb, f"HEAD {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            self.assertEqual(head[:2], got[:2], path)
            self.assertEqual(int(head[1]["Content-Length"]), len(got[2]), path)
            self.assertEqual(head[2], b"", path)
        # urllib agrees that the answer is well-formed.
        self.assertEqual(get(self.sb, "/healthz", method="HEAD")[:2], (200, "text/plain; charset=utf-8"))

    def test_route_key_percent_ff_that_killed_the_process_is_answered(self):
        # The exact request of issue 13: nlohmann threw on the byte 0xFF while writing
        # the answer, through a noexcept libuv callback, and the process died.
        status, _, body = get(self.sb, "/route?pool=chat&key=%FF")
        self.assertEqual(status, 200)
        route = json.loads(body)
        # The byte comes back as \udcff (surrogateescape), never as text it could be.
        self.assertIn('"key": "\\udcff"', body)
        self.assertEqual(route["key"].encode("utf-8", "surrogateescape"), b"\xff")
        self.assertIn(route["backend"], [b.address for b in self.backends])
        status, _, body = get(self.sb, "/route?pool=%FF%C3&key=x")
        self.assertEqual(status, 404)
        self.assertIn("\\udcff\\udcc3", body)
        self.assertIsNone(self.sb.proc.poll())
        self.assertEqual(get(self.sb, "/healthz")[::2], (200, "ok\n"))

    def test_route_agrees_with_real_clients_for_a_key_that_is_not_utf8(self):
        names = {b.address: b.name for b in self.backends}
        landed = run(whoami(self.sb.url("/r?room=%FE%FF")))
        status, _, body = get(self.sb, "/route?pool=chat&key=%25FE%25FF")
        self.assertEqual(status, 200)
        self.assertEqual(names[json.loads(body)["backend"]], landed)

    def test_metrics_show_exact_deltas_for_known_traffic(self):
        before = scrape(self.sb)

        async def traffic():
            for i in range(4):
                async with websockets.connect(self.sb.url(f"/m?room=metrics{i}"), compression=None) as ws:
                    for j in range(5):
                        await ws.send(b"x" * 100)
                        await ws.recv()
        run(traffic())
        # One 426 and one 1009.
        self.assertEqual(handshake_status(self.sb.port(), upgrade_request(version="8")), 426)
        big = RawWebSocket(self.sb.port(), "/m?room=big")
        big.send_frame(2, b"y" * 2000)
        self.assertEqual(big.recv_close(), 1009)
        big.close()
        wait_for(lambda: value(scrape(self.sb), "switchboard_connections_active", listener="public") == 0,
                 what="connections to end")
        after = scrape(self.sb)

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        self.assertEqual(delta("switchboard_connections_total", listener="public"), 6)
        self.assertEqual(delta("switchboard_rejections_total", listener="public", reason="bad_version"), 1)
        self.assertEqual(delta("switchboard_connections_ended_total", reason="message_too_big"), 1)
        self.assertEqual(delta("switchboard_closes_total", code="1009", side="proxy"), 1)
        self.assertEqual(delta("switchboard_closes_total", code="1000", side="client"), 4)
        self.assertEqual(delta("switchboard_messages_total", pool="chat", direction="client_to_backend"), 20)
        self.assertEqual(delta("switchboard_messages_total", pool="chat", direction="backend_to_client"), 20)
        # Bytes received from clients: 20 masked 100-byte frames (6 bytes of header), 4
        # Close frames (2 + 4 + 2 bytes), the 2,000-byte frame that was refused (8 bytes of
        # header) and the Close that answered the proxy's 1009.
        self.assertEqual(delta("switchboard_bytes_total", pool="chat", direction="client_to_backend"),
                         20 * 106 + 4 * 8 + 2008 + 8)
        self.assertEqual(delta("switchboard_handshake_duration_seconds_count", pool="chat"), 5)
        self.assertGreaterEqual(value(after, "switchboard_handshake_duration_seconds_bucket", pool="chat", le="+Inf"), 5)
        self.assertEqual(value(after, "switchboard_backend_up", pool="chat", backend=self.backends[0].address), 1)

    def test_status_json(self):
        status, content_type, body = get(self.sb, "/status")
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("application/json"))
        s = json.loads(body)
        self.assertRegex(s["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(s["generation"], 1)
        self.assertEqual(s["listeners"][0]["name"], "public")
        self.assertEqual(s["listeners"][0]["address"], f"127.0.0.1:{self.sb.port()}")
        pool = s["pools"][0]
        self.assertEqual((pool["name"], pool["algorithm"], pool["hash_key"]), ("chat", "ring", "query:room"))
        self.assertEqual(len(pool["backends"]), 3)
        for b in pool["backends"]:
            self.assertEqual(b["state"], "up")
            self.assertEqual(b["weight"], 1)
            self.assertIn("active_connections", b)
        self.assertAlmostEqual(sum(b["share"] for b in pool["backends"]), 1.0, places=6)

    def test_route_agrees_with_where_real_clients_land(self):
        names = {b.address: b.name for b in self.backends}

        async def land(key):
            return await whoami(self.sb.url(f"/r?room={key}"))

        keys = [f"room-{i}" for i in range(30)] + ["with space", "ünï/cödé"]
        landed = run(gather_limited(land(urllib.request.quote(k)) for k in keys))
        for key, name in zip(keys, landed):
            status, _, body = get(self.sb, "/route?pool=chat&key=" + urllib.request.quote(
                urllib.request.quote(key)))
            self.assertEqual(status, 200)
            route = json.loads(body)
            self.assertEqual(names[route["backend"]], name, key)
            self.assertEqual(route["preference"][0]["backend"], route["backend"])
            self.assertEqual(len(route["preference"]), 3)

    def test_route_reports_an_active_room_and_skipped_backends(self):
        async def go():
            async with websockets.connect(self.sb.url("/r?room=busy")) as ws:
                await ws.send("x")
                name = (await ws.recv()).split(":")[0]
                route = json.loads(get(self.sb, "/route?pool=chat&key=busy")[2])
                self.assertTrue(route["room"]["active"])
                self.assertEqual(route["room"]["connections"], 1)
                self.assertEqual({b.address: b.name for b in self.backends}[route["room"]["backend"]], name)
        run(go())
        self.assertEqual(get(self.sb, "/route?pool=nope&key=x")[0], 404)
        self.assertEqual(get(self.sb, "/route?pool=chat")[0], 400)

    def test_status_lists_the_largest_rooms_with_their_backend(self):
        async def go():
            conns = [await websockets.connect(self.sb.url(f"/r?room={key}"))
                     for key in ["big-room"] * 3 + ["pair-room"] * 2]
            try:
                rooms = json.loads(get(self.sb, "/status")[2])["pools"][0]["largest_rooms"]
                mine = [r for r in rooms if r["key"] in ("big-room", "pair-room")]
                self.assertEqual([(r["key"], r["connections"]) for r in mine],
                                 [("big-room", 3), ("pair-room", 2)])  # most connections first
                for r in mine:
                    route = json.loads(get(self.sb, f"/route?pool=chat&key={r['key']}")[2])
                    self.assertEqual(r["backend"], route["room"]["backend"])
                self.assertLessEqual(len(rooms), 50)
            finally:
                for ws in conns:
                    await ws.close()
        run(go())

    def test_access_log_lines_for_an_echo_a_429_and_a_1009(self):
        sb = Switchboard(admin_config([self.backends[0].address],
                                      extra_listener="max_connections_per_ip = 1",
                                      extra_pool="[pools.chat.websocket]\nmax_message_bytes = 10"),
                         listeners=("admin", "public"))
        try:
            async def echo_while_full():
                async with websockets.connect(sb.url("/echo?room=r1"), compression=None) as ws:
                    await ws.send("hello")
                    await ws.recv()
                    # A second connection from the same address: 429.
                    self.assertEqual(handshake_status(sb.port(), upgrade_request("/second")), 429)
            run(echo_while_full())
            # The echo session frees its per-address slot before it logs: once both
            # lines are out, a new connection from this address is welcome.
            sb.wait_access_log(2)
            big = RawWebSocket(sb.port(), "/big?room=r2")
            big.send_frame(1, b"z" * 11)
            self.assertEqual(big.recv_close(), 1009)
            big.close()
            records = sb.wait_access_log(3)
            by_path = {r["path"]: r for r in records}
            echo = by_path["/echo?room=r1"]
            self.assertEqual((echo["status"], echo["close_code"], echo["closed_by"], echo["reason"]),
                             (101, 1000, "client", None))
            self.assertEqual((echo["messages_in"], echo["messages_out"]), (1, 1))
            self.assertEqual(echo["backend"], self.backends[0].address)
            limited = by_path["/second"]
            self.assertEqual((limited["status"], limited["reason"], limited["closed_by"]),
                             (429, "client_limit", "proxy"))
            self.assertIsNone(limited["backend"])
            too_big = by_path["/big?room=r2"]
            self.assertEqual((too_big["status"], too_big["close_code"], too_big["reason"], too_big["closed_by"]),
                             (101, 1009, "message_too_big", "proxy"))
            for r in records:
                self.assertEqual(set(r), {"ts", "listener", "client", "method", "host", "path", "status",
                                          "pool", "backend", "duration_ms", "bytes_in", "bytes_out",
                                          "messages_in", "messages_out", "close_code", "closed_by", "reason"})
        finally:
            sb.stop()

    def test_healthz_is_503_while_draining(self):
        sb = Switchboard(admin_config([self.backends[0].address]).replace(
            "workers = 2", 'workers = 1\ndrain_timeout = "5s"'), listeners=("admin", "public"))
        try:
            async def go():
                held = await websockets.connect(sb.url("/?room=held"))
                sb.signal(signal.SIGTERM)
                await asyncio.get_running_loop().run_in_executor(None, lambda: sb.wait_line(r"^draining"))
                status, _, body = get(sb, "/healthz")
                self.assertEqual((status, body), (503, "draining\n"))
                await held.close()
            run(go())
        finally:
            sb.stop()


class AdminLimitsTest(unittest.TestCase):
    """Issue 13: admin connections never timed out and were unlimited, so half-sent
    requests could hold descriptors forever."""

    def setUp(self):
        self.backend = PyBackend("a")
        self.addCleanup(self.backend.stop)
        self.sb = Switchboard(admin_config([self.backend.address]), listeners=("admin", "public"))
        self.addCleanup(self.sb.stop)

    def connect(self):
        host, port = self.sb.addresses["admin"]
        s = socket.create_connection((host, port), timeout=5)
        self.addCleanup(s.close)
        return s

    def test_a_request_not_complete_within_10s_is_closed(self):
        s = self.connect()
        started = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        # Dripping bytes does not push the deadline back: it runs from accept.
        closed = False
        for _ in range(15):
            try:
                s.sendall(b"X")
            except OSError:
                closed = True
                break
            if closed_by_peer(s, 1.0):
                closed = True
                break
        self.assertTrue(closed, "still open after 15 s")
        self.assertGreater(time.monotonic() - started, 9)
        self.assertLess(time.monotonic() - started, 13)
        self.assertEqual(get(self.sb, "/healthz")[0], 200)

    def test_the_65th_connection_is_closed_at_accept(self):
        held = [self.connect() for _ in range(64)]
        # Accepted in the order they connected: the 65th is the one over the cap.
        extra = self.connect()
        self.assertTrue(closed_by_peer(extra, 3), "the 65th connection was not closed")
        # The held connections are served.
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(status_of(held[0].recv(4096)), 200)
        # Once it is gone, a new connection is welcome again.
        wait_for(lambda: get(self.sb, "/healthz")[0] == 200, timeout=5,
                 what="a slot to free up")
        for s in held[1:]:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(status_of(s.recv(4096)), 200)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """Headless Chromium driven over the DevTools protocol with python3-websockets."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="sbchrome-")
        self.proc = subprocess.Popen(
            [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--window-size=1360,900", f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        self.browser_url = None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode("utf-8", "replace")
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                self.browser_url = m.group(1)
                break
        if self.browser_url is None:
            self.close()
            raise AssertionError("chromium did not start")
        port = re.search(r":(\d+)/", self.browser_url).group(1)
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        self.page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self._id = 0

    async def call(self, ws, method, **params):
        self._id += 1
        await ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, ws, expression):
        result = await self.call(ws, "Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@unittest.skipUnless(find_chromium(), "chromium is not installed (tools/setup installs it)")
class StatusPageTest(unittest.TestCase):
    def test_live_numbers_appear_and_change_in_headless_chromium(self):
        backends = [PyBackend(f"b{i}") for i in range(2)]
        sb = Switchboard(admin_config([b.address for b in backends]), listeners=("admin", "public"))
        chrome = Chromium()
        artifacts = os.environ.get("SB_ARTIFACT_DIR", tempfile.gettempdir())
        os.makedirs(artifacts, exist_ok=True)
        try:
            host, port = sb.addresses["admin"]

            async def go():
                async with websockets.connect(chrome.page_url, max_size=None) as page:
                    await chrome.call(page, "Page.enable")
                    await chrome.call(page, "Page.navigate", url=f"http://{host}:{port}/")
                    text = lambda i: chrome.evaluate(page, f"document.getElementById('{i}').textContent")
                    # The page fills in from /status and /events.
                    for _ in range(100):
                        if (await text("version")) not in ("–", None) and (await text("connections-active")) != "–":
                            break
                        await asyncio.sleep(0.1)
                    self.assertEqual(await text("version"), json.loads(get(sb, "/status")[2])["version"])
                    self.assertEqual(await text("connections-active"), "0")
                    rows = await chrome.evaluate(page, "document.querySelectorAll('tr[data-backend]').length")
                    self.assertEqual(rows, 2)

                    # Traffic: 20 open connections chatting; the numbers must follow.
                    conns = [await websockets.connect(sb.url(f"/?room=p{i}")) for i in range(20)]
                    stop = asyncio.Event()

                    async def chat(ws):
                        while not stop.is_set():
                            await ws.send("m")
                            await ws.recv()
                            await asyncio.sleep(0.01)
                    tasks = [asyncio.create_task(chat(ws)) for ws in conns]
                    seen = set()
                    for _ in range(60):
                        await asyncio.sleep(0.1)
                        seen.add(await text("messages-rate"))
                        if await text("connections-active") == "20" and len(seen - {"–", "0"}) >= 2:
                            break
                    self.assertEqual(await text("connections-active"), "20")
                    rates = seen - {"–", "0"}
                    self.assertGreaterEqual(len(rates), 2, f"messages/s did not change: {seen}")
                    shot = await chrome.call(page, "Page.captureScreenshot", format="png")
                    with open(os.path.join(artifacts, "status-page.png"), "wb") as f:
                        f.write(base64.b64decode(shot["data"]))
                    stop.set()
                    await asyncio.gather(*tasks)
                    for ws in conns:
                        await ws.close()
            run(go(), timeout=90)
        finally:
            chrome.close()
            sb.stop()
            for b in backends:
                b.stop()


if __name__ == "__main__":
    unittest.main()
