"""Proxy-generated HTTP answers (SPEC §3): each bad request or backend failure gets its
status, the access log says why, and the proxy keeps serving others afterwards.

Raw sockets stand in where a real client would be too polite to send such requests.
"""

import re
import socket
from http import HTTPStatus
import time
import unittest

import websockets

from sbtest import (PyBackend, RawBackend, Switchboard, config, decode_frame, encode_frame,
                    free_port, raw_exchange, read_head, run, status_of, upgrade_request,
                    wait_for)


class RequestChecksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("ok")
        cls.sb = Switchboard(config([cls.backend.address], listener_extra='max_header_bytes = "2KiB"'))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def send(self, data):
        return raw_exchange(self.sb.port(), data)

    def assert_status(self, data, status):
        response = self.send(data)
        self.assertEqual(status_of(response), status, response[:300])
        self.assertIn(b"Connection: close", response)
        return response

    def assert_still_serving(self):
        async def go():
            async with websockets.connect(self.sb.url("/")) as ws:
                await ws.send("still")
                self.assertEqual(await ws.recv(), "ok:still")
        run(go())

    def test_garbage_gets_400(self):
        self.assert_status(b"\x16\x03\x01 this is not http\r\n\r\n", 400)
        self.assert_still_serving()

    def test_post_upgrade_gets_400(self):
        self.assert_status(upgrade_request().replace(b"GET", b"POST", 1), 400)

    def test_http_10_gets_400(self):
        self.assert_status(upgrade_request().replace(b"HTTP/1.1", b"HTTP/1.0", 1), 400)

    def test_missing_key_gets_400(self):
        request = upgrade_request().replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"")
        self.assert_status(request, 400)

    def test_key_not_16_bytes_gets_400(self):
        self.assert_status(upgrade_request(key="c2hvcnQ="), 400)

    def test_missing_connection_upgrade_gets_400(self):
        self.assert_status(upgrade_request().replace(b"Connection: Upgrade", b"Connection: keep-alive"), 400)

    def test_missing_host_gets_400(self):
        self.assert_status(upgrade_request().replace(b"Host: example.com\r\n", b""), 400)

    def test_wrong_version_gets_426_with_supported_version(self):
        response = self.assert_status(upgrade_request(version="8"), 426)
        self.assertIn(b"Sec-WebSocket-Version: 13", response)

    def test_plain_http_request_is_proxied(self):
        # SPEC §3 HTTP requests: no longer a 400. The backend here only speaks
        # WebSocket, so its own refusal (python3-websockets' 426) comes back.
        response = self.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertEqual(status_of(response), 426, response[:300])
        self.assertIn(b"websockets", response)

    def test_conflicting_content_length_and_transfer_encoding_get_400(self):
        self.assert_status(upgrade_request(extra="Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"), 400)

    def test_obsolete_line_folding_gets_400(self):
        self.assert_status(upgrade_request(extra="X-Folded: a\r\n  b\r\n"), 400)

    def test_bare_cr_gets_400(self):
        self.assert_status(upgrade_request(extra="X-Bad: a\rb\r\n"), 400)

    # Regression (issue 13): RFC 9112 §6.3, SPEC §3: any Transfer-Encoding or a non-zero
    # Content-Length on an upgrade request gets 400.
    def test_transfer_encoding_gzip_on_upgrade_gets_400(self):
        self.assert_status(upgrade_request(extra="Transfer-Encoding: gzip\r\n"), 400)
        self.assert_still_serving()

    def test_empty_transfer_encoding_on_upgrade_gets_400(self):
        self.assert_status(upgrade_request(extra="Transfer-Encoding:\r\n"), 400)

    def test_transfer_encoding_ending_in_chunked_on_upgrade_gets_400(self):
        self.assert_status(upgrade_request(extra="Transfer-Encoding: gzip, chunked\r\n"), 400)

    def test_content_length_on_upgrade_gets_400(self):
        self.assert_status(upgrade_request(extra="Content-Length: 5\r\n") + b"hello", 400)

    def test_absurd_content_length_gets_400(self):
        self.assert_status(upgrade_request(extra="Content-Length: 99999999999999999999999\r\n"), 400)
        self.assert_still_serving()

    # Regression (issue 13): "Host: a b" was accepted and copied into X-Forwarded-Host.
    def test_host_with_a_space_gets_400(self):
        self.assert_status(upgrade_request(host="a b"), 400)
        self.assert_still_serving()

    def test_invalid_hosts_get_400(self):
        for host in ["", "a\tb", "a:99999", "a:", "a@b", "a/b", "[::1", "a\x01"]:
            with self.subTest(host=host):
                self.assert_status(upgrade_request(host=host), 400)

    def test_two_host_headers_get_400(self):
        self.assert_status(upgrade_request(extra="Host: example.com\r\n"), 400)

    def test_valid_hosts_are_accepted(self):
        for host in ["example.com:8080", "127.0.0.1", "[::1]:443", "Chat.Example.COM."]:
            with self.subTest(host=host):
                self.assertEqual(status_of(self.send_and_read_head(upgrade_request(host=host))), 101)

    # Regression (issue 13): llhttp accepts a bare LF after the request line; SPEC §3
    # wants 400 for any line end that is not CRLF.
    def test_bare_lf_after_the_request_line_gets_400(self):
        self.assert_status(upgrade_request().replace(b"HTTP/1.1\r\n", b"HTTP/1.1\n", 1), 400)
        self.assert_still_serving()

    def test_bare_lf_ending_a_header_gets_400(self):
        self.assert_status(upgrade_request(extra="X-A: b\n"), 400)

    def test_bare_lf_ending_the_head_gets_400(self):
        self.assert_status(upgrade_request()[:-2] + b"\n", 400)

    # Hostile heads: each gets 400, never a crash, and the proxy keeps serving.
    def test_nul_in_a_header_value_gets_400(self):
        self.assert_status(upgrade_request(extra="X-A: a\x00b\r\n"), 400)

    def test_space_before_the_colon_gets_400(self):
        self.assert_status(upgrade_request().replace(b"Upgrade: websocket", b"Upgrade : websocket"), 400)

    def test_duplicated_key_gets_400(self):
        self.assert_status(upgrade_request(extra="Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"), 400)

    def test_targets_not_in_origin_form_get_400(self):
        for target in ["http://example.com/", "example.com:80", "*", "/a#frag"]:
            with self.subTest(target=target):
                self.assert_status(upgrade_request(path=target), 400)
        self.assert_still_serving()

    def test_oversized_head_gets_431_and_proxy_keeps_serving(self):
        self.assert_status(upgrade_request(extra="X-Big: " + "a" * 4000 + "\r\n"), 431)
        self.assert_still_serving()

    def test_head_exactly_at_the_limit_is_accepted(self):
        base = upgrade_request(extra="X-Pad: \r\n")
        pad = 2048 - len(base)
        request = upgrade_request(extra="X-Pad: " + "p" * pad + "\r\n")
        self.assertEqual(len(request), 2048)
        response = self.send_and_read_head(request)
        self.assertEqual(status_of(response), 101)
        over = upgrade_request(extra="X-Pad: " + "p" * (pad + 1) + "\r\n")
        self.assertEqual(status_of(self.send(over)), 431)

    def send_and_read_head(self, data):
        with socket.create_connection(("127.0.0.1", self.sb.port()), timeout=5) as s:
            s.sendall(data)
            return read_head(s)

    def test_refusals_are_in_the_access_log_with_their_reason(self):
        self.assert_status(upgrade_request(version="7"), 426)
        wait_for(lambda: any(r["status"] == 426 and r["reason"] == "bad_version"
                             for r in self.sb.access_log()), what="426 access log line")
        self.assert_status(upgrade_request(extra="X-Big: " + "a" * 4000 + "\r\n"), 431)
        wait_for(lambda: any(r["status"] == 431 and r["reason"] == "headers_too_large"
                             and r["closed_by"] == "proxy" for r in self.sb.access_log()),
                 what="431 access log line")


