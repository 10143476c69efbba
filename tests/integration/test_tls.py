"""TLS through the real binary (SPEC §2 [listeners.tls], [pools.NAME.tls]): wss echo
with Debian's python3-websockets trusting a throwaway CA, SNI checked with
`openssl s_client`, old protocol versions refused, resumption, plain HTTP on a TLS
port, backend TLS with a right and a wrong CA and with a backend that changes keys
mid-stream, certificate swap on SIGHUP, and the handshake timeout covering the TLS
handshake. Certificates are made at test time with the `openssl` command."""

import ctypes
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


def stop_cleanly(sb):
    """Stops switchboard; fails unless it exited 0 with no sanitizer report (the asan
    build prints one and exits non-zero on a leak or an error)."""
    # A drain that hangs (a closing side waiting for the ring, say) would be cut by the
    # second SIGTERM and still exit 0: that is a failure too.
    code = sb.stop(timeout=10.0)
    reports = [line for line in sb.output("err")
               if "Sanitizer" in line or "runtime error" in line or "second signal" in line]
    if (code, reports) != (0, []):
        raise AssertionError(f"switchboard did not exit cleanly: exit {code}, {reports[:10]}")


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


class OpenSslHandle:
    """What Python's ssl does not offer, through libssl itself (ctypes): a TLS 1.3
    server's KeyUpdate and an extra NewSessionTicket, at a moment of the test's
    choosing, and a count of the KeyUpdates the peer sent. Reaches the SSL object
    inside CPython 3.11's _ssl._SSLSocket (PyObject_HEAD, a weak reference to the
    socket, then `SSL *ssl`), and checks that it has the right one: _ssl keeps the
    Python object as the SSL's app data."""

    _lib = None
    # void (*)(int write_p, int version, int content_type, const void *buf, size_t len,
    #          SSL *ssl, void *arg)
    _MsgCallback = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                    ctypes.c_void_p)

    def __init__(self, ssl_object):
        lib = OpenSslHandle.library()
        inner = ssl_object._sslobj  # ssl.SSLObject wraps _ssl._SSLSocket
        self.ssl = ctypes.c_void_p.from_address(id(inner) + 3 * ctypes.sizeof(ctypes.c_void_p))
        if lib.SSL_get_ex_data(self.ssl, 0) != id(inner):
            raise unittest.SkipTest("this Python's _ssl is laid out differently")
        self.key_updates_received = 0
        self._callback = OpenSslHandle._MsgCallback(self._on_message)  # kept alive here
        lib.SSL_set_msg_callback(self.ssl, self._callback)

    @classmethod
    def library(cls):
        if cls._lib is None:
            lib = ctypes.CDLL("libssl.so.3")
            lib.SSL_get_ex_data.restype = ctypes.c_void_p
            lib.SSL_get_ex_data.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.SSL_new_session_ticket.argtypes = [ctypes.c_void_p]
            lib.SSL_version.argtypes = [ctypes.c_void_p]
            lib.SSL_set_msg_callback.argtypes = [ctypes.c_void_p, cls._MsgCallback]
            cls._lib = lib
        return cls._lib

    def _on_message(self, write_p, version, content_type, buf, length, ssl, arg):
        # A KeyUpdate read: handshake type 24 (RFC 8446 §4).
        if not write_p and content_type == 22 and length >= 1:
            if ctypes.string_at(buf, 1) == b"\x18":
                self.key_updates_received += 1

    def version(self):
        return self.library().SSL_version(self.ssl)

    def key_update(self, requested=True):
        """The next record written is a KeyUpdate (asking for the peer's, if `requested`)."""
        return self.library().SSL_key_update(self.ssl, 1 if requested else 0) == 1

    def new_session_ticket(self):
        """The next write sends one more NewSessionTicket first."""
        return self.library().SSL_new_session_ticket(self.ssl) == 1


