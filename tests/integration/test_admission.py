"""Admission control (issue 16; SPEC §3 Admission, §5 access log) through the real binary,
with real clients that report the close code and reason to the application: Debian's
python3-websockets and Node's `ws` (Debian's node-ws, tests/support/ws_clients.js).

Token buckets are tested by their invariant, never by a timing: a bucket of capacity C
refilling at r admits at most C + floor(r * E) connections in E seconds, and at least C
when it starts full. E is measured around each burst (before the first connection is
made, after the last handshake has an outcome), so a slow machine loosens the upper
bound instead of failing the test; low rates (1/s) keep floor(r * E) at 0 on any machine
that is not absurdly slow, so "exactly the excess is shed" is what is checked.

A refusal's hint N (the `retry after N s` reason of a 1013 close, or Retry-After) must lie
in [max(1, ceil(0.5 R)), ceil(1.5 R)] for retry_after = R seconds (±50 % jitter, rounded
up, at least 1).
"""

import asyncio
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse

import websockets

from sbhttp import AiohttpBackend, Conn, HttpServerBackend, get, metric, parse_metrics
from sbtest import (Process, PyBackend, RawWebSocket, Switchboard, admin_get, config,
                    free_port, run, split_address, wait_for, wait_for_async)

ADMIN = '[admin]\nlisten = "127.0.0.1:0"\n'
SUPPORT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support")
# The client offers chat.v2 first; the backends speak only chat.v1. So an admitted
# connection negotiates chat.v1 (the backend's 101), and a shed one must show chat.v2:
# switchboard's own 101 echoes the first subprotocol offered (SPEC §3 Admission).
SUBPROTOCOLS = ["chat.v2", "chat.v1"]
RETRY_REASON = re.compile(r"retry after (\d+) s")


def admission_table(pool="chat", **keys):
    """A [pools.X.admission] table (it must come last in a pool's keys)."""
    lines = "".join(f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n"
                    for k, v in keys.items())
    return f"[pools.{pool}.admission]\n{lines}"


def start(backends, admission=None, listener_extra="", workers=2, hash_key="query:room"):
    """switchboard with an admin listener, one pool "chat" keyed by `hash_key`; the
    loader refuses [pools.X.admission] with "not supported yet" until issue 16 lands,
    which fails here with switchboard's own words."""
    pool_extra = f'hash_key = "{hash_key}"\n'
    if admission is not None:
        pool_extra += admission_table(**admission)
    return Switchboard(config([b.address for b in backends], listener_extra=listener_extra,
                              pool_extra=pool_extra, top=ADMIN, workers=workers),
                       listeners=("public", "admin"))


def retry_window(retry_after_s):
    """Where a jittered hint N may lie for retry_after = R seconds."""
    return max(1, math.ceil(0.5 * retry_after_s)), max(1, math.ceil(1.5 * retry_after_s))


def most_admitted(capacity, rate, elapsed):
    """What a full bucket can admit in `elapsed` seconds (GCRA: capacity + rate * W)."""
    return capacity + math.floor(rate * elapsed)


def samples(sb):
    return parse_metrics(admin_get(sb, "/metrics"))


def wait_reason(sb, reason, count, timeout=10.0):
    """Access log lines with `reason`, once there are at least `count` of them."""
    def lines():
        found = [x for x in sb.access_log() if x.get("reason") == reason]
        return found if len(found) >= count else None
    return wait_for(lines, timeout, what=f"{count} access log lines with reason {reason}")


def route(sb, key, pool="chat"):
    return json.loads(admin_get(sb, f"/route?pool={pool}&key={urllib.parse.quote(key)}"))


async def attempt(url, hold=False):
    """One python-websockets connection, and what the application saw of it: a dict
    with opened, protocol (negotiated subprotocol), status and retry_after (a refused
    upgrade), reply (the backend's answer to "who": admitted), code and reason (of the
    close), at (monotonic time the handshake had an outcome). With hold, an admitted
    connection stays open and is returned too (else None)."""
    r = dict(opened=False, protocol=None, status=None, retry_after=None, reply=None,
             code=None, reason=None, at=None)
    try:
        ws = await websockets.connect(url, subprotocols=SUBPROTOCOLS, open_timeout=10,
                                      close_timeout=5)
    except websockets.InvalidStatusCode as e:
        r.update(status=e.status_code, retry_after=e.headers.get("Retry-After"),
                 at=time.monotonic())
        return r, None
    r.update(opened=True, protocol=ws.subprotocol, at=time.monotonic())
    try:
        await ws.send("who")
        r["reply"] = await asyncio.wait_for(ws.recv(), 10)
        if hold:
            return r, ws
        await ws.close()
    except websockets.ConnectionClosed:
        pass
    await asyncio.wait_for(ws.wait_closed(), 10)
    r.update(code=ws.close_code, reason=ws.close_reason)
    return r, None


