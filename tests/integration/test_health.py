"""Active health checks and slow start through the real binary (SPEC §3 Health).

Backends are Debian's python3-websockets servers (PyBackend) whose `process_request`
hook answers plain HTTP GETs on /healthz with a status the test flips, so one server
takes both the health checks and the relayed WebSocket rooms; a raw socket server
answers the cases a real server would not (a wrong Sec-WebSocket-Accept). Every wait
polls /status, /route or a log line with a deadline.
"""

import asyncio
import http
import json
import re
import signal
import threading
import time
import unittest

from sbtest import (PyBackend, RawBackend, RawWebSocket, Switchboard, TestPki, accept_upgrade,
                    admin_get, free_port, read_head, run, wait_for)


class CheckedBackend(PyBackend):
    """A PyBackend whose GET /healthz answers `self.status` (200 until told otherwise)
    and counts the probes it got; WebSocket upgrades on other paths are echoed."""

    def __init__(self, name, health_path="/healthz", **kwargs):
        self.status = 200
        self.probes = 0
        self.probe_times = []
        self._lock = threading.Lock()
        self.health_path = health_path

        async def process_request(path, headers):
            if path != self.health_path or "upgrade" in headers.get("Connection", "").lower():
                return None  # a WebSocket upgrade: the handshake goes on
            with self._lock:
                self.probes += 1
                self.probe_times.append(time.monotonic())
            return http.HTTPStatus(self.status), [("Content-Type", "text/plain")], b"health\n"

        super().__init__(name, process_request=process_request, **kwargs)

    def probe_count(self):
        with self._lock:
            return self.probes


def config(pools, workers=2, top=""):
    return f"""
[server]
workers = {workers}
{top}

[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

{pools}
"""


def chat_pool(backends, check='kind = "http"\ninterval = "200ms"\nrise = 2\nfall = 2',
              extra="", name="chat"):
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    table = f"\n[pools.{name}.health_check]\n{check}\n" if check is not None else ""
    return f"""
[pools.{name}]
backends = [ {backend_list} ]
hash_key = "query:room"
{extra}
{table}"""


def status(sb):
    return json.loads(admin_get(sb, "/status"))


def backend_status(sb, address, pool="chat"):
    for p in status(sb)["pools"]:
        if p["name"] == pool:
            for b in p["backends"]:
                if b["address"] == address:
                    return b
    raise AssertionError(f"no backend {address} in pool {pool}")


def route(sb, key, pool="chat"):
    return json.loads(admin_get(sb, f"/route?pool={pool}&key={key}"))


def key_homed_on(sb, address, skip=0):
    """A room key whose first choice is `address`."""
    for i in range(2000):
        key = f"room-{i}"
        if route(sb, key)["preference"][0]["backend"] == address:
            if skip == 0:
                return key
            skip -= 1
    raise AssertionError(f"no key homed on {address}")


def wait_health(sb, address, state, timeout=10.0, pool="chat"):
    return wait_for(lambda: (lambda b: b if b["health"]["state"] == state else None)(
        backend_status(sb, address, pool)), timeout, interval=0.05,
        what=f"{address} {state}")


def start(cfg, **kwargs):
    return Switchboard(cfg, listeners=("public", "admin"), **kwargs)


