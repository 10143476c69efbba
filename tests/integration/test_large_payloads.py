"""Large payloads (SPEC §3 Relay): between two plain sockets, the payload of a large
frame is spliced from socket to socket (splice(2) through a kernel pipe) instead of
being read into the proxy and written out again. These tests hold the result to the
same contract as any relay: every byte arrives, in order, whatever the frame sizes and
fragmentation, with limits applied and memory bounded when a reader is slow; and they
check that the bytes really bypassed the proxy's reads (its /proc/PID/io counts).
"""

import asyncio
import hashlib
import os
import socket
import time
import unittest

import websockets

from sbtest import (PyBackend, RawWebSocket, Switchboard, config, decode_frame, read_head, run,
                    upgrade_request)

MIB = 1024 * 1024


def _io_counters(pid):
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


class LargePayloadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("big")
        # One worker: the /proc counters below are the process's in any case.
        cls.sb = Switchboard(config([cls.backend.address], workers=1))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def test_messages_of_every_size_arrive_intact_both_ways(self):
        # Around the splice threshold (32 KiB left after the first read), around a
        # splice round (128 KiB), and well past both; odd sizes end mid-block.
        sizes = [32 * 1024, 48 * 1024 + 1, 100_000, 128 * 1024 - 1, 128 * 1024 + 1,
                 256 * 1024 + 1, MIB, 3 * MIB + 7]

        async def go():
            async with websockets.connect(self.sb.url("/sizes"), max_size=None,
                                          compression=None) as ws:
                for size in sizes:
                    payload = os.urandom(size)
                    await ws.send(payload)
                    answer = await asyncio.wait_for(ws.recv(), 30)
                    self.assertEqual(len(answer), size)
                    self.assertEqual(hashlib.sha256(answer[::-1]).digest(),
                                     hashlib.sha256(payload).digest(), f"{size} bytes")
        run(go())

    def test_a_fragmented_message_and_pings_between_its_frames(self):
        parts = [os.urandom(700_000), os.urandom(40_000), os.urandom(1_200_000)]

        async def go():
            async with websockets.connect(self.sb.url("/fragments"), max_size=None,
                                          compression=None) as ws:
                await ws.send(iter(parts))  # three frames: binary, continuation, continuation
                pong = await ws.ping(b"between")
                await asyncio.wait_for(pong, 10)
                answer = await asyncio.wait_for(ws.recv(), 30)
                self.assertEqual(answer, b"".join(parts)[::-1])
                await ws.send("still framed")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "big:still framed")
        run(go())

    def test_large_payloads_bypass_the_proxys_reads_and_writes(self):
        before = _io_counters(self.sb.pid)
        count = 16

        async def go():
            async with websockets.connect(self.sb.url("/io"), max_size=None,
                                          compression=None) as ws:
                payload = os.urandom(MIB)
                for _ in range(count):
                    await ws.send(payload)
                    self.assertEqual(len(await asyncio.wait_for(ws.recv(), 30)), MIB)
        run(go())
        after = _io_counters(self.sb.pid)
        relayed = 2 * count * MIB
        read = after["rchar"] - before["rchar"]
        written = after["wchar"] - before["wchar"]
        # Frame heads, each payload's first read and its last byte go through read and
        # write; the rest is spliced, which these counters do not include.
        self.assertLess(read, relayed / 4, f"{read} of {relayed} bytes were read")
        self.assertLess(written, relayed / 4, f"{written} of {relayed} bytes were written")


class SlowReaderTest(unittest.TestCase):
    def test_a_slow_reader_gets_every_byte_and_memory_stays_bounded(self):
        frames = 8
        payloads = [os.urandom(MIB) for _ in range(frames)]

        async def send_all(ws, path):
            for p in payloads:
                await ws.send(p)
            await ws.wait_closed()

        backend = PyBackend("slow", handler=send_all)
        sb = Switchboard(config([backend.address], workers=1))
        try:
            baseline = sb.rss_kib()
            s = socket.create_connection(("127.0.0.1", sb.port()), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
            s.sendall(upgrade_request("/slow"))
            buffer = read_head(s).split(b"\r\n\r\n", 1)[1]
            received = []
            peak_growth = 0
            reads = 0
            deadline = time.monotonic() + 60
            while len(received) < frames and time.monotonic() < deadline:
                reads += 1
                if reads % 32 == 0:
                    # Now and then: the proxy holds the backend back rather than
                    # buffering what the client has not read.
                    peak_growth = max(peak_growth, sb.rss_kib() - baseline)
                    time.sleep(0.005)
                chunk = s.recv(16 * 1024)
                self.assertTrue(chunk, "the proxy closed before every frame arrived")
                buffer += chunk
                frame = decode_frame(buffer)
                while frame is not None:
                    fin, opcode, payload, used = frame
                    received.append(payload)
                    buffer = buffer[used:]
                    frame = decode_frame(buffer)
            self.assertEqual(len(received), frames)
            for i, (got, sent) in enumerate(zip(received, payloads)):
                self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(sent).digest(),
                                 f"frame {i}")
            self.assertLess(peak_growth, 4 * 1024, f"the proxy grew by {peak_growth} KiB")
            s.close()
        finally:
            sb.stop()
            backend.stop()


class ResetMidPayloadTest(unittest.TestCase):
    def test_a_client_reset_mid_payload_leaves_the_next_session_intact(self):
        # The kernel pipe is shared by the worker's sessions: a destination that fails
        # mid-splice must leave nothing in it for the next one.
        payloads = [os.urandom(2 * MIB) for _ in range(4)]

        async def send_all(ws, path):
            try:
                for p in payloads:
                    await ws.send(p)
                await ws.wait_closed()
            except websockets.ConnectionClosed:
                pass  # the resets, seen from the backend

        backend = PyBackend("reset", handler=send_all)
        sb = Switchboard(config([backend.address], workers=1))
        try:
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", sb.port()), timeout=10)
                s.sendall(upgrade_request("/reset"))
                read_head(s)
                s.recv(64 * 1024)  # mid-way through the first payload...
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                s.close()  # ...a reset
            time.sleep(0.2)

            async def go():
                async with websockets.connect(sb.url("/after"), max_size=None,
                                              compression=None) as ws:
                    for i, sent in enumerate(payloads):
                        got = await asyncio.wait_for(ws.recv(), 30)
                        self.assertEqual(hashlib.sha256(got).digest(),
                                         hashlib.sha256(sent).digest(), f"frame {i}")
            run(go())
        finally:
            sb.stop()
            backend.stop()


class LimitsStillApplyTest(unittest.TestCase):
    def test_max_message_bytes_counts_spliced_frames(self):
        backend = PyBackend("limited")
        sb = Switchboard(config([backend.address], workers=1,
                                pool_extra="[pools.chat.websocket]\nmax_message_bytes = 1000000"))
        try:
            ws = RawWebSocket(sb.port(), "/limited")
            # 600,000 bytes pass; a continuation that brings the message past the
            # limit is refused with 1009, whatever path its payload would take.
            ws.send_frame(2, os.urandom(600_000), fin=False)
            ws.send_frame(0, os.urandom(600_000), fin=True)
            self.assertEqual(ws.recv_close(timeout=10), 1009)
            ws.close()
        finally:
            sb.stop()
            backend.stop()


if __name__ == "__main__":
    unittest.main()
