"""Configuration lifecycle through the real binary (SPEC §1 signals): hot reload that
never drops a connection, invalid reloads that change nothing, listeners added and
removed, graceful drain with paced 1001 closes (with and without an admin listener),
SIGUSR1 log reopening, and systemd notifications."""

import asyncio
import json
import os
import signal
import socket
import statistics
import tempfile
import time
import unittest

import websockets

from sbtest import (PyBackend, RawWebSocket, Switchboard, gather_limited, read_head, run,
                    status_of, wait_for, whoami)


def two_listener_config(backends, second_listener=False, extra_server="", log_extra="",
                        admin=False):
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    second = """
[[listeners]]
name = "second"
listen = "127.0.0.1:0"
pool = "chat"
""" if second_listener else ""
    admin_table = '[admin]\nlisten = "127.0.0.1:0"\n' if admin else ""
    return f"""
[server]
workers = 2
{extra_server}

[log]
{log_extra}
{admin_table}

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
{second}
[pools.chat]
backends = [ {backend_list} ]
hash_key = "path"
"""


class ReloadTest(unittest.TestCase):
    def test_100_connections_keep_echoing_through_five_reloads(self):
        a, b = PyBackend("a"), PyBackend("b")
        sb = Switchboard(two_listener_config([a.address]))
        try:
            stop = asyncio.Event()

            async def chatter(i, ws, counts):
                n = 0
                while not stop.is_set():
                    await ws.send(f"{i}:{n}")
                    reply = await asyncio.wait_for(ws.recv(), 10)
                    assert reply.endswith(f"{i}:{n}"), reply
                    n += 1
                    counts[i] = n
                    await asyncio.sleep(0.01)

            async def go():
                conns = [await websockets.connect(sb.url(f"/c{i}")) for i in range(100)]
                counts = [0] * 100
                tasks = [asyncio.create_task(chatter(i, ws, counts)) for i, ws in enumerate(conns)]
                loop = asyncio.get_running_loop()
                # The file gains a backend and a listener, then SIGHUP five times in a row
                # (each waited for: signals sent at once may coalesce into one).
                sb.write_config(two_listener_config([a.address, b.address], second_listener=True))
                for generation in range(2, 7):
                    sb.signal(signal.SIGHUP)
                    await loop.run_in_executor(None, lambda: sb.wait_line(
                        rf"configuration reloaded generation={generation}", timeout=20))
                await loop.run_in_executor(None, lambda: sb.wait_listening("second"))
                before = list(counts)
                await asyncio.sleep(1.0)
                stop.set()
                await asyncio.gather(*tasks)  # any dropped connection raises here
                self.assertTrue(all(after > b for after, b in zip(counts, before)),
                                "a connection stopped echoing")
                for ws in conns:
                    self.assertTrue(ws.open)
                    await ws.close()
                # The added listener serves, and the added backend takes new rooms.
                self.assertIn(await whoami(sb.url("/x", name="second")), ("a", "b"))
                names = await gather_limited(whoami(sb.url(f"/n{i}")) for i in range(40))
                self.assertEqual(set(names), {"a", "b"})
            run(go(), timeout=90)
            self.assertFalse([r for r in sb.access_log() if r["closed_by"] != "client"])
        finally:
            sb.stop()
            a.stop()
            b.stop()

    def test_invalid_file_on_reload_keeps_the_running_configuration(self):
        a = PyBackend("a")
        sb = Switchboard(two_listener_config([a.address]))
        try:
            sb.write_config("[server]\nworkers = \"many\"\n[[listeners]]\nname = 1\n")
            sb.signal(signal.SIGHUP)
            sb.wait_line(r"reload failed: keeping the running configuration")
            errors = [l for l in sb.output("err") if l.startswith("error: reload: ")]
            self.assertTrue(any(f"{sb.config_path}:2:11:" in l for l in errors), errors)
            self.assertEqual(run(whoami(sb.url("/"))), "a")
        finally:
            sb.stop()
            a.stop()

    def test_a_removed_listener_stops_accepting_while_its_connections_live_on(self):
        a = PyBackend("a")
        sb = Switchboard(two_listener_config([a.address], second_listener=True),
                         listeners=("public", "second"))
        try:
            async def go():
                held = await websockets.connect(sb.url("/held", name="second"))
                sb.write_config(two_listener_config([a.address]))
                sb.signal(signal.SIGHUP)
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: sb.wait_line(r"configuration reloaded generation=2"))
                with self.assertRaises(OSError):
                    await whoami(sb.url("/new", name="second"), open_timeout=3)
                await held.send("still here")
                self.assertEqual(await held.recv(), "a:still here")
                await held.close()
            run(go())
        finally:
            sb.stop()
            a.stop()

    def test_a_removed_backend_gets_its_clients_1012(self):
        a, b = PyBackend("a"), PyBackend("b")
        sb = Switchboard(two_listener_config([a.address, b.address],
                                             extra_server='close_spread = "500ms"'))
        try:
            async def go():
                conns = []
                for i in range(20):
                    ws = await websockets.connect(sb.url(f"/r{i}"))
                    await ws.send("x")
                    conns.append(((await ws.recv()).split(":")[0], ws))
                sb.write_config(two_listener_config([a.address],
                                                    extra_server='close_spread = "500ms"'))
                sb.signal(signal.SIGHUP)
                for name, ws in conns:
                    if name == "b":
                        with self.assertRaises(websockets.ConnectionClosed):
                            await asyncio.wait_for(ws.recv(), 10)
                        self.assertEqual(ws.close_code, 1012)
                    else:
                        await ws.send("y")
                        self.assertEqual(await ws.recv(), "a:y")
                        await ws.close()
            run(go())
        finally:
            sb.stop()
            a.stop()
            b.stop()