async def burst(urls, hold=False):
    """All of `urls` at once; returns (results, held sockets, elapsed seconds from before
    the first connection until the last handshake's outcome)."""
    started = time.monotonic()
    outcomes = await asyncio.gather(*(attempt(u, hold) for u in urls))
    results = [r for r, _ in outcomes]
    elapsed = max(r["at"] for r in results) - started
    return results, [ws for _, ws in outcomes if ws is not None], elapsed


def node_burst(url, count, protocols=SUBPROTOCOLS):
    """ws_clients.js: `count` Node `ws` connections at once; (results, elapsed)."""
    node = shutil.which("node") or "/usr/bin/node"
    env = dict(os.environ, NODE_PATH="/usr/share/nodejs")  # Debian's node-ws
    p = subprocess.run([node, os.path.join(SUPPORT_DIR, "ws_clients.js"), url, str(count),
                        ",".join(protocols)], capture_output=True, env=env, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"ws_clients.js exited {p.returncode}: {p.stderr.decode()}"
                             f"{p.stdout.decode()}")
    out = json.loads(p.stdout)
    return out["results"], out["elapsed_s"]


class AdmissionCase(unittest.TestCase):
    def assertShedClose(self, r, retry_after_s):
        """A close_1013 shed as the application sees it: the upgrade succeeded with the
        first offered subprotocol (not an abort, 1006), then Close 1013 with the hint."""
        self.assertTrue(r["opened"], f"the client did not accept the proxy's 101: {r}")
        self.assertEqual(r["protocol"], "chat.v2", r)
        self.assertEqual(r["code"], 1013, r)
        m = RETRY_REASON.fullmatch(r["reason"] or "")
        self.assertIsNotNone(m, f"reason {r['reason']!r} is not 'retry after N s'")
        lo, hi = retry_window(retry_after_s)
        self.assertTrue(lo <= int(m.group(1)) <= hi, f"N={m.group(1)} not in [{lo}, {hi}]")
        return int(m.group(1))

    def assertRetryAfter(self, value, retry_after_s):
        self.assertRegex(value or "", r"^[1-9][0-9]*$")
        lo, hi = retry_window(retry_after_s)
        self.assertTrue(lo <= int(value) <= hi, f"Retry-After {value} not in [{lo}, {hi}]")
        return int(value)

    def assertAdmittedCount(self, admitted, capacity, rate, elapsed, attempts):
        self.assertGreaterEqual(admitted, min(attempts, capacity),
                                "a full bucket must admit its capacity")
        self.assertLessEqual(admitted, most_admitted(capacity, rate, elapsed),
                             f"more than capacity {capacity} + {rate}/s over {elapsed:.3f} s")

    def stop(self, sb):
        """Stops switchboard; once the test's own teardown is done, a cleanup checks
        that it exited 0 with no sanitizer report (the asan build prints one and exits
        non-zero on a leak or an error)."""
        code = sb.stop()
        reports = [line for line in sb.output("err")
                   if "Sanitizer" in line or "runtime error" in line]
        self.addCleanup(self.assertEqual, (code, reports), (0, []),
                        "switchboard did not exit cleanly")

    def assertSpread(self, hints):
        """±50 % jitter per client: a dozen refusals do not all carry the same N (for
        R = 4 s each N in 3..6 has probability 1/4: all equal has odds ~1e-8)."""
        self.assertGreater(len(set(hints)), 1, f"no jitter: {hints}")