class BackendKeyChangesTest(unittest.TestCase):
    """Backend TLS is OpenSSL's, unchanged by the client side's record layer (issue
    17): a TLS 1.3 backend that sends NewSessionTickets and KeyUpdates between messages,
    asking for switchboard's KeyUpdate each time, relays byte for byte to a wss client
    (whose own side is on the record layer) and to a plain ws client. A record layer on
    the backend side would refuse the tickets (after a handshake it takes no handshake
    message but KeyUpdate) and end the session."""

    @classmethod
    def setUpClass(cls):
        cls.backend_pki = TestPki("Backend CA")
        cert, key = cls.backend_pki.leaf("backend.internal", dns=["backend.internal"],
                                         ips=["127.0.0.1"])
        context = cls.backend_pki.server_context(cert, key)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        cls.events = []  # per backend connection: [tickets, key updates, KeyUpdates back]
        cls.backend = PyBackend("tlsback", handler=cls.changing_keys, ssl=context)
        cls.client_pki = TestPki()
        cls.rsa = cls.client_pki.leaf("rsa.test", dns=["rsa.test"])
        pool_tls = (f'[pools.chat.tls]\nca_file = "{cls.backend_pki.ca}"\n'
                    'server_name = "backend.internal"\n')
        cls.sb = Switchboard('[log]\nlevel = "debug"\n' +
                             tls_config([cls.rsa], [cls.backend.address], pool_tls=pool_tls) +
                             '\n[[listeners]]\nname = "plain"\nlisten = "127.0.0.1:0"\n'
                             'pool = "chat"\n',
                             listeners=("public", "plain"))

    @classmethod
    def tearDownClass(cls):
        try:
            stop_cleanly(cls.sb)
        finally:
            cls.backend.stop()

    @classmethod
    async def changing_keys(cls, ws, path):
        """The echo of PyBackend (text prefixed, binary reversed), with a ticket before
        each odd answer and a KeyUpdate before each even one."""
        handle = OpenSslHandle(ws.transport.get_extra_info("ssl_object"))
        counts = [0, 0, handle]
        cls.events.append(counts)
        assert handle.version() == 0x0304, hex(handle.version())
        try:
            async for message in ws:
                if counts[0] <= counts[1]:
                    counts[0] += handle.new_session_ticket()
                else:
                    counts[1] += handle.key_update(requested=True)
                await ws.send(f"tlsback:{message}" if isinstance(message, str) else message[::-1])
        except websockets.ConnectionClosed:
            pass

    def exchange(self, url, **kwargs):
        async def go():
            async with websockets.connect(url, max_size=None, compression=None, **kwargs) as ws:
                for size in (0, 1, 125, 16384, 70000, 1 << 20, 5, 3):
                    data = os.urandom(size)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1])
                    await ws.send(f"text {size}")
                    self.assertEqual(await ws.recv(), f"tlsback:text {size}")
        run(go(), timeout=60)
        tickets, updates, handle = self.events[-1]
        # Eight tickets and eight KeyUpdates went out, each KeyUpdate answered by one of
        # switchboard's (RFC 8446 §4.6.3) before its next message.
        self.assertEqual((tickets, updates), (8, 8))
        wait_for(lambda: handle.key_updates_received == 8, what="8 KeyUpdates from switchboard")

    def test_wss_client_and_ws_client_over_a_backend_that_changes_keys(self):
        before = "\n".join(self.sb.output("err")).count("client TLS handed to the record layer")
        self.exchange(f"wss://127.0.0.1:{self.sb.port()}/", ssl=self.client_pki.client_context(),
                      server_hostname="rsa.test")
        self.exchange(self.sb.url("/", name="plain"))
        err = "\n".join(self.sb.output("err"))
        # The wss client's side left OpenSSL; nothing else did.
        self.assertEqual(err.count("client TLS handed to the record layer"), before + 1)
        self.assertEqual(err.count("client TLS stays on OpenSSL"), 0)


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
