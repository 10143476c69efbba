"""Regression tests for the relay defects of issue 13, each through the real binary.

Every test here reproduces one way a hostile client or a broken backend once crashed
switchboard, leaked other sessions' memory, or slipped past a check; it is named after
what broke. Peers are raw sockets (a polite library would never send these bytes) and
the recording backend of sbtest, which proves what crossed the proxy byte for byte.
"""

import json
import os
import socket
import ssl
import struct
import time
import unittest

from sbtest import (RawBackend, RawWebSocket, RecordingBackend, Switchboard, TestPki,
                    accept_upgrade, config, decode_frame, encode_frame, read_head, status_of,
                    upgrade_request, wait_for)


def masked_frame(opcode, payload, length_form=None, fin=True, key=b"\x11\x22\x33\x44"):
    """A masked client frame; `length_form` forces 16 or 64 for the length's encoding."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if length_form == 64 or (length_form is None and n >= 65536):
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    elif length_form == 16 or (length_form is None and n >= 126):
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | n])
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_until_closed(sock, timeout=5.0):
    """Everything the peer sends until it closes (or the timeout)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def frames_of(data):
    out = []
    while data:
        frame = decode_frame(data)
        if frame is None:
            break
        fin, opcode, payload, used = frame
        out.append((opcode, payload))
        data = data[used:]
    return out, data


