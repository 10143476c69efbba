"""Plain HTTP/1.1 request proxying (SPEC §3 "HTTP requests", §2 keepalive_timeout and
[pools.X.http], §5 access log), through the real binary, with peers nobody here wrote:
curl as the client, Python's http.server and aiohttp as backends, python3-websockets for
the rooms, raw sockets where a real client would be too polite (pipelining, an upgrade
after plain requests, a client that stops reading).

Backends record every request they receive (with the id of the proxy's connection it came
on and a hash of its body), so each assertion proves what really crossed the proxy.
The framing attacks (request smuggling) are in test_http_smuggling.py.
"""

import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
import unittest

import websockets

from sbhttp import (MIB, AiohttpBackend, Conn, HttpServerBackend, body_bytes, body_digest,
                    curl, exchange, get, has_metric, metric, parse_metrics)
from sbtest import (RawBackend, Switchboard, admin_get, config, decode_frame, encode_frame,
                    read_head, run, status_of, upgrade_request, wait_for, whoami)

ADMIN = '[admin]\nlisten = "127.0.0.1:0"\n'


def http_table(**keys):
    """A [pools.chat.http] table (it must come last in pool_extra)."""
    lines = "".join(f'{k} = {v!r}\n'.replace("'", '"') if isinstance(v, str) else f"{k} = {v}\n"
                    for k, v in keys.items())
    return "[pools.chat.http]\n" + lines


def start(backends, listener_extra="", pool_extra="", admin=True, workers=2):
    return Switchboard(config([b.address for b in backends], listener_extra=listener_extra,
                              pool_extra=pool_extra, top=ADMIN if admin else "",
                              workers=workers),
                       listeners=("public", "admin") if admin else ("public",))


def marker():
    return "m" + os.urandom(6).hex()


class PeersSelfTest(unittest.TestCase):
    """The peers without the proxy: when these fail, the harness is at fault, not
    switchboard."""

    def test_http_server_backend_directly(self):
        httpd = HttpServerBackend("direct")
        try:
            base = f"http://{httpd.address}"
            r = curl("-v", f"{base}/name", f"{base}/name")
            self.assertEqual(r.stdout, b"directdirect")
            self.assertIn("Re-using existing connection", r.stderr)
            self.assertEqual(len(httpd.connections), 1)
            self.assertEqual(curl(f"{base}/chunked?size=100000").stdout, body_bytes(100000))
            self.assertEqual(curl(f"{base}/close?size=1000").stdout, body_bytes(1000))
            path = os.path.join(tempfile.mkdtemp(prefix="sbhttp-"), "up")
            with open(path, "wb") as f:
                f.write(body_bytes(MIB))
            r = curl("-v", "-H", "Expect: 100-continue", "-H", "Transfer-Encoding: chunked",
                     "--data-binary", f"@{path}", f"{base}/upload")
            self.assertIn("< HTTP/1.1 100 Continue", r.stderr)
            self.assertEqual(json.loads(r.stdout)["sha256"], body_digest(MIB))
            with Conn(httpd.port) as c:
                c.send(get("/cl?size=10", method="HEAD") + get("/status?code=304&size=5") + get("/name"))
                self.assertEqual(c.read_response("HEAD").header("content-length"), "10")
                self.assertEqual(c.read_response().status, 304)
                self.assertEqual(c.read_response().body, b"direct")
        finally:
            httpd.stop()

    def test_tls_http_server_backend_directly(self):
        from sbtest import TestPki

        pki = TestPki("Backend CA")
        cert, key = pki.leaf("backend.test", dns=["backend.test"], ips=["127.0.0.1"])
        httpd = HttpServerBackend("tls", ssl_context=pki.server_context(cert, key))
        try:
            r = curl("-v", "--cacert", pki.ca, f"https://127.0.0.1:{httpd.port}/name",
                     f"https://127.0.0.1:{httpd.port}/name")
            self.assertEqual(r.stdout, b"tlstls")
            self.assertEqual(len(httpd.connections), 1)
        finally:
            httpd.stop()

    def test_aiohttp_backend_directly(self):
        aio = AiohttpBackend("direct")
        try:
            path = os.path.join(tempfile.mkdtemp(prefix="sbhttp-"), "up")
            with open(path, "wb") as f:
                f.write(body_bytes(MIB))
            r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{path}",
                     f"http://{aio.address}/hash")
            self.assertEqual(json.loads(r.stdout)["sha256"], body_digest(MIB))
            self.assertEqual(run(whoami(f"ws://{aio.address}/ws")), "direct")
        finally:
            aio.stop()


