"""Limits and WebSocket-aware protection through the real binary (SPEC §2, §3): each
limit at its exact edge (N allowed, N+1 refused) and again after a connection closes
(the slot comes back); message guards with their close codes; liveness (ping, idle,
lifetime); descriptor exhaustion. Raw sockets stand in for clients too rude for a
real client library: slowloris, unmasked frames, clients that never answer pings."""

import asyncio
import os
import resource
import socket
import time
import unittest

import websockets

from sbtest import (PyBackend, RawBackend, RawWebSocket, RecordingBackend, Switchboard,
                    accept_upgrade, handshake_status, raw_exchange, run, status_of,
                    upgrade_request, wait_for)


def _config(backends, listener_extra, pool_extra, server_extra):
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    return f"""
[server]
workers = 2
{server_extra}

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
{listener_extra}

[pools.chat]
backends = [ {backend_list} ]
hash_key = "path"
{pool_extra}
"""


class ConnectionLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("a")

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()

    def check_edge(self, sb, limit, status, reason):
        held = [RawWebSocket(sb.port(), f"/h{i}") for i in range(limit)]
        self.assertEqual([ws.status for ws in held], [101] * limit)
        response = raw_exchange(sb.port(), upgrade_request("/over"))
        self.assertEqual(status_of(response), status, response)
        held.pop().close()
        # The slot comes back once the proxy has seen the close.
        wait_for(lambda: _opens(sb, "/again"), timeout=5, what="the freed slot")
        for ws in held:
            ws.close()
        wait_for(lambda: any(r["reason"] == reason and r["status"] == status
                             for r in sb.access_log()), what=f"{reason} in the access log")

    def test_server_max_connections_gives_503_at_the_edge(self):
        sb = Switchboard(_config([self.backend.address], "", "", "max_connections = 5"))
        try:
            self.check_edge(sb, 5, 503, "server_limit")
        finally:
            sb.stop()

    def test_listener_max_connections_gives_503_at_the_edge(self):
        sb = Switchboard(_config([self.backend.address], "max_connections = 4", "", ""))
        try:
            self.check_edge(sb, 4, 503, "listener_limit")
        finally:
            sb.stop()

    def test_max_connections_per_ip_gives_429_at_the_edge(self):
        sb = Switchboard(_config([self.backend.address], "max_connections_per_ip = 3", "", ""))
        try:
            self.check_edge(sb, 3, 429, "client_limit")
        finally:
            sb.stop()

    def test_limits_are_exact_under_concurrency(self):
        sb = Switchboard(_config([self.backend.address], "max_connections = 50", "", ""))
        try:
            async def attempt(i):
                try:
                    ws = await websockets.connect(sb.url(f"/c{i}"))
                    return ws
                except websockets.InvalidStatusCode as e:
                    self.assertEqual(e.status_code, 503)
                    return None

            async def go():
                results = await asyncio.gather(*(attempt(i) for i in range(120)))
                opened = [ws for ws in results if ws is not None]
                self.assertEqual(len(opened), 50)
                for ws in opened:
                    await ws.close()
            run(go())
        finally:
            sb.stop()

    def test_max_connections_per_backend_skips_to_the_next_then_503(self):
        other = PyBackend("b")
        sb = Switchboard(_config([self.backend.address, other.address], "",
                                 "max_connections_per_backend = 1", ""))
        try:
            first = RawWebSocket(sb.port(), "/room-1")
            second = RawWebSocket(sb.port(), "/room-2")
            self.assertEqual((first.status, second.status), (101, 101))
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request("/room-3"))), 503)
            first.close()
            wait_for(lambda: _opens(sb, "/room-4"), timeout=5, what="the backend slot to come back")
            second.close()
        finally:
            sb.stop()
            other.stop()