def upgrade(port, glued=b""):
    """Connects, sends an upgrade request with `glued` bytes in the same write, and
    returns (socket, 101 head, bytes that followed the head)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(upgrade_request("/ws") + glued)
    head = read_head(s)
    end = head.index(b"\r\n\r\n") + 4
    return s, head[:end], head[end:]


class HostileRelayTest(unittest.TestCase):
    def setUp(self):
        self.backend = RecordingBackend()
        self.sb = None

    def tearDown(self):
        if self.sb:
            self.sb.stop()
        self.backend.stop()

    def start(self, pool_extra="", listener_extra="", top="", workers=1):
        self.sb = Switchboard(config([self.backend.address], pool_extra=pool_extra,
                                     listener_extra=listener_extra, top=top, workers=workers))
        return self.sb

    def assert_alive(self):
        """The process still serves: a fresh connection echoes."""
        ws = RawWebSocket(self.sb.port(), "/ws")
        self.assertEqual(ws.status, 101)
        ws.send_frame(1, b"still here")
        self.assertEqual(ws.recv_frame(), (True, 1, b"still here"))
        ws.close()
        self.assertIsNone(self.sb.proc.poll(), "switchboard exited")

    def test_pong_with_64_bit_length_split_in_its_payload_does_not_crash(self):
        # Once: the hold-back of this Pong overran its 14-byte buffer into the next
        # pipe's session pointer, and the process died.
        self.start(pool_extra='[pools.chat.websocket]\nping_interval = "200ms"\n')
        s, head, rest = upgrade(self.sb.port())
        self.assertEqual(status_of(head), 101)
        s.settimeout(5)
        data = rest
        while True:
            frames, _ = frames_of(data)
            pings = [p for op, p in frames if op == 9]
            if pings:
                break
            data += s.recv(4096)
        pong = masked_frame(0xA, pings[0], length_form=64)
        self.assertEqual(len(pong), 14 + 8)
        s.sendall(pong[:17])
        time.sleep(0.05)
        s.sendall(pong[17:])
        closes = [p for op, p in frames_of(read_until_closed(s))[0] if op == 8]
        self.assertEqual(closes and struct.unpack("!H", closes[0][:2])[0], 1002)
        s.close()
        self.assert_alive()

    def test_frame_header_split_across_the_request_and_the_next_read_leaks_nothing(self):
        # Once: a header that began in the bytes glued to the request and was still
        # incomplete after the next read made the relay compute a negative length, and
        # up to 128 KiB of the proxy's heap went to the backend.
        self.start()
        frame = masked_frame(1, b"hello, backend")
        s, head, _ = upgrade(self.sb.port(), glued=frame[:1])
        self.assertEqual(status_of(head), 101)
        time.sleep(0.05)
        s.sendall(frame[1:4])  # still inside the 6-byte header
        time.sleep(0.05)
        s.sendall(frame[4:])
        s.settimeout(5)
        echoed = b""
        while decode_frame(echoed) is None:
            echoed += s.recv(4096)
        self.assertEqual(decode_frame(echoed)[:3], (True, 1, b"hello, backend"))
        wait_for(lambda: self.backend.frames, what="the backend's frame")
        self.assertEqual(self.backend.frames, [(1, b"hello, backend", True)])
        s.close()

    def test_frame_header_split_behind_the_backends_101_leaks_nothing(self):
        frame = encode_frame(1, b"hello, client", masked=False)

        def behaviour(conn):
            accept_upgrade(conn, then=frame[:1])
            time.sleep(0.1)
            conn.sendall(frame[1:2])
            time.sleep(0.1)
            conn.sendall(frame[2:])
            time.sleep(2)
            conn.close()

        self.backend.stop()
        self.backend = RawBackend(behaviour)
        self.start()
        s, head, rest = upgrade(self.sb.port())
        data = rest + read_until_closed(s, timeout=1.5)
        frames, tail = frames_of(data)
        self.assertEqual(frames[0], (1, b"hello, client"))
        self.assertEqual(len(data), len(frame) + sum(len(encode_frame(op, p, masked=False))
                                                     for op, p in frames[1:]) + len(tail))
        self.assertLess(len(data), 256, "more bytes reached the client than the backend sent")
        s.close()

    def test_message_glued_to_the_request_is_held_to_max_message_bytes(self):
        # Once: frames that arrived with the request skipped every check.
        self.start(pool_extra="[pools.chat.websocket]\nmax_message_bytes = 1000\n")
        s, head, rest = upgrade(self.sb.port(), glued=masked_frame(2, os.urandom(5000)))
        self.assertEqual(status_of(head), 101)
        closes = [p for op, p in frames_of(rest + read_until_closed(s))[0] if op == 8]
        self.assertEqual(struct.unpack("!H", closes[0][:2])[0], 1009)
        time.sleep(0.2)
        self.assertEqual([f for f in self.backend.frames if f[0] == 2], [])
        s.close()

    def test_later_oversized_message_is_caught_after_a_glued_frame(self):
        # Once: the frame tracking stayed out of step after glued frames, so later
        # oversized messages passed too.
        self.start(pool_extra="[pools.chat.websocket]\nmax_message_bytes = 1000\n")
        s, head, rest = upgrade(self.sb.port(), glued=masked_frame(1, b"small")[:3])
        s.sendall(masked_frame(1, b"small")[3:])
        s.sendall(masked_frame(2, os.urandom(3000)))
        frames, _ = frames_of(rest + read_until_closed(s))
        self.assertIn((1, b"small"), frames)
        closes = [p for op, p in frames if op == 8]
        self.assertEqual(struct.unpack("!H", closes[0][:2])[0], 1009)
        s.close()

    def test_unmasked_frame_glued_to_the_request_gets_1002_and_tcp_closes_at_once(self):
        self.start()
        s, head, rest = upgrade(self.sb.port(), glued=encode_frame(1, b"unmasked", masked=False))
        self.assertEqual(status_of(head), 101)
        started = time.monotonic()
        data = rest + read_until_closed(s, timeout=4)
        elapsed = time.monotonic() - started
        closes = [p for op, p in frames_of(data)[0] if op == 8]
        self.assertEqual(struct.unpack("!H", closes[0][:2])[0], 1002)
        # RFC 6455 §7.1.7: no waiting for the client's Close after a 1002.
        self.assertLess(elapsed, 3.5, "the proxy kept the TCP connection open after 1002")
        s.close()
        # The offending frame never reaches the backend; the proxy's 1001 may.
        self.assertEqual([f for f in self.backend.frames if f[0] != 8], [])
        for opcode, payload, masked in self.backend.frames:
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1001)

    def test_non_minimal_length_gets_1002(self):
        self.start()
        ws = RawWebSocket(self.sb.port(), "/ws")
        ws.sock.sendall(masked_frame(1, b"x" * 10, length_form=16))
        self.assertEqual(ws.recv_close(answer=False), 1002)
        ws.close()

    def test_client_that_drops_tcp_is_logged_with_null_close_code(self):
        # Once: logged and counted as close code 1012.
        self.start()
        ws = RawWebSocket(self.sb.port(), "/ws")
        ws.send_frame(1, b"bye")
        ws.recv_frame()
        ws.sock.shutdown(socket.SHUT_RDWR)
        ws.close()
        lines = self.sb.wait_access_log(1)
        entry = lines[-1]
        self.assertIsNone(entry["close_code"], entry)
        self.assertEqual(entry["closed_by"], "client", entry)

    def test_interim_answers_before_the_101_are_passed_on(self):
        # Once: a 100 or 103 before the 101 was taken as the final answer.
        def behaviour(conn):
            head = read_head(conn).decode("latin-1")
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                         b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n")
            time.sleep(0.05)
            import base64
            import hashlib
            import re
            key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                         .encode() + encode_frame(1, b"welcome", masked=False))
            time.sleep(2)

        self.backend.stop()
        self.backend = RawBackend(behaviour)
        self.start()
        s = socket.create_connection(("127.0.0.1", self.sb.port()), timeout=5)
        s.sendall(upgrade_request("/ws"))
        data = b""
        while data.count(b"\r\n\r\n") < 3 or decode_frame(data.split(b"\r\n\r\n", 3)[3]) is None:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        heads = data.split(b"\r\n\r\n")
        self.assertEqual([status_of(h + b"\r\n\r\n") for h in heads[:3]], [100, 103, 101])
        self.assertEqual(decode_frame(heads[3])[:3], (True, 1, b"welcome"))
        s.close()

    def test_101_without_matching_accept_is_a_502(self):
        def wrong_accept(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBvbmU=\r\n\r\n")
            time.sleep(1)

        self.backend.stop()
        self.backend = RawBackend(wrong_accept)
        self.start()
        s, head, _ = upgrade(self.sb.port())
        self.assertEqual(status_of(head), 502)
        s.close()

    def test_http_1_0_101_is_a_502(self):
        def old(conn):
            head = read_head(conn).decode("latin-1")
            import base64
            import hashlib
            import re
            key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            conn.sendall(("HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                         .encode())
            time.sleep(1)

        self.backend.stop()
        self.backend = RawBackend(old)
        self.start()
        s, head, _ = upgrade(self.sb.port())
        self.assertEqual(status_of(head), 502)
        s.close()


    def raw_answer(self, answer, after=2.0):
        def behaviour(conn):
            read_head(conn)
            conn.sendall(answer)
            time.sleep(after)
            conn.close()

        self.backend.stop()
        self.backend = RawBackend(behaviour)
        self.start()
        s = socket.create_connection(("127.0.0.1", self.sb.port()), timeout=5)
        s.sendall(upgrade_request("/ws"))
        return s

    def test_bytes_past_a_content_length_answer_do_not_reach_the_client(self):
        # Once: a backend's bytes after its answer (a second answer) were relayed.
        s = self.raw_answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nabc"
                            b"HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(read_until_closed(s, 4),
                         b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nabc")
        s.close()

    def test_bytes_past_a_chunked_answer_do_not_reach_the_client(self):
        s = self.raw_answer(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"3\r\nabc\r\n0\r\n\r\nSMUGGLED-BYTES")
        self.assertNotIn(b"SMUGGLED", read_until_closed(s, 4))
        s.close()

    def test_client_gone_during_a_stalled_answer_ends_the_session(self):
        # Once: the client's hang-up went unseen and the session lived until the
        # backend sent or closed.
        s = self.raw_answer(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 100\r\n\r\npartial",
                            after=8)
        s.settimeout(5)
        self.assertIn(b"401", s.recv(4096))
        s.close()
        wait_for(lambda: self.sb.access_log(), timeout=4, what="the session's end")

    def test_limit_hit_by_glued_frames_ends_without_waiting_the_linger(self):
        # Once: the backend's side was never started, so its Close went unseen and the
        # session waited 5 s.
        self.start(pool_extra="[pools.chat.websocket]\nmax_message_bytes = 1000\n")
        s, head, rest = upgrade(self.sb.port(), glued=masked_frame(2, os.urandom(5000)))
        started = time.monotonic()
        ws = RawWebSocket.__new__(RawWebSocket)
        ws.sock, ws._buffer = s, rest
        self.assertEqual(ws.recv_close(answer=True), 1009)
        read_until_closed(s, 4)
        self.assertLess(time.monotonic() - started, 3)
        s.close()

    def test_ping_waiting_for_a_frame_boundary_does_not_time_the_client_out(self):
        # Once: the Ping's timeout counted from when it was queued, so a backend
        # trickling one long frame got a healthy client cut for "ping timeout".
        def behaviour(conn):
            accept_upgrade(conn)
            payload = b"x" * 400
            frame = encode_frame(2, payload, masked=False)
            conn.sendall(frame[:10])
            for i in range(10, len(frame), 20):
                time.sleep(0.15)
                conn.sendall(frame[i:i + 20])
            time.sleep(1.5)
            conn.close()

        self.backend.stop()
        self.backend = RawBackend(behaviour)
        self.start(pool_extra='[pools.chat.websocket]\nping_interval = "300ms"\n'
                              'ping_timeout = "500ms"\n')
        s, head, rest = upgrade(self.sb.port())
        data = rest + read_until_closed(s, 6)
        frames, _ = frames_of(data)
        # The trickled frame arrives whole, and the Ping only after it: the client was
        # never timed out for a Ping it could not have seen. (This client never answers
        # Pings, so a ping timeout may follow, after the frame.)
        opcodes = [op for op, p in frames]
        self.assertIn((2, b"x" * 400), frames, opcodes)
        data_at = opcodes.index(2)
        for op in (9, 8):
            if op in opcodes:
                self.assertGreater(opcodes.index(op), data_at, opcodes)
        s.close()


class HostileTlsRelayTest(unittest.TestCase):
    """wss: a frame right behind the request, in a second TLS record of the same read."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.cert, cls.key = cls.pki.leaf("localhost", dns=["localhost"], ips=["127.0.0.1"])

    def setUp(self):
        self.backend = RecordingBackend()
        tls = (f'[listeners.tls]\ncertificates = [ {{ certificate = "{self.cert}", '
               f'private_key = "{self.key}" }} ]\n')
        self.sb = Switchboard(config([self.backend.address], listener_extra=tls, workers=1))

    def tearDown(self):
        self.sb.stop()
        self.backend.stop()

    def test_frame_in_a_second_tls_record_of_the_same_read_is_relayed(self):
        # Once: the record after the request's was read into a throwaway buffer.
        context = self.pki.client_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        s = socket.create_connection(("127.0.0.1", self.sb.port()), timeout=5)

        def pump():
            data = outgoing.read()
            if data:
                s.sendall(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError("closed during the TLS handshake")
                incoming.write(chunk)
        pump()
        # Two records, one TCP write.
        tls.write(upgrade_request("/ws"))
        tls.write(masked_frame(1, b"second record"))
        s.sendall(outgoing.read())
        plain = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                plain += tls.read(65536)
            except ssl.SSLWantReadError:
                chunk = s.recv(65536)
                if not chunk:
                    break
                incoming.write(chunk)
                continue
            if b"\r\n\r\n" in plain and decode_frame(plain.split(b"\r\n\r\n", 1)[1]):
                break
        head, rest = plain.split(b"\r\n\r\n", 1)
        self.assertEqual(status_of(head + b"\r\n\r\n"), 101)
        self.assertEqual(decode_frame(rest)[:3], (True, 1, b"second record"))
        s.close()


class HostileTlsBackendTest(unittest.TestCase):
    """A TLS backend's frames in the same read as its 101."""

    def test_frames_in_the_101s_records_are_relayed_in_order(self):
        # Once: with the reader still inside its TLS delivery, the held frame was never
        # delivered, a later record went out first, and the backend was never read again.
        pki = TestPki("Backend CA")
        cert, key = pki.leaf("localhost", dns=["localhost"], ips=["127.0.0.1"])
        server = pki.server_context(cert, key)

        def behaviour(conn):
            conn = server.wrap_socket(conn, server_side=True)
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                c = conn.recv(1)
                if not c:
                    return
                head += c
            import base64
            import hashlib
            import re
            key = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                         + encode_frame(1, b"frame-1", masked=False))
            conn.sendall(encode_frame(1, b"frame-2", masked=False))
            time.sleep(0.3)
            conn.sendall(encode_frame(1, b"frame-3", masked=False))
            time.sleep(2)
            conn.close()

        backend = RawBackend(behaviour)
        sb = Switchboard(config([backend.address], workers=1,
                                pool_extra=f'[pools.chat.tls]\nca_file = "{pki.ca}"\n'))
        try:
            s, head, rest = upgrade(sb.port())
            self.assertEqual(status_of(head), 101)
            data = rest
            s.settimeout(5)
            while len(frames_of(data)[0]) < 3:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertEqual([p for op, p in frames_of(data)[0]][:3],
                             [b"frame-1", b"frame-2", b"frame-3"])
            s.close()
        finally:
            sb.stop()
            backend.stop()


if __name__ == "__main__":
    unittest.main()