class RoutingAndBackendFailuresTest(unittest.TestCase):
    def test_no_route_gets_404(self):
        backend = PyBackend("routed")
        sb = Switchboard(f"""
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
routes = [ {{ host = "chat.example.com", path_prefix = "/ws", pool = "chat" }} ]
[pools.chat]
backends = [ {{ address = "{backend.address}" }} ]
""")
        try:
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request("/ws", host="chat.example.com"))[:20]), 101)
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request("/ws", host="other.example.com"))), 404)
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request("/other", host="chat.example.com"))), 404)
        finally:
            sb.stop()
            backend.stop()

    def test_backend_refusing_connections_gets_502(self):
        sb = Switchboard(config([f"127.0.0.1:{free_port()}"]))
        try:
            response = raw_exchange(sb.port(), upgrade_request())
            self.assertEqual(status_of(response), 502)
            record = sb.wait_access_log(1)[0]
            self.assertEqual(record["reason"], "backend_refused")
        finally:
            sb.stop()

    def test_retries_reach_the_next_backend(self):
        backend = PyBackend("second")
        sb = Switchboard(config([f"127.0.0.1:{free_port()}", backend.address]))
        try:
            async def go():
                async with websockets.connect(sb.url("/")) as ws:
                    await ws.send("x")
                    self.assertEqual(await ws.recv(), "second:x")
            run(go())
        finally:
            sb.stop()
            backend.stop()

    def test_backend_403_reaches_the_client_unchanged(self):
        async def reject(path, headers):
            return HTTPStatus.FORBIDDEN, {"X-Reason": "not your room"}, b"go away\n"

        backend = PyBackend("gate", process_request=reject)
        sb = Switchboard(config([backend.address]))
        try:
            response = raw_exchange(sb.port(), upgrade_request())
            self.assertEqual(status_of(response), 403)
            self.assertIn(b"X-Reason: not your room", response)
            self.assertTrue(response.endswith(b"go away\n"), response)
            record = sb.wait_access_log(1)[0]
            self.assertEqual(record["status"], 403)
            self.assertEqual(record["closed_by"], "backend")
        finally:
            sb.stop()
            backend.stop()

    def test_backend_that_never_answers_gets_504(self):
        backend = RawBackend(lambda conn: (read_head(conn), time.sleep(3)))
        sb = Switchboard(config([backend.address], pool_extra='connect_timeout = "300ms"'))
        try:
            started = time.monotonic()
            response = raw_exchange(sb.port(), upgrade_request())
            self.assertEqual(status_of(response), 504)
            self.assertLess(time.monotonic() - started, 2.5)
        finally:
            sb.stop()
            backend.stop()

    def test_backend_answering_garbage_gets_502(self):
        def garbage(conn):
            read_head(conn)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            time.sleep(1)

        backend = RawBackend(garbage)
        sb = Switchboard(config([backend.address]))
        try:
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request())), 502)
        finally:
            sb.stop()
            backend.stop()

    def test_backend_closing_before_answer_gets_502(self):
        backend = RawBackend(lambda conn: (read_head(conn), conn.close()))
        sb = Switchboard(config([backend.address]))
        try:
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request())), 502)
        finally:
            sb.stop()
            backend.stop()

    def test_slow_client_is_closed_at_handshake_timeout(self):
        backend = PyBackend("slow")
        sb = Switchboard(config([backend.address], listener_extra='handshake_timeout = "300ms"'))
        try:
            with socket.create_connection(("127.0.0.1", sb.port()), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
                started = time.monotonic()
                self.assertEqual(s.recv(100), b"")  # closed without an answer
                self.assertLess(time.monotonic() - started, 2.0)
            record = sb.wait_access_log(1)[0]
            self.assertEqual(record["reason"], "handshake_timeout")
        finally:
            sb.stop()
            backend.stop()


def accept_of(key):
    import base64
    import hashlib
    return base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def key_of(head):
    return re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head.decode("latin-1")).group(1)