class PoolRateShedTest(AdmissionCase):
    RATE, BURST, RETRY_AFTER, CLIENTS = 1, 5, 4, 20
    ADMISSION = dict(new_connections_per_second=RATE, burst=BURST, retry_after=f"{RETRY_AFTER}s")

    def setUp(self):
        self.backends = [PyBackend(f"b{i}", subprotocols=["chat.v1"]) for i in range(2)]

    def tearDown(self):
        for b in self.backends:
            b.stop()

    def check_close_1013_burst(self, sb, results, elapsed):
        admitted = [r for r in results if r["reply"] is not None]
        shed = [r for r in results if r["reply"] is None]
        self.assertAdmittedCount(len(admitted), self.BURST, self.RATE, elapsed, self.CLIENTS)
        for r in admitted:
            self.assertEqual((r["opened"], r["protocol"], r["code"]), (True, "chat.v1", 1000), r)
            self.assertRegex(r["reply"], r"^b[01]:who$")
        hints = [self.assertShedClose(r, self.RETRY_AFTER) for r in shed]
        self.assertSpread(hints)
        # No backend was contacted for a shed connection.
        self.assertEqual(sum(len(b.handshakes) for b in self.backends), len(admitted))
        # Access log: one line per connection; the shed ones say why and how.
        log = sb.wait_access_log(self.CLIENTS)
        shed_lines = [x for x in log if x["reason"] == "shed_pool_rate"]
        self.assertEqual(len(shed_lines), len(shed), log)
        for x in shed_lines:
            self.assertEqual((x["status"], x["close_code"], x["closed_by"]), (101, 1013, "proxy"), x)
        # Metrics and /status count them by pool (backend "" for the pool's bucket).
        m = samples(sb)
        self.assertEqual(metric(m, "switchboard_admission_shed_total", pool="chat", backend="",
                                reason="pool_rate"), len(shed))
        self.assertEqual(metric(m, "switchboard_admission_shed_total", reason="backend_rate"), 0)
        self.assertEqual(metric(m, "switchboard_rejections_total", listener="public",
                                reason="shed_pool_rate"), len(shed))
        status = json.loads(admin_get(sb, "/status"))["pools"][0]["admission"]
        self.assertEqual((status["new_connections_per_second"], status["burst"],
                          status["shed"], status["retry_after_seconds"], status["shed_total"]),
                         (self.RATE, self.BURST, "close_1013", self.RETRY_AFTER, len(shed)), status)

    def test_python_websockets_burst_sheds_exactly_the_excess_with_1013(self):
        sb = start(self.backends, self.ADMISSION)
        try:
            results, _, elapsed = run(burst([sb.url(f"/c?room=py{i}") for i in range(self.CLIENTS)]))
            self.check_close_1013_burst(sb, results, elapsed)
        finally:
            self.stop(sb)

    def test_node_ws_burst_sheds_exactly_the_excess_with_1013(self):
        sb = start(self.backends, self.ADMISSION)
        try:
            results, elapsed = node_burst(sb.url("/c"), self.CLIENTS)
            for r in results:
                # ws aborts a 101 without the subprotocol it offered: error, then 1006.
                self.assertIsNone(r["error"], r)
            self.check_close_1013_burst(sb, results, elapsed)
        finally:
            self.stop(sb)

    def test_http_503_shed_answers_503_with_retry_after(self):
        admission = dict(self.ADMISSION, shed="http_503")
        for client in ("python", "node"):
            for b in self.backends:
                b.handshakes.clear()
            sb = start(self.backends, admission)
            try:
                if client == "python":
                    results, _, elapsed = run(burst([sb.url(f"/c?room=py{i}")
                                                     for i in range(self.CLIENTS)]))
                else:
                    results, elapsed = node_burst(sb.url("/c"), self.CLIENTS)
                admitted = [r for r in results if r["reply"] is not None]
                shed = [r for r in results if r["reply"] is None]
                self.assertAdmittedCount(len(admitted), self.BURST, self.RATE, elapsed,
                                         self.CLIENTS)
                for r in shed:
                    self.assertEqual((r["opened"], r["status"]), (False, 503), f"{client}: {r}")
                hints = [self.assertRetryAfter(r["retry_after"], self.RETRY_AFTER) for r in shed]
                self.assertSpread(hints)
                self.assertEqual(sum(len(b.handshakes) for b in self.backends), len(admitted))
                log = sb.wait_access_log(self.CLIENTS)
                self.assertEqual(sorted(x["status"] for x in log
                                        if x["reason"] == "shed_pool_rate"), [503] * len(shed))
                self.assertEqual(metric(samples(sb), "switchboard_admission_shed_total",
                                        pool="chat", backend="", reason="pool_rate"), len(shed))
            finally:
                self.stop(sb)