class CurlTest(unittest.TestCase):
    """curl through the proxy to http.server and aiohttp backends."""

    @classmethod
    def setUpClass(cls):
        cls.httpd = HttpServerBackend("httpd")
        cls.sb = start([cls.httpd])
        cls.base = f"http://127.0.0.1:{cls.sb.port()}"

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.httpd.stop()

    def test_get_reaches_the_backend_and_its_answer_the_client(self):
        r = curl("-i", f"{self.base}/name")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b"HTTP/1.1 200"), r.stdout[:300])
        self.assertTrue(r.stdout.endswith(b"\r\n\r\nhttpd"), r.stdout[-300:])

    def test_two_urls_reuse_one_client_connection_and_one_backend_connection(self):
        m = marker()
        r = curl("-v", "-o", "/dev/null", "-o", "/dev/null",
                 f"{self.base}/name?{m}=1", f"{self.base}/name?{m}=2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Re-using existing connection", r.stderr)
        self.assertEqual(r.stderr.count("< HTTP/1.1 200"), 2, r.stderr)
        requests = self.httpd.requests_for(m)
        self.assertEqual(len(requests), 2, requests)
        # Backend connection reuse: the second request came on the first one's connection.
        self.assertEqual(len({req.conn for req in requests}), 1, requests)

    def test_content_length_body_of_every_small_size(self):
        for size in (0, 1, 1000, 65536, 1000001):
            with self.subTest(size=size):
                r = curl(f"{self.base}/cl?size={size}")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, body_bytes(size))

    def test_chunked_response(self):
        r = curl("-D", "-", "-o", "/dev/null", f"{self.base}/chunked?size=300000")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = curl(f"{self.base}/chunked?size=300000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), body_digest(300000))

    def test_close_delimited_response(self):
        r = curl(f"{self.base}/close?size=200000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), 200000)
        self.assertEqual(r.stdout, body_bytes(200000))

    def test_huge_response_streams_through(self):
        size = 64 * MIB
        r = curl(f"{self.base}/cl?size={size}", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), size)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), body_digest(size))

    def test_huge_chunked_response_streams_through(self):
        size = 64 * MIB
        r = curl(f"{self.base}/chunked?size={size}", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), size)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), body_digest(size))

    def upload_file(self, size):
        f = tempfile.NamedTemporaryFile(delete=False, dir=self.sb.dir)
        data = os.urandom(size)
        f.write(data)
        f.close()
        return f.name, hashlib.sha256(data).hexdigest()

    def test_content_length_upload_is_forwarded_byte_for_byte(self):
        path, digest = self.upload_file(3 * MIB)
        r = curl("--data-binary", f"@{path}", f"{self.base}/upload")
        self.assertEqual(r.returncode, 0, r.stderr)
        answer = json.loads(r.stdout)
        self.assertEqual((answer["sha256"], answer["length"]), (digest, 3 * MIB))

    def test_chunked_upload_is_forwarded_byte_for_byte(self):
        path, digest = self.upload_file(3 * MIB + 17)
        r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{path}",
                 f"{self.base}/upload")
        self.assertEqual(r.returncode, 0, r.stderr)
        answer = json.loads(r.stdout)
        self.assertEqual((answer["sha256"], answer["length"]), (digest, 3 * MIB + 17))

    def test_expect_100_continue_is_passed_through(self):
        # http.server answers "100 Continue" itself when the request asks for it; curl
        # waits for it (up to its 1 s expect timeout) before sending the body.
        path, digest = self.upload_file(2 * MIB)
        m = marker()
        r = curl("-v", "-H", "Expect: 100-continue", "--expect100-timeout", "20",
                 "--data-binary", f"@{path}", f"{self.base}/upload?{m}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("< HTTP/1.1 100 Continue", r.stderr)
        self.assertIn("< HTTP/1.1 200", r.stderr)
        self.assertEqual(json.loads(r.stdout)["sha256"], digest)
        self.assertEqual(self.httpd.requests_for(m)[0].header("expect"), "100-continue")

    def test_http10_connection_closes_after_the_answer(self):
        r = curl("-v", "--http1.0", f"{self.base}/name", f"{self.base}/name")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"httpdhttpd")
        self.assertNotIn("Re-using existing connection", r.stderr)
        with Conn(self.sb.port()) as c:
            c.send(get("/name", version="HTTP/1.0"))
            resp = c.read_response()
            self.assertEqual((resp.status, resp.body), (200, b"httpd"))
            self.assertTrue(c.closed(5.0), "an HTTP/1.0 connection stayed open")

    def test_http10_keep_alive_keeps_the_connection(self):
        with Conn(self.sb.port()) as c:
            for _ in range(3):
                c.send(get("/name", version="HTTP/1.0", extra="Connection: keep-alive\r\n"))
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (200, b"httpd"), resp)
                self.assertIsNotNone(resp.header("content-length"), resp)
                # RFC 9112 §9.3: an HTTP/1.0 client assumes close unless told keep-alive.
                self.assertIn("keep-alive", (resp.header("connection") or "").lower(), resp)
            self.assertFalse(c.closed(0.5))

    def test_http10_client_never_gets_a_chunked_answer(self):
        # RFC 9112 §6.1: no Transfer-Encoding in a response to an HTTP/1.0 request.
        # http.server's /chunked answers in chunks whatever the request's version (a
        # backend at fault): the proxy re-frames the body or refuses the answer (502),
        # but never hands chunks to a client that cannot read them.
        with Conn(self.sb.port()) as c:
            c.send(get("/chunked?size=100000", version="HTTP/1.0"))
            resp = c.read_response()
            self.assertIsNone(resp.header("transfer-encoding"), resp)
            self.assertIn(resp.status, (200, 502), resp)
            if resp.status == 200:
                self.assertEqual(resp.body, body_bytes(100000))

    def test_head_204_304_have_no_body_and_the_connection_goes_on(self):
        with Conn(self.sb.port()) as c:
            c.send(get("/cl?size=100", method="HEAD"))
            resp = c.read_response("HEAD")
            self.assertEqual((resp.status, resp.header("content-length")), (200, "100"))
            c.send(get("/chunked?size=1000", method="HEAD"))
            resp = c.read_response("HEAD")
            self.assertEqual((resp.status, resp.header("transfer-encoding")), (200, "chunked"))
            c.send(get("/status?code=204"))
            self.assertEqual(c.read_response().status, 204)
            c.send(get("/status?code=304&size=5", extra='If-None-Match: "v1"\r\n'))
            self.assertEqual(c.read_response().status, 304)
            c.send(get("/name"))
            resp = c.read_response()
            self.assertEqual((resp.status, resp.body), (200, b"httpd"))
            self.assertEqual(c.buf, b"", "bytes after the last answer")

    def test_default_max_request_body_is_10_mib(self):
        m = marker()
        resp, _ = exchange(self.sb.port(), f"POST /upload?{m} HTTP/1.1\r\nHost: a\r\n"
                           f"Content-Length: {10 * MIB + 1}\r\n\r\n".encode())
        self.assertEqual(resp.status, 413, resp)
        self.assertEqual(self.httpd.requests_for(m), [])

    def test_concurrent_keep_alive_clients_get_only_their_own_answers(self):
        m = marker()
        errors = []

        def client(i):
            try:
                with Conn(self.sb.port()) as c:
                    for j in range(20):
                        c.send(get(f"/echo?{m}={i}.{j}"))
                        resp = c.read_response()
                        target = json.loads(resp.body)["target"]
                        if target != f"/echo?{m}={i}.{j}":
                            errors.append((i, j, target))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(self.httpd.requests_for(m)), 800)

    def test_curl_head(self):
        r = curl("-I", f"{self.base}/cl?size=12345")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"content-length: 12345", r.stdout.lower())

    def test_forwarded_headers_are_added(self):
        r = curl("-H", "X-Forwarded-For: 10.1.2.3", f"{self.base}/echo")
        self.assertEqual(r.returncode, 0, r.stderr)
        headers = dict(json.loads(r.stdout)["headers"])
        self.assertEqual(headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1")
        self.assertEqual(headers["x-forwarded-proto"], "http")
        self.assertEqual(headers["x-forwarded-host"], f"127.0.0.1:{self.sb.port()}")

    def test_connection_cannot_strip_the_forwarded_headers(self):
        # A client naming X-Forwarded-* in Connection may drop its own, never the ones the
        # proxy adds.
        with Conn(self.sb.port()) as c:
            c.send(get("/echo", extra="Connection: X-Forwarded-For, X-Forwarded-Proto, "
                                      "X-Forwarded-Host\r\nX-Forwarded-For: 10.6.6.6\r\n"))
            resp = c.read_response()
        self.assertIn(resp.status, (200, 400), resp)
        if resp.status == 200:
            headers = json.loads(resp.body)["headers"]
            xff = [v for k, v in headers if k == "x-forwarded-for"]
            self.assertEqual(len(xff), 1, headers)
            self.assertTrue(xff[0].endswith("127.0.0.1"), headers)
            self.assertIn(("x-forwarded-proto", "http"), [tuple(h) for h in headers])
            self.assertIn(("x-forwarded-host", "a.test"), [tuple(h) for h in headers])

    def test_hop_by_hop_request_headers_are_not_forwarded(self):
        with Conn(self.sb.port()) as c:
            c.send(get("/echo", extra="Connection: keep-alive, X-Private\r\nX-Private: secret\r\n"
                                      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                                      "TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n"
                                      "X-Public: yes\r\n"))
            resp = c.read_response()
        self.assertEqual(resp.status, 200, resp)
        got = json.loads(resp.body)["headers"]
        names = {k for k, _ in got}
        self.assertIn("x-public", names)
        for hop in ("x-private", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
            self.assertNotIn(hop, names, got)
        for k, v in got:
            if k == "connection":
                self.assertNotIn("x-private", v.lower(), got)

    def test_hop_by_hop_response_headers_are_not_forwarded(self):
        with Conn(self.sb.port()) as c:
            c.send(get("/hopbyhop"))
            resp = c.read_response()
        self.assertEqual((resp.status, resp.body), (200, b"ok"), resp)
        names = resp.header_names()
        self.assertIn("x-public", names)
        for hop in ("x-backend-private", "keep-alive", "proxy-connection", "trailer", "upgrade"):
            self.assertNotIn(hop, names, resp)
        self.assertNotIn("x-backend-private", (resp.header("connection") or "").lower())


class AiohttpBackendTest(unittest.TestCase):
    """aiohttp as a second backend implementation: it streams request bodies and
    answers with their hash."""

    @classmethod
    def setUpClass(cls):
        cls.aio = AiohttpBackend("aio")
        cls.sb = start([cls.aio], pool_extra=http_table(max_request_body="100MiB"))
        cls.base = f"http://127.0.0.1:{cls.sb.port()}"

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.aio.stop()

    def upload(self, size, *args):
        path = os.path.join(self.sb.dir, f"upload-{size}")
        with open(path, "wb") as f:
            f.write(body_bytes(size, 11))
        digest = hashlib.sha256(body_bytes(size, 11)).hexdigest()
        r = curl(*args, "--data-binary", f"@{path}", f"{self.base}/hash", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        answer = json.loads(r.stdout)
        self.assertEqual((answer["sha256"], answer["length"]), (digest, size))

    def test_uploads_with_content_length(self):
        for size in (0, 1, 70000, 20 * MIB):
            with self.subTest(size=size):
                self.upload(size)

    def test_chunked_uploads(self):
        for size in (1, 70000, 20 * MIB):
            with self.subTest(size=size):
                self.upload(size, "-H", "Transfer-Encoding: chunked")

    def test_expect_100_continue_upload(self):
        self.upload(4 * MIB, "-H", "Expect: 100-continue", "--expect100-timeout", "20")

    def test_keep_alive_get_reuses_the_connection(self):
        r = curl("-v", f"{self.base}/name", f"{self.base}/name", f"{self.base}/name")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"aio" * 3)
        self.assertEqual(r.stderr.count("Re-using existing connection"), 2, r.stderr)


class PipeliningAndUpgradeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.aio = AiohttpBackend("aio")
        cls.httpd = HttpServerBackend("httpd")
        cls.sb_aio = start([cls.aio], admin=False)
        cls.sb = start([cls.httpd], admin=False)

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.sb_aio.stop()
        cls.aio.stop()
        cls.httpd.stop()

    def test_pipelined_requests_are_answered_in_order(self):
        m = marker()
        with Conn(self.sb.port()) as c:
            c.send(b"".join([
                get(f"/echo?{m}=1"),
                get(f"/cl?size=70000&{m}=2"),
                get(f"/echo?{m}=3", method="HEAD"),
                get(f"/chunked?size=5000&{m}=4"),
                b"POST /echo?" + m.encode() + b"=5 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                get(f"/echo?{m}=6"),
            ]))
            r1 = c.read_response()
            self.assertEqual(json.loads(r1.body)["target"], f"/echo?{m}=1")
            r2 = c.read_response()
            self.assertEqual(r2.body, body_bytes(70000))
            r3 = c.read_response("HEAD")
            self.assertEqual((r3.status, r3.body), (200, b""))
            r4 = c.read_response()
            self.assertEqual(r4.body, body_bytes(5000))
            r5 = json.loads(c.read_response().body)
            self.assertEqual((r5["target"], r5["length"]), (f"/echo?{m}=5", 5))
            self.assertEqual(json.loads(c.read_response().body)["target"], f"/echo?{m}=6")

    def test_many_requests_pipelined_behind_a_body(self):
        m = marker()
        with Conn(self.sb.port()) as c:
            c.send(f"POST /echo?{m}=post HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n".encode()
                   + b"hello" + b"".join(get(f"/echo?{m}={i}", extra="X-Pad: " + "p" * 2000 + "\r\n")
                                         for i in range(100)))
            first = json.loads(c.read_response().body)
            self.assertEqual((first["target"], first["length"]), (f"/echo?{m}=post", 5))
            for i in range(100):
                resp = c.read_response()
                self.assertIsNotNone(resp, f"closed before answer {i}")
                self.assertEqual(json.loads(resp.body)["target"], f"/echo?{m}={i}")

    def test_nothing_is_answered_after_a_request_with_connection_close(self):
        # RFC 9112 §9.6: after a request with "close", no further request is processed.
        m = marker()
        with Conn(self.sb.port()) as c:
            c.send(get(f"/echo?{m}=1", extra="Connection: close\r\n") + get(f"/echo?{m}=2"))
            resp = c.read_response()
            self.assertEqual(json.loads(resp.body)["target"], f"/echo?{m}=1")
            self.assertIn("close", (resp.header("connection") or "").lower(), resp)
            self.assertTrue(c.closed(5.0), "the connection stayed open")
        self.assertEqual([r.target for r in self.httpd.requests_for(m)], [f"/echo?{m}=1"])

    def test_upgrade_after_plain_requests_on_the_same_connection(self):
        with Conn(self.sb_aio.port()) as c:
            for _ in range(2):
                c.send(get("/name"))
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (200, b"aio"), resp)
            self.assertEqual(c.upgrade("/ws"), 101)
            c.send_text(b"after requests")
            self.assertEqual(c.read_frame(), (1, b"aio:after requests"))


    def test_upgrade_pipelined_behind_a_request(self):
        with Conn(self.sb_aio.port()) as c:
            c.send(get("/name") + upgrade_request("/ws"))
            resp = c.read_response()
            self.assertEqual((resp.status, resp.body), (200, b"aio"), resp)
            head = c.read_head()
            self.assertEqual(status_of(head + b"\r\n\r\n"), 101, head)
            c.send(encode_frame(1, b"pipelined"))
            while decode_frame(c.buf) is None:
                self.assertTrue(c._fill(), "closed before the echo")
            self.assertEqual(decode_frame(c.buf)[1:3], (1, b"aio:pipelined"))


class PlacementTest(unittest.TestCase):
    """SPEC §3: a request is placed by the same rules as an upgrade (a key whose room is
    active goes to the room's backend), without creating a room."""

    def setUp(self):
        self.a = AiohttpBackend("A")
        self.b = AiohttpBackend("B")
        self.sb = start([self.a, self.b], pool_extra='hash_key = "query:room"\nload_factor = 1.0\n')

    def tearDown(self):
        self.sb.stop()
        self.a.stop()
        self.b.stop()

    def route(self, key):
        return json.loads(admin_get(self.sb, f"/route?pool=chat&key={key}"))

    def keys_homed_on(self, address, count):
        keys = []
        for i in range(1000):
            key = f"k{i}"
            if self.route(key)["preference"][0]["backend"] == address:
                keys.append(key)
                if len(keys) == count:
                    return keys
        raise AssertionError("no keys for " + address)

    def name_of(self, room):
        r = curl(f"http://127.0.0.1:{self.sb.port()}/name?room={room}")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode()

    def test_request_goes_to_the_active_rooms_backend(self):
        k1, k2, k3 = self.keys_homed_on(self.a.address, 3)
        url = lambda room: f"ws://127.0.0.1:{self.sb.port()}/ws?room={room}"

        async def go():
            ws1 = await websockets.connect(url(k1))
            await ws1.send("x")
            self.assertEqual(await ws1.recv(), "A:x")  # k1 on its home, A
            # The load cap (ceil(1.0 × 2 / 2) = 1) is reached on A: k2 walks on to B.
            ws2 = await websockets.connect(url(k2))
            await ws2.send("y")
            self.assertEqual(await ws2.recv(), "B:y")
            await ws1.close()
            wait_for(lambda: not self.route(k1)["room"]["active"], what="k1's room gone")
            # k2's room is on B although its home is A, which is now free.
            for _ in range(3):
                self.assertEqual(self.name_of(k2), "B")
            # A key without a room goes home.
            self.assertEqual(self.name_of(k3), "A")
            await ws2.close()

        run(go())

    def test_requests_do_not_create_rooms(self):
        with Conn(self.sb.port()) as c:
            for _ in range(3):
                c.send(get("/name?room=lonely"))
                self.assertEqual(c.read_response().status, 200)
            # The keep-alive connection is still open: still no room.
            route = self.route("lonely")
            self.assertFalse(route["room"]["active"], route)
            self.assertEqual(route["room"]["connections"], 0, route)
            status = json.loads(admin_get(self.sb, "/status"))
            self.assertEqual([p["rooms"] for p in status["pools"]], [0])
        route = self.route("lonely")
        self.assertFalse(route["room"]["active"], route)


class ClientAddressTest(unittest.TestCase):
    """The backend learns each request's own client: a backend connection that carries
    one client's PROXY header never carries another client's requests."""

    def test_proxy_header_matches_every_request_on_a_backend_connection(self):
        seen = []  # (PROXY source address, X-Forwarded-For, target)

        def proxied(conn):
            conn.settimeout(10)
            f = conn.makefile("rb")
            line = f.readline()
            source = line.split(b" ")[2].decode() if line.startswith(b"PROXY ") else None
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    chunk = f.readline()
                    if not chunk:
                        return
                    head += chunk
                text = head.decode("latin-1")
                xff = re.search(r"(?im)^x-forwarded-for:\s*(.*?)\s*$", text)
                seen.append((source, xff.group(1) if xff else None, text.split(" ")[1]))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        backend = RawBackend(proxied)
        sb = start([backend], admin=False, workers=1, pool_extra='proxy_protocol = "v1"\n')
        try:
            for i, client in enumerate(("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1")):
                s = socket.socket()
                s.bind((client, 0))
                s.settimeout(10)
                s.connect(("127.0.0.1", sb.port()))
                c = Conn.__new__(Conn)
                c.sock, c.timeout, c.buf, c.eof = s, 10, b"", False
                with c:
                    c.send(get(f"/from/{client}/{i}"))
                    self.assertEqual(c.read_response().body, b"ok")
            self.assertEqual(len(seen), 4, seen)
            for source, xff, target in seen:
                client = target.split("/")[2]
                self.assertEqual(xff, client, seen)
                self.assertEqual(source, client, f"a request from {client} came on a backend "
                                                 f"connection announced as {source}: {seen}")
        finally:
            sb.stop()
            backend.stop()


    def test_forwarded_headers_false_adds_none(self):
        httpd = HttpServerBackend("plain")
        sb = start([httpd], admin=False, pool_extra="forwarded_headers = false\n")
        try:
            r = curl(f"http://127.0.0.1:{sb.port()}/echo")
            names = {k for k, _ in json.loads(r.stdout)["headers"]}
            self.assertFalse(names & {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
                             names)
        finally:
            sb.stop()
            httpd.stop()


class PerRequestRoutingTest(unittest.TestCase):
    """Each request on a kept-alive connection is routed and placed on its own: the
    connection is not pinned to its first request's pool or backend."""

    def test_routes_per_request(self):
        a, b = HttpServerBackend("A"), HttpServerBackend("B")
        sb = Switchboard(f"""
[server]
workers = 1
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "pa"
routes = [ {{ path_prefix = "/b/", pool = "pb" }} ]
[pools.pa]
backends = [ {{ address = "{a.address}" }} ]
[pools.pb]
backends = [ {{ address = "{b.address}" }} ]
""")
        try:
            with Conn(sb.port()) as c:
                for path, expected in (("/name", "A"), ("/b/x", "B"), ("/name", "A"), ("/b/y", "B")):
                    c.send(get(path))
                    resp = c.read_response()
                    self.assertEqual(resp.status, 200, resp)
                    got = resp.body.decode() if path == "/name" else json.loads(resp.body)["backend"]
                    self.assertEqual(got, expected, path)
        finally:
            sb.stop()
            a.stop()
            b.stop()

    def test_hash_placement_per_request(self):
        a, b = HttpServerBackend("A"), HttpServerBackend("B")
        sb = start([a, b], workers=1, pool_extra='hash_key = "query:room"\n')
        try:
            names = {a.address: "A", b.address: "B"}
            expected = {f"r{i}": names[json.loads(admin_get(sb, f"/route?pool=chat&key=r{i}"))["backend"]]
                        for i in range(16)}
            self.assertEqual(set(expected.values()), {"A", "B"}, "keys all on one side: pick others")
            with Conn(sb.port()) as c:
                for key, name in expected.items():
                    c.send(get(f"/name?room={key}"))
                    self.assertEqual(c.read_response().body.decode(), name, key)
        finally:
            sb.stop()
            a.stop()
            b.stop()


class ReloadTest(unittest.TestCase):
    """SPEC §1 SIGHUP: connections to a backend that the new file removes are closed,
    paced over close_spread; new requests use the new configuration."""

    def setUp(self):
        import signal

        self.a, self.b = HttpServerBackend("A"), HttpServerBackend("B")
        top = '[server]\nclose_spread = "500ms"\n'
        self.sb = Switchboard(config([self.a.address], workers=1).replace("[server]\n", top, 1))
        self.assertEqual(curl(f"http://127.0.0.1:{self.sb.port()}/name").stdout, b"A")
        self.keep = Conn(self.sb.port())
        self.keep.send(get("/name"))
        self.assertEqual(self.keep.read_response().body, b"A")
        self.sb.write_config(config([self.b.address], workers=1).replace("[server]\n", top, 1))
        self.sb.signal(signal.SIGHUP)
        self.sb.wait_line(r"configuration reloaded", timeout=10)

    def tearDown(self):
        self.keep.close()
        self.sb.stop()
        self.a.stop()
        self.b.stop()

    def test_new_client_connections_use_the_new_backends(self):
        self.assertEqual(curl(f"http://127.0.0.1:{self.sb.port()}/name").stdout, b"B")

    def test_idle_connections_to_a_removed_backend_are_closed(self):
        wait_for(lambda: self.a.open_connections() == 0, timeout=5,
                 what="the proxy to close its connections to the removed backend")

    def test_a_kept_alive_client_is_not_sent_to_a_removed_backend(self):
        # Once close_spread (500ms) has passed, the idle kept-alive connection is either
        # closed (between requests, which HTTP allows; the client's retry then reaches
        # the new backends) or its next request goes to the new backends.
        if not self.keep.closed(2.0):
            self.keep.send(get("/name"))
            resp = self.keep.read_response()
            if resp is not None:
                self.assertEqual((resp.status, resp.body), (200, b"B"),
                                 "a request on a connection kept since before the reload "
                                 "went to the backend the reload removed")
        resp, _ = exchange(self.sb.port(), get("/name"))
        self.assertEqual((resp.status, resp.body), (200, b"B"), resp)


class TimeoutsAndLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.httpd = HttpServerBackend("httpd")
        cls.aio = AiohttpBackend("aio")
        cls.sb = start([cls.httpd], listener_extra='keepalive_timeout = "300ms"',
                       pool_extra=http_table(response_timeout="500ms", max_request_body="1KiB"))
        cls.sb_aio = start([cls.aio], admin=False,
                           pool_extra=http_table(max_request_body="1KiB"))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.sb_aio.stop()
        cls.httpd.stop()
        cls.aio.stop()

    def test_slow_backend_gets_504(self):
        started = time.monotonic()
        m = marker()
        resp, _ = exchange(self.sb.port(), get(f"/slow?delay=4&{m}"))
        self.assertEqual(resp.status, 504, resp)
        self.assertLess(time.monotonic() - started, 3.5)
        rec = wait_for(lambda: [r for r in self.sb.access_log() if m in (r.get("path") or "")],
                       what="the 504's access log line")[0]
        self.assertEqual(rec["status"], 504)
        self.assertTrue(rec["reason"], rec)
        self.assertEqual(rec["backend"], self.httpd.address)

    def test_response_timeout_starts_after_the_request_body(self):
        # SPEC §2: "from the request's last byte": a slow upload is not a slow backend.
        with Conn(self.sb.port()) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n")
            for i in range(8):
                time.sleep(0.15)  # 1.2 s in all, over response_timeout (500ms)
                c.send(b"%d" % i)
            resp = c.read_response()
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(json.loads(resp.body)["length"], 8)

    def test_response_timeout_ends_with_the_head(self):
        # A head in time, then a body that takes longer than response_timeout in all
        # (in pieces never further apart than a fifth of it): not cut.
        def slow_body(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nab")
            for piece in (b"cd", b"ef", b"gh", b"ij", b"kl"):
                time.sleep(0.1)  # 0.5 s in all, with response_timeout at 250ms
                conn.sendall(piece)
            conn.settimeout(2)
            try:
                conn.recv(100)
            except OSError:
                pass

        backend = RawBackend(slow_body)
        sb = start([backend], admin=False, pool_extra=http_table(response_timeout="250ms"))
        try:
            with Conn(sb.port()) as c:
                c.send(get("/"))
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (200, b"abcdefghijkl"), resp)
        finally:
            sb.stop()
            backend.stop()

    def test_a_backend_silent_mid_body_does_not_hold_the_client_forever(self):
        # SPEC is silent; docs/http.md: response_timeout is also the longest silence
        # inside an answer's body, after which the connection is closed (as nginx's
        # proxy_read_timeout does).
        def stalls(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
            time.sleep(4)

        backend = RawBackend(stalls)
        sb = start([backend], admin=False, pool_extra=http_table(response_timeout="500ms"))
        try:
            started = time.monotonic()
            with Conn(sb.port()) as c:
                c.send(get("/"))
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body, resp.complete), (200, b"ab", False), resp)
            self.assertLess(time.monotonic() - started, 3.0)
        finally:
            sb.stop()
            backend.stop()

    def test_a_head_not_complete_in_response_timeout_gets_504(self):
        def half_head(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-")
            time.sleep(3)

        backend = RawBackend(half_head)
        sb = start([backend], admin=False, pool_extra=http_table(response_timeout="500ms"))
        try:
            started = time.monotonic()
            resp, _ = exchange(sb.port(), get("/"))
            self.assertEqual(resp.status, 504, resp)
            self.assertLess(time.monotonic() - started, 2.5)
        finally:
            sb.stop()
            backend.stop()

    def test_idle_client_connection_is_closed_after_keepalive_timeout(self):
        with Conn(self.sb.port()) as c:
            c.send(get("/name"))
            self.assertEqual(c.read_response().status, 200)
            started = time.monotonic()
            self.assertTrue(c.closed(5.0), "idle keep-alive connection still open after 5 s")
            self.assertGreater(time.monotonic() - started, 0.1)

    def test_requests_inside_keepalive_timeout_keep_the_connection(self):
        with Conn(self.sb.port()) as c:
            for _ in range(5):
                c.send(get("/name"))
                self.assertEqual(c.read_response().status, 200)
                time.sleep(0.1)

    def test_a_slow_answer_is_not_cut_by_keepalive_timeout(self):
        # keepalive_timeout is idleness between requests, not a limit on one.
        with Conn(self.sb.port()) as c:
            c.send(get("/slow?delay=0.45"))
            resp = c.read_response()
            self.assertEqual((resp.status, resp.body), (200, b"slow"), resp)

    def test_half_closed_client_still_gets_its_answer(self):
        with Conn(self.sb.port()) as c:
            c.send(get("/name"))
            c.sock.shutdown(socket.SHUT_WR)
            resp = c.read_response()
            self.assertIsNotNone(resp, "closed without an answer")
            self.assertEqual((resp.status, resp.body), (200, b"httpd"))

    def test_content_length_over_max_request_body_gets_413(self):
        for port, backend_requests in ((self.sb.port(), lambda m: self.httpd.requests_for(m)),
                                       (self.sb_aio.port(), lambda m: [r for r in self.aio.requests if m in r[1]])):
            m = marker()
            resp, _ = exchange(port, f"POST /hash?{m} HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n".encode()
                               + b"x" * 2000)
            self.assertEqual(resp.status, 413, resp)
            self.assertEqual(backend_requests(m), [])

    def test_chunked_body_over_max_request_body_gets_413(self):
        m = marker()
        body = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        resp, _ = exchange(self.sb.port(), f"POST /upload?{m} HTTP/1.1\r\nHost: a\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n".encode() + body)
        self.assertEqual(resp.status, 413, resp)
        self.assertEqual(self.httpd.requests_for(m), [])  # no complete request reached it

    def test_body_at_max_request_body_is_accepted(self):
        resp, _ = exchange(self.sb.port(), b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n"
                           b"Connection: close\r\n\r\n" + b"z" * 1024)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body)["length"], 1024)