class HandshakeGuardsTest(unittest.TestCase):
    def test_slowloris_is_closed_on_time_and_costs_others_nothing(self):
        backend = PyBackend("a")
        sb = Switchboard(_config([backend.address], 'handshake_timeout = "600ms"', "", ""))
        try:
            request = upgrade_request()
            slow = socket.create_connection(("127.0.0.1", sb.port()))
            started = time.monotonic()
            closed_after = None
            for byte in request:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    closed_after = time.monotonic() - started
                    break
                # Meanwhile a normal client is served at once.
                if byte == request[5]:
                    self.assertEqual(run(_echo(sb.url("/fast"))), "a:fast")
                time.sleep(0.1)
                slow.settimeout(0.001)
                try:
                    if slow.recv(1) == b"":
                        closed_after = time.monotonic() - started
                        break
                except (socket.timeout, BlockingIOError):
                    pass
                except OSError:
                    closed_after = time.monotonic() - started
                    break
            self.assertIsNotNone(closed_after, "the slow client was never closed")
            self.assertLess(closed_after, 2.0)
            self.assertGreater(closed_after, 0.5)
            slow.close()
        finally:
            sb.stop()
            backend.stop()

    def test_allowed_origins(self):
        backend = PyBackend("a")
        sb = Switchboard(_config(
            [backend.address],
            'allowed_origins = ["https://app.example.com", "http://localhost:3000"]', "", ""))
        try:
            def status(origin):
                extra = f"Origin: {origin}\r\n" if origin is not None else ""
                return handshake_status(sb.port(), upgrade_request(extra=extra))
            self.assertEqual(status("https://app.example.com"), 101)
            self.assertEqual(status("https://APP.example.com:443"), 101)  # RFC 6454 equality
            self.assertEqual(status("http://localhost:3000"), 101)
            self.assertEqual(status("http://app.example.com"), 403)  # scheme differs
            self.assertEqual(status("https://app.example.com:8443"), 403)  # port differs
            self.assertEqual(status("https://evil.example.com"), 403)
            self.assertEqual(status("null"), 403)
            self.assertEqual(status(None), 403)
            wait_for(lambda: any(r["reason"] == "origin_not_allowed" for r in sb.access_log()))
        finally:
            sb.stop()
            backend.stop()


def _opens(sb, path):
    ws = RawWebSocket(sb.port(), path)
    ws.close()
    return ws.status == 101


async def _echo(url, text="fast"):
    async with websockets.connect(url) as ws:
        await ws.send(text)
        return await ws.recv()


class MessageGuardsTest(unittest.TestCase):
    def setUp(self):
        self.backend = RecordingBackend()

    def tearDown(self):
        self.backend.stop()

    def sb(self, websocket):
        return Switchboard(_config([self.backend.address], "", f"[pools.chat.websocket]\n{websocket}", ""))

    def backend_close_code(self):
        wait_for(lambda: any(op == 8 for op, _, _ in self.backend.frames), what="the backend's Close")
        op, payload, masked = next(f for f in self.backend.frames if f[0] == 8)
        self.assertTrue(masked, "frames to a backend must be masked")
        return int.from_bytes(payload[:2], "big")

    def test_max_message_bytes(self):
        sb = self.sb("max_message_bytes = 1000")
        try:
            ws = RawWebSocket(sb.port())
            ws.send_frame(2, b"x" * 1000)
            self.assertEqual(ws.recv_frame()[2], b"x" * 1000)
            ws.send_frame(2, b"y" * 1001)
            self.assertEqual(ws.recv_close(), 1009)
            self.assertEqual(self.backend_close_code(), 1001)
            self.assertNotIn(b"y" * 1001, [p for _, p, _ in self.backend.frames])
            record = sb.wait_access_log(1)[0]
            self.assertEqual((record["close_code"], record["reason"]), (1009, "message_too_big"))
        finally:
            sb.stop()

    def test_max_message_bytes_counts_every_fragment(self):
        sb = self.sb("max_message_bytes = 1000")
        try:
            ws = RawWebSocket(sb.port())
            ws.send_frame(2, b"a" * 600, fin=False)
            ws.send_frame(0, b"b" * 600, fin=True)
            self.assertEqual(ws.recv_close(), 1009)
        finally:
            sb.stop()

    def test_max_messages_per_second(self):
        sb = self.sb("max_messages_per_second = 5")
        try:
            ws = RawWebSocket(sb.port())
            for i in range(5):
                ws.send_frame(1, f"m{i}".encode())
            for i in range(5):
                self.assertEqual(ws.recv_frame()[2], f"m{i}".encode())
            ws.send_frame(1, b"one too many")
            self.assertEqual(ws.recv_close(), 1008)
            self.assertEqual(self.backend_close_code(), 1001)
            record = sb.wait_access_log(1)[0]
            self.assertEqual(record["reason"], "rate_limited")
        finally:
            sb.stop()

    def test_rate_refills_over_time(self):
        sb = self.sb("max_messages_per_second = 10")
        try:
            ws = RawWebSocket(sb.port())
            for i in range(25):  # 25 messages over 2.5 s at 10/s stay within the rate
                ws.send_frame(1, b"tick")
                self.assertEqual(ws.recv_frame()[1], 1)
                time.sleep(0.1)
            ws.close()
        finally:
            sb.stop()

    def test_protocol_violations_get_1002(self):
        sb = self.sb("max_message_bytes = 0")
        try:
            cases = {
                "unmasked frame": lambda ws: ws.send_frame(1, b"hi", masked=False),
                "control frame over 125 bytes": lambda ws: ws.send_frame(9, b"p" * 126),
                "fragmented control frame": lambda ws: ws.send_frame(9, b"p", fin=False),
                "reserved opcode": lambda ws: ws.send_frame(3, b"?"),
                "continuation without a message": lambda ws: ws.send_frame(0, b"?"),
            }
            for name, send in cases.items():
                ws = RawWebSocket(sb.port(), f"/{name.replace(' ', '-')}")
                send(ws)
                self.assertEqual(ws.recv_close(), 1002, name)
                ws.close()
            wait_for(lambda: sum(1 for r in sb.access_log() if r["reason"] == "protocol_error") == 5)
        finally:
            sb.stop()


