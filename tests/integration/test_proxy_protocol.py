"""The PROXY protocol through the real binary (SPEC §2, §3 "PROXY protocol"), with
Debian's HAProxy as the real peer on both sides.

In front: HAProxy in `mode tcp` with `send-proxy-v2` (and `send-proxy` for v1) passes
clients bound to distinct loopback addresses (127.0.0.2, 127.0.0.3) to a listener with
`proxy_protocol = true`; the backend must see the client's address, not HAProxy's
127.0.0.1, in X-Forwarded-For, and so must the per-IP limit and the access log.
Connections without a header, with garbage, too slow, or from a source outside
`proxy_protocol_from` are closed and logged. Raw sockets send what HAProxy never would
(v2 LOCAL, a header glued to the request, a header one byte at a time).

Behind: a pool with `proxy_protocol = "v1"`/`"v2"` sends to HAProxy in `mode http` with
`accept-proxy`, which adds `X-Seen-Src: %[src]` (the address it received in the
header) before passing the WebSocket upgrade to a backend that records it.
"""

import json
import os
import socket
import ssl
import struct
import tempfile
import time
import unittest
import urllib.request

from sbtest import (Process, PyBackend, Switchboard, TestPki, free_port, read_head, status_of,
                    upgrade_request, wait_for)

HAPROXY = "/usr/sbin/haproxy"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


class HAProxy(Process):
    """Debian's HAProxy in the foreground (-db) on a generated configuration; stopped by
    its PID like every other process."""

    def __init__(self, sections):
        self.dir = tempfile.mkdtemp(prefix="sbhaproxy-")
        self.port = free_port()
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(f"""
global
    maxconn 200

defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 60s

{sections.format(port=self.port, dir=self.dir)}
""")
        super().__init__([HAPROXY, "-db", "-f", path])
        wait_for(self._accepting, timeout=10, what="haproxy listening")

    def _accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError("haproxy exited: " + "\n".join(self.output()))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


def tcp_front(target_port, option):
    """HAProxy in mode tcp passing everything to 127.0.0.1:target_port with `option`
    (send-proxy, send-proxy-v2)."""
    return HAProxy(f"""
frontend front
    mode tcp
    bind 127.0.0.1:{{port}}
    default_backend sb

backend sb
    mode tcp
    server sb 127.0.0.1:{target_port} {option}
""")


def http_behind(backend_port, bind_extra=""):
    """HAProxy in mode http reading a PROXY header (accept-proxy) and telling the
    backend the source it carried in X-Seen-Src."""
    return HAProxy(f"""
frontend behind
    mode http
    bind 127.0.0.1:{{port}} accept-proxy {bind_extra}
    http-request set-header X-Seen-Src %[src]
    default_backend app

backend app
    mode http
    server app 127.0.0.1:{backend_port}
""")


def sb_config(backend, listener_extra="proxy_protocol = true", pool_extra="", admin=False,
              tls=""):
    return f"""
[server]
workers = 2

{'[admin]' if admin else ''}
{'listen = "127.0.0.1:0"' if admin else ''}

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
{listener_extra}
{tls}

[pools.chat]
backends = [ {{ address = "{backend}" }} ]
hash_key = "client_ip"
{pool_extra}
"""