class HttpCheckTest(unittest.TestCase):
    def test_503_marks_down_keeps_connections_and_rise_brings_it_back_in_slow_start(self):
        b0, b1 = CheckedBackend("b0"), CheckedBackend("b1")
        sb = start(config(chat_pool([b0.address, b1.address], extra='slow_start = "60s"')))
        try:
            wait_for(lambda: backend_status(sb, b1.address)["health"]["last_result"] == "ok",
                     what="a first successful probe")
            # A room on b1, open across the whole test.
            room = key_homed_on(sb, b1.address)
            ws = RawWebSocket(sb.port(), path=f"/play?room={room}")
            self.assertEqual(ws.status, 101)
            ws.send_frame(1, b"before")
            self.assertEqual(ws.recv_frame()[2], b"b1:before")

            b1.status = 503
            b = wait_health(sb, b1.address, "down")
            self.assertEqual(b["state"], "down")
            self.assertEqual(b["health"]["last_result"], "failed")
            self.assertEqual(b["health"]["last_error"], "status 503")
            self.assertTrue(b["health"]["checked"])
            sb.wait_line(r"backend marked down .*backend=127\.0\.0\.1:%d .*status 503" % b1.port)
            # New rooms skip it ...
            other = key_homed_on(sb, b1.address, skip=1)
            r = route(sb, other)
            self.assertEqual(r["preference"][0]["skipped"], "down")
            self.assertEqual(r["backend"], b0.address)
            ws2 = RawWebSocket(sb.port(), path=f"/play?room={other}")
            ws2.send_frame(1, b"new")
            self.assertEqual(ws2.recv_frame()[2], b"b0:new")
            ws2.close()
            # ... and the established connection stays, still relaying both ways.
            time.sleep(0.5)  # several more failed probes: still nothing cut
            ws.send_frame(1, b"during")
            self.assertEqual(ws.recv_frame()[2], b"b1:during")
            self.assertEqual(backend_status(sb, b1.address)["active_connections"], 1)
            metrics = admin_get(sb, "/metrics")
            self.assertIn(f'switchboard_backend_up{{pool="chat",backend="{b1.address}"}} 0',
                          metrics)

            b1.status = 200
            b = wait_health(sb, b1.address, "up")
            self.assertGreaterEqual(b["health"]["consecutive_successes"], 2)
            sb.wait_line(r"backend up again .*backend=127\.0\.0\.1:%d" % b1.port)
            # Slow start: it holds one connection (our room) and its cap is
            # 1/2 * (A + 1) * elapsed/60s, well under 1 for a minute: new rooms skip it.
            self.assertIsNotNone(b["slow_start"])
            self.assertLess(b["slow_start"]["fraction"], 0.5)
            self.assertGreater(b["slow_start"]["remaining_ms"], 30000)
            r = route(sb, other)
            self.assertEqual(r["preference"][0]["skipped"], "slow_start")
            self.assertEqual(r["backend"], b0.address)
            # Joining its existing room is never refused.
            self.assertEqual(route(sb, room)["backend"], b1.address)
            ws3 = RawWebSocket(sb.port(), path=f"/play?room={room}")
            ws3.send_frame(1, b"join")
            self.assertEqual(ws3.recv_frame()[2], b"b1:join")
            ws3.close()
            metrics = admin_get(sb, "/metrics")
            m = re.search(r'switchboard_backend_slow_start\{pool="chat",backend="%s"\} (\S+)'
                          % re.escape(b1.address), metrics)
            self.assertLess(float(m.group(1)), 1.0)
            ws.close()
        finally:
            sb.stop()
            b0.stop()
            b1.stop()

    def test_one_checker_per_process_whatever_the_worker_count(self):
        b = CheckedBackend("solo")
        sb = start(config(chat_pool([b.address], check='interval = "250ms"'), workers=4))
        try:
            wait_for(lambda: b.probe_count() >= 1, what="a first probe")
            first = b.probe_count()
            t0 = time.monotonic()
            time.sleep(3.0)  # measuring a rate: the window is the point
            n = b.probe_count() - first
            elapsed = time.monotonic() - t0
            # One probe per interval (±10%), about 12, not one per worker (about 48).
            # The bounds leave room for a loaded machine, never for a second checker.
            expected = elapsed / 0.25
            self.assertGreaterEqual(n, int(0.6 * expected), n)
            self.assertLessEqual(n, int(1.4 * expected) + 1, n)
        finally:
            sb.stop()
            b.stop()