class ShedCloseTest(AdmissionCase):
    """After its Close 1013 a shed connection ends when the client answers, or 1 s
    later if it does not (raw sockets: real clients always answer)."""

    def test_a_shed_connection_ends_on_the_clients_close_or_after_one_second(self):
        backend = PyBackend("b0")
        sb = start([backend], dict(new_connections_per_second=1, burst=1, retry_after="4s"))
        try:
            started = time.monotonic()
            admitted = RawWebSocket(sb.port(), "/c?room=a")
            polite = RawWebSocket(sb.port(), "/c?room=b")
            rude_sent = time.monotonic()
            rude = RawWebSocket(sb.port(), "/c?room=c")
            self.assertEqual((admitted.status, polite.status, rude.status), (101, 101, 101))
            elapsed = time.monotonic() - started
            # Only the first had a token unless the bucket refilled meanwhile.
            self.assertEqual(most_admitted(1, 1, elapsed), 1,
                             f"three handshakes took {elapsed:.2f} s: a token came back")
            self.assertEqual(polite.recv_close(answer=True), 1013)
            self.assertIsNone(polite.recv_frame(timeout=5), "open after the client's Close")
            self.assertEqual(rude.recv_close(answer=False), 1013)
            self.assertIsNone(rude.recv_frame(timeout=5), "still open 5 s after its Close 1013")
            self.assertGreaterEqual(time.monotonic() - rude_sent, 1.0,
                                    "closed before the client's 1 s to answer")
            admitted.close()
        finally:
            self.stop(sb)
            backend.stop()


class PlainHttpAdmissionTest(AdmissionCase):
    """A plain request takes tokens only as the first of its client connection (moved
    here from test_http_proxy.py, where it waited for this feature)."""

    RATE, BURST, RETRY_AFTER = 1, 1, 4

    def test_kept_alive_requests_take_no_token_and_new_connections_get_503(self):
        httpd = HttpServerBackend("admitted")
        sb = start([httpd], dict(new_connections_per_second=self.RATE, burst=self.BURST,
                                 retry_after=f"{self.RETRY_AFTER}s"))
        try:
            started = time.monotonic()
            kept = http.client.HTTPConnection("127.0.0.1", sb.port(), timeout=10)
            kept.connect()
            where = kept.sock.getsockname()
            # 20 requests at the pool's rate of 1/s with burst 1: each taking a token
            # would refuse most of them.
            for i in range(20):
                kept.request("GET", f"/name?i={i}")
                resp = kept.getresponse()
                self.assertEqual((resp.status, resp.read()), (200, b"admitted"), f"request {i}")
                self.assertEqual(kept.sock.getsockname(), where, "http.client reconnected")
            # Fresh connections each need a token: the bucket had one, the kept
            # connection took it, and at most floor(rate * elapsed) came back since.
            fresh = []
            for i in range(5):
                c = http.client.HTTPConnection("127.0.0.1", sb.port(), timeout=10)
                c.request("GET", f"/name?fresh={i}")
                resp = c.getresponse()
                fresh.append((resp.status, resp.getheader("Retry-After"), resp.read()))
                c.close()
            elapsed = time.monotonic() - started
            admitted = [f for f in fresh if f[0] == 200]
            self.assertLessEqual(1 + len(admitted), most_admitted(self.BURST, self.RATE, elapsed),
                                 fresh)
            refused = [f for f in fresh if f[0] != 200]
            for status, retry_after, _ in refused:
                self.assertEqual(status, 503, fresh)
                self.assertRetryAfter(retry_after, self.RETRY_AFTER)
            # The kept connection still takes no token.
            kept.request("GET", "/name?again")
            resp = kept.getresponse()
            self.assertEqual((resp.status, resp.read()), (200, b"admitted"))
            self.assertEqual(kept.sock.getsockname(), where)
            kept.close()
            # The refused requests never reached the backend.
            self.assertEqual(len(httpd.requests), 20 + len(admitted) + 1)
            log = sb.wait_access_log(20 + 5 + 1)
            self.assertEqual(sum(1 for x in log if x["reason"] == "shed_pool_rate"
                                 and x["status"] == 503), len(refused), log)
        finally:
            self.stop(sb)
            httpd.stop()


    def test_an_upgrade_after_plain_requests_takes_a_token(self):
        # The first request took the pool's only token; the upgrade that follows on the
        # same connection needs one of its own (raw socket: no client library sends
        # requests and then an upgrade on one connection).
        aio = AiohttpBackend("aio")
        sb = start([aio], dict(new_connections_per_second=self.RATE, burst=self.BURST,
                               retry_after=f"{self.RETRY_AFTER}s"))
        try:
            started = time.monotonic()
            with Conn(sb.port()) as c:
                c.send(get("/name"))
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (200, b"aio"), resp)
                self.assertEqual(c.upgrade("/ws"), 101)
                c.send_text(b"who")
                opcode, payload = c.read_frame()
            elapsed = time.monotonic() - started
            admitted = (opcode, payload) == (1, b"aio:who")
            self.assertLessEqual(1 + admitted, most_admitted(self.BURST, self.RATE, elapsed),
                                 "the upgrade took no token")
            if not admitted:
                self.assertEqual((opcode, int.from_bytes(payload[:2], "big")), (8, 1013), payload)
                self.assertRegex(payload[2:].decode(), RETRY_REASON.pattern)
        finally:
            self.stop(sb)
            aio.stop()