class DrainTest(unittest.TestCase):
    def test_sigterm_sends_1001_to_clients_and_backends_spread_over_close_spread(self):
        backend_codes = []

        async def echo_and_record(ws, path):
            try:
                async for m in ws:
                    await ws.send(m)
            except websockets.ConnectionClosed:
                pass
            backend_codes.append(ws.close_code)

        backend = PyBackend("a", handler=echo_and_record)
        sb = Switchboard(two_listener_config(
            [backend.address], extra_server='close_spread = "2s"\ndrain_timeout = "10s"'))
        try:
            async def go():
                conns = [await websockets.connect(sb.url(f"/d{i}")) for i in range(200)]
                for ws in conns:
                    await ws.send("ping")
                    await ws.recv()
                started = time.monotonic()
                sb.signal(signal.SIGTERM)

                async def closed_at(ws):
                    try:
                        await asyncio.wait_for(ws.recv(), 15)
                    except websockets.ConnectionClosed:
                        pass
                    return time.monotonic() - started, ws.close_code

                return await asyncio.gather(*(closed_at(ws) for ws in conns))
            results = run(go(), timeout=60)
            self.assertEqual({code for _, code in results}, {1001})
            times = sorted(t for t, _ in results)
            # Spread over the 2 s window: not bunched at the start.
            self.assertGreater(times[-1] - times[0], 1.0)
            self.assertGreater(statistics.pstdev(times), 0.3)
            quarters = [sum(1 for t in times if q * 0.5 <= t < (q + 1) * 0.5) for q in range(4)]
            self.assertTrue(all(n > 20 for n in quarters), quarters)
            self.assertEqual(sb.wait(timeout=12), 0)
            wait_for(lambda: len(backend_codes) == 200, what="backends to see the close")
            self.assertEqual(set(backend_codes), {1001})
        finally:
            sb.stop()
            backend.stop()

    def test_drain_timeout_ends_connections_whose_peers_never_answer(self):
        backend = PyBackend("a")
        sb = Switchboard(two_listener_config(
            [backend.address], extra_server='close_spread = "0s"\ndrain_timeout = "1s"'))
        try:
            # A raw client that completes the handshake and then never reads or answers.
            s = socket.create_connection(("127.0.0.1", sb.port()))
            from sbtest import read_head, upgrade_request
            s.sendall(upgrade_request())
            self.assertIn(b" 101 ", read_head(s))
            started = time.monotonic()
            sb.signal(signal.SIGTERM)
            self.assertEqual(sb.wait(timeout=10), 0)
            self.assertLess(time.monotonic() - started, 5)
            s.close()
        finally:
            sb.stop()
            backend.stop()

    def test_second_signal_exits_at_once(self):
        backend = PyBackend("a")
        sb = Switchboard(two_listener_config([backend.address],
                                             extra_server='drain_timeout = "60s"'))
        try:
            async def hold():
                ws = await websockets.connect(sb.url("/"))
                sb.signal(signal.SIGTERM)
                sb.wait_line(r"^draining")
                sb.signal(signal.SIGTERM)
                return ws
            run(hold())
            self.assertEqual(sb.wait(timeout=5), 0)
        finally:
            sb.stop()
            backend.stop()


def admin_get(sb, path, timeout=5.0):
    """(status, body) of one admin request on a raw socket."""
    host, port = sb.addresses["admin"]
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return status_of(head), body.decode()


