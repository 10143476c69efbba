"""TLS through the real binary (SPEC §2 [listeners.tls], [pools.NAME.tls]): wss echo
with Debian's python3-websockets trusting a throwaway CA, SNI checked with
`openssl s_client`, old protocol versions refused, resumption, plain HTTP on a TLS
port, backend TLS with a right and a wrong CA, certificate swap on SIGHUP, and the
handshake timeout covering the TLS handshake. Certificates are made at test time
with the `openssl` command."""

import os
import shutil
import signal
import socket
import ssl
import time
import unittest

import websockets

from sbtest import (BINARY, PyBackend, Switchboard, TestPki, decode_frame, encode_frame,
                    handshake_status, raw_exchange, read_head, run, s_client, status_of,
                    upgrade_request, wait_for)

import subprocess


def tls_config(certs, backends, min_version=None, pool_tls="", listener_extra=""):
    cert_list = ", ".join(f'{{ certificate = "{c}", private_key = "{k}" }}' for c, k in certs)
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    version = f'min_version = "{min_version}"' if min_version else ""
    return f"""
[server]
workers = 2

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
{listener_extra}

[listeners.tls]
certificates = [ {cert_list} ]
{version}

[pools.chat]
backends = [ {backend_list} ]
{pool_tls}
"""


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test", "localhost"], ips=["127.0.0.1"])
        cls.ecdsa = cls.pki.leaf("ecdsa.test", dns=["ecdsa.test"], kind="ec")
        cls.wild = cls.pki.leaf("wild", dns=["*.wild.test"], kind="ec")
        cls.backend = PyBackend("secure")
        cls.sb = Switchboard(tls_config([cls.rsa, cls.ecdsa, cls.wild], [cls.backend.address]))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def wss(self, server_hostname="rsa.test", path="/"):
        return websockets.connect(f"wss://127.0.0.1:{self.sb.port()}{path}",
                                  ssl=self.pki.client_context(), server_hostname=server_hostname,
                                  max_size=None, compression=None)

    def test_wss_echo_with_an_independent_client(self):
        async def go():
            async with self.wss() as ws:
                for size in (0, 125, 70000, 1 << 20):
                    data = os.urandom(size)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1])
                await ws.send("hello")
                self.assertEqual(await ws.recv(), "secure:hello")
        run(go(), timeout=60)
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-proto"], "https")

    def test_sni_picks_the_certificate_by_name(self):
        for name, subject in (("ecdsa.test", "CN = ecdsa.test"), ("rsa.test", "CN = rsa.test"),
                              ("a.wild.test", "CN = wild"), ("unknown.test", "CN = rsa.test")):
            out = s_client(self.sb.port(), "-servername", name, "-CAfile", self.pki.ca)
            self.assertIn(f"subject={subject}", out, name)
        ecdsa = s_client(self.sb.port(), "-servername", "ecdsa.test", "-CAfile", self.pki.ca)
        self.assertIn("Verify return code: 0 (ok)", ecdsa)
        # A wildcard covers one label only.
        deep = s_client(self.sb.port(), "-servername", "a.b.wild.test")
        self.assertIn("subject=CN = rsa.test", deep)

    def test_tls_10_and_11_are_refused(self):
        for flag in ("-tls1", "-tls1_1"):
            out = s_client(self.sb.port(), flag, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotIn("Cipher is ECDHE", out)
            self.assertRegex(out, r"alert protocol version|no protocols available|wrong version")
        self.assertIn("TLSv1.2", s_client(self.sb.port(), "-tls1_2"))

    def test_alpn_offers_http_11(self):
        out = s_client(self.sb.port(), "-alpn", "h2,http/1.1")
        self.assertIn("ALPN protocol: http/1.1", out)

    def test_a_resumed_session_is_reported_as_reused(self):
        sess = os.path.join(self.pki.dir, "session.pem")
        # s_client keeps reading (-ign_eof) until the proxy answers a plain request that
        # asked it to close, so the TLS 1.3 ticket, sent after the handshake, is always
        # received.
        ask = ("-ign_eof",)
        request = b"GET / HTTP/1.1\r\nHost: rsa.test\r\nConnection: close\r\n\r\n"
        first = s_client(self.sb.port(), "-servername", "rsa.test", "-sess_out", sess, *ask,
                         stdin=request)
        self.assertIn("New, TLSv1.3", first)
        again = s_client(self.sb.port(), "-servername", "rsa.test", "-sess_in", sess, *ask,
                         stdin=request)
        self.assertIn("Reused, TLSv1.3", again)
        # TLS 1.2 tickets too.
        sess12 = os.path.join(self.pki.dir, "session12.pem")
        s_client(self.sb.port(), "-tls1_2", "-sess_out", sess12, *ask, stdin=request)
        self.assertIn("Reused, TLSv1.2",
                      s_client(self.sb.port(), "-tls1_2", "-sess_in", sess12, *ask, stdin=request))

    def reconnect(self, count, single_use):
        """`count` wss connections one after another from Python's ssl (TLS 1.3), each
        offering the session kept from the one before and echoing one message (the
        record layer's sequence numbers then start behind the tickets that connection
        got); says whether each was resumed. With `single_use` a ticket is offered once
        only, as RFC 8446 §C.4 asks of clients and Chromium does: a connection that
        brought no new ticket leaves the next one nothing to offer."""
        context = self.pki.client_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        session = None
        offered = set()  # OpenSSL gives each ticket's session an id of its own
        reused = []
        for i in range(count):
            with socket.create_connection(("127.0.0.1", self.sb.port()), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="rsa.test",
                                         session=session) as s:
                    reused.append(s.session_reused)
                    s.sendall(upgrade_request(host="rsa.test"))
                    head = read_head(s)
                    self.assertEqual(status_of(head), 101)
                    rest = head.split(b"\r\n\r\n", 1)[1]
                    s.sendall(encode_frame(1, f"m{i}".encode()))
                    while (frame := decode_frame(rest)) is None:
                        chunk = s.recv(4096)
                        self.assertTrue(chunk, "closed before the echo")
                        rest += chunk
                    self.assertEqual(frame[2], f"secure:m{i}".encode())
                    latest = s.session  # any ticket came before the 101
            fresh = latest is not None and latest.has_ticket and latest.id not in offered
            session = latest if fresh or not single_use else None
            if session is not None:
                offered.add(session.id)
        return reused

    def test_a_client_keeping_only_its_latest_session_resumes_every_time(self):
        # Issue 17: Python's SSLSocket.session, s_client -sess_out and https.Agent keep
        # one session per server; each reconnection after the first must resume.
        self.assertEqual(self.reconnect(8, single_use=False), [False] + [True] * 7)

    def test_a_client_using_each_ticket_once_resumes_every_time(self):
        # Issue 17: a resumed TLS 1.3 connection got no ticket (the ticket key callback
        # did not ask OpenSSL for one), so such a client resumed every other time,
        # whatever the number of tickets a full handshake brings (docs/tls.md).
        self.assertEqual(self.reconnect(8, single_use=True), [False] + [True] * 7)

    def test_plain_http_to_a_tls_port_fails_cleanly_and_the_proxy_keeps_serving(self):
        response = raw_exchange(self.sb.port(), upgrade_request())
        self.assertEqual(status_of(response), 400)
        self.assertIn(b"TLS", response)
        garbage = raw_exchange(self.sb.port(), b"\x00\x01garbage that is not TLS\r\n" * 10)
        self.assertEqual(garbage, b"")

        async def go():
            async with self.wss() as ws:
                await ws.send("after")
                self.assertEqual(await ws.recv(), "secure:after")
        run(go())


class TlsMinVersionTest(unittest.TestCase):
    def test_min_version_13_refuses_12(self):
        pki = TestPki()
        cert = pki.leaf("only13.test", dns=["only13.test"])
        backend = PyBackend("b")
        sb = Switchboard(tls_config([cert], [backend.address], min_version="1.3"))
        try:
            self.assertNotIn("Cipher is ECDHE", s_client(sb.port(), "-tls1_2"))
            self.assertIn("TLSv1.3", s_client(sb.port(), "-tls1_3"))
        finally:
            sb.stop()
            backend.stop()


class BackendTlsTest(unittest.TestCase):
    def setUp(self):
        self.pki = TestPki("Backend CA")
        cert, key = self.pki.leaf("backend.internal", dns=["backend.internal"], ips=["127.0.0.1"])
        self.backend = PyBackend("tlsback", ssl=self.pki.server_context(cert, key))

    def tearDown(self):
        self.backend.stop()

    def plain_listener(self, pool_tls):
        return f"""
[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [ {{ address = "{self.backend.address}" }} ]

[pools.chat.tls]
{pool_tls}
"""

    def test_backend_tls_verified_against_ca_file(self):
        sb = Switchboard(self.plain_listener(f'ca_file = "{self.pki.ca}"\nserver_name = "backend.internal"'))
        try:
            async def go():
                async with websockets.connect(sb.url("/")) as ws:
                    await ws.send("x")
                    self.assertEqual(await ws.recv(), "tlsback:x")
            run(go())
        finally:
            sb.stop()

    def test_backend_ip_address_is_verified_without_server_name(self):
        sb = Switchboard(self.plain_listener(f'ca_file = "{self.pki.ca}"'))
        try:
            self.assertEqual(handshake_status(sb.port(), upgrade_request()), 101)
        finally:
            sb.stop()

    def test_wrong_ca_gives_502_with_a_clear_log_line(self):
        other = TestPki("Other CA")
        sb = Switchboard(self.plain_listener(f'ca_file = "{other.ca}"'))
        try:
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request())), 502)
            line = sb.wait_line(r"backend TLS handshake failed")
            self.assertRegex(line.string, r"certificate verify failed|unable to get local issuer")
            record = sb.wait_access_log(1)[0]
            self.assertEqual(record["reason"], "backend_tls_failed")
        finally:
            sb.stop()

    def test_wrong_server_name_gives_502(self):
        sb = Switchboard(self.plain_listener(f'ca_file = "{self.pki.ca}"\nserver_name = "other.internal"'))
        try:
            self.assertEqual(status_of(raw_exchange(sb.port(), upgrade_request())), 502)
        finally:
            sb.stop()

    def test_verify_false_accepts_any_certificate(self):
        sb = Switchboard(self.plain_listener("verify = false"))
        try:
            self.assertEqual(handshake_status(sb.port(), upgrade_request()), 101)
        finally:
            sb.stop()