class ConnectsPerIpTest(AdmissionCase):
    RATE, CLIENTS = 3, 40

    def test_per_ip_connect_rate_is_exact_across_four_workers(self):
        backend = PyBackend("b0", subprotocols=["chat.v1"])
        sb = start([backend], listener_extra=f"max_connects_per_ip_per_second = {self.RATE}",
                   workers=4)
        try:
            results, held, elapsed = run(burst([sb.url(f"/c?room={i}")
                                                for i in range(self.CLIENTS)], hold=False))
            admitted = [r for r in results if r["reply"] is not None]
            refused = [r for r in results if r["reply"] is None]
            # The per-IP bucket holds one second's worth (capacity = rate).
            self.assertAdmittedCount(len(admitted), self.RATE, self.RATE, elapsed, self.CLIENTS)
            # Retry-After: seconds until the address has a token, rounded up, >= 1;
            # at 3/s a token is never more than 1/3 s away.
            for r in refused:
                self.assertEqual((r["opened"], r["status"], r["retry_after"]),
                                 (False, 429, str(max(1, math.ceil(1 / self.RATE)))), r)
            log = sb.wait_access_log(self.CLIENTS)
            limited = [x for x in log if x["reason"] == "connect_rate_limited"]
            self.assertEqual(sorted(x["status"] for x in limited), [429] * len(refused), log)
            self.assertEqual(metric(samples(sb), "switchboard_rejections_total",
                                    listener="public", reason="connect_rate_limited"),
                             len(refused))
            self.assertEqual(len(backend.handshakes), len(admitted))
        finally:
            self.stop(sb)
            backend.stop()


