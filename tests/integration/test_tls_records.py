"""The client side's record layer through the real binary (issue 17): once a client's
TLS handshake is done, switchboard frees OpenSSL's SSL object and seals and opens the
records itself. Independent clients must not notice: `openssl s_client` asking for
KeyUpdates (`K`, `k`) mid-stream, Python's ssl with python3-websockets and Node's `ws`,
over TLS 1.3 and 1.2 and each AEAD the listener offers; switchboard's own KeyUpdates
when its key-usage limit is lowered (the hidden --debug-record-key-update=N, which only
a record layer obeys: it proves the switch happened); headless Chromium (BoringSSL)
across those KeyUpdates; a client's close_notify as a half-close; renegotiation refused.
A client's fatal alert, and records broken in every way the layer refuses, end that
client's session and its backend connection, and no other session of the worker.
Backend TLS stays on OpenSSL (test_tls.py)."""

import asyncio
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import unittest
import zlib

import websockets

from sbtest import (PyBackend, RawBackend, Switchboard, TestPki, accept_upgrade, decode_frame,
                    encode_frame, io_uring_holds_waits, read_head, run, upgrade_request,
                    wait_for, wait_for_async)
from test_demo_browser import CHROMIUM, Browser
from test_tls import stop_cleanly, tls_config


class SClient:
    """`openssl s_client` kept open: stdin takes bytes and its `K`/`k` commands, and
    stdout and stderr (with -msg's protocol messages) are collected as they come."""

    def __init__(self, port, *args):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-msg", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = b""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            with self._lock:
                self.out += chunk

    def text(self):
        with self._lock:
            return self.out.decode("latin-1")

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, pattern, count=1, timeout=10.0):
        wait_for(lambda: len(re.findall(pattern, self.text())) >= count, timeout=timeout,
                 what=f"{pattern!r} x{count} in s_client's output")

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._thread.join(timeout=5)


def s_client_frame(opcode, payload):
    """A client frame for s_client's stdin, masked with a zero key so that no byte of it
    but the payload's own can start a read with a command letter (Q, R, K, k...)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


# -msg's lines for KeyUpdate messages: received from switchboard, sent by the client.
KEY_UPDATE_IN = r"<<< TLS 1.3, Handshake \[length 0005\], KeyUpdate"
KEY_UPDATE_OUT = r">>> TLS 1.3, Handshake \[length 0005\], KeyUpdate"


class MemTlsClient:
    """A TLS client on Python's ssl over memory BIOs: every record it sends is
    explicit, so it can send a close_notify and keep reading (a half-close)."""

    def __init__(self, port, context, server_hostname):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing,
                                    server_hostname=server_hostname)
        self.eof = False
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()
            self.eof = True

    def send(self, data):
        self.tls.write(data)
        self._flush()

    def read(self):
        """Plaintext available, reading the socket if there is none; b"" once the
        peer's close_notify came (then self.closed is set)."""
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                if self.eof:
                    raise ConnectionError("TCP end without close_notify")
                self._flush()
                self._fill()
            except ssl.SSLZeroReturnError:
                return b""

    def close_notify(self):
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent; the peer's comes later
        self._flush()

    def close(self):
        self.sock.close()


def ws_upgrade(client, host="rsa.test"):
    client.send(upgrade_request("/", host=host))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.read()
        if not chunk:
            raise AssertionError("closed before the 101")
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return rest


def read_frames(client, buffered, count):
    frames = []
    data = buffered
    while len(frames) < count:
        f = decode_frame(data)
        if f is None:
            chunk = client.read()
            if not chunk:
                break
            data += chunk
            continue
        frames.append(f)
        data = data[f[3]:]
    return frames, data


class RecordLayerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test", "localhost"], ips=["127.0.0.1"])
        cls.backend = PyBackend("secure")
        # At debug level, each client connection says whether it left OpenSSL.
        cls.sb = Switchboard('[log]\nlevel = "debug"\n' +
                             tls_config([cls.rsa], [cls.backend.address]))
        # The same, with keys due for a KeyUpdate every 4 records.
        cls.rekey = Switchboard(tls_config([cls.rsa], [cls.backend.address]),
                                extra_args=["--debug-record-key-update=4"])

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.rekey.stop()
        cls.backend.stop()

    def switches(self):
        err = "\n".join(self.sb.output("err"))
        return (err.count("client TLS handed to the record layer"),
                err.count("client TLS stays on OpenSSL"))

    def assert_switched(self, before):
        """Every client connection since `before` (switches()) left OpenSSL."""
        wait_for(lambda: self.switches()[0] > before[0], what="a switch to the record layer")
        self.assertEqual(self.switches()[1], before[1], self.sb.output("err")[-20:])

    def context(self, version=None, ciphers=None):
        ctx = self.pki.client_context()
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
        return ctx

    def echo_both_ways(self, port, ctx, sizes=(0, 1, 125, 16384, 70000, 1 << 20), rounds=1):
        async def go():
            async with websockets.connect(f"wss://127.0.0.1:{port}/", ssl=ctx,
                                          server_hostname="rsa.test", max_size=None,
                                          compression=None) as ws:
                for _ in range(rounds):
                    for size in sizes:
                        data = os.urandom(size)
                        await ws.send(data)
                        self.assertEqual(await ws.recv(), data[::-1])
                    await ws.send("hello")
                    self.assertEqual(await ws.recv(), "secure:hello")
                return ws.transport.get_extra_info("ssl_object").version()
        return run(go(), timeout=90)

    # ---- s_client: KeyUpdates asked for by the client ----

    def s_client_exchange(self, port, *args, key_updates=("K", "k")):
        before = self.switches()
        c = SClient(port, "-servername", "rsa.test", *args)
        try:
            c.send(upgrade_request("/", host="rsa.test"))
            c.wait_for(r"HTTP/1.1 101")
            c.send(s_client_frame(0x1, b"first"))
            c.wait_for(r"secure:first")
            for i, command in enumerate(key_updates):
                c.send(command.encode() + b"\n")
                c.wait_for(r"KEYUPDATE", count=i + 1)
                c.wait_for(KEY_UPDATE_OUT, count=i + 1)
                # Data both ways under the new keys: a large message (several records
                # each way) and a small one.
                big = bytes(0x80 | b for b in os.urandom(40000))  # no command letter
                c.send(s_client_frame(0x2, big))
                c.send(s_client_frame(0x1, f"after-{i}".encode()))
                c.wait_for(rf"secure:after-{i}")
            if port == self.sb.port():
                self.assert_switched(before)
            return c.text()
        finally:
            c.close()

    def test_s_client_key_updates_requested_and_not_mid_stream(self):
        out = self.s_client_exchange(self.sb.port(), "-tls1_3", key_updates=("K", "k", "K"))
        # Two requested: switchboard answered each with its own KeyUpdate; `k` asked
        # for none.
        self.assertEqual(len(re.findall(KEY_UPDATE_OUT, out)), 3, out[-3000:])
        self.assertEqual(len(re.findall(KEY_UPDATE_IN, out)), 2, out[-3000:])

    def test_key_updates_asked_for_while_switchboard_is_silent_get_one_answer(self):
        # RFC 8446 §4.6.3: the answer must precede switchboard's next data, and a server
        # that is silent answers many requests with one. Answering each at once would
        # let a client that never reads queue a record per 27 bytes it sends.
        c = SClient(self.sb.port(), "-servername", "rsa.test", "-tls1_3")
        try:
            c.send(upgrade_request("/", host="rsa.test"))
            c.wait_for(r"HTTP/1.1 101")
            for i in range(10):
                c.send(b"K\n")
                c.wait_for(KEY_UPDATE_OUT, count=i + 1)
            c.send(s_client_frame(0x1, b"now"))
            c.wait_for(r"secure:now")
            self.assertEqual(len(re.findall(KEY_UPDATE_IN, c.text())), 1, c.text()[-3000:])
            # The run of records without data ended with that frame: more may follow.
            for i in range(3):
                c.send(b"K\n")
                c.wait_for(KEY_UPDATE_OUT, count=11 + i)
                c.send(s_client_frame(0x1, f"again-{i}".encode()))
                c.wait_for(rf"secure:again-{i}")
            self.assertEqual(len(re.findall(KEY_UPDATE_IN, c.text())), 4, c.text()[-3000:])
        finally:
            c.close()

    def test_s_client_each_tls13_suite(self):
        for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                      "TLS_CHACHA20_POLY1305_SHA256"):
            with self.subTest(suite=suite):
                out = self.s_client_exchange(self.sb.port(), "-tls1_3", "-ciphersuites", suite,
                                             key_updates=("K",))
                self.assertIn(suite, out)
                self.assertEqual(len(re.findall(KEY_UPDATE_IN, out)), 1, out[-3000:])

    def test_s_client_tls12_each_suite_and_renegotiation_refused(self):
        for suite in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                      "ECDHE-RSA-CHACHA20-POLY1305"):
            with self.subTest(suite=suite):
                out = self.s_client_exchange(self.sb.port(), "-tls1_2", "-cipher", suite,
                                             key_updates=())
                self.assertIn(suite, out)
        c = SClient(self.sb.port(), "-servername", "rsa.test", "-tls1_2")
        try:
            c.send(upgrade_request("/", host="rsa.test"))
            c.wait_for(r"HTTP/1.1 101")
            c.send(b"R\n")
            c.wait_for(r"<<< TLS 1.2, Alert \[length 0002\], warning no_renegotiation")
        finally:
            c.close()

    # ---- switchboard's own KeyUpdates ----

    def test_switchboard_updates_its_keys_at_the_lowered_limit(self):
        c = SClient(self.rekey.port(), "-servername", "rsa.test", "-tls1_3")
        try:
            c.send(upgrade_request("/", host="rsa.test"))
            c.wait_for(r"HTTP/1.1 101")
            for i in range(12):
                c.send(s_client_frame(0x1, f"m{i}-".encode() + b"x" * 100))
                c.wait_for(rf"secure:m{i}-")
            # 13 records out (the 101 and 12 answers, plus the ticket before): a
            # KeyUpdate after every 4th, none asked for.
            c.wait_for(KEY_UPDATE_IN, count=3)
            self.assertEqual(len(re.findall(KEY_UPDATE_OUT, c.text())), 0)
        finally:
            c.close()

    def test_python_websockets_across_many_key_updates(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                if version == ssl.TLSVersion.TLSv1_2:
                    # TLS 1.2 cannot rekey: at its limit switchboard says goodbye.
                    with self.assertRaises(websockets.ConnectionClosed):
                        self.echo_both_ways(self.rekey.port(), self.context(version),
                                            sizes=(10,), rounds=20)
                else:
                    self.assertEqual(
                        self.echo_both_ways(self.rekey.port(), self.context(version), rounds=3),
                        "TLSv1.3")

    def test_a_record_that_fails_to_open_ends_the_connection_with_bad_record_mac(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                before = self.switches()
                c = MemTlsClient(self.sb.port(), self.context(version), "rsa.test")
                try:
                    ws_upgrade(c)
                    self.assert_switched(before)
                    # An application_data record of the right shape whose tag is wrong.
                    c.sock.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
                    with self.assertRaisesRegex(ssl.SSLError, "BAD_RECORD_MAC|bad record mac"):
                        while c.read():
                            pass
                finally:
                    c.close()

    # ---- other independent clients ----

    def test_python_websockets_tls13_and_tls12(self):
        for version, ciphers in ((ssl.TLSVersion.TLSv1_3, None),
                                 (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256"),
                                 (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES256-GCM-SHA384"),
                                 (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-CHACHA20-POLY1305")):
            with self.subTest(version=version, ciphers=ciphers):
                before = self.switches()
                got = self.echo_both_ways(self.sb.port(), self.context(version, ciphers))
                self.assertEqual(got, "TLSv1.3" if version == ssl.TLSVersion.TLSv1_3
                                 else "TLSv1.2")
                self.assert_switched(before)

    @unittest.skipUnless(shutil.which("node"), "node is not installed")
    def test_node_ws(self):
        script = r"""
const WebSocket = require('ws');
const [url, version] = process.argv.slice(1);
const ws = new WebSocket(url, { ca: require('fs').readFileSync(process.env.CA),
                                servername: 'rsa.test', minVersion: version,
                                maxVersion: version });
const sizes = [0, 5, 16384, 100000, 1 << 20];
const got = [];
let i = 0;
const next = () => {
  if (i === sizes.length) { ws.send('hello'); return; }
  ws.send(Buffer.alloc(sizes[i], i + 1));
};
ws.on('open', next);
ws.on('message', (data, binary) => {
  if (!binary) { got.push(data.toString()); console.log(JSON.stringify(got)); ws.close(1000); return; }
  got.push(data.length === sizes[i] && data.every((b) => b === i + 1));
  i += 1;
  next();
});
ws.on('error', (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
"""
        env = dict(os.environ, NODE_PATH="/usr/share/nodejs", CA=self.pki.ca)
        for port, version in ((self.sb.port(), "TLSv1.3"), (self.sb.port(), "TLSv1.2"),
                              (self.rekey.port(), "TLSv1.3")):
            with self.subTest(port=port, version=version):
                r = subprocess.run(["node", "-e", script, f"wss://127.0.0.1:{port}/", version],
                                   env=env, capture_output=True, timeout=60)
                out = r.stdout.decode()
                self.assertEqual(r.returncode, 0, out + r.stderr.decode())
                self.assertEqual(json.loads(out.strip().splitlines()[-1]),
                                 [True] * 5 + ["secure:hello"])


class SlowBackendTest(unittest.TestCase):
    """Many small records in each read while the backend does not read: the relay
    pauses in the middle of a read block's records, and resumes where it stopped."""

    COUNT = 12000

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"])
        cls.received = []

        def behaviour(conn):
            accept_upgrade(conn)
            time.sleep(1.5)  # the kernel's buffers fill, then switchboard's pause
            conn.settimeout(20)
            data = b""
            got = 0
            while got < cls.COUNT:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
                while True:
                    f = decode_frame(data)
                    if f is None:
                        break
                    cls.received.append(f[2])
                    got += 1
                    data = data[f[3]:]
            conn.sendall(encode_frame(0x1, b"done %d" % got, masked=False))
            time.sleep(0.5)
            conn.close()

        cls.backend = RawBackend(behaviour)
        cls.sb = Switchboard(tls_config([cls.rsa], [cls.backend.address]))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def test_records_of_a_paused_read_are_all_relayed_in_order(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                self.received.clear()
                ctx = self.pki.client_context()
                ctx.minimum_version = ctx.maximum_version = version
                c = MemTlsClient(self.sb.port(), ctx, "rsa.test")
                try:
                    rest = ws_upgrade(c)
                    # One record per frame (s_client_frame: a zero mask, so the
                    # payload is as written), many records per TCP segment.
                    for i in range(self.COUNT):
                        c.tls.write(s_client_frame(0x2, i.to_bytes(4, "big") * 250))
                        if i % 64 == 63:
                            c._flush()
                    c._flush()
                    frames, _ = read_frames(c, rest, 1)
                    self.assertEqual(frames[0][2], b"done %d" % self.COUNT)
                finally:
                    c.close()
                self.assertEqual(len(self.received), self.COUNT)
                for i, payload in enumerate(self.received):
                    self.assertEqual(payload, i.to_bytes(4, "big") * 250)


class HalfCloseTest(unittest.TestCase):
    """A client's close_notify ends its direction only: the backend sees the end (FIN)
    and what it sends after still reaches the client, then switchboard's close_notify."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"])
        cls.seen = []

        def behaviour(conn):
            accept_upgrade(conn)
            data = b""
            conn.settimeout(10)
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            cls.seen.append(data)
            conn.sendall(encode_frame(0x1, b"after your end", masked=False))
            conn.close()

        cls.backend = RawBackend(behaviour)
        cls.sb = Switchboard(tls_config([cls.rsa], [cls.backend.address]))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def test_close_notify_is_a_half_close(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version):
                ctx = self.pki.client_context()
                ctx.minimum_version = ctx.maximum_version = version
                c = MemTlsClient(self.sb.port(), ctx, "rsa.test")
                try:
                    rest = ws_upgrade(c)
                    c.send(encode_frame(0x1, b"last words"))
                    c.close_notify()
                    frames, rest = read_frames(c, rest, 1)
                    self.assertEqual([f[2] for f in frames], [b"after your end"])
                    # Then switchboard's close_notify (read() gives b""), not a bare FIN.
                    self.assertEqual(c.read(), b"")
                finally:
                    c.close()
                wait_for(lambda: len(self.seen) >= 1)
                got = decode_frame(self.seen.pop())
                self.assertEqual(got[2], b"last words")


def spki_pin(cert):
    """The base64 SHA-256 of a certificate's public key, for Chromium's
    --ignore-certificate-errors-spki-list: that one key is trusted, nothing else."""
    der = subprocess.run(f"openssl x509 -in '{cert}' -pubkey -noout | "
                         "openssl pkey -pubin -outform der", shell=True, check=True,
                         capture_output=True, timeout=30).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


# The page's side of ChromiumTest: a WebSocket to `url`; each size in `sizes` is a
# binary message of random bytes, sent one at a time (each echo awaited) and then all
# at once (records split and coalesced both ways); then a text message. The echoes
# are compared with the reversed message byte for byte, and each message's CRC-32 is
# reported both ways, for the test to check against what the backend received.
CHROMIUM_EXCHANGE = r"""
(url, sizes) => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  const crc32 = (bytes) => {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const random = (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
    return out;
  };
  const reversedEquals = (got, sent) => {
    if (got.length !== sent.length) return false;
    for (let i = 0, j = sent.length - 1; i < got.length; i++, j--) {
      if (got[i] !== sent[j]) return false;
    }
    return true;
  };
  window.exchange = { sent: [], echoed: [], matches: [], text: null, error: null, done: false };
  const r = window.exchange;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  let waiting = null;
  ws.onmessage = (m) => {
    if (!waiting) { queue.push(m.data); return; }
    const w = waiting;
    waiting = null;
    w(m.data);
  };
  const next = () => new Promise((resolve) => {
    if (queue.length) { resolve(queue.shift()); return; }
    waiting = resolve;
  });
  ws.onclose = (e) => { if (!r.done) r.error = `closed early: ${e.code} ${e.reason}`; };
  ws.onerror = () => { if (!r.done) r.error = 'error event'; };
  const check = (sent, data) => {
    const got = new Uint8Array(data);
    r.echoed.push(crc32(got));
    r.matches.push(reversedEquals(got, sent));
  };
  ws.onopen = async () => {
    try {
      for (const n of sizes) {
        const sent = random(n);
        r.sent.push(crc32(sent));
        ws.send(sent);
        check(sent, await next());
      }
      const burst = sizes.map(random);
      for (const sent of burst) { r.sent.push(crc32(sent)); ws.send(sent); }
      for (const sent of burst) check(sent, await next());
      ws.send('hello from chromium');
      r.text = await next();
      r.done = true;
      ws.close(1000);
    } catch (e) {
      r.error = String(e);
    }
  };
}
"""


class RecordTap:
    """A TCP relay in front of switchboard that notes the length of each TLS record
    switchboard sends (it cannot read them, only count them). A TLS 1.3 KeyUpdate is a
    record of 22 bytes: a 5-byte handshake message, its inner content type, a 16-byte
    tag (switchboard adds no padding)."""

    def __init__(self, port):
        self._target = port
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.lengths = []  # of every record from switchboard, in order
        self._lock = threading.Lock()
        self._conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self._target))
            self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src, dst, from_switchboard):
        pending = b""
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
                if not from_switchboard:
                    continue
                pending += chunk
                while len(pending) >= 5 and len(pending) >= 5 + int.from_bytes(pending[3:5], "big"):
                    n = int.from_bytes(pending[3:5], "big")
                    with self._lock:
                        self.lengths.append(n)
                    pending = pending[5 + n:]
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def count(self, length):
        with self._lock:
            return self.lengths.count(length)

    def close(self):
        self._sock.close()
        for c in self._conns:
            c.close()


@unittest.skipUnless(CHROMIUM, "chromium is not installed (tools/setup installs it)")
class ChromiumTest(unittest.TestCase):
    """Headless Chromium (BoringSSL: yet another TLS stack) over wss:// through
    switchboard's record layer, driven over the DevTools protocol (test_demo_browser),
    trusting the listener's key only. Switchboard's keys are due for a KeyUpdate every
    4 records (--debug-record-key-update=4), which only the record layer obeys: each
    1 MiB echo is 64 records and more, so Chromium must follow some 16 of switchboard's
    KeyUpdates per MiB (over TLS 1.2 switchboard would have said goodbye instead). A
    relay in front of switchboard counts them."""

    SIZES = [1, 125, 16384, 100 * 1024, 1 << 20]

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"], ips=["127.0.0.1"])
        cls.backend = PyBackend("secure")
        cls.sb = Switchboard('[log]\nlevel = "debug"\n' +
                             tls_config([cls.rsa], [cls.backend.address]),
                             extra_args=["--debug-record-key-update=4"])
        cls.tap = RecordTap(cls.sb.port())
        cls.browser = Browser(extra_args=[
            f"--ignore-certificate-errors-spki-list={spki_pin(cls.rsa[0])}"])

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.tap.close()
        try:
            stop_cleanly(cls.sb)
        finally:
            cls.backend.stop()

    def switches(self):
        err = "\n".join(self.sb.output("err"))
        return (err.count("client TLS handed to the record layer"),
                err.count("client TLS stays on OpenSSL"))

    def test_chromium_echoes_byte_for_byte_across_key_updates(self):
        before = self.switches()
        received_before = len(self.backend.received)
        key_updates_before = self.tap.count(22)

        async def go():
            page = await self.browser.new_page()
            try:
                url = f"wss://127.0.0.1:{self.tap.port}/"
                await page.evaluate(f"({CHROMIUM_EXCHANGE})('{url}', {json.dumps(self.SIZES)})")
                await page.until("window.exchange.done || window.exchange.error", timeout=60,
                                 what="Chromium's exchange")
                return await page.evaluate("window.exchange")
            finally:
                await page.ws.close()

        r = run(go(), timeout=120)
        self.assertIsNone(r["error"], r)
        self.assertEqual(r["matches"], [True] * (2 * len(self.SIZES)), r)
        self.assertEqual(r["text"], "secure:hello from chromium")
        # What the backend got is what the page sent, and the page got it reversed.
        got = self.backend.received[received_before:]
        self.assertEqual([len(m) for m in got[:-1]], self.SIZES * 2)
        self.assertEqual(got[-1], "hello from chromium")
        self.assertEqual(r["sent"], [zlib.crc32(m) for m in got[:-1]])
        self.assertEqual(r["echoed"], [zlib.crc32(m[::-1]) for m in got[:-1]])
        # The connection left OpenSSL after its handshake, and switchboard updated its
        # keys after every 4 records: 2 MiB of echoes alone are over 128 records.
        wait_for(lambda: self.switches()[0] > before[0], what="a switch to the record layer")
        self.assertEqual(self.switches()[1], before[1], self.sb.output("err")[-20:])
        self.assertGreaterEqual(self.tap.count(22) - key_updates_before, 32, self.tap.lengths)


class TrackedBackend(PyBackend):
    """PyBackend's echo, counting the connections open now (`live`) and ended: a
    session the proxy ends must end its backend connection too."""

    def __init__(self, name):
        self.live = 0
        self.ended = 0
        super().__init__(name, handler=self._tracked)

    async def _tracked(self, ws, path):
        self.live += 1
        try:
            await self._transform_echo(ws, path)
        finally:
            self.live -= 1
            self.ended += 1


def one_worker_tls(certs, backends):
    """tls_config with one worker: every connection of a test shares that worker's
    record-layer ciphers and scratch contexts (WorkerContext::record_crypto), so what one
    connection does to them, the others would see."""
    text = tls_config(certs, backends)
    assert "workers = 2" in text
    return '[log]\nlevel = "debug"\n' + text.replace("workers = 2", "workers = 1")


def read_until_closed(c, timeout=10.0):
    """Reads a MemTlsClient until its connection ends; returns how: "eof" (a TCP end
    without close_notify), "close_notify", or the text of the TLS error (an alert the
    proxy sent) or of the socket error. Fails if the TCP connection is still open
    after `timeout`, whatever came before."""
    c.sock.settimeout(timeout)
    try:
        while True:
            if not c.read():
                how = "close_notify"
                break
    except ssl.SSLError as e:
        how = str(e)
    except ConnectionError as e:
        return "eof" if "without close_notify" in str(e) else str(e)
    except socket.timeout:
        raise AssertionError(f"the proxy left the connection open for {timeout}s")
    # After its close_notify or a fatal alert, the proxy's TCP end.
    try:
        while c.sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"after {how!r} the proxy left the connection open for {timeout}s")
    return how


class PeerAlertTest(unittest.TestCase):
    """A client's fatal alert after the switch to the record layer, encrypted under
    its traffic keys like any record: the proxy must end the session (client and
    backend connections) without answering, say why in its log, and go on serving
    everyone else. The alert is a real one: the client's own OpenSSL is handed a
    record "from the server" that fails to open, and writes its bad_record_mac alert
    as it would on the wire."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"])
        cls.backend = TrackedBackend("secure")
        cls.sb = Switchboard(one_worker_tls([cls.rsa], [cls.backend.address]))

    @classmethod
    def tearDownClass(cls):
        try:
            stop_cleanly(cls.sb)
        finally:
            cls.backend.stop()

    def switches(self):
        return "\n".join(self.sb.output("err")).count("client TLS handed to the record layer")

    def test_a_fatal_alert_ends_the_session_and_no_other(self):
        async def go():
            ctx = self.pki.client_context()
            async with websockets.connect(f"wss://127.0.0.1:{self.sb.port()}/", ssl=ctx,
                                          server_hostname="rsa.test") as good:
                await good.send("before")
                self.assertEqual(await good.recv(), "secure:before")
                for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                    with self.subTest(version=version):
                        await asyncio.get_running_loop().run_in_executor(
                            None, self.one_alert, version)
                        await good.send(f"after {version.name}")
                        self.assertEqual(await good.recv(), f"secure:after {version.name}")
        run(go(), timeout=60)

    def one_alert(self, version):
        ctx = self.pki.client_context()
        ctx.minimum_version = ctx.maximum_version = version
        switched = self.switches()
        ended = self.backend.ended
        c = MemTlsClient(self.sb.port(), ctx, "rsa.test")
        port = c.sock.getsockname()[1]
        try:
            rest = ws_upgrade(c)
            c.send(encode_frame(0x1, b"hello"))
            frames, _ = read_frames(c, rest, 1)
            self.assertEqual(frames[0][2], b"secure:hello")
            wait_for(lambda: self.switches() > switched, what="a switch to the record layer")
            self.assertEqual(self.backend.live, 2)  # the good client's and this one's

            # The client's OpenSSL answers a record that fails to open with a fatal
            # bad_record_mac, protected like application data (TLS 1.3: an outer type
            # of application_data; TLS 1.2: an alert record with an explicit nonce).
            c.incoming.write(b"\x17\x03\x03\x00\x40" + os.urandom(64))
            with self.assertRaisesRegex(ssl.SSLError, "BAD_RECORD_MAC|bad record mac"):
                c.tls.read(100)
            alert = c.outgoing.read()
            outer = 0x17 if version == ssl.TLSVersion.TLSv1_3 else 0x15
            self.assertEqual(alert[0], outer, alert.hex())
            self.assertGreater(len(alert), 5 + 2 + 16, "not encrypted: " + alert.hex())
            c.sock.sendall(alert)

            # The proxy closes without answering (RFC 8446 §6.2: nothing follows a
            # fatal alert), and the backend connection goes with it.
            c.sock.settimeout(10)
            after = b""
            try:
                while chunk := c.sock.recv(65536):
                    after += chunk
            except ConnectionResetError:
                pass
            self.assertEqual(after, b"", "the proxy answered the alert")
            wait_for(lambda: self.backend.ended > ended, what="the backend connection's end")
            self.assertEqual(self.backend.live, 1)
        finally:
            c.close()
        # Said in the log: the session's line, naming the alert, and its access log
        # record.
        record = wait_for(lambda: [r for r in self.sb.access_log()
                                   if r["client"].endswith(f":{port}")], what="its access log")
        self.assertEqual((record[0]["reason"], record[0]["closed_by"]), ("client_reset", "client"))
        line = [l for l in self.sb.output("err")
                if "client connection error" in l and f":{port} " in l]
        self.assertEqual(len(line), 1, self.sb.output("err")[-20:])
        self.assertIn('detail="TLS alert received: bad_record_mac"', line[0])


class RingReadBuffersTest(unittest.TestCase):
    """With one read buffer provided to the kernel (the hidden --debug-ring-buffers=1),
    reads that find data in the same wakeup run out of buffers. Each of those is read
    directly instead (Endpoint::on_ring_recv), never failed: every byte of many busy
    wss connections still arrives, in order. Where the relay runs on libuv (no
    io_uring, or the suite's --debug-no-ring run) there is no ring to run out of."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"])
        cls.backend = PyBackend("secure")
        cls.sb = Switchboard(one_worker_tls([cls.rsa], [cls.backend.address]),
                             extra_args=["--debug-ring-buffers=1"])

    @classmethod
    def tearDownClass(cls):
        try:
            stop_cleanly(cls.sb)
        finally:
            cls.backend.stop()

    def test_reads_that_find_no_buffer_are_read_directly(self):
        if self.sb.relay_io != "io_uring":
            self.skipTest("the relay runs on libuv here")

        async def client():
            ctx = self.pki.client_context()
            async with websockets.connect(f"wss://127.0.0.1:{self.sb.port()}/", ssl=ctx,
                                          server_hostname="rsa.test", max_size=None,
                                          compression=None) as ws:
                for size in (1, 125, 16384, 70000, 300000) * 3:
                    data = os.urandom(size)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1])

        async def go():
            await asyncio.gather(*(client() for _ in range(24)))

        run(go(), timeout=120)
        wait_for(lambda: any("the ring's read buffers ran out" in line
                             for line in self.sb.output("err")),
                 what="a read that found no ring buffer")


class HostileNeighbourTest(unittest.TestCase):
    """One well-behaved wss client mid-conversation, on the same worker as clients that
    break the record layer's rules one after the other: garbage where a record should
    be, a record that fails to open, one longer than the protocol allows, a handshake
    record after the handshake, a record cut short and then the TCP end. Each of those
    connections ends, with its backend connection; the good client's echoes go on,
    byte for byte, throughout."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"])
        cls.backend = TrackedBackend("secure")
        cls.sb = Switchboard(one_worker_tls([cls.rsa], [cls.backend.address]))

    @classmethod
    def tearDownClass(cls):
        try:
            stop_cleanly(cls.sb)
        finally:
            cls.backend.stop()

    def hostile(self, version, upgrade, send):
        """A client that completes its TLS handshake (and the WebSocket upgrade, if
        `upgrade`), then does `send(client)`; returns how its connection ended and its
        port."""
        ctx = self.pki.client_context()
        ctx.minimum_version = ctx.maximum_version = version
        c = MemTlsClient(self.sb.port(), ctx, "rsa.test")
        try:
            if upgrade:
                rest = ws_upgrade(c)
                c.send(encode_frame(0x2, b"x" * 3000))
                frames, _ = read_frames(c, rest, 1)
                self.assertEqual(frames[0][2], b"x" * 3000)
            send(c)
            return read_until_closed(c), c.sock.getsockname()[1]
        finally:
            c.close()

    def test_hostile_records_leave_a_good_neighbour_alone(self):
        def garbage(c):
            c.sock.sendall(b"\x00\x01\x02garbage that is no record" * 20)

        def bad_tag(c):
            c.sock.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))

        def overlong(c):
            c.sock.sendall(b"\x17\x03\x03\x48\x01" + os.urandom(0x4801))

        def handshake_record(c):
            # A plaintext ClientHello-shaped record once the keys are in use.
            c.sock.sendall(b"\x16\x03\x03\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00")

        def truncated_then_end(c):
            # A valid record's first part: the rest never comes, the TCP stream ends.
            c.tls.write(encode_frame(0x2, os.urandom(5000)))
            record = c.outgoing.read()
            c.sock.sendall(record[:len(record) // 2])
            c.sock.shutdown(socket.SHUT_WR)

        cases = [(name, version, upgrade, send)
                 for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2)
                 for name, send in (("garbage", garbage), ("bad_tag", bad_tag),
                                    ("overlong", overlong), ("handshake", handshake_record),
                                    ("truncated", truncated_then_end))
                 for upgrade in (True, False)]
        endings = {}
        echoes = [0]

        async def good_client(stop):
            ctx = self.pki.client_context()
            async with websockets.connect(f"wss://127.0.0.1:{self.sb.port()}/", ssl=ctx,
                                          server_hostname="rsa.test", max_size=None,
                                          compression=None) as ws:
                sizes = (10, 20000, 300000)
                while not stop.is_set():
                    data = os.urandom(sizes[echoes[0] % len(sizes)])
                    await ws.send(data)
                    if await ws.recv() != data[::-1]:
                        raise AssertionError(f"echo {echoes[0]} differs")
                    echoes[0] += 1

        async def go():
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            good = asyncio.create_task(good_client(stop))
            try:
                await wait_for_async(lambda: echoes[0] >= 3 or good.done(), timeout=20,
                                     what="the good client's first echoes")
                for name, version, upgrade, send in cases:
                    ended = self.backend.ended
                    endings[(name, version.name, upgrade)] = await loop.run_in_executor(
                        None, self.hostile, version, upgrade, send)
                    if upgrade:
                        await wait_for_async(lambda: self.backend.ended > ended, timeout=10,
                                             what=f"{name}'s backend connection to end")
                    # The good client goes on: three more echoes after each.
                    n = echoes[0]
                    await wait_for_async(lambda: echoes[0] >= n + 3 or good.done(), timeout=20,
                                         what=f"echoes after {name}")
                    if good.done():
                        good.result()  # its failure
                        self.fail(f"the good client stopped after {name}")
                self.assertEqual(self.backend.live, 1)  # the good client's only
            finally:
                stop.set()
                await asyncio.wait_for(good, 30)

        run(go(), timeout=240)
        # Every connection, the good one's included, was on the record layer.
        out = "\n".join(self.sb.output("err"))
        self.assertEqual(out.count("client TLS handed to the record layer"), len(cases) + 1)
        self.assertEqual(out.count("client TLS stays on OpenSSL"), 0)
        # Each broken record is answered with the fatal alert its fault calls for, which
        # the session's log line names; the cut one is a TCP end, passed on as one (the
        # backend's end then ends it).
        lines = self.sb.output("err")
        for (name, version, upgrade), (how, port) in endings.items():
            with self.subTest(name=name, version=version, upgrade=upgrade):
                alert = {"garbage": "unexpected_message", "bad_tag": "bad_record_mac",
                         "overlong": "record_overflow",
                         # TLS 1.2 protects handshake records after the handshake too: a
                         # plaintext one does not open.
                         "handshake": ("unexpected_message" if version == "TLSv1_3"
                                       else "bad_record_mac"),
                         "truncated": None}[name]
                errors = [l for l in lines if "client connection error" in l and f":{port} " in l]
                if alert is None:
                    self.assertRegex(how, "^(close_notify|eof)$")
                    self.assertEqual(errors, [])
                    continue
                self.assertRegex(how, alert.upper() + "|" + alert.replace("_", " "))
                self.assertEqual(len(errors), 1, lines[-20:])
                self.assertIn(f'detail="TLS alert sent: {alert}"', errors[0])
        self.assertTrue(self.sb.proc.poll() is None)


class RingSidesLimitTest(unittest.TestCase):
    """A worker's ring serves at most so many relay sides (uv::Ring::kMaxSides: its
    completion queue has room for their completions); further sessions relay through
    libuv, in the same worker, side by side with those on the ring. Lowered to 4 (the
    hidden --debug-ring-sides=4): two wss sessions fill the ring, a third stays on
    libuv, all three echo every size, and the places the first two leave are taken
    again once they close (a side that left without giving its place back would
    eventually keep every new session off the ring)."""

    def test_sessions_beyond_the_limit_relay_through_libuv_and_closed_ones_make_room(self):
        pki = TestPki()
        rsa = pki.leaf("rsa.test", dns=["rsa.test"])
        backend = PyBackend("secure")
        sb = Switchboard(one_worker_tls([rsa], [backend.address]),
                         extra_args=["--debug-ring-sides=4"])
        try:
            if sb.relay_io != "io_uring":
                self.skipTest("the relay runs on libuv here")

            def sides_lines():
                return [l for l in sb.output("err") if "relay side " in l]

            async def connect():
                ws = await websockets.connect(
                    f"wss://127.0.0.1:{sb.port()}/", ssl=pki.client_context(),
                    server_hostname="rsa.test", max_size=None, compression=None)
                # The first echo proves the relay started (and its sides were placed).
                await ws.send(b"x")
                self.assertEqual(await ws.recv(), b"x")
                return ws

            async def echo_all(ws):
                for size in (1, 125, 16384, 70000, 300000):
                    data = os.urandom(size)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1])

            async def new_lines(seen, count):
                # The log's lines come from a thread of their own, maybe after the echo.
                await wait_for_async(lambda: len(sides_lines()) >= seen + count,
                                     what=f"{count} relay side lines")
                return sides_lines()[seen:]

            async def go():
                first = [await connect() for _ in range(2)]
                lines = await new_lines(0, 4)
                self.assertEqual(len(lines), 4, lines)
                self.assertTrue(all("relay side on the ring" in l for l in lines), lines)
                self.assertIn("sides=4", lines[-1])
                third = await connect()
                lines = await new_lines(4, 2)
                self.assertEqual(len(lines), 2, lines)
                self.assertTrue(all("stays on libuv" in l and "sides=4" in l for l in lines),
                                lines)
                await asyncio.gather(*(echo_all(ws) for ws in first + [third]))
                for ws in first:
                    await ws.close()
                # Their sides give their places back once the ring has returned what it
                # held for them; a session opened after all four did is on the ring
                # again, as its first two sides (the third's two are on libuv).
                for attempt in range(50):
                    seen = len(sides_lines())
                    fourth = await connect()
                    lines = await new_lines(seen, 2)
                    if (len(lines) == 2 and "sides=2" in lines[-1]
                            and all("relay side on the ring" in l for l in lines)):
                        break
                    await fourth.close()
                    await asyncio.sleep(0.1)
                self.assertEqual(len(lines), 2, lines)
                self.assertTrue(all("relay side on the ring" in l for l in lines), lines)
                self.assertIn("sides=2", lines[-1])
                await asyncio.gather(*(echo_all(ws) for ws in (third, fourth)))
                for ws in (third, fourth):
                    await ws.close()

            run(go(), timeout=120)
        finally:
            try:
                stop_cleanly(sb)
            finally:
                backend.stop()