class LivenessTest(unittest.TestCase):
    def test_ping_keeps_a_live_client_and_the_pong_is_swallowed(self):
        backend = RecordingBackend()
        sb = Switchboard(_config([backend.address], "",
                                 '[pools.chat.websocket]\nping_interval = "300ms"\nping_timeout = "500ms"', ""))
        try:
            ws = RawWebSocket(sb.port())
            pings = 0
            deadline = time.monotonic() + 1.6
            while time.monotonic() < deadline:
                frame = ws.recv_frame(timeout=2)
                self.assertIsNotNone(frame, "closed although the client answers pings")
                if frame[1] == 9:
                    pings += 1
                    ws.send_frame(10, frame[2])  # pong
            self.assertGreaterEqual(pings, 3)
            ws.send_frame(1, b"still alive")
            self.assertEqual(ws.recv_frame()[2], b"still alive")
            # The backend got the message but never a Pong: the proxy's own were swallowed.
            opcodes = [op for op, _, _ in backend.frames]
            self.assertIn(1, opcodes)
            self.assertNotIn(10, opcodes)
            ws.close()
        finally:
            sb.stop()
            backend.stop()

    def test_client_pongs_for_other_pings_pass_through(self):
        backend = RecordingBackend()
        sb = Switchboard(_config([backend.address], "",
                                 '[pools.chat.websocket]\nping_interval = "10s"', ""))
        try:
            ws = RawWebSocket(sb.port())
            ws.send_frame(10, b"unsolicited")  # a heartbeat pong of the client's own
            ws.send_frame(1, b"after")
            self.assertEqual(ws.recv_frame()[2], b"after")
            self.assertIn((10, b"unsolicited", True), backend.frames)
            ws.close()
        finally:
            sb.stop()
            backend.stop()

    def test_a_client_that_never_answers_pings_is_closed(self):
        backend = RecordingBackend()
        sb = Switchboard(_config([backend.address], "",
                                 '[pools.chat.websocket]\nping_interval = "300ms"\nping_timeout = "300ms"', ""))
        try:
            ws = RawWebSocket(sb.port())
            started = time.monotonic()
            self.assertEqual(ws.recv_frame()[1], 9)  # a ping, never answered
            wait_for(lambda: any(op == 8 for op, _, _ in backend.frames), timeout=5,
                     what="the backend to hear the close")
            self.assertLess(time.monotonic() - started, 3)
            code = next(int.from_bytes(p[:2], "big") for op, p, _ in backend.frames if op == 8)
            self.assertEqual(code, 1001)
            record = sb.wait_access_log(1)[0]
            self.assertEqual(record["reason"], "ping_timeout")
            ws.close()
        finally:
            sb.stop()
            backend.stop()

    def test_idle_timeout_closes_both_sides_with_1001(self):
        backend = RecordingBackend()
        sb = Switchboard(_config([backend.address], "", '[pools.chat.websocket]\nidle_timeout = "500ms"', ""))
        try:
            busy = RawWebSocket(sb.port(), "/busy")
            idle = RawWebSocket(sb.port(), "/idle")
            started = time.monotonic()
            for _ in range(10):  # 1 s of traffic every 100 ms keeps `busy` open
                busy.send_frame(1, b"tick")
                self.assertEqual(busy.recv_frame()[2], b"tick")
                time.sleep(0.1)
            self.assertEqual(idle.recv_close(timeout=1), 1001)
            self.assertLess(time.monotonic() - started, 2.5)
            busy.send_frame(1, b"still")
            self.assertEqual(busy.recv_frame()[2], b"still")
            wait_for(lambda: any(r["reason"] == "idle_timeout" for r in sb.access_log()))
            busy.close()
            idle.close()
        finally:
            sb.stop()
            backend.stop()

    def test_max_lifetime_closes_with_1001_within_ten_percent(self):
        backend = RecordingBackend()
        sb = Switchboard(_config([backend.address], "", '[pools.chat.websocket]\nmax_lifetime = "1s"', ""))
        try:
            ws = RawWebSocket(sb.port())
            started = time.monotonic()
            self.assertEqual(ws.recv_close(timeout=3), 1001)
            age = time.monotonic() - started
            self.assertGreater(age, 0.85)
            self.assertLess(age, 1.5)
            ws.close()
        finally:
            sb.stop()
            backend.stop()

    def test_backend_lost_without_close_gives_1012(self):
        def accept_then_vanish(conn):
            accept_upgrade(conn)
            time.sleep(0.2)
            conn.close()

        backend = RawBackend(accept_then_vanish)
        sb = Switchboard(_config([backend.address], "", "", ""))
        try:
            ws = RawWebSocket(sb.port())
            self.assertEqual(ws.recv_close(), 1012)
            record = sb.wait_access_log(1)[0]
            self.assertEqual((record["close_code"], record["reason"]), (1012, "backend_lost"))
        finally:
            sb.stop()
            backend.stop()