class RoomAdmissionTest(AdmissionCase):
    """A room's joins take its backend's token and are shed, never split; a new room
    walks past a backend whose bucket is empty."""

    RATE, BURST, RETRY_AFTER, JOINS = 1, 2, 4, 5

    def test_joins_are_shed_not_split_and_new_rooms_walk_past_an_empty_bucket(self):
        backends = [PyBackend(f"b{i}", subprotocols=["chat.v1"]) for i in range(3)]
        names = {b.address: b.name for b in backends}
        sb = start(backends, dict(backend_new_connections_per_second=self.RATE,
                                  burst=self.BURST, retry_after=f"{self.RETRY_AFTER}s"))
        held = []  # closed by go_and_close, on the loop they belong to
        try:
            # Room K, and a new room K2 with the same first choice X.
            order = {}
            for i in range(200):
                order[f"room-{i}"] = [p["backend"] for p in route(sb, f"room-{i}")["preference"]]
            key = "room-0"
            x = order[key][0]
            key2 = next(k for k in order if k != key and order[k][0] == x)
            y = order[key2][1]

            async def go():
                started = time.monotonic()
                first, ws = await attempt(sb.url(f"/c?room={key}"), hold=True)
                self.assertEqual(first["reply"], f"{names[x]}:who", first)
                held.append(ws)
                joins, more, _ = await burst([sb.url(f"/c?room={key}")] * self.JOINS, hold=True)
                held.extend(more)
                room_route = route(sb, key)
                walk_route = route(sb, key2)
                second, ws2 = await attempt(sb.url(f"/c?room={key2}"), hold=True)
                if ws2 is not None:
                    held.append(ws2)
                return first, joins, room_route, walk_route, second, time.monotonic() - started

            async def go_and_close():
                try:
                    return await go()
                finally:
                    await asyncio.gather(*(ws.close() for ws in held))

            first, joins, room_route, walk_route, second, elapsed = run(go_and_close())
            on_x = 1 + sum(1 for r in joins if r["reply"] is not None)
            # The room never split: every admitted join is on X.
            self.assertEqual({r["reply"] for r in joins if r["reply"]}, {f"{names[x]}:who"}, joins)
            self.assertAdmittedCount(on_x, self.BURST, self.RATE, elapsed, 1 + self.JOINS)
            shed = [r for r in joins if r["reply"] is None]
            for r in shed:
                self.assertShedClose(r, self.RETRY_AFTER)
            # X took as many as its bucket can give over the whole scenario, so it had no
            # token while /route was asked and while K2 arrived. (If this fails the
            # scenario took over 1/rate s, longer than the test can reason about.)
            self.assertEqual(on_x, most_admitted(self.BURST, self.RATE, elapsed),
                             f"X may have had a token again after {elapsed:.3f} s")
            self.assertEqual(room_route["backend"], x, room_route)
            self.assertIs(room_route["rate_limited"], True, room_route)
            skipped = {p["backend"]: p["skipped"] for p in walk_route["preference"]}
            self.assertEqual(skipped[x], "rate_limited", walk_route)
            self.assertEqual(walk_route["backend"], y, walk_route)
            # "rate_limited" speaks of the key's own backend absent any bucket: X.
            self.assertIs(walk_route["rate_limited"], True, walk_route)
            self.assertEqual(second["reply"], f"{names[y]}:who", second)

            lines = wait_reason(sb, "shed_backend_rate", len(shed))
            self.assertEqual(len(lines), len(shed), lines)
            for line in lines:
                self.assertEqual((line["status"], line["close_code"]), (101, 1013), line)
            m = samples(sb)
            self.assertEqual(metric(m, "switchboard_admission_shed_total", pool="chat",
                                    backend=x, reason="backend_rate"), len(shed))
            self.assertEqual(metric(m, "switchboard_admission_shed_total", reason="pool_rate"), 0)
            self.assertEqual(metric(m, "switchboard_rejections_total", listener="public",
                                    reason="shed_backend_rate"), len(shed))
        finally:
            self.stop(sb)
            for b in backends:
                b.stop()


    def test_new_rooms_are_shed_only_when_no_backend_has_a_token(self):
        backends = [PyBackend(f"b{i}", subprotocols=["chat.v1"]) for i in range(2)]
        names = {b.address: b.name for b in backends}
        rate, capacity, rooms = 1, 1, 6
        sb = start(backends, dict(backend_new_connections_per_second=rate, burst=capacity,
                                  retry_after=f"{self.RETRY_AFTER}s"))
        try:
            # Six new rooms that all prefer X: after X's one token, they must walk to Y.
            x = route(sb, "first-0")["preference"][0]["backend"]
            keys = [k for k in (f"first-{i}" for i in range(400))
                    if route(sb, k)["preference"][0]["backend"] == x][:rooms]
            self.assertEqual(len(keys), rooms)
            results, _, elapsed = run(burst([sb.url(f"/c?room={k}") for k in keys]))
            admitted = [r for r in results if r["reply"] is not None]
            on = {name: sum(1 for r in admitted if r["reply"] == f"{name}:who")
                  for name in names.values()}
            # Each backend's bucket: at least its capacity, at most capacity + refill.
            for name, count in on.items():
                self.assertAdmittedCount(count, capacity, rate, elapsed, rooms)
            shed = [r for r in results if r["reply"] is None]
            for r in shed:
                self.assertShedClose(r, self.RETRY_AFTER)
            lines = wait_reason(sb, "shed_backend_rate", len(shed))
            self.assertEqual(len(lines), len(shed), lines)
            m = samples(sb)
            self.assertEqual(metric(m, "switchboard_admission_shed_total", pool="chat",
                                    reason="backend_rate"), len(shed))
            self.assertEqual(metric(m, "switchboard_admission_shed_total", reason="pool_rate"), 0)
        finally:
            self.stop(sb)
            for b in backends:
                b.stop()