def answer_first_request_only(method_seen):
    """A RawBackend behaviour: answers the first request on each connection with a
    keep-alive 200, then reads the next request's head and closes without a byte (a
    backend that timed the idle connection out just as the proxy reused it)."""
    def behaviour(conn):
        head = read_head(conn)
        if not head:
            return
        method_seen.append((conn.getpeername()[1], head.split(b" ", 1)[0].decode()))
        # The first requests of these tests have no body.
        body = b"" if head.startswith(b"HEAD ") else b"fresh"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body)
        head = read_head(conn)
        if head:
            method_seen.append((conn.getpeername()[1], head.split(b" ", 1)[0].decode() + " (dropped)"))
        conn.close()
    return behaviour


class BackendConnectionReuseTest(unittest.TestCase):
    def test_idle_backend_connections_are_closed_after_idle_timeout(self):
        httpd = HttpServerBackend("idle")
        sb = start([httpd], admin=False, workers=1, pool_extra=http_table(idle_timeout="1s"))
        try:
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/name").stdout, b"idle")
            # The idle connection outlives the client's (a second client reuses it)...
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/name").stdout, b"idle")
            self.assertEqual(len(httpd.connections), 1, "the backend connection was not kept")
            # ...until idle_timeout.
            wait_for(lambda: httpd.open_connections() == 0, timeout=6,
                     what="the proxy to close its idle backend connection")
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/name").stdout, b"idle")
            self.assertEqual(len(httpd.connections), 2)
        finally:
            sb.stop()
            httpd.stop()

    def test_idle_timeout_holds_while_the_client_stays_connected(self):
        # The backend connection is idle whether or not its last client is still
        # connected: [pools.X.http] idle_timeout closes it all the same.
        httpd = HttpServerBackend("idle")
        sb = start([httpd], admin=False, workers=1, listener_extra='keepalive_timeout = "30s"',
                   pool_extra=http_table(idle_timeout="300ms"))
        try:
            with Conn(sb.port()) as c:
                c.send(get("/name"))
                self.assertEqual(c.read_response().body, b"idle")
                wait_for(lambda: httpd.open_connections() == 0, timeout=5,
                         what="the proxy to close the idle backend connection of a kept-alive client")
                c.send(get("/name"))
                self.assertEqual(c.read_response().body, b"idle")
        finally:
            sb.stop()
            httpd.stop()

    def test_at_most_max_idle_connections_are_kept(self):
        httpd = HttpServerBackend("many")
        sb = start([httpd], admin=False, workers=1, pool_extra=http_table(max_idle_connections=2))
        try:
            results = []

            def one(i):
                results.append(curl(f"http://127.0.0.1:{sb.port()}/slow?delay=0.5&i={i}").stdout)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(results, [b"slow"] * 6)
            self.assertGreaterEqual(len(httpd.connections), 6)  # they overlapped
            wait_for(lambda: httpd.open_connections() <= 2, timeout=5,
                     what=f"at most 2 idle backend connections (open: {httpd.open_connections()})")
        finally:
            sb.stop()
            httpd.stop()

    def test_max_idle_connections_holds_while_clients_stay_connected(self):
        # Idle backend connections whose clients are still connected are idle all the
        # same: at most max_idle_connections of them are kept.
        httpd = HttpServerBackend("many")
        sb = start([httpd], admin=False, workers=1, listener_extra='keepalive_timeout = "30s"',
                   pool_extra=http_table(max_idle_connections=2))
        clients = [Conn(sb.port()) for _ in range(6)]
        try:
            for c in clients:
                c.send(get("/slow?delay=0.5"))
            for c in clients:
                self.assertEqual(c.read_response().body, b"slow")
            self.assertGreaterEqual(len(httpd.connections), 6)  # they overlapped
            wait_for(lambda: httpd.open_connections() <= 2, timeout=5,
                     what=f"at most 2 idle backend connections (open: {httpd.open_connections()})")
            for c in clients:
                c.send(get("/name"))
                self.assertEqual(c.read_response().body, b"many")
        finally:
            for c in clients:
                c.close()
            sb.stop()
            httpd.stop()

    def test_backend_closing_after_each_response_is_survived(self):
        httpd = HttpServerBackend("closer", close_after_response=True)
        sb = start([httpd], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                for i in range(20):
                    c.send(get(f"/name?i={i}"))
                    resp = c.read_response()
                    self.assertIsNotNone(resp, f"request {i}: client connection closed without an answer")
                    self.assertEqual((resp.status, resp.body), (200, b"closer"), f"request {i}")
                    if i % 5 == 4:
                        time.sleep(0.2)  # long enough for the backend's FIN to arrive
        finally:
            sb.stop()
            httpd.stop()

    def test_backend_closing_idle_connections_is_survived(self):
        httpd = HttpServerBackend("idler", idle_timeout=0.2)
        sb = start([httpd], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                for i in range(6):
                    c.send(get(f"/name?i={i}"))
                    resp = c.read_response()
                    self.assertIsNotNone(resp, f"request {i}: client connection closed without an answer")
                    self.assertEqual((resp.status, resp.body), (200, b"idler"), f"request {i}")
                    time.sleep(0.2 if i % 2 else 0.5)  # around and past the backend's idle timeout
            self.assertGreaterEqual(len(httpd.connections), 2)  # it did close some
        finally:
            sb.stop()
            httpd.stop()

    def test_backend_refusing_connections_gets_502(self):
        from sbtest import free_port

        class Gone:
            address = f"127.0.0.1:{free_port()}"

        sb = start([Gone], admin=False)
        try:
            resp, _ = exchange(sb.port(), get("/name"))
            self.assertEqual(resp.status, 502, resp)
        finally:
            sb.stop()

    def test_idempotent_request_on_a_dropped_reused_connection_is_retried(self):
        seen = []
        backend = RawBackend(answer_first_request_only(seen))
        sb = start([backend], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                for i in range(3):
                    c.send(get(f"/r{i}"))
                    resp = c.read_response()
                    self.assertIsNotNone(resp, f"request {i}: client connection closed without an answer")
                    self.assertEqual((resp.status, resp.body), (200, b"fresh"), (i, seen))
            # Each retry above followed a request the backend dropped on a reused
            # connection; without reuse this test would prove nothing.
            self.assertTrue(any(s[1].endswith("(dropped)") for s in seen),
                            f"the proxy never reused a backend connection: {seen}")
        finally:
            sb.stop()
            backend.stop()

    def test_other_idempotent_methods_are_retried_too(self):
        seen = []
        backend = RawBackend(answer_first_request_only(seen))
        sb = start([backend], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                c.send(get("/warm"))
                self.assertEqual(c.read_response().status, 200)
                for method in ("HEAD", "DELETE", "OPTIONS", "GET"):
                    c.send(get(f"/{method}", method=method))
                    resp = c.read_response(method)
                    self.assertIsNotNone(resp, f"{method}: client connection closed without an answer")
                    self.assertEqual(resp.status, 200, (method, resp, seen))
            self.assertTrue(any(s[1].endswith("(dropped)") for s in seen),
                            f"the proxy never reused a backend connection: {seen}")
        finally:
            sb.stop()
            backend.stop()

    def test_post_on_a_dropped_reused_connection_is_not_retried(self):
        seen = []
        backend = RawBackend(answer_first_request_only(seen))
        sb = start([backend], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                c.send(get("/warm"))
                self.assertEqual(c.read_response().status, 200)
                c.send(b"POST /once HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody")
                resp = c.read_response()
                # The POST must have gone on the GET's (reused) connection for the
                # no-retry rule to be tested at all.
                self.assertEqual(seen[:2], [(seen[0][0], "GET"), (seen[0][0], "POST (dropped)")],
                                 f"the proxy did not reuse the backend connection: {seen}")
                self.assertIsNotNone(resp, "client connection closed without an answer")
                self.assertEqual(resp.status, 502, (resp, seen))
            posts = [s for s in seen if s[1].startswith("POST")]
            self.assertEqual(len(posts), 1, seen)
        finally:
            sb.stop()
            backend.stop()

    def test_bytes_after_a_head_or_204_answer_never_reach_the_client(self):
        # A HEAD answer and a 204 end with their head; whatever the backend sends after
        # them is not part of them, and must not become the answer to the next request.
        evil = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"

        def extra(conn):
            conn.settimeout(10)
            while True:
                head = read_head(conn)
                if not head:
                    return
                if head.startswith(b"HEAD"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + evil)
                elif b"/204" in head:
                    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n" + evil)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")

        backend = RawBackend(extra)
        sb = start([backend], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                for first, method in (("/h", "HEAD"), ("/204", "GET")):
                    c.send(get(first, method=method))
                    resp = c.read_response(method)
                    self.assertIsNotNone(resp)
                    self.assertIn(resp.status, (200, 204), resp)
                    self.assertEqual(resp.body, b"")
                    c.send(get("/next"))
                    resp = c.read_response()
                    if resp is None:
                        break  # closed: acceptable, nothing wrong delivered
                    self.assertNotEqual(resp.body, b"evil!", f"after {first}")
                    self.assertIn((resp.status, resp.body), ((200, b"good"), (502, resp.body)))
        finally:
            sb.stop()
            backend.stop()

    def test_backend_sending_two_responses_for_one_request(self):
        def double(conn):
            conn.settimeout(10)
            while read_head(conn):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")

        backend = RawBackend(double)
        sb = start([backend], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                for i in range(3):
                    c.send(get(f"/d{i}"))
                    resp = c.read_response()
                    if resp is None:
                        break
                    self.assertNotEqual(resp.body, b"second", f"request {i} got the unsolicited answer")
                    self.assertIn(resp.status, (200, 502))
                    if resp.status == 200:
                        self.assertEqual(resp.body, b"first")
        finally:
            sb.stop()
            backend.stop()


class TaintedBackendConnectionTest(unittest.TestCase):
    """A backend connection left mid-request or mid-response (a refused or broken body, a
    client gone, a backend that said close) is never handed to the next request. One
    worker, so that the next request would find it in the idle set."""

    @classmethod
    def setUpClass(cls):
        cls.httpd = HttpServerBackend("clean")
        cls.sb = start([cls.httpd], admin=False, workers=1,
                       pool_extra=http_table(max_request_body="64KiB"))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.httpd.stop()

    def assert_next_requests_are_clean(self, what):
        for i in range(5):
            m = marker()
            with Conn(self.sb.port()) as c:
                c.send(get(f"/echo?{m}"))
                resp = c.read_response()
                self.assertIsNotNone(resp, f"after {what}: request {i} got no answer")
                self.assertEqual(resp.status, 200, f"after {what}: request {i}: {resp}")
                self.assertEqual(json.loads(resp.body)["target"], f"/echo?{m}", what)

    def test_after_a_chunked_body_over_the_limit(self):
        with Conn(self.sb.port()) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(80):
                    c.send(b"400\r\n" + b"q" * 1024 + b"\r\n")
            except OSError:
                pass  # the proxy stopped reading after its 413
            resp = c.read_response()
            self.assertEqual(resp.status, 413, resp)
        self.assert_next_requests_are_clean("a 413")

    def test_after_a_bad_chunk_mid_body(self):
        with Conn(self.sb.port()) as c:
            m = marker()
            c.send(f"POST /upload?{m} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   .encode() + b"100\r\n" + b"r" * 256 + b"\r\n")
            wait_for(lambda: any(m in h.target for h in self.httpd.heads), what="the head at the backend")
            c.send(b"zz\r\n")
            resp = c.read_response()
            self.assertEqual(resp.status, 400, resp)
        self.assert_next_requests_are_clean("a bad chunk")

    def test_after_a_client_gone_mid_body(self):
        c = Conn(self.sb.port())
        m = marker()
        c.send(f"POST /upload?{m} HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n".encode()
               + b"s" * 3000)
        wait_for(lambda: any(m in h.target for h in self.httpd.heads), what="the head at the backend")
        c.close()
        self.assert_next_requests_are_clean("a client gone mid-body")

    def test_after_a_client_gone_mid_response(self):
        c = Conn(self.sb.port())
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        target = f"/cl?size={32 * MIB}&{marker()}"
        c.send(get(target))
        c.sock.recv(1024)
        wait_for(lambda: self.httpd.sent.get(target), what="the backend sending")
        c.close()
        self.assert_next_requests_are_clean("a client gone mid-response")

    def test_after_a_backend_that_said_close(self):
        violations = []

        def says_close(conn):
            conn.settimeout(5)
            if not read_head(conn):
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbye!")
            try:
                if read_head(conn):  # it said close: nothing more may come on it
                    violations.append(conn.getpeername())
            except OSError:
                pass

        backend = RawBackend(says_close)
        sb = start([backend], admin=False, workers=1)
        try:
            with Conn(sb.port()) as c:
                for i in range(3):
                    c.send(get(f"/c{i}"))
                    resp = c.read_response()
                    self.assertIsNotNone(resp, f"request {i}: no answer")
                    self.assertEqual((resp.status, resp.body), (200, b"bye!"), f"request {i}")
            self.assertEqual(violations, [], "requests sent on a connection the backend closed")
        finally:
            sb.stop()
            backend.stop()


class BackendAnswersTest(unittest.TestCase):
    """Raw backends for answers http.server would not give."""

    def with_backend(self, behaviour, test, pool_extra=""):
        backend = RawBackend(behaviour)
        sb = start([backend], admin=False, workers=1, pool_extra=pool_extra)
        try:
            test(sb, backend)
        finally:
            sb.stop()
            backend.stop()

    def test_interim_103_is_passed_on_before_the_answer(self):
        def early_hints(conn):
            conn.settimeout(10)
            while read_head(conn):
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def test(sb, backend):
            with Conn(sb.port()) as c:
                for _ in range(2):
                    c.send(get("/hints"))
                    interim = c.read_response(interim=True)
                    self.assertEqual(interim.status, 103, interim)
                    self.assertEqual(interim.header("link"), "</style.css>; rel=preload")
                    resp = c.read_response()
                    self.assertEqual((resp.status, resp.body), (200, b"ok"), resp)

        self.with_backend(early_hints, test)

    def test_backend_dying_mid_body_ends_the_client_connection(self):
        def truncated(conn):
            read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"t" * 500)
            conn.close()

        def test(sb, backend):
            with Conn(sb.port()) as c:
                c.send(get("/cut"))
                resp = c.read_response()
                self.assertEqual(resp.status, 200)
                self.assertFalse(resp.complete, resp)
                self.assertEqual(resp.body, b"t" * 500)
                self.assertTrue(c.eof)

        self.with_backend(truncated, test)

    def test_early_answer_before_the_body_ends(self):
        # The application answers 401 on the head alone and reads no body. The client
        # gets the 401; the body it goes on sending is never taken for a request.
        heads = []

        def early(conn):
            conn.settimeout(10)
            head = read_head(conn)
            heads.append(head.split(b"\r\n", 1)[0])
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope")
            try:
                while read_head(conn):  # anything more that looks like a request
                    heads.append(b"more")
            except OSError:
                pass

        def test(sb, backend):
            hidden = get("/smuggled")
            with Conn(sb.port()) as c:
                c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\n"
                       + f"Content-Length: {len(hidden) + 100000}\r\n\r\n".encode())
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (401, b"nope"), resp)
                try:
                    c.send(hidden + b"x" * 100000)
                except OSError:
                    pass
                c.drain(5.0)
            self.assertEqual(heads, [b"POST /upload HTTP/1.1"])

        self.with_backend(early, test)

    def test_body_after_a_refused_expect_is_never_a_request(self):
        # The backend refuses the Expect at once without reading the body; the client
        # sends the body anyway (RFC 9110 §10.1.1 allows it). Those bytes are the body,
        # never a request of their own, whatever they look like.
        heads = []

        def refuse(conn):
            conn.settimeout(10)
            while True:
                head = read_head(conn)
                if not head:
                    return
                heads.append(head.split(b"\r\n", 1)[0])
                if b"Expect" in head:
                    conn.sendall(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    conn.close()
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def test(sb, backend):
            hidden = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
            with Conn(sb.port()) as c:
                c.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                       + f"Content-Length: {len(hidden)}\r\n\r\n".encode())
                resp = c.read_response()
                self.assertEqual(resp.status, 417, resp)
                try:
                    c.send(hidden)
                    c.send(get("/after"))
                    after = c.read_response()
                    if after is not None:
                        self.assertEqual((after.status, after.body), (200, b"ok"), after)
                except OSError:
                    pass  # the proxy closed the connection: also fine
            resp, _ = exchange(sb.port(), get("/barrier"))
            self.assertEqual(resp.status, 200)
            self.assertNotIn(b"GET /smuggled HTTP/1.1", heads)

        self.with_backend(refuse, test)


class TlsRequestsTest(unittest.TestCase):
    def test_requests_over_tls(self):
        from sbtest import TestPki

        pki = TestPki()
        cert, key = pki.leaf("localhost", dns=["localhost"], ips=["127.0.0.1"])
        httpd = HttpServerBackend("secure")
        sb = Switchboard(config([httpd.address], listener_extra=(
            f'[listeners.tls]\ncertificates = [ {{ certificate = "{cert}", private_key = "{key}" }} ]\n')))
        try:
            base = f"https://127.0.0.1:{sb.port()}"
            r = curl("-v", "--cacert", pki.ca, f"{base}/name", f"{base}/echo")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Re-using existing connection", r.stderr)
            self.assertTrue(r.stdout.startswith(b"secure"), r.stdout)
            headers = dict(json.loads(r.stdout[len(b"secure"):])["headers"])
            self.assertEqual(headers["x-forwarded-proto"], "https")
            path = os.path.join(sb.dir, "up")
            with open(path, "wb") as f:
                f.write(body_bytes(3 * MIB))
            r = curl("--cacert", pki.ca, "-H", "Transfer-Encoding: chunked", "--data-binary",
                     f"@{path}", f"{base}/upload")
            self.assertEqual(json.loads(r.stdout)["sha256"], body_digest(3 * MIB))
            r = curl("--cacert", pki.ca, f"{base}/cl?size={16 * MIB}", timeout=60)
            self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), body_digest(16 * MIB))
        finally:
            sb.stop()
            httpd.stop()


class TlsBackendTest(unittest.TestCase):
    def test_requests_to_a_tls_backend_reuse_its_connection(self):
        from sbtest import TestPki

        pki = TestPki("Backend CA")
        cert, key = pki.leaf("backend.test", dns=["backend.test"], ips=["127.0.0.1"])
        httpd = HttpServerBackend("tls-backend", ssl_context=pki.server_context(cert, key))
        sb = start([httpd], admin=False, workers=1, pool_extra=(
            f'[pools.chat.tls]\nca_file = "{pki.ca}"\nserver_name = "backend.test"\n'))
        try:
            base = f"http://127.0.0.1:{sb.port()}"
            m = marker()
            r = curl(f"{base}/name?{m}=1", f"{base}/name?{m}=2", f"{base}/cl?size={4 * MIB}&{m}=3")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, b"tls-backend" * 2 + body_bytes(4 * MIB))
            self.assertEqual(len({q.conn for q in httpd.requests_for(m)}), 1, httpd.requests_for(m))
            path = os.path.join(sb.dir, "up")
            with open(path, "wb") as f:
                f.write(body_bytes(2 * MIB))
            r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{path}", f"{base}/upload")
            self.assertEqual(json.loads(r.stdout)["sha256"], body_digest(2 * MIB))
        finally:
            sb.stop()
            httpd.stop()


class StalledClientTest(unittest.TestCase):
    def test_client_that_stops_reading_keeps_memory_bounded(self):
        httpd = HttpServerBackend("huge")
        sb = start([httpd], admin=False)
        try:
            wait_for(lambda: sb.rss_kib() > 0, what="rss")
            # Warm up: one ordinary request first, so that lazily allocated pools count
            # in the baseline.
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/cl?size={4 * MIB}").returncode, 0)
            baseline = sb.rss_kib()
            size = 512 * MIB
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.settimeout(10)
            s.connect(("127.0.0.1", sb.port()))
            target = f"/cl?size={size}"
            s.sendall(get(target))
            self.assertEqual(status_of(s.recv(4096)), 200)
            # Stop reading. Wait until the backend stops making progress.
            last = [-1, time.monotonic()]

            def stalled():
                sent = httpd.sent.get(target, 0)
                if sent != last[0]:
                    last[:] = [sent, time.monotonic()]
                    return False
                return time.monotonic() - last[1] > 1.5

            wait_for(stalled, timeout=60, interval=0.1, what="the backend to stall")
            self.assertLess(httpd.sent[target], 256 * MIB, "the proxy kept reading")
            peak = baseline
            for _ in range(20):
                peak = max(peak, sb.rss_kib())
                time.sleep(0.05)
            self.assertLess(peak - baseline, 64 * 1024, f"RSS grew from {baseline} to {peak} KiB")
            # Other clients are still served.
            r = curl(f"http://127.0.0.1:{sb.port()}/name", timeout=10)
            self.assertEqual(r.stdout, b"huge")
            s.close()
        finally:
            sb.stop()
            httpd.stop()


    def test_pipelining_client_that_never_reads_is_not_read_without_bound(self):
        # Requests pipelined by a client that reads no answer: the proxy stops reading
        # them once the answers back up, instead of queueing requests or answers.
        httpd = HttpServerBackend("piped")
        sb = start([httpd], admin=False, workers=1)
        try:
            baseline = sb.rss_kib()
            s = socket.create_connection(("127.0.0.1", sb.port()), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.setblocking(False)
            request = get("/cl?size=1000")
            block = request * 1000
            sent, last_progress = 0, time.monotonic()
            deadline = time.monotonic() + 60
            while time.monotonic() - last_progress < 1.5:
                self.assertLess(time.monotonic(), deadline, "the proxy never stopped reading")
                try:
                    sent += s.send(block)
                    last_progress = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.02)
            self.assertLess(sent, 256 * MIB)
            self.assertLess(len(httpd.requests), sent // len(request) // 2)
            self.assertLess(sb.rss_kib() - baseline, 64 * 1024)
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/name", timeout=10).stdout, b"piped")
            s.close()
        finally:
            sb.stop()
            httpd.stop()

    def test_upload_to_a_backend_that_stops_reading_keeps_memory_bounded(self):
        release = threading.Event()

        def deaf(conn):
            read_head(conn)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            release.wait(30)  # reads nothing more until the test ends

        backend = RawBackend(deaf)
        httpd = HttpServerBackend("other")
        sb = Switchboard(f"""
[server]
workers = 2
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "deaf"
routes = [ {{ path_prefix = "/name", pool = "other" }} ]
[pools.deaf]
backends = [ {{ address = "{backend.address}" }} ]
[pools.deaf.http]
max_request_body = 0
[pools.other]
backends = [ {{ address = "{httpd.address}" }} ]
""")
        try:
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/name").stdout, b"other")
            baseline = sb.rss_kib()
            size = 512 * MIB
            s = socket.create_connection(("127.0.0.1", sb.port()), timeout=10)
            s.sendall(f"PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n".encode())
            s.setblocking(False)
            block = body_bytes(MIB)
            sent, last_progress = 0, time.monotonic()
            deadline = time.monotonic() + 60
            while time.monotonic() - last_progress < 1.5:
                self.assertLess(time.monotonic(), deadline, "uploading never stalled")
                try:
                    n = s.send(block[:min(len(block), size - sent)])
                    sent += n
                    last_progress = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.02)
            self.assertLess(sent, 256 * MIB, "the proxy kept reading the upload")
            peak = max(sb.rss_kib() for _ in range(5))
            self.assertLess(peak - baseline, 64 * 1024, f"RSS grew from {baseline} to {peak} KiB")
            self.assertEqual(curl(f"http://127.0.0.1:{sb.port()}/name", timeout=10).stdout, b"other")
            s.close()
        finally:
            release.set()
            sb.stop()
            backend.stop()
            httpd.stop()


class AccessLogAndMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.aio = AiohttpBackend("aio")
        cls.sb = start([cls.aio])

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.aio.stop()

    def records(self, m):
        return [r for r in self.sb.access_log() if m in (r.get("path") or "")]

    def test_one_access_log_line_per_request(self):
        m = marker()
        r = curl("-o", "/dev/null", "-o", "/dev/null",
                 f"http://127.0.0.1:{self.sb.port()}/name?{m}=1",
                 f"http://127.0.0.1:{self.sb.port()}/name?{m}=2")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: len(self.records(m)) >= 2, what="two access log lines")
        self.assertEqual(len(self.records(m)), 2)
        for i, rec in enumerate(self.records(m), 1):
            self.assertEqual(rec["method"], "GET")
            self.assertEqual(rec["path"], f"/name?{m}={i}")
            self.assertEqual(rec["status"], 200)
            self.assertEqual(rec["backend"], self.aio.address)
            self.assertEqual(rec["pool"], "chat")
            self.assertEqual(rec["listener"], "public")
            self.assertGreaterEqual(rec["bytes_out"], 3)
            self.assertGreater(rec["bytes_in"], 0)
            self.assertIsInstance(rec["duration_ms"], (int, float))

    def test_upload_bytes_in_access_log(self):
        m = marker()
        resp, _ = exchange(self.sb.port(), f"POST /hash?{m} HTTP/1.1\r\nHost: a\r\n"
                           "Content-Length: 100000\r\nConnection: close\r\n\r\n".encode() + b"u" * 100000)
        self.assertEqual(resp.status, 200)
        rec = wait_for(lambda: self.records(m), what="access log line")[0]
        self.assertEqual((rec["method"], rec["status"]), ("POST", 200))
        self.assertGreaterEqual(rec["bytes_in"], 100000)
        self.assertGreaterEqual(rec["bytes_out"], len(resp.body))

    def test_connection_that_upgrades_logs_its_websocket_line_when_it_ends(self):
        m = marker()
        with Conn(self.sb.port()) as c:
            c.send(get(f"/name?{m}=plain"))
            self.assertEqual(c.read_response().status, 200)
            wait_for(lambda: self.records(m), what="the request's line")
            c.send(upgrade_request(f"/ws?{m}=ws"))
            self.assertEqual(status_of(c.read_head() + b"\r\n\r\n"), 101)
            c.send(encode_frame(1, b"hi"))
            while decode_frame(c.buf) is None:
                self.assertTrue(c._fill())
            self.assertEqual(decode_frame(c.buf)[2], b"aio:hi")
            self.assertEqual([r["status"] for r in self.records(m)], [200])
            c.send(encode_frame(8, (1000).to_bytes(2, "big")))
            self.assertTrue(c.drain(5.0), "the WebSocket did not end after Close")
        wait_for(lambda: len(self.records(m)) >= 2, what="the WebSocket line")
        recs = self.records(m)
        self.assertEqual([(r["path"], r["status"]) for r in recs],
                         [(f"/name?{m}=plain", 200), (f"/ws?{m}=ws", 101)])
        self.assertEqual(recs[1]["messages_in"], 1)

    def test_refusals_and_backend_failures_have_their_status_and_a_reason(self):
        sb = start([self.aio], admin=False,
                   pool_extra=http_table(max_request_body="1KiB"))
        try:
            m = marker()
            resp, _ = exchange(sb.port(), f"POST /hash?{m}=413 HTTP/1.1\r\nHost: a\r\n"
                               "Content-Length: 5000\r\n\r\n".encode())
            self.assertEqual(resp.status, 413)
            resp, _ = exchange(sb.port(), f"POST /hash?{m}=400 HTTP/1.1\r\nHost: a\r\n"
                               "Transfer-Encoding: chunked\r\n\r\nzz\r\n".encode())
            self.assertEqual(resp.status, 400)

            def lines():
                recs = [r for r in sb.access_log() if m in (r.get("path") or "")]
                return recs if len(recs) >= 2 else None

            recs = wait_for(lines, what="the refusals' access log lines")
            by_status = {r["status"]: r for r in recs}
            self.assertEqual(set(by_status), {400, 413})
            for status, rec in by_status.items():
                self.assertEqual(rec["method"], "POST")
                self.assertTrue(rec["reason"], f"{status} without a reason: {rec}")
                self.assertEqual(rec["closed_by"], "proxy", rec)
        finally:
            sb.stop()

    def test_metrics(self):
        before = parse_metrics(admin_get(self.sb, "/metrics"))
        r = curl("-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                 *(f"http://127.0.0.1:{self.sb.port()}/name",) * 3)
        self.assertEqual(r.returncode, 0, r.stderr)
        resp, _ = exchange(self.sb.port(), get("/nothing-here", extra="Connection: close\r\n"))
        self.assertEqual(resp.status, 404)  # from aiohttp: a 4xx class

        def samples():
            s = parse_metrics(admin_get(self.sb, "/metrics"))
            done = (metric(s, "switchboard_http_requests_total", pool="chat", **{"class": "2xx"})
                    - metric(before, "switchboard_http_requests_total", pool="chat", **{"class": "2xx"}))
            return s if done >= 3 else None

        s = wait_for(samples, what="3 more 2xx requests in /metrics")
        self.assertGreaterEqual(metric(s, "switchboard_http_requests_total", pool="chat",
                                       **{"class": "4xx"}), 1)
        self.assertTrue(has_metric(s, "switchboard_http_request_duration_seconds_bucket",
                                   pool="chat", le="+Inf"))
        self.assertGreaterEqual(metric(s, "switchboard_http_request_duration_seconds_count",
                                       pool="chat"), 4)
        self.assertTrue(has_metric(s, "switchboard_http_request_duration_seconds_sum", pool="chat"))
        self.assertGreaterEqual(metric(s, "switchboard_http_backend_connections_total",
                                       pool="chat", reuse="new"), 1)
        self.assertGreaterEqual(metric(s, "switchboard_http_backend_connections_total",
                                       pool="chat", reuse="reused"), 1)


if __name__ == "__main__":
    unittest.main()
