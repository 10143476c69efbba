"""Strict HTTP/1.1 framing both ways (SPEC §3 "HTTP requests", RFC 9112 §5, §6.1, §6.3,
§7.1): request smuggling and response splitting attempts on raw sockets.

A request whose framing is ambiguous or invalid gets 400 (501 is allowed for an unknown
transfer coding) and its connection is closed; no complete request reaches the backend,
and the request hidden behind it ("GET /smuggled...") never does. A backend response
whose framing is invalid gets 502 (or, when the head has already gone to the client, the
client's connection is cut before a complete response); nothing of the bad framing
reaches the client.

The backend is Python's http.server, which records each complete request it reads.
"""

import json
import os
import socket
import time
import unittest

from sbhttp import Conn, HttpServerBackend, exchange, get
from sbtest import RawBackend, Switchboard, config, read_head, status_of


def marker():
    return "m" + os.urandom(6).hex()


def post(target, headers, body=b""):
    return (f"POST {target} HTTP/1.1\r\nHost: a.test\r\n".encode() + headers + b"\r\n" + body)


class ClientFramingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.httpd = HttpServerBackend("httpd")
        cls.sb = Switchboard(config([cls.httpd.address]))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.httpd.stop()

    def assert_rejected(self, make, allowed=(400,)):
        """make(target) -> request bytes. The request, followed by a smuggled GET, gets
        an answer in `allowed`, then the connection closes; neither reaches the backend."""
        m = marker()
        smuggled = f"GET /smuggled?{m} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode()
        with Conn(self.sb.port()) as c:
            c.send(make(f"/echo?{m}") + smuggled)
            try:
                resp = c.read_response()
            except (ValueError, AssertionError) as e:
                self.fail(f"unreadable answer: {e}: {c.buf[:300]!r}")
            self.assertIsNotNone(resp, "closed without an answer")
            self.assertIn(resp.status, allowed, resp)
            self.assertTrue(c.closed(5.0), "the connection stayed open after the refusal")
        # A valid request afterwards is served (and, being later, lets anything that
        # leaked arrive first).
        resp, _ = exchange(self.sb.port(), get(f"/name?after-{m}", extra="Connection: close\r\n"))
        self.assertEqual(resp.status, 200)
        leaked = [r for r in self.httpd.requests_for(m) if "after-" not in r.target]
        self.assertEqual(leaked, [], "requests reached the backend")

    # Controls: valid framing is accepted (so the rejections below are about framing).
    def test_valid_chunked_body_with_extension_and_trailer_is_accepted(self):
        with Conn(self.sb.port()) as c:
            c.send(post("/echo", b"Transfer-Encoding: chunked\r\n",
                        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"))
            resp = c.read_response()
            self.assertEqual(resp.status, 200, resp)
            self.assertIn(b'"length": 11', resp.body)
            c.send(get("/name"))
            self.assertEqual(c.read_response().body, b"httpd")

    def test_transfer_coding_names_are_case_insensitive(self):
        resp, _ = exchange(self.sb.port(), post("/echo", b"Transfer-Encoding: Chunked\r\n",
                                                b"5\r\nhello\r\n0\r\n\r\n"))
        self.assertEqual(resp.status, 200, resp)
        self.assertIn(b'"length": 5', resp.body)

    def test_empty_line_before_a_request_line_is_ignored(self):
        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a
        # request-line (a client's CRLF after a previous POST body).
        m = marker()
        with Conn(self.sb.port()) as c:
            c.send(post(f"/echo?{m}=1", b"Content-Length: 5\r\n", b"hello") + b"\r\n" + get(f"/echo?{m}=2"))
            for i in (1, 2):
                resp = c.read_response()
                self.assertIsNotNone(resp, f"no answer {i}")
                if i == 2 and resp.status == 400:
                    self.assertTrue(c.closed(5.0))  # rejecting it is allowed (SHOULD)
                    break
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(json.loads(resp.body)["target"], f"/echo?{m}={i}")

    def test_valid_content_length_is_accepted(self):
        resp, _ = exchange(self.sb.port(), post("/echo", b"Content-Length: 5\r\n", b"hello"))
        self.assertEqual(resp.status, 200, resp)
        self.assertIn(b'"length": 5', resp.body)

    # CL.TE and TE.CL
    def test_cl_te(self):
        self.assert_rejected(lambda t: post(t, b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                                            b"0\r\n\r\nG"))

    def test_te_cl(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                                            b"8\r\nSMUGGLED\r\n0\r\n\r\n"))

    def test_te_cl_with_zero_length(self):
        self.assert_rejected(lambda t: post(t, b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
                                            b"0\r\n\r\n"))

    # TE.TE: obfuscated transfer codings
    def test_te_chunked_then_identity(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked, identity\r\n",
                                            b"0\r\n\r\n"), (400, 501))

    def test_te_xchunked(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
                             (400, 501))

    def test_te_xchunked_with_content_length(self):
        self.assert_rejected(lambda t: post(t, b"Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n",
                                            b"0\r\n\r\n"), (400, 501))

    def test_te_chunked_twice_in_two_headers(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                                            b"0\r\n\r\n"))

    def test_te_chunked_twice_in_one_header(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"))

    def test_te_chunked_and_an_unknown_one_in_two_headers(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
                                            b"0\r\n\r\n"), (400, 501))

    def test_te_with_space_before_the_colon(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"))

    def test_te_with_vertical_tab(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"),
                             (400, 501))

    def test_te_folded_onto_a_second_line(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding:\r\n chunked\r\n", b"0\r\n\r\n"))

    def test_te_identity_alone(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: identity\r\n", b""), (400, 501))

    def test_te_on_http10_request(self):
        # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing.
        self.assert_rejected(lambda t: (f"POST {t} HTTP/1.0\r\nHost: a.test\r\n"
                                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode())

    # A Connection header naming the framing: dropping the named header as hop-by-hop
    # would leave the body unframed at the backend.
    def assert_framing_kept_or_refused(self, headers, body, length):
        m = marker()
        hidden = f"GET /smuggled?{m} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode()
        with Conn(self.sb.port()) as c:
            c.send(post(f"/echo?{m}", headers(hidden), body(hidden)))
            resp = c.read_response()
            self.assertIsNotNone(resp, "closed without an answer")
            self.assertIn(resp.status, (200, 400), resp)
            if resp.status == 200:
                self.assertEqual(json.loads(resp.body)["length"], length(hidden), resp)
        exchange(self.sb.port(), get(f"/name?after-{m}", extra="Connection: close\r\n"))
        self.assertEqual([r.target for r in self.httpd.requests_for(m) if "after-" not in r.target
                          and "smuggled" in r.target], [])

    def test_connection_naming_content_length(self):
        self.assert_framing_kept_or_refused(
            lambda hidden: b"Connection: Content-Length\r\nContent-Length: %d\r\n" % len(hidden),
            lambda hidden: hidden, lambda hidden: len(hidden))

    def test_connection_naming_transfer_encoding(self):
        self.assert_framing_kept_or_refused(
            lambda hidden: b"Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n",
            lambda hidden: b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n",
            lambda hidden: len(hidden))

    # Content-Length
    def test_duplicate_differing_content_length(self):
        self.assert_rejected(lambda t: post(t, b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"))

    def test_differing_content_length_list(self):
        self.assert_rejected(lambda t: post(t, b"Content-Length: 5, 6\r\n", b"hello!"))

    def test_invalid_content_lengths(self):
        for value in (b"+5", b"5 5", b"0x5", b"-5", b"5.0", b"", b"5a", b"99999999999999999999999"):
            with self.subTest(value=value):
                self.assert_rejected(lambda t: post(t, b"Content-Length: " + value + b"\r\n", b"hello"))

    # Chunk lines
    def test_non_hex_chunk_size(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"))

    def test_negative_chunk_size(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"))

    def test_chunk_size_with_0x_prefix(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"))

    def test_overflowing_chunk_size(self):
        # 2^64 + 5 would wrap to 5 in a 64-bit accumulator.
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n",
                                            b"10000000000000005\r\nhello\r\n0\r\n\r\n"))

    def test_huge_chunk_size(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n",
                                            b"ffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"))

    def test_bare_lf_after_chunk_size(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n", b"5\nhello\r\n0\r\n\r\n"))

    def test_bare_lf_after_chunk_data(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\n0\r\n\r\n"))

    def test_bare_lf_in_last_chunk(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\n\n"))

    def test_chunk_data_longer_than_its_size(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n",
                                            b"5\r\nhelloEXTRA\r\n0\r\n\r\n"))

    def test_chunk_extension_over_4_kib(self):
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n",
                                            b"5;a=" + b"b" * 5000 + b"\r\nhello\r\n0\r\n\r\n"))

    def test_obs_fold_in_a_trailer(self):
        # The trailer section is field lines like the head's (RFC 9112 §7.1.2, §5.2).
        self.assert_rejected(lambda t: post(t, b"Transfer-Encoding: chunked\r\n",
                                            b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"))

    # The head
    def test_obs_fold(self):
        self.assert_rejected(lambda t: get(t, extra="X-Folded: a\r\n b\r\n"))

    def test_bare_lf_in_the_head(self):
        self.assert_rejected(lambda t: f"GET {t} HTTP/1.1\nHost: a.test\r\n\r\n".encode())

    def test_bare_cr_in_the_head(self):
        self.assert_rejected(lambda t: get(t, extra="X-A: a\rb\r\n"))

    def test_two_host_headers(self):
        self.assert_rejected(lambda t: get(t, extra="Host: b.test\r\n"))


def respond_with(raw):
    """A RawBackend behaviour: reads one request head, sends `raw`, then holds the
    connection a moment so that only the proxy can end the exchange."""
    def behaviour(conn):
        read_head(conn)
        conn.sendall(raw)
        conn.settimeout(2)
        try:
            conn.recv(100)
        except OSError:
            pass
    return behaviour


def receive_all(port, data, timeout=5.0):
    """(bytes received, closed) for `data` sent on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False


class BackendFramingTest(unittest.TestCase):
    def exchange(self, raw):
        backend = RawBackend(respond_with(raw))
        sb = Switchboard(config([backend.address]))
        try:
            return receive_all(sb.port(), get("/", extra="Connection: close\r\n"))
        finally:
            sb.stop()
            backend.stop()

    def assert_502(self, raw):
        data, closed = self.exchange(raw)
        self.assertEqual(status_of(data), 502, data[:300])

    def assert_502_or_cut(self, raw, bad):
        """Head-level framing is fine, body framing is not: 502 if the proxy had not sent
        the head yet, else the client connection is cut, and `bad` never reaches it."""
        data, closed = self.exchange(raw)
        self.assertIn(status_of(data), (200, 502), data[:300])
        self.assertNotIn(bad, data)
        if status_of(data) == 200:
            self.assertTrue(closed, "the connection stayed open after a broken body")
            self.assertFalse(data.endswith(b"0\r\n\r\n"), "a complete chunked body")

    def test_control_valid_response_passes(self):
        data, _ = self.exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.assertEqual(status_of(data), 200, data)
        self.assertTrue(data.endswith(b"\r\n\r\nok"), data)

    def test_content_length_and_transfer_encoding(self):
        self.assert_502(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"0\r\n\r\nhello")

    def test_differing_content_lengths(self):
        self.assert_502(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!")

    def test_invalid_content_lengths(self):
        for value in (b"+2", b"2 2", b"0x2", b"-2"):
            with self.subTest(value=value):
                self.assert_502(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nok")

    def test_transfer_encoding_not_ending_in_chunked(self):
        self.assert_502(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
                        b"2\r\nok\r\n0\r\n\r\n")

    def test_transfer_encoding_twice(self):
        self.assert_502(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"2\r\nok\r\n0\r\n\r\n")

    def test_connection_naming_content_length(self):
        # Dropping Content-Length as hop-by-hop would leave the answer unframed.
        data, _ = self.exchange(b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\n"
                                b"Content-Length: 2\r\n\r\nok")
        self.assertIn(status_of(data), (200, 502), data)
        if status_of(data) == 200:
            self.assertIn(b"\r\ncontent-length: 2\r\n", data.lower())
            self.assertTrue(data.endswith(b"\r\n\r\nok"), data)

    def test_bare_lf_in_the_head(self):
        self.assert_502(b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok")

    def test_obs_fold_in_the_head(self):
        self.assert_502(b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok")

    def test_status_code_out_of_range(self):
        # RFC 9110 §15: a status code is three digits, 100 to 599.
        self.assert_502(b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok")

    def test_obs_fold_in_a_trailer(self):
        self.assert_502_or_cut(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"2\r\nok\r\n0\r\nX-T: a\r\n b\r\n\r\n", b"\r\n b\r\n")

    def test_non_hex_chunk_size(self):
        self.assert_502_or_cut(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"zz\r\nhello\r\n0\r\n\r\n", b"zz\r\n")

    def test_overflowing_chunk_size(self):
        self.assert_502_or_cut(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"10000000000000005\r\nhello\r\n0\r\n\r\n", b"10000000000000005")

    def test_bare_lf_in_a_chunk_line(self):
        self.assert_502_or_cut(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"5\nhello\r\n0\r\n\r\n", b"5\nhello")

    def test_chunk_extension_over_4_kib(self):
        self.assert_502_or_cut(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"5;a=" + b"b" * 5000 + b"\r\nhello\r\n0\r\n\r\n", b"b" * 4097)


if __name__ == "__main__":
    unittest.main()