class RingCoalescingTest(unittest.TestCase):
    """A busy worker holds its wait for more completions, for at most a bound (uv/ring.h,
    kCoalesceUs), raised here to 100 ms (the hidden --debug-ring-coalesce-us=100000) so
    that a hold shows: wss clients that talk at once all get every byte back, some
    after a hold; one client's echo chain, which brings one completion per wakeup, is
    never held. The startup log names the bound, or "off" where the kernel cannot hold
    a wait (before Linux 6.12). On libuv there is no ring to hold."""

    HOLD_S = 0.1

    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.rsa = cls.pki.leaf("rsa.test", dns=["rsa.test"])
        cls.backend = PyBackend("b", keep_messages=False)
        cls.sb = Switchboard(one_worker_tls([cls.rsa], [cls.backend.address]),
                             extra_args=[f"--debug-ring-coalesce-us={int(cls.HOLD_S * 1e6)}"])

    @classmethod
    def tearDownClass(cls):
        try:
            stop_cleanly(cls.sb)
        finally:
            cls.backend.stop()

    def setUp(self):
        if self.sb.relay_io != "io_uring":
            self.skipTest("the relay runs on libuv here")
        if not io_uring_holds_waits():
            self.assertEqual(self.sb.ring_coalesce_us, "off")
            self.skipTest("this kernel cannot hold a wait (IORING_FEAT_MIN_TIMEOUT)")

    def connect(self):
        return websockets.connect(f"wss://127.0.0.1:{self.sb.port()}/",
                                  ssl=self.pki.client_context(), server_hostname="rsa.test",
                                  max_size=None, compression=None)

    def test_the_startup_log_names_the_bound(self):
        self.assertEqual(self.sb.ring_coalesce_us, "100000")

    def test_one_clients_echo_chain_is_never_held(self):
        round_trips = 60

        async def go():
            async with self.connect() as ws:
                await ws.send(b"warm")
                self.assertEqual(await ws.recv(), b"mraw")
                start = time.monotonic()
                for i in range(round_trips):
                    data = os.urandom(64)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1])
                return time.monotonic() - start

        took = run(go(), timeout=60)
        # Held, each round trip would take a bound at least: 6 s in all. Unheld they
        # take about 0.1 s here.
        self.assertLess(took, round_trips * self.HOLD_S / 4, f"{took:.2f} s")

    def test_clients_talking_at_once_are_held_and_get_every_byte(self):
        round_trips = []

        async def client(sizes):
            async with self.connect() as ws:
                for size in sizes:
                    data = os.urandom(size)
                    start = time.monotonic()
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data[::-1])
                    round_trips.append(time.monotonic() - start)

        async def go(sizes):
            await asyncio.gather(*(client(sizes) for _ in range(30)))

        # Small echoes, 30 at once: several completions per wakeup, so the waits are
        # held, and a round trip crosses the worker twice. Unheld, the longest takes
        # about 15 ms here, and most far less; held, most take two holds.
        run(go((64,) * 10), timeout=120)
        round_trips.sort()
        median = round_trips[len(round_trips) // 2]
        self.assertGreaterEqual(median, self.HOLD_S * 0.8, f"median {median * 1000:.1f} ms")
        # And every size, while held (a side reads at most a block per hold).
        run(go((1, 125, 16384, 40000)), timeout=120)


class RingChurnTest(unittest.TestCase):
    """Seeded random wss clients on one worker whose relay runs on the ring, with 4 read
    buffers so that reads run out of them: clients that echo every size and close
    politely, that reset the connection in the middle of a frame, that send a message
    of a megabyte or two and reset without reading its echo (switchboard's writes to
    them in the kernel), that read slowly and then reset, that close without a close
    frame. A sentinel client echoes throughout and must never miss a byte; then a new
    client is served, and the process exits 0 without a sanitizer report. The seed is
    printed on failure; SB_CHURN_SEED replays one."""

    def test_random_clients_that_vanish_mid_stream_leave_the_ring_sound(self):
        seed = int(os.environ.get("SB_CHURN_SEED", "0")) or random.randrange(1, 1 << 30)
        pki = TestPki()
        rsa = pki.leaf("rsa.test", dns=["rsa.test"])
        backend = PyBackend("secure", keep_messages=False)
        sb = Switchboard(tls_config([rsa], [backend.address]).replace("workers = 2",
                                                                      "workers = 1"),
                         extra_args=["--debug-ring-buffers=4"])
        ctx = pki.client_context()
        url = f"wss://127.0.0.1:{sb.port()}/"
        sizes = (1, 125, 126, 16384, 65535, 65536, 70000, 300000)

        def connect():
            return websockets.connect(url, ssl=ctx, server_hostname="rsa.test",
                                      max_size=None, compression=None)

        async def open_raw():
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", sb.port(), ssl=ctx, server_hostname="rsa.test")
            writer.write(upgrade_request("/", host="rsa.test"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101"), head
            return reader, writer

        def reset(writer):
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

        async def polite(r):
            async with connect() as ws:
                for _ in range(r.randint(1, 4)):
                    data = r.randbytes(r.choice(sizes))
                    await ws.send(data)
                    assert await ws.recv() == data[::-1], "a polite client's echo differs"

        async def cut_mid_frame(r):
            reader, writer = await open_raw()
            frame = encode_frame(0x2, r.randbytes(r.choice((20000, 300000, 1 << 20))))
            writer.write(frame[:r.randint(1, len(frame) - 1)])
            await writer.drain()
            await asyncio.sleep(r.random() * 0.05)
            reset(writer)

        async def unread_echo(r):
            reader, writer = await open_raw()
            writer.write(encode_frame(0x2, r.randbytes(r.randint(1 << 20, 2 << 20))))
            await writer.drain()
            await asyncio.sleep(r.random() * 0.2)
            reset(writer)

        async def slow_reader(r):
            reader, writer = await open_raw()
            writer.write(encode_frame(0x2, r.randbytes(1 << 20)))
            for _ in range(r.randint(1, 20)):
                await reader.read(4096)
                await asyncio.sleep(0.01)
            reset(writer)

        async def no_close_frame(r):
            reader, writer = await open_raw()
            writer.write(encode_frame(0x1, b"bye"))
            await asyncio.wait_for(reader.read(64), 10)
            writer.close()  # close_notify and FIN, no WebSocket close
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass

        actions = (polite, cut_mid_frame, unread_echo, slow_reader, no_close_frame)
        stop = asyncio.Event()
        echoes = [0]

        async def sentinel():
            r = random.Random(seed)
            async with connect() as ws:
                while not stop.is_set():
                    data = r.randbytes(r.choice(sizes))
                    await ws.send(data)
                    got = await asyncio.wait_for(ws.recv(), 20)
                    assert got == data[::-1], "the sentinel's echo differs"
                    echoes[0] += 1

        async def one(i):
            r = random.Random(seed * 1000 + i)
            action = r.choice(actions)
            try:
                await asyncio.wait_for(action(r), 30)
            except (ConnectionError, ssl.SSLError, websockets.ConnectionClosed):
                if action is polite:
                    raise  # nothing a neighbour does may end a polite client's session
                # A client that resets may hear of it first.

        async def go():
            watch = asyncio.create_task(sentinel())
            for round_ in range(12):
                await asyncio.gather(*(one(round_ * 8 + i) for i in range(8)))
                if watch.done():
                    break
            stop.set()
            await asyncio.wait_for(watch, 30)
            await polite(random.Random(seed))

        try:
            try:
                run(go(), timeout=240)
            except BaseException as e:
                raise AssertionError(f"SB_CHURN_SEED={seed}: {e!r}") from e
            self.assertGreater(echoes[0], 0, f"SB_CHURN_SEED={seed}")
            self.assertIsNone(sb.proc.poll(), f"SB_CHURN_SEED={seed}")
        finally:
            try:
                stop_cleanly(sb)
            finally:
                backend.stop()


class RingLifecycleTest(unittest.TestCase):
    """wss sessions whose relay runs on the workers' io_uring (their clients on the
    record layer) through what an operator does to a running proxy: three reloads while
    40 clients chat, then SIGTERM while one more client has stopped reading, so that
    switchboard's writes to it wait in the kernel. The chatters echo through every
    reload and each gets its 1001; the stalled client is cut at drain_timeout; the
    process exits 0 in time, without a second signal or a sanitizer report. On libuv
    (no io_uring, or the suite's --debug-no-ring run) the same must hold."""

    def test_reloads_then_a_drain_with_a_write_waiting_in_the_kernel(self):
        pki = TestPki()
        rsa = pki.leaf("rsa.test", dns=["rsa.test"])

        backend = PyBackend("b", keep_messages=False)
        config = '[log]\nlevel = "debug"\n' + tls_config([rsa], [backend.address]).replace(
            "workers = 2", 'workers = 2\nclose_spread = "1s"\ndrain_timeout = "3s"')
        sb = Switchboard(config)
        stalled = {"client": None, "frames": 0, "at": time.monotonic(), "ended": None}

        def stall():
            try:
                c = MemTlsClient(sb.port(), pki.client_context(), "rsa.test")
                stalled["client"] = c  # kept open, never read, until the test ends
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                ws_upgrade(c)
                c.sock.settimeout(60)  # the proxy's cut ends the wait, not this
                frame = encode_frame(0x2, os.urandom(1 << 20))
                for _ in range(256):  # far more than the sockets on the way can hold
                    c.send(frame)
                    stalled["frames"] += 1
                    stalled["at"] = time.monotonic()
                stalled["ended"] = "every frame went"
            except BaseException as e:  # noqa: BLE001 - the test reads it
                stalled["ended"] = e

        try:
            async def chatter(i, ws, counts, codes):
                n = 0
                try:
                    while True:
                        await ws.send(f"{i}:{n}")
                        reply = await asyncio.wait_for(ws.recv(), 10)
                        assert reply == f"b:{i}:{n}", reply
                        n += 1
                        counts[i] = n
                        await asyncio.sleep(0.01)
                except websockets.ConnectionClosed:
                    codes[i] = ws.close_code

            async def go():
                loop = asyncio.get_running_loop()
                ctx = pki.client_context()
                conns = [await websockets.connect(f"wss://127.0.0.1:{sb.port()}/c{i}", ssl=ctx,
                                                  server_hostname="rsa.test")
                         for i in range(40)]
                counts, codes = [0] * 40, [None] * 40
                tasks = [asyncio.create_task(chatter(i, ws, counts, codes))
                         for i, ws in enumerate(conns)]
                for generation in range(2, 5):
                    sb.signal(signal.SIGHUP)
                    await loop.run_in_executor(None, lambda: sb.wait_line(
                        rf"configuration reloaded generation={generation}", timeout=20))
                before = list(counts)
                await wait_for_async(lambda: all(a > b for a, b in zip(counts, before)),
                                     timeout=20, what="every connection to echo after the reloads")
                self.assertEqual(codes, [None] * 40)
                # The stalled client: its writes go until every buffer on the way is
                # full and switchboard's write to it waits in the kernel.
                thread = threading.Thread(target=stall, daemon=True)
                thread.start()
                await loop.run_in_executor(None, lambda: wait_for(
                    lambda: stalled["ended"] is not None or (
                        stalled["frames"] > 0 and time.monotonic() - stalled["at"] > 1.0),
                    timeout=60, what="the stalled client's writes to stop"))
                self.assertIsNone(stalled["ended"])
                started = time.monotonic()
                sb.signal(signal.SIGTERM)
                await asyncio.wait_for(asyncio.gather(*tasks), 15)
                code = await loop.run_in_executor(None, lambda: sb.wait(timeout=15))
                took = time.monotonic() - started
                thread.join(timeout=10)
                return codes, code, took

            codes, code, took = run(go(), timeout=150)
            self.assertEqual(codes, [1001] * 40)
            # The stalled client's write ended when the drain cut its connection.
            self.assertIsInstance(stalled["ended"], (ConnectionError, BrokenPipeError))
            reports = [line for line in sb.output("err")
                       if "Sanitizer" in line or "runtime error" in line
                       or "second signal" in line]
            self.assertEqual((code, reports), (0, []))
            # close_spread 1 s, then drain_timeout 3 s for the stalled client, then exit.
            self.assertLess(took, 8.0)
            err = sb.output("err")
            if any("relay I/O through io_uring" in line for line in err):
                self.assertGreaterEqual(
                    sum("client TLS handed to the record layer" in line for line in err), 41)
        finally:
            sb.stop()
            backend.stop()
            if stalled["client"]:
                stalled["client"].close()


if __name__ == "__main__":
    unittest.main()