class FailedConnectTest(AdmissionCase):
    """A connection whose every connect attempt fails never came into the pool: its
    pool token goes back, so a dead backend not yet marked down cannot use up the
    pool's rate; a shed after a failed connect names no backend in the access log."""
    RETRY_AFTER = 2

    def start_with_dead_backend(self, admission, retries):
        live = PyBackend("live", subprotocols=["chat.v1"])
        self.addCleanup(live.stop)
        dead = f"127.0.0.1:{free_port()}"
        # fall = 100: the dead backend stays "up" for the whole test, as one that has
        # just died is.
        pool_extra = (f'hash_key = "query:room"\nretries = {retries}\n'
                      "[pools.chat.health_check]\nkind = \"tcp\"\ninterval = \"1h\"\n"
                      "fall = 100\n" + admission_table(**admission))
        sb = Switchboard(config([dead, live.address], pool_extra=pool_extra, top=ADMIN),
                         listeners=("public", "admin"))
        def homed_at(address):
            return next(k for k in (f"k{i}" for i in range(400))
                        if route(sb, k)["preference"][0]["backend"] == address)
        return sb, live, homed_at(dead), homed_at(live.address)

    def test_a_connection_that_reached_no_backend_gives_its_pool_token_back(self):
        sb, live, on_dead, on_live = self.start_with_dead_backend(
            dict(new_connections_per_second=1, burst=1, retry_after=f"{self.RETRY_AFTER}s"),
            retries=0)
        try:
            # The only token goes to a connection whose backend refuses it: 502.
            first, _ = run(attempt(sb.url(f"/c?room={on_dead}")))
            self.assertEqual(first["status"], 502, first)
            self.assertFalse(route(sb, on_live)["pool_rate_limited"])
            # Right after, a client whose backend is fine is admitted: the token came back.
            second, _ = run(attempt(sb.url(f"/c?room={on_live}")))
            self.assertEqual(second["reply"], "live:who", second)
            self.assertEqual(metric(samples(sb), "switchboard_admission_shed_total",
                                    reason="pool_rate"), 0)
        finally:
            self.stop(sb)

    def test_a_shed_after_a_failed_connect_logs_no_backend(self):
        sb, live, on_dead, on_live = self.start_with_dead_backend(
            dict(backend_new_connections_per_second=1, burst=1,
                 retry_after=f"{self.RETRY_AFTER}s"), retries=1)
        try:
            # The live backend's only token goes first; then a connection to the dead
            # backend fails over to it, finds no token, and is shed.
            admitted, _ = run(attempt(sb.url(f"/c?room={on_live}")))
            self.assertEqual(admitted["reply"], "live:who", admitted)
            shed, _ = run(attempt(sb.url(f"/c?room={on_dead}")))
            self.assertShedClose(shed, self.RETRY_AFTER)
            [line] = wait_reason(sb, "shed_backend_rate", 1)
            self.assertIsNone(line["backend"], line)
            self.assertEqual((line["status"], line["close_code"], line["closed_by"]),
                             (101, 1013, "proxy"), line)
            self.assertEqual(metric(samples(sb), "switchboard_admission_shed_total",
                                    backend=live.address, reason="backend_rate"), 1)
        finally:
            self.stop(sb)


class AcceptBackend(Process):
    """tests/support/accept_backend.py: a PyBackend in its own process, printing the
    monotonic time of each accepted connection; killed for real with SIGKILL."""

    def __init__(self, name):
        env = dict(os.environ, PYTHONPATH=SUPPORT_DIR, PYTHONDONTWRITEBYTECODE="1")
        super().__init__([sys.executable, os.path.join(SUPPORT_DIR, "accept_backend.py"), name],
                         env=env)
        self.name = name
        self.host, self.port = split_address(self.wait_line(r"^listening (\S+)$", stream="out").group(1))

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def accepts(self):
        return sorted(float(line.split()[1]) for line in self.output("out")
                      if line.startswith("accept "))


def most_in_one_second(times):
    """The largest number of `times` in any half-open window [t, t + 1 s)."""
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