class KindsTest(unittest.TestCase):
    def test_tcp_check_marks_a_closed_port_down_with_the_connect_error(self):
        live = CheckedBackend("live")
        dead = f"127.0.0.1:{free_port()}"
        sb = start(config(chat_pool([live.address, dead],
                                    check='kind = "tcp"\ninterval = "200ms"\nfall = 1')))
        try:
            b = wait_health(sb, dead, "down")
            self.assertEqual(b["health"]["last_error"], "connect: connection refused")
            b = backend_status(sb, live.address)
            wait_for(lambda: backend_status(sb, live.address)["health"]["last_result"] == "ok")
            self.assertEqual(live.probe_count(), 0)  # tcp: no HTTP request sent
        finally:
            sb.stop()
            live.stop()

    def test_websocket_check_upgrades_and_closes_with_1000(self):
        codes = []
        paths = []

        async def record_close(ws, path):
            paths.append(path)
            try:
                async for _ in ws:
                    pass
            finally:
                codes.append(ws.close_code)

        b = PyBackend("wsb", handler=record_close)
        sb = start(config(chat_pool(
            [b.address], check='kind = "websocket"\npath = "/ws-health"\ninterval = "200ms"')))
        try:
            wait_for(lambda: len(codes) >= 3, what="three websocket probes")
            self.assertEqual(set(codes), {1000})
            self.assertEqual(set(paths), {"/ws-health"})
            self.assertEqual(backend_status(sb, b.address)["health"]["last_result"], "ok")
            # Each probe carried its own random key.
            keys = {h["sec-websocket-key"] for h in b.handshakes}
            self.assertEqual(len(keys), len(b.handshakes))
        finally:
            sb.stop()
            b.stop()

    def test_websocket_check_fails_on_a_wrong_accept(self):
        def wrong_accept(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            time.sleep(0.5)

        bad = RawBackend(wrong_accept)
        sb = start(config(chat_pool(
            [bad.address], check='kind = "websocket"\ninterval = "200ms"\nfall = 1')))
        try:
            b = wait_health(sb, bad.address, "down")
            self.assertIn("Sec-WebSocket-Accept", b["health"]["last_error"])
        finally:
            sb.stop()
            bad.stop()

    def test_endless_interim_answers_are_bounded(self):
        def flood(conn):
            read_head(conn)
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)

        bad = RawBackend(flood)
        sb = start(config(chat_pool([bad.address], check='interval = "1s"\nfall = 1')))
        try:
            b = wait_health(sb, bad.address, "down")
            self.assertEqual(b["health"]["last_error"], "response head too large")
            self.assertLess(sb.rss_kib(), 200 * 1024)
        finally:
            sb.stop()
            bad.stop()

    def test_a_backend_that_never_answers_times_out(self):
        def silent(conn):
            time.sleep(2)

        mute = RawBackend(silent)
        sb = start(config(chat_pool(
            [mute.address], check='interval = "300ms"\ntimeout = "100ms"\nfall = 1')))
        try:
            b = wait_health(sb, mute.address, "down")
            self.assertEqual(b["health"]["last_error"], "timeout (response)")
            self.assertGreaterEqual(b["health"]["last_check_ms"], 90)
        finally:
            sb.stop()
            mute.stop()


class TlsCheckTest(unittest.TestCase):
    def test_checks_run_over_the_pools_tls(self):
        pki = TestPki("Health CA")
        cert, key = pki.leaf("backend.internal", dns=["backend.internal"], ips=["127.0.0.1"])
        b = CheckedBackend("tlsb", ssl=pki.server_context(cert, key))
        tls = f'\n[pools.chat.tls]\nca_file = "{pki.ca}"\nserver_name = "backend.internal"\n'
        sb = start(config(chat_pool([b.address]) + tls))
        try:
            wait_for(lambda: b.probe_count() >= 2, what="two probes over TLS")
            self.assertEqual(backend_status(sb, b.address)["health"]["last_result"], "ok")
        finally:
            sb.stop()
            b.stop()
        # The wrong CA: the probes fail with the TLS error.
        other = TestPki("Other CA")
        b = CheckedBackend("tlsb2", ssl=pki.server_context(cert, key))
        tls = f'\n[pools.chat.tls]\nca_file = "{other.ca}"\nserver_name = "backend.internal"\n'
        sb = start(config(chat_pool([b.address]) + tls))
        try:
            st = wait_health(sb, b.address, "down")
            self.assertTrue(st["health"]["last_error"].startswith("TLS: "), st["health"])
            self.assertEqual(b.probe_count(), 0)
        finally:
            sb.stop()
            b.stop()


