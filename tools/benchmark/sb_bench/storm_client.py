#!/usr/bin/python3
"""The storm scenario's clients: N WebSocket clients in one asyncio process that
reconnect the way real client libraries do.

  storm_client.py --address HOST:PORT --clients N [--max-seconds S]

Client i asks for `/?room=c<i>` (a room of its own, so a proxy that hashes by room
spreads the clients like one that balances by connection). It writes the upgrade
request itself and reads the answer itself (no WebSocket library: 8,000 of those
would cost the load core more than the proxies' answers do):

  101 with X-Backend    open: sb-echo-backend names itself in its 101, so a 101 that
                        comes from a backend is told apart from a proxy's own (a
                        switchboard shedding with close_1013 answers 101 itself and
                        then sends Close 1013)
  101, then Close 1013  refused; wait N s when the reason says `retry after N s`
  another status        refused (http_<status>); wait Retry-After seconds when the
                        answer has one (503, 429)
  anything else         refused (a refused or reset connection, EOF before an
                        answer, another status) or an error (no answer within the
                        handshake timeout, a malformed answer): exponential backoff
                        with full jitter, U(0, min(10 s, 100 ms * 2^attempt))
  an open connection    ending (EOF, a reset, any Close: 1006, 1012, 1001, ...) is
                        a drop: reconnect with the same backoff, attempt 0 first

The attempt counter goes back to 0 whenever a connection opens. Until every client
has been open once (the fill), at most FILL_CONCURRENCY attempts are in flight; from
then on there is no limit. It prints `connected N` once all are open, then waits:
after the first drop, it prints its report (one JSON line) as soon as all N are open
again, or after --max-seconds in all. Times are time.monotonic() (CLOCK_MONOTONIC,
the clock sb-echo-backend's --accept-log writes), so tools/bench can set them
against the moment it killed a backend. SIGTERM or SIGINT print the report too.
"""

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import os
import random
import re
import signal
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Backoff after a drop or a refusal without a hint (full jitter, as in the AWS
# architecture blog's "Exponential Backoff And Jitter").
BACKOFF_BASE = 0.1
BACKOFF_CAP = 10.0
HANDSHAKE_TIMEOUT = 10.0
# A 101 without X-Backend that is followed by no Close within this long counts as open.
PROVISIONAL_S = 1.0
FILL_CONCURRENCY = 256
MAX_HEAD = 16 * 1024
RETRY_AFTER_REASON = re.compile(rb"retry after (\d+) ?s")

# Attempt outcomes besides "open": refusals make a client "refused at least once"
# (these, and http_<status> for any answer other than 101); ERRORS are failures of
# another kind.
REFUSED = {"close_1013", "close_other", "refused", "reset"}
ERRORS = {"timeout", "malformed"}


def is_refused(kind):
    return kind in REFUSED or kind.startswith("http_")


class Attempt(asyncio.Protocol):
    """One connection attempt: the upgrade request, the answer, and (once open) the
    wait for its end. `answer` resolves to (kind, detail) once the attempt is decided:
    ("open", backend name) or a refusal/error kind with the seconds to wait (or None).
    `ended` resolves to the close code (1006 for none) when an open connection ends."""

    def __init__(self, loop, host, path):
        self.loop = loop
        self.key = base64.b64encode(os.urandom(16))
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: ").encode() + self.key + b"\r\n\r\n"
        self.answer = loop.create_future()
        self.ended = loop.create_future()
        self.transport = None
        self.buf = b""
        self.state = "head"  # head, provisional, open, done
        self.timers = []  # the handshake timeout, the provisional wait

    def decide(self, kind, detail=None):
        for timer in self.timers:
            timer.cancel()
        self.timers = []
        if not self.answer.done():
            self.answer.set_result((kind, detail))

    def finish(self, code):
        if not self.ended.done():
            self.ended.set_result(code)

    def fail(self, kind):
        if self.answer.done():
            return  # decided meanwhile (a timer that lost the race)
        self.decide(kind)
        self.state = "done"
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        self.buf += data
        if self.state == "head":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.fail("malformed")
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            self.on_head(head)
        if self.state in ("open", "provisional"):
            self.read_frames()

    def on_head(self, head):
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            self.fail("malformed")
            return
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if status != 101:
            retry = headers.get("retry-after", "")
            wait = int(retry) if retry.isdigit() else None
            self.decide(f"http_{status}", wait)
            self.state = "done"
            self.transport.close()
            return
        expected = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
        if (headers.get("sec-websocket-accept") != expected
                or headers.get("upgrade", "").lower() != "websocket"):
            self.fail("malformed")
            return
        if "x-backend" in headers:
            self.state = "open"
            self.decide("open", headers["x-backend"])
        else:
            self.state = "provisional"
            self.timers.append(self.loop.call_later(PROVISIONAL_S, self.promote))

    def promote(self):
        if self.state == "provisional":
            self.state = "open"
            self.decide("open", None)

    def read_frames(self):
        # Server frames are unmasked. Only a Close matters; anything else is skipped.
        while len(self.buf) >= 2:
            opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
            at = 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, at = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                return
            payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
            if opcode == 0x8:
                self.on_close_frame(payload)
                return

    def on_close_frame(self, payload):
        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        # Answer the Close (masked, as a client's frame must be), then close.
        mask = os.urandom(4)
        body = payload[:2]
        self.transport.write(bytes([0x88, 0x80 | len(body)]) + mask
                             + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
        self.transport.close()
        if self.state == "provisional":
            m = RETRY_AFTER_REASON.search(payload[2:])
            self.decide("close_1013" if code == 1013 else "close_other",
                        int(m.group(1)) if m else None)
        else:
            self.finish(code)
        self.state = "done"

    def connection_lost(self, exc):
        if self.state == "open":
            self.finish(1006)
        elif not self.answer.done():
            self.decide("reset")
        self.state = "done"


class Storm:
    """All the clients and what they saw."""

    def __init__(self, host, port, n, max_seconds):
        self.loop = asyncio.get_running_loop()
        self.host, self.port, self.n = host, port, n
        self.started = time.monotonic()
        self.deadline = self.started + max_seconds
        self.open = 0
        self.ever_open = 0
        self.filled_at = None
        self.first_drop = None
        self.all_back_at = None
        self.fill_gate = asyncio.Semaphore(FILL_CONCURRENCY)
        self.fill_kinds = {}
        self.backends = {}  # X-Backend -> clients open there at the moment
        self.clients = [{"drops": [], "attempts": [], "back_at": None} for _ in range(n)]
        self.done = self.loop.create_future()

    def stop(self):
        if not self.done.done():
            self.done.set_result(None)

    async def attempt(self, i):
        proto = Attempt(self.loop, f"{self.host}:{self.port}", f"/?room=c{i}")
        try:
            await asyncio.wait_for(self.loop.create_connection(lambda: proto, self.host,
                                                               self.port),
                                   HANDSHAKE_TIMEOUT)
        except ConnectionRefusedError:
            return proto, ("refused", None)
        except asyncio.TimeoutError:
            return proto, ("timeout", None)
        except OSError:
            return proto, ("reset", None)
        if not proto.answer.done():
            proto.timers.append(self.loop.call_later(HANDSHAKE_TIMEOUT, proto.fail, "timeout"))
        return proto, await proto.answer

    async def run_client(self, i):
        me = self.clients[i]
        tries = 0
        while True:
            t0 = time.monotonic()
            if self.filled_at is None:
                async with self.fill_gate:
                    proto, (kind, detail) = await self.attempt(i)
            else:
                proto, (kind, detail) = await self.attempt(i)
            t1 = time.monotonic()
            if self.first_drop is None:
                self.fill_kinds[kind] = self.fill_kinds.get(kind, 0) + 1
            if me["drops"]:
                me["attempts"].append([round(t0, 6), round(t1, 6), kind, detail])
            if kind == "open":
                tries = 0
                self.on_open(me, detail, t1)
                code = await proto.ended
                self.on_drop(me, detail, code)
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** tries))
            elif detail is not None:
                delay = detail  # a 1013's "retry after N s", a Retry-After: N
            else:
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** tries))
            tries += 1
            await asyncio.sleep(delay)

    def on_open(self, me, backend, now):
        self.open += 1
        self.backends[backend] = self.backends.get(backend, 0) + 1
        if me["drops"]:
            me["back_at"] = round(now, 6)
        else:
            self.ever_open += 1
            if self.ever_open == self.n:
                self.filled_at = now
                print(f"connected {self.n}", flush=True)
        if self.first_drop is not None and self.open == self.n:
            self.all_back_at = now
            self.stop()

    def on_drop(self, me, backend, code):
        now = time.monotonic()
        self.open -= 1
        self.backends[backend] -= 1
        if self.first_drop is None:
            self.first_drop = now
        me["drops"].append([round(now, 6), code])
        me["back_at"] = None

    def report(self):
        affected = {i: c for i, c in enumerate(self.clients) if c["drops"]}
        return {"clients": self.n, "started": self.started, "filled_at": self.filled_at,
                "first_drop": self.first_drop, "all_back_at": self.all_back_at,
                "open_at_end": self.open, "ever_open": self.ever_open,
                "fill_outcomes": self.fill_kinds,
                "backends_at_end": {str(k): v for k, v in self.backends.items() if v},
                "affected": affected}


async def main_async(args):
    host, _, port = args.address.rpartition(":")
    storm = Storm(host, int(port), args.clients, args.max_seconds)
    for sig in (signal.SIGTERM, signal.SIGINT):
        storm.loop.add_signal_handler(sig, storm.stop)
    tasks = [asyncio.ensure_future(storm.run_client(i)) for i in range(args.clients)]
    try:
        await asyncio.wait_for(storm.done, max(0.0, storm.deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    print(json.dumps(storm.report()), flush=True)
    for t in tasks:
        t.cancel()
    # The process exits now: the kernel closes the sockets (no close handshakes; the
    # bench stops the proxy and the backends right after).


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", required=True, help="the proxy, HOST:PORT")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="report and exit after this long whatever happened")
    args = p.parse_args()
    # 8,000 clients' futures and frames are garbage the collector would walk again
    # and again: plain reference counting frees them.
    gc.disable()
    asyncio.run(main_async(args))
    # Skip the interpreter's teardown of 8,000 sockets and tasks.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
