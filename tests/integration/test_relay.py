"""The WebSocket relay through the real binary, with peers nobody here wrote.

Client and backend are Debian's python3-websockets; the backend transforms what it
echoes (text gets a prefix, binary is reversed) and records the handshake it got, so
every assertion proves bytes crossed the proxy both ways.
"""

import asyncio
import os
import unittest

import websockets

from sbtest import (PyBackend, RawBackend, RawWebSocket, Switchboard, accept_upgrade, config,
                    encode_frame, run, wait_for)


class RelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("alpha", subprotocols=["chat.v2", "chat.v1"])
        cls.sb = Switchboard(config([cls.backend.address]))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def connect(self, path="/ws", **kwargs):
        kwargs.setdefault("max_size", None)
        kwargs.setdefault("compression", None)
        return websockets.connect(self.sb.url(path), **kwargs)

    def test_binary_and_text_messages_of_every_length_form(self):
        async def go():
            async with self.connect() as ws:
                for size in (0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 16 << 20):
                    data = os.urandom(size)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1], f"binary {size}")
                for size in (0, 125, 126, 65536):
                    text = "é" * (size // 2)
                    await ws.send(text)
                    self.assertEqual(await ws.recv(), "alpha:" + text, f"text {size}")
        run(go(), timeout=120)

    def test_fragmented_message_is_reassembled_by_the_backend(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(["frag", "mented ", "message"])  # three frames, one message
                self.assertEqual(await ws.recv(), "alpha:fragmented message")
                await ws.send([b"ab", b"cd"])
                self.assertEqual(await ws.recv(), b"dcba")
        run(go())

    def test_ping_pong_passes_through(self):
        async def go():
            async with self.connect() as ws:
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, 5)
        run(go())

    def test_client_close_code_and_reason_reach_the_backend(self):
        closes = []

        async def record_close(ws, path):
            try:
                async for _ in ws:
                    pass
            except websockets.ConnectionClosed:
                pass
            finally:
                closes.append((ws.close_code, ws.close_reason))

        backend = PyBackend("closer", handler=record_close)
        sb = Switchboard(config([backend.address]))
        try:
            async def go():
                async with websockets.connect(sb.url("/")) as ws:
                    await ws.close(4001, "client says bye")
                    self.assertEqual(ws.close_code, 4001)
            run(go())
            wait_for(lambda: closes, what="backend close")
            self.assertEqual(closes[0], (4001, "client says bye"))
            log = sb.wait_access_log(1)[0]
            self.assertEqual(log["close_code"], 4001)
            self.assertEqual(log["closed_by"], "client")
        finally:
            sb.stop()
            backend.stop()

    def test_backend_close_code_and_reason_reach_the_client(self):
        async def close_at_once(ws, path):
            await ws.close(4002, "backend says bye")

        backend = PyBackend("closer", handler=close_at_once)
        sb = Switchboard(config([backend.address]))
        try:
            async def go():
                async with websockets.connect(sb.url("/")) as ws:
                    with self.assertRaises(websockets.ConnectionClosed):
                        await ws.recv()
                    self.assertEqual((ws.close_code, ws.close_reason), (4002, "backend says bye"))
            run(go())
            log = sb.wait_access_log(1)[0]
            self.assertEqual(log["close_code"], 4002)
            self.assertEqual(log["closed_by"], "backend")
        finally:
            sb.stop()
            backend.stop()

    def test_server_push_without_any_client_message(self):
        async def push(ws, path):
            for i in range(3):
                await ws.send(f"push {i}")
            await ws.wait_closed()

        backend = PyBackend("pusher", handler=push)
        sb = Switchboard(config([backend.address]))
        try:
            async def go():
                async with websockets.connect(sb.url("/")) as ws:
                    self.assertEqual([await ws.recv() for _ in range(3)],
                                     ["push 0", "push 1", "push 2"])
            run(go())
        finally:
            sb.stop()
            backend.stop()

    def test_frames_right_behind_the_101_arrive_in_order(self):
        # The backend's first frame shares a segment with its 101, the next ones
        # follow at once (one large enough to be spliced): the relay takes over the
        # backend's reading without losing or reordering a byte.
        big = os.urandom(300_000)

        def eager(conn):
            accept_upgrade(conn, then=encode_frame(1, b"first", masked=False))
            conn.sendall(encode_frame(1, b"second", masked=False) +
                         encode_frame(2, big, masked=False))
            conn.settimeout(5)
            try:
                conn.recv(1)  # until the proxy passes the client's goodbye on
            except OSError:
                pass

        backend = RawBackend(eager)
        sb = Switchboard(config([backend.address]))
        try:
            ws = RawWebSocket(sb.port())
            self.assertEqual(ws.recv_frame()[1:], (1, b"first"))
            self.assertEqual(ws.recv_frame()[1:], (1, b"second"))
            self.assertEqual(ws.recv_frame(timeout=10)[1:], (2, big))
            ws.close()
        finally:
            sb.stop()
            backend.stop()

    def test_handshake_reaches_backend_with_forwarded_headers_and_subprotocol(self):
        async def go():
            async with self.connect("/room/7?x=1", subprotocols=["chat.v1"],
                                    extra_headers={"X-Forwarded-For": "10.9.8.7",
                                                   "X-Forwarded-Proto": "forged"}) as ws:
                self.assertEqual(ws.subprotocol, "chat.v1")  # negotiated end to end
                await ws.send("hi")
                await ws.recv()
        run(go())
        hs = self.backend.handshakes[-1]
        self.assertEqual(self.backend.paths[-1], "/room/7?x=1")
        self.assertEqual(hs["x-forwarded-for"], "10.9.8.7, 127.0.0.1")
        self.assertEqual(hs["x-forwarded-proto"], "http")
        self.assertEqual(hs["x-forwarded-host"], f"127.0.0.1:{self.sb.port()}")
        self.assertEqual(hs["sec-websocket-protocol"], "chat.v1")
        self.assertEqual(hs["sec-websocket-version"], "13")

    def test_permessage_deflate_is_negotiated_end_to_end(self):
        async def go():
            async with self.connect(compression="deflate") as ws:
                self.assertIn("permessage-deflate",
                              ws.response_headers.get("Sec-WebSocket-Extensions", ""))
                await ws.send("z" * 100000)
                self.assertEqual(await ws.recv(), "alpha:" + "z" * 100000)
        run(go())

    def test_200_concurrent_clients_see_only_their_own_messages(self):
        async def client(i):
            async with self.connect(f"/c/{i}") as ws:
                for j in range(5):
                    text = f"client {i} message {j}"
                    await ws.send(text)
                    self.assertEqual(await ws.recv(), "alpha:" + text)
                    payload = f"{i}:{j}".encode() * 50
                    await ws.send(payload)
                    self.assertEqual(await ws.recv(), payload[::-1])

        async def go():
            await asyncio.gather(*(client(i) for i in range(200)))
        run(go(), timeout=120)

    def test_access_log_line_for_an_echo_session(self):
        backend = PyBackend("logged")
        sb = Switchboard(config([backend.address]))
        try:
            async def go():
                async with websockets.connect(sb.url("/logged?room=5"), compression=None) as ws:
                    await ws.send("abc")
                    await ws.recv()
                    await ws.send(b"12345")
                    await ws.recv()
            run(go())
            log = sb.wait_access_log(1)[0]
            self.assertEqual(log["listener"], "public")
            self.assertEqual(log["status"], 101)
            self.assertEqual(log["method"], "GET")
            self.assertEqual(log["path"], "/logged?room=5")
            self.assertEqual(log["pool"], "chat")
            self.assertEqual(log["backend"], backend.address)
            self.assertEqual(log["messages_in"], 2)
            self.assertEqual(log["messages_out"], 2)
            self.assertEqual(log["close_code"], 1000)
            self.assertEqual(log["closed_by"], "client")
            self.assertIsNone(log["reason"])
            self.assertTrue(log["client"].startswith("127.0.0.1:"))
            self.assertGreater(log["bytes_in"], 3 + 5)
            self.assertGreater(log["bytes_out"], 9 + 5)
            for key in ("ts", "host", "duration_ms"):
                self.assertIn(key, log)
        finally:
            sb.stop()
            backend.stop()


if __name__ == "__main__":
    unittest.main()