class ReloadTest(unittest.TestCase):
    def test_reload_adds_with_slow_start_and_removing_the_table_stops_probing(self):
        b0, b1 = CheckedBackend("b0"), CheckedBackend("b1")
        sb = start(config(chat_pool([b0.address], extra='slow_start = "60s"')))
        try:
            wait_for(lambda: b0.probe_count() >= 1, what="b0 probed")
            self.assertIsNone(backend_status(sb, b0.address)["slow_start"])  # not at startup
            sb.write_config(config(chat_pool([b0.address, b1.address],
                                             extra='slow_start = "60s"')))
            sb.signal(signal.SIGHUP)
            sb.wait_line(r"configuration reloaded")
            wait_for(lambda: b1.probe_count() >= 1, what="the added backend probed")
            added = backend_status(sb, b1.address)
            self.assertIsNotNone(added["slow_start"])
            self.assertIsNone(backend_status(sb, b0.address)["slow_start"])
            # Without the table: no more probes, passive checks only.
            sb.write_config(config(chat_pool([b0.address, b1.address], check=None)))
            sb.signal(signal.SIGHUP)
            wait_for(lambda: status(sb)["generation"] == 3, what="generation 3")
            self.assertFalse(backend_status(sb, b0.address)["health"]["checked"])
            time.sleep(0.3)  # let a probe in flight end
            n0, n1 = b0.probe_count(), b1.probe_count()
            time.sleep(0.6)  # three intervals: nothing more may come
            self.assertEqual((b0.probe_count(), b1.probe_count()), (n0, n1))
        finally:
            sb.stop()
            b0.stop()
            b1.stop()

    def test_drain_stops_the_checks_and_the_process_exits(self):
        b = CheckedBackend("d")
        sb = start(config(chat_pool([b.address], check='interval = "100ms"')))
        try:
            wait_for(lambda: b.probe_count() >= 2, what="probes running")
            sb.signal(signal.SIGTERM)
            self.assertEqual(sb.wait(timeout=5), 0)
            sb.wait_line(r"^stopped$")
            self.assertFalse(any("second signal" in line for line in sb.output()))
        finally:
            sb.stop()
            b.stop()


class RehomeSlowStartTest(unittest.TestCase):
    def test_rehome_waits_for_the_end_of_slow_start(self):
        b0, b1 = CheckedBackend("b0"), CheckedBackend("b1")
        check = 'interval = "100ms"\nrise = 1\nfall = 1'
        sb = start(config(chat_pool([b0.address, b1.address], check=check,
                                    extra='rehome = true\nslow_start = "2s"'),
                          top='close_spread = "100ms"'))
        try:
            b1.status = 503
            wait_health(sb, b1.address, "down")
            room = key_homed_on(sb, b1.address)
            ws = RawWebSocket(sb.port(), path=f"/play?room={room}")
            ws.send_frame(1, b"x")
            self.assertEqual(ws.recv_frame()[2], b"b0:x")  # away from home while b1 is down
            b1.status = 200
            wait_health(sb, b1.address, "up")
            up_at = time.monotonic()
            # Not moved at once (b1 is in slow start, its cap is below one room) ...
            code = ws.recv_close(timeout=5.0)
            waited = time.monotonic() - up_at
            # ... but once the 2 s window is over: 1012, and the reconnect lands home.
            self.assertEqual(code, 1012)
            self.assertGreater(waited, 1.5)
            ws.close()
            ws = RawWebSocket(sb.port(), path=f"/play?room={room}")
            ws.send_frame(1, b"y")
            self.assertEqual(ws.recv_frame()[2], b"b1:y")
            ws.close()
        finally:
            sb.stop()
            b0.stop()
            b1.stop()


