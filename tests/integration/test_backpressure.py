"""Backpressure (SPEC §3 Relay): when one side cannot take data as fast as the other
sends, the proxy stops reading from the sender; its memory stays bounded whatever the
peers do. Clients here are raw sockets that complete the handshake and then never read.
"""

import asyncio
import socket
import time
import unittest

import websockets

from sbtest import (PyBackend, RawBackend, Switchboard, accept_upgrade, config, read_head, run,
                    upgrade_request, wait_for)

STUCK_CLIENTS = 20
CHUNK = 64 * 1024


class BackpressureTest(unittest.TestCase):
    def test_backend_flooding_a_client_that_stops_reading(self):
        sent = {"bytes": 0}

        async def flood(ws, path):
            payload = b"f" * CHUNK
            try:
                while True:
                    await ws.send(payload)
                    sent["bytes"] += CHUNK
            except websockets.ConnectionClosed:
                pass

        backend = PyBackend("flood", handler=flood, write_limit=CHUNK)
        sb = Switchboard(config([backend.address]))
        clients = []
        try:
            baseline = sb.rss_kib()
            for _ in range(STUCK_CLIENTS):
                s = socket.create_connection(("127.0.0.1", sb.port()), timeout=5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                s.sendall(upgrade_request())
                self.assertIn(b" 101 ", read_head(s))
                clients.append(s)  # ...and never read again

            # The backend gets ahead only by what the socket buffers on the way hold;
            # then it stalls. Wait until it has stalled for a while.
            def stalled():
                before = sent["bytes"]
                time.sleep(0.5)
                return sent["bytes"] == before and before > 0
            wait_for(stalled, timeout=30, what="the backend to be held back")
            held = sent["bytes"]
            time.sleep(1.0)
            self.assertEqual(sent["bytes"], held, "the backend kept sending")
            growth_kib = sb.rss_kib() - baseline
            # One 16 KiB read block per stuck direction at most, plus allocator slack.
            self.assertLess(growth_kib, 8 * 1024, f"proxy grew by {growth_kib} KiB")
            self.assertLess(held, STUCK_CLIENTS * 64 * 1024 * 1024, "buffered without bound")
        finally:
            for s in clients:
                s.close()
            sb.stop()
            backend.stop()

    def test_client_flooding_a_backend_that_stops_reading(self):
        def never_read(conn):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            accept_upgrade(conn)
            time.sleep(30)  # holds the connection open and never reads

        backend = RawBackend(never_read)
        sb = Switchboard(config([backend.address]))
        try:
            baseline = sb.rss_kib()

            async def flood():
                ws = await websockets.connect(sb.url("/"), write_limit=CHUNK)
                payload = b"c" * CHUNK
                sent = 0
                deadline = time.monotonic() + 20
                try:
                    # Each send waits for the transport to drain: once the proxy stops
                    # reading, sends stop completing.
                    while time.monotonic() < deadline:
                        try:
                            await asyncio.wait_for(ws.send(payload), 1.0)
                        except asyncio.TimeoutError:
                            break
                        sent += CHUNK
                finally:
                    ws.transport.abort()  # no close handshake through a full pipe
                return sent

            sent = run(flood(), timeout=40)
            self.assertLess(sent, 256 * 1024 * 1024, "the client was never held back")
            growth_kib = sb.rss_kib() - baseline
            self.assertLess(growth_kib, 8 * 1024, f"proxy grew by {growth_kib} KiB")
        finally:
            sb.stop()
            backend.stop()


if __name__ == "__main__":
    unittest.main()