def connect_from(source, port, timeout=5.0):
    """A TCP connection to 127.0.0.1:port from the loopback address `source`."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def upgrade_from(source, port, path="/", wrap=None):
    """Sends an upgrade from `source`; returns (socket, status of the answer)."""
    s = connect_from(source, port)
    if wrap:
        s = wrap(s)
    s.sendall(upgrade_request(path))
    return s, status_of(read_head(s))


def closed_silently(s, timeout=5.0):
    """True if the peer closes `s` without sending a byte."""
    s.settimeout(timeout)
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True


def v2_header(command, src=None, dst=None, tlvs=b""):
    body = b""
    family = 0x00
    if src is not None:
        family = 0x11
        body = (socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) +
                struct.pack(">HH", src[1], dst[1]))
    body += tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body


def metric(sb, name, **labels):
    host, port = sb.addresses["admin"]
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1:line.index("}")].split(",")))
            if got == want:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


class ProxyProtocolInFrontTest(unittest.TestCase):
    """HAProxy (mode tcp) in front of a listener with proxy_protocol = true."""

    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("a")

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()

    def start(self, listener_extra="proxy_protocol = true", admin=False, tls=""):
        listeners = ("admin", "public") if admin else ("public",)
        sb = Switchboard(sb_config(self.backend.address, listener_extra, admin=admin, tls=tls),
                         listeners=listeners)
        self.addCleanup(sb.stop)
        return sb

    def front(self, sb, option):
        h = tcp_front(sb.port(), option)
        self.addCleanup(h.stop)
        return h

    def check_client_address_carried(self, option):
        sb = self.start()
        h = self.front(sb, option)
        before = len(self.backend.handshakes)
        s, status = upgrade_from("127.0.0.2", h.port, "/carried")
        self.assertEqual(status, 101)
        wait_for(lambda: len(self.backend.handshakes) > before, what="the backend's handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "127.0.0.2")
        s.close()
        # (HAProxy's readiness probe left a client_aborted line of its own.)
        record = wait_for(lambda: [r for r in sb.access_log() if r["path"] == "/carried"],
                          what="the access log line")[0]
        self.assertTrue(record["client"].startswith("127.0.0.2:"), record)
        self.assertEqual(record["status"], 101)

    def test_send_proxy_v2_carries_the_client_address(self):
        self.check_client_address_carried("send-proxy-v2")

    def test_send_proxy_v1_carries_the_client_address(self):
        self.check_client_address_carried("send-proxy")

    def test_per_ip_limit_counts_the_carried_address(self):
        sb = self.start("proxy_protocol = true\nmax_connections_per_ip = 2")
        h = self.front(sb, "send-proxy-v2")
        held = [upgrade_from("127.0.0.2", h.port, f"/l{i}") for i in range(2)]
        self.assertEqual([status for _, status in held], [101, 101])
        # Every connection comes from HAProxy's 127.0.0.1: only the carried address
        # tells 127.0.0.2 (at its limit) from 127.0.0.3 (not).
        over, status = upgrade_from("127.0.0.2", h.port, "/over")
        self.assertEqual(status, 429)
        over.close()
        other, status = upgrade_from("127.0.0.3", h.port, "/other")
        self.assertEqual(status, 101)
        other.close()
        # The slot of 127.0.0.2 comes back when one of its connections closes.
        held.pop()[0].close()

        def opens():
            s, status = upgrade_from("127.0.0.2", h.port, "/again")
            s.close()
            return status == 101

        wait_for(opens, timeout=5, what="the freed per-IP slot")
        for s, _ in held:
            s.close()
        wait_for(lambda: any(r["reason"] == "client_limit" and r["client"].startswith("127.0.0.2:")
                             for r in sb.access_log()), what="client_limit for 127.0.0.2")

    def test_a_connection_without_a_header_is_closed_and_logged(self):
        sb = self.start(admin=True)
        s = connect_from("127.0.0.1", sb.port())
        s.sendall(upgrade_request("/no-header"))
        self.assertTrue(closed_silently(s))
        s.close()
        s = connect_from("127.0.0.1", sb.port())
        s.sendall(b"\x16\x03\x01\x00\x05hello")  # garbage (a TLS record) instead
        self.assertTrue(closed_silently(s))
        s.close()
        s = connect_from("127.0.0.1", sb.port())
        s.sendall(b"PROXY TCP4 127.0.0.9 127.0.0.1 99999 80\r\n")  # a port out of range
        self.assertTrue(closed_silently(s))
        s.close()
        s = connect_from("127.0.0.1", sb.port())
        s.sendall(V2_SIGNATURE + b"\x21\x11\x10\x00")  # a v2 header over 4 KiB
        self.assertTrue(closed_silently(s))
        s.close()
        records = sb.wait_access_log(4)
        self.assertEqual([r["reason"] for r in records], ["proxy_protocol"] * 4)
        sb.wait_line(r"bad PROXY protocol header.*no PROXY protocol header", stream="err")
        sb.wait_line(r"bad PROXY protocol header.*PROXY v2 header over 4 KiB", stream="err")
        self.assertEqual(metric(sb, "switchboard_rejections_total", listener="public",
                                reason="proxy_protocol"), 4)

    def test_a_header_not_complete_within_handshake_timeout_is_closed(self):
        sb = self.start('proxy_protocol = true\nhandshake_timeout = "1s"')
        started = time.monotonic()
        s = connect_from("127.0.0.1", sb.port())
        s.sendall(b"PROXY TCP4 127.0.0.9 ")
        self.assertTrue(closed_silently(s, timeout=10))
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 5)
        s.close()
        records = sb.wait_access_log(1)
        self.assertEqual(records[-1]["reason"], "proxy_protocol")
        sb.wait_line(r"no PROXY protocol header within handshake_timeout", stream="err")

    def test_a_source_outside_proxy_protocol_from_is_closed_before_reading(self):
        sb = self.start('proxy_protocol = true\nproxy_protocol_from = ["127.0.0.1/32", "::1"]',
                        admin=True)
        # HAProxy connects from 127.0.0.1: trusted.
        h = self.front(sb, "send-proxy-v2")
        s, status = upgrade_from("127.0.0.2", h.port, "/trusted")
        self.assertEqual(status, 101)
        s.close()
        # A direct connection from 127.0.0.2, with a perfectly good header: not trusted.
        s = connect_from("127.0.0.2", sb.port())
        try:
            s.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 1000 80\r\n" + upgrade_request("/x"))
        except OSError:
            pass  # already closed: fine
        self.assertTrue(closed_silently(s))
        s.close()
        wait_for(lambda: any(r["reason"] == "proxy_protocol_untrusted" for r in sb.access_log()),
                 what="proxy_protocol_untrusted in the access log")
        record = [r for r in sb.access_log() if r["reason"] == "proxy_protocol_untrusted"][0]
        self.assertTrue(record["client"].startswith("127.0.0.2:"), record)
        sb.wait_line(r"PROXY protocol source not in proxy_protocol_from", stream="err")
        self.assertEqual(metric(sb, "switchboard_rejections_total", listener="public",
                                reason="proxy_protocol_untrusted"), 1)

    def test_haproxy_health_checks_are_local_and_not_rejected(self):
        # HAProxy's checks of a send-proxy-v2 server open a connection, send a v2
        # LOCAL header and close: an ordinary client_aborted, never proxy_protocol.
        sb = self.start(admin=True)
        h = tcp_front(sb.port(), "send-proxy-v2 check check-send-proxy inter 100ms")
        self.addCleanup(h.stop)
        wait_for(lambda: len(sb.access_log()) >= 4, what="a few health checks")
        records = sb.access_log()
        self.assertEqual({r["reason"] for r in records}, {"client_aborted"}, records)
        self.assertEqual(metric(sb, "switchboard_rejections_total", listener="public",
                                reason="proxy_protocol"), 0)
        # And the server is up for HAProxy: a client gets through.
        s, status = upgrade_from("127.0.0.2", h.port, "/after-checks")
        self.assertEqual(status, 101)
        s.close()

    def test_v2_local_keeps_the_socket_address(self):
        sb = self.start()
        before = len(self.backend.handshakes)
        s = connect_from("127.0.0.2", sb.port())
        s.sendall(v2_header(0) + upgrade_request("/local"))
        self.assertEqual(status_of(read_head(s)), 101)
        wait_for(lambda: len(self.backend.handshakes) > before, what="the backend's handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "127.0.0.2")
        s.close()
        # v1 UNKNOWN likewise.
        s = connect_from("127.0.0.3", sb.port())
        s.sendall(b"PROXY UNKNOWN\r\n" + upgrade_request("/unknown"))
        self.assertEqual(status_of(read_head(s)), 101)
        wait_for(lambda: len(self.backend.handshakes) > before + 1, what="the second handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "127.0.0.3")
        s.close()

    def test_header_glued_to_the_request_and_header_split_in_bytes(self):
        sb = self.start()
        before = len(self.backend.handshakes)
        # Header, TLVs, request and a first frame, in one write.
        frame = b"\x81\x85" + b"\x01\x02\x03\x04" + bytes(
            b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04\x01"))
        s = connect_from("127.0.0.1", sb.port())
        s.sendall(v2_header(1, ("192.0.2.7", 4242), ("127.0.0.1", sb.port()),
                            tlvs=b"\x04\x00\x03abc") + upgrade_request("/glued") + frame)
        head = read_head(s)
        self.assertEqual(status_of(head), 101)
        wait_for(lambda: len(self.backend.handshakes) > before, what="the backend's handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "192.0.2.7")
        data = head.split(b"\r\n\r\n", 1)[1]
        while len(data) < 9:
            data += s.recv(4096)
        self.assertEqual(data[2:9], b"a:hello")
        s.close()
        # A v1 header one byte at a time, then the request.
        s = connect_from("127.0.0.1", sb.port())
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"PROXY TCP6 2001:db8::5 ::1 5555 80\r\n":
            s.sendall(bytes([b]))
            time.sleep(0.002)
        s.sendall(upgrade_request("/split"))
        self.assertEqual(status_of(read_head(s)), 101)
        wait_for(lambda: len(self.backend.handshakes) > before + 1, what="the second handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "2001:db8::5")
        s.close()
        records = sb.wait_access_log(2)
        self.assertEqual(records[-1]["client"], "[2001:db8::5]:5555")

    def test_tls_listener_reads_the_header_before_tls(self):
        pki = TestPki()
        cert, key = pki.leaf("chat.example.com", dns=["chat.example.com"])
        tls = f"""