class CertificateReloadTest(unittest.TestCase):
    def test_certificate_swap_on_sighup_is_seen_by_new_connections_only(self):
        pki = TestPki()
        old_cert, old_key = pki.leaf("old.test", dns=["swap.test"])
        new_cert, new_key = pki.leaf("new.test", dns=["swap.test"])
        live_cert = os.path.join(pki.dir, "live.pem")
        live_key = os.path.join(pki.dir, "live.key")
        shutil.copy(old_cert, live_cert)
        shutil.copy(old_key, live_key)
        backend = PyBackend("b")
        sb = Switchboard(tls_config([(live_cert, live_key)], [backend.address]))
        try:
            async def go():
                ctx = pki.client_context()
                old = await websockets.connect(f"wss://127.0.0.1:{sb.port()}/", ssl=ctx,
                                               server_hostname="swap.test")
                self.assertIn("old.test", str(old.transport.get_extra_info("peercert")))
                shutil.copy(new_cert, live_cert)
                shutil.copy(new_key, live_key)
                sb.signal(signal.SIGHUP)
                await_line = lambda: sb.wait_line(r"configuration reloaded generation=2")
                await __import__("asyncio").get_running_loop().run_in_executor(None, await_line)
                new = await websockets.connect(f"wss://127.0.0.1:{sb.port()}/", ssl=ctx,
                                               server_hostname="swap.test")
                self.assertIn("new.test", str(new.transport.get_extra_info("peercert")))
                for ws, text in ((old, "old still works"), (new, "new works")):
                    await ws.send(text)
                    self.assertEqual(await ws.recv(), "b:" + text)
                    await ws.close()
            run(go())
            # A certificate that does not load: the reload is refused, the old one stays.
            with open(live_cert, "w") as f:
                f.write("not a certificate\n")
            sb.signal(signal.SIGHUP)
            sb.wait_line(r"reload failed: keeping the running configuration")
            self.assertTrue(any(live_cert in l and "cannot load the certificate" in l
                                for l in sb.output("err")))
            self.assertIn("CN = new.test", s_client(sb.port(), "-servername", "swap.test"))
        finally:
            sb.stop()
            backend.stop()

    def test_check_loads_the_certificates(self):
        pki = TestPki()
        cert, key = pki.leaf("x.test", dns=["x.test"])
        good = os.path.join(pki.dir, "good.toml")
        with open(good, "w") as f:
            f.write(tls_config([(cert, key)], ["127.0.0.1:9"]))
        r = subprocess.run([BINARY, "--check", "-c", good], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        bad = os.path.join(pki.dir, "bad.toml")
        with open(bad, "w") as f:
            f.write(tls_config([(cert, "/nonexistent/x.key")], ["127.0.0.1:9"]))
        r = subprocess.run([BINARY, "--check", "-c", bad], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, rf"^{bad}:\d+:\d+: .*/nonexistent/x.key")
        mismatched = os.path.join(pki.dir, "mismatch.toml")
        other_cert, other_key = pki.leaf("y.test", dns=["y.test"])
        with open(mismatched, "w") as f:
            f.write(tls_config([(cert, other_key)], ["127.0.0.1:9"]))
        r = subprocess.run([BINARY, "--check", "-c", mismatched], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not match", r.stderr)


class TlsHandshakeTimeoutTest(unittest.TestCase):
    def test_a_client_that_sends_nothing_is_closed_in_time(self):
        pki = TestPki()
        cert = pki.leaf("t.test", dns=["t.test"])
        backend = PyBackend("b")
        sb = Switchboard(tls_config([cert], [backend.address],
                                    listener_extra='handshake_timeout = "500ms"'))
        try:
            with socket.create_connection(("127.0.0.1", sb.port()), timeout=5) as s:
                started = time.monotonic()
                self.assertEqual(s.recv(10), b"")
                self.assertLess(time.monotonic() - started, 2)
            # A client stuck halfway through the TLS handshake is closed too.
            with socket.create_connection(("127.0.0.1", sb.port()), timeout=5) as s:
                s.sendall(b"\x16\x03\x01\x00\xff")  # a ClientHello record header, no body
                started = time.monotonic()
                self.assertEqual(s.recv(10), b"")
                self.assertLess(time.monotonic() - started, 2)
        finally:
            sb.stop()
            backend.stop()


if __name__ == "__main__":
    unittest.main()