class AdminTest(unittest.TestCase):
    def test_metric_families_are_always_present(self):
        b = CheckedBackend("m")
        sb = start(config(chat_pool([b.address], check=None)))
        try:
            metrics = admin_get(sb, "/metrics")
            for family in ("switchboard_backend_health_checks_total",
                           "switchboard_backend_health_check_seconds",
                           "switchboard_backend_slow_start"):
                self.assertIn(f"# TYPE {family} ", metrics)
            st = backend_status(sb, b.address)
            self.assertEqual(st["health"]["state"], "up")
            self.assertFalse(st["health"]["checked"])
            self.assertIsNone(st["health"]["last_result"])
        finally:
            sb.stop()
            b.stop()

    def test_metrics_count_probes_by_result(self):
        b = CheckedBackend("m")
        sb = start(config(chat_pool([b.address])))
        try:
            wait_for(lambda: b.probe_count() >= 2, what="two probes")
            b.status = 500
            wait_health(sb, b.address, "down")
            metrics = admin_get(sb, "/metrics")
            labels = f'pool="chat",backend="{b.address}"'
            ok = re.search(r'switchboard_backend_health_checks_total\{%s,result="ok"\} (\d+)'
                           % re.escape(labels), metrics)
            failed = re.search(
                r'switchboard_backend_health_checks_total\{%s,result="failed"\} (\d+)'
                % re.escape(labels), metrics)
            self.assertGreaterEqual(int(ok.group(1)), 2)
            self.assertGreaterEqual(int(failed.group(1)), 2)
            self.assertRegex(metrics, r'switchboard_backend_health_check_seconds\{%s\} [0-9.e-]+'
                             % re.escape(labels))
        finally:
            sb.stop()
            b.stop()


class StatusPageTest(unittest.TestCase):
    def test_the_page_shows_the_health_error_and_slow_start(self):
        from test_admin import Chromium, find_chromium
        if not find_chromium():
            self.skipTest("chromium is not installed (tools/setup installs it)")
        b0, b1 = CheckedBackend("b0"), CheckedBackend("b1")
        b1.status = 503
        sb = start(config(chat_pool([b0.address, b1.address], extra='slow_start = "60s"')))
        chrome = Chromium()
        try:
            wait_health(sb, b1.address, "down")
            host, port = sb.addresses["admin"]

            async def go():
                import websockets
                async with websockets.connect(chrome.page_url, max_size=None) as page:
                    await chrome.call(page, "Page.enable")
                    await chrome.call(page, "Page.navigate", url=f"http://{host}:{port}/")
                    cell = (f"(document.querySelector('tr[data-backend=\"{b1.address}\"] .check')"
                            " || {}).textContent")
                    text = None
                    for _ in range(100):
                        text = await chrome.evaluate(page, cell)
                        if text and "status 503" in text:
                            break
                        await asyncio.sleep(0.1)
                    self.assertIn("status 503", text or "")
                    # Fixed: it comes back in slow start, and the live update shows it.
                    b1.status = 200
                    slow = (f"document.querySelector('tr[data-backend=\"{b1.address}\"] .slow')"
                            ".innerHTML")
                    html = ""
                    for _ in range(100):
                        html = await chrome.evaluate(page, slow)
                        if "slow start" in (html or ""):
                            break
                        await asyncio.sleep(0.1)
                    self.assertIn("slow start", html)
            run(go())
        finally:
            chrome.close()
            sb.stop()
            b0.stop()
            b1.stop()


if __name__ == "__main__":
    unittest.main()