def answering(make_answer):
    """A RawBackend behaviour: reads the upgrade, sends make_answer(accept) and holds the
    connection open a moment so that only the proxy can end the exchange."""
    def behaviour(conn):
        head = read_head(conn)
        conn.sendall(make_answer(accept_of(key_of(head))))
        conn.settimeout(2)
        try:
            conn.recv(100)
        except OSError:
            pass
    return behaviour


def switching(accept, status_line="HTTP/1.1 101 Switching Protocols", extra=""):
    return (f"{status_line}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n").encode()


class BackendAnswerChecksTest(unittest.TestCase):
    """SPEC §3 Handshake: a 101 that is not HTTP/1.1 101 with Upgrade: websocket and the
    matching Sec-WebSocket-Accept is a backend error (502); interim 1xx answers reach the
    client and the final answer is awaited (RFC 9110 §15.2).
    These need the session to call http::check_upgrade_response and
    MessageParser::is_interim/start_next (issue 13)."""

    def exchange(self, behaviour, request=None):
        backend = RawBackend(behaviour)
        sb = Switchboard(config([backend.address]))
        try:
            return raw_exchange(sb.port(), request or upgrade_request(), timeout=5)
        finally:
            sb.stop()
            backend.stop()

    def test_backend_101_with_bare_lf_gets_502(self):
        self.assertEqual(status_of(self.exchange(answering(
            lambda accept: switching(accept).replace(b"Protocols\r\n", b"Protocols\n", 1)))), 502)

    def test_backend_101_with_a_wrong_accept_gets_502(self):
        self.assertEqual(status_of(self.exchange(answering(
            lambda accept: switching(accept_of("AAAAAAAAAAAAAAAAAAAAAA=="))))), 502)

    def test_backend_101_without_accept_gets_502(self):
        self.assertEqual(status_of(self.exchange(answering(
            lambda accept: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\n\r\n"))), 502)

    def test_backend_http10_101_gets_502(self):
        self.assertEqual(status_of(self.exchange(answering(
            lambda accept: switching(accept, "HTTP/1.0 101 Switching Protocols")))), 502)

    def test_interim_answers_reach_the_client_before_the_101(self):
        interim = (b"HTTP/1.1 100 Continue\r\n\r\n"
                   b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")

        def backend(conn):
            head = read_head(conn)
            # All in one write: the interim heads, the 101 and a frame share a buffer.
            conn.sendall(interim + switching(accept_of(key_of(head)))
                         + encode_frame(0x1, b"hello", masked=False))
            data = b""
            conn.settimeout(5)
            while decode_frame(data) is None:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            _, _, payload, _ = decode_frame(data)
            conn.sendall(encode_frame(0x1, b"echo:" + payload, masked=False))
            conn.recv(100)

        raw = RawBackend(backend)
        sb = Switchboard(config([raw.address]))
        try:
            with socket.create_connection(("127.0.0.1", sb.port()), timeout=5) as s:
                s.sendall(upgrade_request())
                expected = interim + switching(accept_of("dGhlIHNhbXBsZSBub25jZQ=="))
                data = b""
                while len(data) < len(expected) + 7:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(interim), data)
                self.assertEqual(status_of(data[len(interim):]), 101, data)
                rest = data[data.index(b"\r\n\r\n", len(interim)) + 4:]
                frame = decode_frame(rest)
                self.assertIsNotNone(frame, data)
                self.assertEqual(frame[2], b"hello")
                s.sendall(encode_frame(0x1, b"x"))
                data = rest[frame[3]:]
                while decode_frame(data) is None:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertEqual(decode_frame(data)[2], b"echo:x")
        finally:
            sb.stop()
            raw.stop()


if __name__ == "__main__":
    unittest.main()