class DescriptorExhaustionTest(unittest.TestCase):
    def test_running_out_of_descriptors_pauses_accepting_and_recovers(self):
        backend = PyBackend("a")
        limit = 64

        def lower_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        cfg = _config([backend.address], "", "", "").replace("workers = 2", "workers = 1")
        sb = Switchboard(cfg, wait=False, preexec_fn=lower_limit)
        held = []
        try:
            sb.wait_listening("public")
            # One ordinary connection first: the proxy works before it runs out.
            self.assertEqual(run(_echo(sb.url("/before"), "warm")), "a:warm")
            # Each relayed connection takes two descriptors in the proxy; open more
            # connections than fit.
            for i in range(limit):
                try:
                    s = socket.create_connection(("127.0.0.1", sb.port()), timeout=2)
                    s.sendall(upgrade_request(f"/h{i}"))
                    held.append(s)
                except OSError:
                    break
            sb.wait_line(r"out of file descriptors: accepting paused", timeout=10)
            cpu_before = _cpu_seconds(sb.pid)
            time.sleep(1.0)
            cpu = _cpu_seconds(sb.pid) - cpu_before
            self.assertLess(cpu, 0.5, "the proxy spins while out of descriptors")
            warnings = [l for l in sb.output("err") if "out of file descriptors" in l]
            self.assertLessEqual(len(warnings), 2, "logged more than once per interval")
            if sb.proc.poll() is not None:
                time.sleep(0.5)  # let the output threads catch up with its last words
                self.fail("the proxy died: " + "\n".join(sb.output("err")[-40:]))
            for s in held:
                s.close()
            held.clear()
            # Descriptors free up: new clients are served again.
            wait_for(lambda: _try_echo(sb), timeout=15, interval=0.2, what="recovery")
        finally:
            for s in held:
                s.close()
            sb.stop()
            backend.stop()


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _try_echo(sb):
    try:
        return run(_echo(sb.url("/after"), "back"), timeout=3) == "a:back"
    except Exception:
        return False


if __name__ == "__main__":
    unittest.main()