class StormClient:
    """A chat client that stays connected: it reconnects when closed, honouring the N of a
    1013's `retry after N s`, and backs off exponentially after other failures."""

    def __init__(self, url):
        self.url = url
        self.backend = None      # name of the backend it is on while connected
        self.connected_at = None
        self.displaced_at = None
        self.sheds = []          # N of each 1013
        self.bad_reasons = []    # 1013 reasons that are not 'retry after N s'
        self.failures = 0        # other failed attempts
        self.events = []         # (monotonic time, what): the story a failure tells

    async def run(self, stop):
        backoff = 0
        while not stop.is_set():
            if backoff:
                await asyncio.sleep(min(1.0, 0.05 * 2 ** backoff) * random.uniform(0.5, 1.0))
            try:
                ws = await websockets.connect(self.url, subprotocols=SUBPROTOCOLS,
                                              open_timeout=10, close_timeout=2)
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
                self.events.append((time.monotonic(), f"failed: {e!r}"))
                self.failures += 1
                backoff += 1
                continue
            try:
                await ws.send("who")
                reply = await asyncio.wait_for(ws.recv(), 10)
            except (websockets.ConnectionClosed, asyncio.TimeoutError):
                await ws.close()
                m = RETRY_REASON.fullmatch(ws.close_reason or "")
                self.events.append((time.monotonic(), f"closed {ws.close_code} {ws.close_reason!r}"))
                if ws.close_code == 1013 and m:
                    self.sheds.append(int(m.group(1)))
                    backoff = 0
                    await asyncio.sleep(int(m.group(1)))
                else:
                    if ws.close_code == 1013:
                        self.bad_reasons.append(ws.close_reason)
                    self.failures += 1
                    backoff += 1
                continue
            backoff = 0
            self.backend = reply.split(":", 1)[0]
            self.connected_at = time.monotonic()
            self.events.append((self.connected_at, f"on {self.backend}"))
            closed = asyncio.ensure_future(ws.wait_closed())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({closed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if stop.is_set():
                await ws.close()
                await asyncio.wait_for(closed, 5)
                return
            # Lost (1012 from the proxy when its backend went away): reconnect at once.
            self.backend = None
            self.displaced_at = time.monotonic()
            self.events.append((self.displaced_at, f"lost {ws.close_code}"))


class ReconnectStormTest(AdmissionCase):
    """Kill one of three backends under 300 clients: the survivors' accept rates stay
    within rate + burst in every sliding second, and every displaced client is back
    within D / R + ceil(1.5 * retry_after) + SLACK (D displaced clients, R the total rate
    the survivors may admit: min(pool rate, 2 * backend rate)).

    burst = 0, one second's worth: that bound presumes the survivors admit R every
    second, which a bucket can do only if it holds a second's tokens. N is in whole
    seconds, so refused clients come back in waves a whole number of seconds after
    their refusal (for retry_after = 2 s, N is 2 or 3): between two waves a bucket banks
    at most its capacity. With burst 10 at rate 50 the survivors took about 15 a second
    and the last client needed 11 s, not 7.7.

    SLACK = 2 s: the clients, the backends and switchboard share two cores with other
    work; a client needs a handshake and one message round trip to count as back, and a
    client that meets a connect failure or a 502 while the dead backend is being marked
    down backs off (50 ms doubling, at most 1 s).
    """

    CLIENTS = 300
    POOL_RATE, BACKEND_RATE, BURST, RETRY_AFTER = 50, 20, 0, 2
    SLACK = 2.0

    def test_killing_a_backend_under_300_clients_respects_every_bucket(self):
        backends = [AcceptBackend(f"b{i}") for i in range(3)]
        sb = start(backends, dict(new_connections_per_second=self.POOL_RATE,
                                  backend_new_connections_per_second=self.BACKEND_RATE,
                                  burst=self.BURST, retry_after=f"{self.RETRY_AFTER}s"))
        clients = [StormClient(sb.url(f"/c?room=storm-{i}")) for i in range(self.CLIENTS)]
        victim = backends[0]
        try:
            async def go():
                stop = asyncio.Event()
                tasks = [asyncio.create_task(c.run(stop)) for c in clients]
                try:
                    # The initial connect of 300 is a storm of its own, shed and retried.
                    await wait_for_async(lambda: all(c.backend for c in clients), timeout=90,
                                         what="all 300 clients connected")
                    displaced = [c for c in clients if c.backend == victim.name]
                    others = [c for c in clients if c.backend != victim.name]
                    killed_at = time.monotonic()
                    victim.signal(signal.SIGKILL)
                    total_rate = min(self.POOL_RATE, 2 * self.BACKEND_RATE)
                    bound = (len(displaced) / total_rate + math.ceil(1.5 * self.RETRY_AFTER)
                             + self.SLACK)
                    # Wait longer than the bound so that a miss reports its real time.
                    await wait_for_async(
                        lambda: all(c.backend and c.connected_at > killed_at for c in displaced),
                        timeout=bound + 30, what="every displaced client back")
                    return displaced, others, killed_at, bound
                finally:
                    stop.set()
                    await asyncio.wait_for(asyncio.gather(*tasks), 30)

            displaced, others, killed_at, bound = run(go(), timeout=240)
            self.assertGreater(len(displaced), 0)
            self.assertEqual([c.bad_reasons for c in clients if c.bad_reasons], [])
            last = max(displaced, key=lambda c: c.connected_at)
            back = last.connected_at - killed_at
            story = "; ".join(f"{t - killed_at:+.2f} {what}" for t, what in last.events
                              if t >= killed_at)
            self.assertLessEqual(back, bound,
                                 f"{len(displaced)} displaced clients; the last was back "
                                 f"after {back:.2f} s: {story}")
            self.assertTrue(all(c.backend != victim.name for c in displaced))
            # The others were not disturbed.
            self.assertEqual([c for c in others if c.displaced_at is not None], [])
            # Every bucket held in every sliding second, before and after the kill: at
            # most rate + capacity (burst = 0: capacity = the bucket's rate).
            for b in backends[1:]:
                self.assertLessEqual(most_in_one_second(b.accepts()),
                                     self.BACKEND_RATE + (self.BURST or self.BACKEND_RATE), b.name)
            everything = sorted(t for b in backends for t in b.accepts())
            self.assertLessEqual(most_in_one_second(everything),
                                 self.POOL_RATE + (self.BURST or self.POOL_RATE))
            # The storm really was shed (else this test proves nothing about the buckets).
            self.assertGreater(sum(len(c.sheds) for c in clients), 0)
        finally:
            self.stop(sb)
            for b in backends:
                b.stop()


if __name__ == "__main__":
    unittest.main()