class DrainWithAdminTest(unittest.TestCase):
    """Issue 13: with an [admin] listener, SIGTERM never exited (the admin listener kept
    the main loop alive), so every `systemctl stop` ended in SIGKILL."""

    def start(self, extra_server='close_spread = "0s"\ndrain_timeout = "20s"'):
        self.backend = PyBackend("a")
        self.addCleanup(self.backend.stop)
        sb = Switchboard(two_listener_config([self.backend.address], extra_server=extra_server,
                                             admin=True), listeners=("admin", "public"))
        self.addCleanup(sb.stop)
        return sb

    def test_sigterm_with_admin_and_no_connections_exits_0_promptly(self):
        sb = self.start()
        self.assertEqual(admin_get(sb, "/healthz"), (200, "ok\n"))
        started = time.monotonic()
        sb.signal(signal.SIGTERM)
        self.assertEqual(sb.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - started, 3)
        self.assertTrue(sb.wait_line(r"^stopped"))

    def test_admin_answers_503_while_a_connection_drains_and_exit_follows_its_end(self):
        sb = self.start()
        ws = RawWebSocket(sb.port(), "/held")
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        ws.send_frame(1, b"hello")
        self.assertEqual(ws.recv_frame()[2], b"a:hello")
        sb.signal(signal.SIGTERM)
        # The proxy's 1001 arrives; not answering keeps the connection draining.
        self.assertEqual(ws.recv_close(answer=False), 1001)
        self.assertEqual(admin_get(sb, "/healthz"), (503, "draining\n"))
        self.assertIsNone(sb.proc.poll(), "exited while a connection was still draining")
        self.assertEqual(admin_get(sb, "/healthz"), (503, "draining\n"))
        # The client answers and goes: the last connection is gone, so is the process.
        ws.send_frame(8, (1001).to_bytes(2, "big"))
        ws.close()
        gone = time.monotonic()
        self.assertEqual(sb.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - gone, 3)

    def test_events_subscriber_and_half_sent_request_do_not_keep_the_process_alive(self):
        sb = self.start()
        host, port = sb.addresses["admin"]
        events = socket.create_connection((host, port), timeout=5)
        self.addCleanup(events.close)
        events.sendall(b"GET /events HTTP/1.1\r\nHost: admin\r\n\r\n")
        self.assertEqual(status_of(read_head(events)), 200)
        half = socket.create_connection((host, port), timeout=5)
        self.addCleanup(half.close)
        half.sendall(b"GET /heal")
        started = time.monotonic()
        sb.signal(signal.SIGTERM)
        # Well before the 10 s request timeout would have closed the half-sent request.
        self.assertEqual(sb.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - started, 3)
        for s in (events, half):
            s.settimeout(5)
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass


class LogAndNotifyTest(unittest.TestCase):
    def test_sigusr1_reopens_the_access_log(self):
        backend = PyBackend("a")
        log_dir = tempfile.mkdtemp(prefix="sblog-")
        path = os.path.join(log_dir, "access.log")
        sb = Switchboard(two_listener_config([backend.address], log_extra=f'access_log = "{path}"'))
        try:
            run(whoami(sb.url("/one")))
            wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0)
            os.rename(path, path + ".1")  # what logrotate does
            sb.signal(signal.SIGUSR1)
            sb.wait_line(r"access log reopened")
            run(whoami(sb.url("/two")))
            wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0,
                     what="a line in the new file")
            with open(path) as f:
                self.assertEqual(json.loads(f.readline())["path"], "/two")
            with open(path + ".1") as f:
                self.assertEqual(json.loads(f.readline())["path"], "/one")
        finally:
            sb.stop()
            backend.stop()

    def test_notify_socket_receives_ready_reloading_ready_stopping(self):
        backend = PyBackend("a")
        sock_path = os.path.join(tempfile.mkdtemp(prefix="sbnotify-"), "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(sock_path)
        notify.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        sb = Switchboard(two_listener_config([backend.address]), env=env)
        try:
            self.assertEqual(notify.recv(4096), b"READY=1")
            sb.signal(signal.SIGHUP)
            reloading = notify.recv(4096).decode()
            self.assertTrue(reloading.startswith("RELOADING=1\nMONOTONIC_USEC="), reloading)
            self.assertEqual(notify.recv(4096), b"READY=1")
            sb.signal(signal.SIGTERM)
            self.assertEqual(notify.recv(4096), b"STOPPING=1")
            self.assertEqual(sb.wait(timeout=10), 0)
        finally:
            notify.close()
            sb.stop()
            backend.stop()


if __name__ == "__main__":
    unittest.main()