[listeners.tls]
certificates = [ {{ certificate = "{cert}", private_key = "{key}" }} ]
"""
        sb = self.start(tls=tls)
        h = self.front(sb, "send-proxy-v2")
        context = pki.client_context()
        before = len(self.backend.handshakes)
        s, status = upgrade_from(
            "127.0.0.2", h.port, "/tls",
            wrap=lambda raw: context.wrap_socket(raw, server_hostname="chat.example.com"))
        self.assertEqual(status, 101)
        wait_for(lambda: len(self.backend.handshakes) > before, what="the backend's handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "127.0.0.2")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-proto"], "https")
        s.close()
        # Glued by hand: a v1 header and the ClientHello in one write.
        raw = connect_from("127.0.0.1", sb.port())
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls_object = context.wrap_bio(incoming, outgoing, server_hostname="chat.example.com")
        try:
            tls_object.do_handshake()
        except ssl.SSLWantReadError:
            pass
        raw.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1234 443\r\n" + outgoing.read())
        raw.settimeout(5)
        deadline = time.monotonic() + 10
        while True:
            try:
                tls_object.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    raw.sendall(pending)
                chunk = raw.recv(65536)
                self.assertTrue(chunk, "closed during the TLS handshake")
                incoming.write(chunk)
            self.assertLess(time.monotonic(), deadline)
        tls_object.write(upgrade_request("/glued-tls"))
        raw.sendall(outgoing.read())
        reply = b""
        while b"\r\n\r\n" not in reply and time.monotonic() < deadline:
            try:
                reply += tls_object.read(4096)
            except ssl.SSLWantReadError:
                incoming.write(raw.recv(65536))
        self.assertEqual(status_of(reply), 101)
        wait_for(lambda: len(self.backend.handshakes) > before + 1, what="the second handshake")
        self.assertEqual(self.backend.handshakes[-1]["x-forwarded-for"], "198.51.100.1")
        raw.close()


class ProxyProtocolToBackendsTest(unittest.TestCase):
    """A pool with proxy_protocol = v1/v2 in front of HAProxy (mode http, accept-proxy)."""

    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("app")

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()

    def check_seen(self, version, listener_extra="", source="127.0.0.2", via_front=None,
                   pool_tls="", bind_extra=""):
        behind = http_behind(self.backend.port, bind_extra)
        self.addCleanup(behind.stop)
        sb = Switchboard(sb_config(f"127.0.0.1:{behind.port}", listener_extra,
                                   pool_extra=f'proxy_protocol = "{version}"\n{pool_tls}'))
        self.addCleanup(sb.stop)
        port = sb.port()
        if via_front:
            front = tcp_front(sb.port(), via_front)
            self.addCleanup(front.stop)
            port = front.port
        before = len(self.backend.handshakes)
        s, status = upgrade_from(source, port, f"/behind-{version}")
        self.assertEqual(status, 101)
        s.sendall(b"\x81\x82\x00\x00\x00\x00hi")
        s.settimeout(5)
        echoed = b""
        while len(echoed) < 8:
            chunk = s.recv(4096)
            self.assertTrue(chunk)
            echoed += chunk
        self.assertEqual(echoed[2:8], b"app:hi")
        wait_for(lambda: len(self.backend.handshakes) > before, what="the backend's handshake")
        s.close()
        return self.backend.handshakes[-1]

    def test_v1_to_haproxy(self):
        self.assertEqual(self.check_seen("v1")["x-seen-src"], "127.0.0.2")

    def test_v2_to_haproxy(self):
        self.assertEqual(self.check_seen("v2")["x-seen-src"], "127.0.0.2")

    def test_the_carried_address_is_passed_on(self):
        # HAProxy -> (v2) switchboard -> (v1) HAProxy -> backend: the client's own
        # address crosses both hops.
        seen = self.check_seen("v1", "proxy_protocol = true", source="127.0.0.3",
                               via_front="send-proxy-v2")
        self.assertEqual(seen["x-seen-src"], "127.0.0.3")
        self.assertEqual(seen["x-forwarded-for"], "127.0.0.3")

    def test_header_goes_before_tls_to_the_backend(self):
        pki = TestPki()
        cert, key = pki.leaf("behind", ips=["127.0.0.1"])
        pem = os.path.join(pki.dir, "behind.pem")
        with open(pem, "w") as out:
            for path in (cert, key):
                with open(path) as f:
                    out.write(f.read())
        tls = f'\n[pools.chat.tls]\nca_file = "{pki.ca}"\n'
        seen = self.check_seen("v2", pool_tls=tls, bind_extra=f"ssl crt {pem}")
        self.assertEqual(seen["x-seen-src"], "127.0.0.2")


class TrustWarningTest(unittest.TestCase):
    """proxy_protocol_from = [] (the default) trusts a header from anyone: on a listener
    clients can reach directly, a client could claim any address. Said at startup."""

    def test_an_empty_proxy_protocol_from_is_warned_about(self):
        sb = Switchboard(sb_config("127.0.0.1:9", "proxy_protocol = true"))
        self.addCleanup(sb.stop)
        wait_for(lambda: any("trusts a PROXY header from any source" in line
                             for line in sb.output("err")), timeout=5, what="the warning")

    def test_no_warning_with_proxy_protocol_from(self):
        sb = Switchboard(sb_config(
            "127.0.0.1:9", 'proxy_protocol = true\nproxy_protocol_from = ["127.0.0.0/8"]'))
        self.addCleanup(sb.stop)
        self.assertFalse(any("from any source" in line for line in sb.output("err")))


class HealthChecksToProxyPoolsTest(unittest.TestCase):
    """SPEC §3 PROXY protocol: health checks to a PROXY pool send PROXY UNKNOWN (v1) or a
    v2 LOCAL header first. HAProxy with accept-proxy refuses a connection without a
    valid header, so a probe through it passes only if the header is there."""

    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("app")

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()

    def health_of(self, version):
        behind = http_behind(self.backend.port)
        self.addCleanup(behind.stop)
        proxy = f'proxy_protocol = "{version}"' if version else ""
        sb = Switchboard(sb_config(f"127.0.0.1:{behind.port}", "", admin=True, pool_extra=f"""
{proxy}
[pools.chat.health_check]
kind = "websocket"
path = "/hc-{version or 'none'}"
interval = "200ms"
timeout = "150ms"
rise = 1
fall = 1
"""), listeners=("public", "admin"))
        self.addCleanup(sb.stop)
        host, port = sb.addresses["admin"]

        def health():
            with urllib.request.urlopen(f"http://{host}:{port}/status", timeout=5) as r:
                return json.loads(r.read())["pools"][0]["backends"][0]["health"]

        wait_for(lambda: health()["last_result"] is not None, timeout=10, what="a probe")
        time.sleep(0.6)  # a few more probes
        return health()

    def test_v1_probes_send_proxy_unknown(self):
        h = self.health_of("v1")
        self.assertEqual(h["last_result"], "ok", h)
        self.assertIn("/hc-v1", self.backend.paths)

    def test_v2_probes_send_a_local_header(self):
        h = self.health_of("v2")
        self.assertEqual(h["last_result"], "ok", h)
        self.assertIn("/hc-v2", self.backend.paths)

    def test_without_the_header_haproxy_refuses_the_probe(self):
        # The control: the same probe with proxy_protocol off fails at HAProxy.
        h = self.health_of("")
        self.assertEqual(h["last_result"], "failed", h)
        self.assertNotIn("/hc-none", self.backend.paths)


if __name__ == "__main__":
    unittest.main()
