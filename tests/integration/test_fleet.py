"""A fleet, as operators run one (SPEC §3 Balancing, Health "Discovery", PROXY protocol):
two switchboard instances behind HAProxy (Debian's, `mode tcp`, round robin,
`send-proxy-v2`), with their backends discovered from an SRV record served by a real
DNS server (Debian's dnsmasq) on loopback.

The instances never talk to each other. They agree because placement is a function of
the backend set alone (every resolved ip:port is placed by that ip:port), so:
- the two clients of one room, sent to different instances by round robin, reach the
  same backend;
- a backend added to DNS is found by both instances, and `rehome` moves the rooms whose
  home it now is on both (1012, paced over close_spread), so both converge on one
  placement;
- a backend removed from DNS is drained on both instances, paced over close_spread,
  while every other room stays where it is.

The figures (how long a DNS change takes to reach placement on both instances, how the
closes spread) are printed for docs/scaling-out.md.
"""

import asyncio
import json
import os
import shutil
import socket
import tempfile
import time
import unittest

import websockets

from sbtest import (Dnsmasq, Process, PyBackend, Switchboard, admin_get, free_port, run,
                    wait_for)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SRV_NAME = "_ws._tcp.chat.test"
ROOMS = 40  # (3/4)^40: a backend that is no room's home is a 1-in-100,000 run
CLOSE_SPREAD_S = 2.0


class Haproxy:
    """HAProxy in mode tcp, round robin over the instances, with send-proxy-v2."""

    def __init__(self, instance_ports):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sbtest-haproxy-")
        servers = "\n".join(f"    server sb{i} 127.0.0.1:{p} send-proxy-v2"
                            for i, p in enumerate(instance_ports))
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(f"""
global
    maxconn 2000
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fleet
    bind 127.0.0.1:{self.port}
    default_backend instances
backend instances
    balance roundrobin
{servers}
""")
        self.process = Process([HAPROXY, "-db", "-f", path])
        wait_for(self._listening, 10, what="haproxy listening")

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def url(self, room):
        return f"ws://127.0.0.1:{self.port}/play?room={room}"

    def stop(self):
        self.process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def instance_config(dns_port):
    return f"""
[server]
workers = 2
close_spread = "{int(CLOSE_SPREAD_S)}s"
resolvers = ["127.0.0.1:{dns_port}"]

[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
proxy_protocol = true
proxy_protocol_from = ["127.0.0.0/8"]

[pools.chat]
backends = [ {{ srv = "{SRV_NAME}" }} ]
hash_key = "query:room"
rehome = true
resolve_interval = "1s"
"""


def get_json(sb, path):
    return json.loads(admin_get(sb, path))


def placement(sb, rooms):
    """Each room's hash home on instance `sb`: the first backend of its preference order
    that is up (where /route would place it as a new room, whatever room is active)."""
    out = {}
    for room in rooms:
        route = get_json(sb, f"/route?pool=chat&key={room}")
        up = [c["backend"] for c in route["preference"] if c["state"] == "up"]
        out[room] = up[0] if up else None
    return out


def backend_set(sb):
    pools = get_json(sb, "/status")["pools"]
    return sorted(b["address"] for b in pools[0]["backends"])


class Client:
    """One chat client: connects through HAProxy, learns which backend serves it, then
    stays connected and records how (and when) the connection ends."""

    def __init__(self, url):
        self.url = url
        self.backend = None
        self.ws = None
        self.closed_code = None
        self.closed_at = None
        self._watch = None

    async def connect(self):
        self.ws = await websockets.connect(self.url)
        await self.ws.send("who")
        self.backend = (await self.ws.recv()).split(":", 1)[0]
        self._watch = asyncio.ensure_future(self._wait_close())

    async def _wait_close(self):
        try:
            await self.ws.wait_closed()
        finally:
            self.closed_code = self.ws.close_code
            self.closed_at = time.monotonic()

    async def close(self):
        if self.ws is not None:
            await self.ws.close()
        if self._watch is not None:
            await asyncio.wait([self._watch], timeout=5)


class FleetTest(unittest.TestCase):
    def setUp(self):
        self.backends = {f"b{i}": PyBackend(f"b{i}") for i in range(4)}
        # dnsmasq: every backend's name in its hosts file, the SRV record listing some.
        self.dir = tempfile.mkdtemp(prefix="sbtest-fleet-")
        names = [("127.0.0.1", f"{n}.chat.test") for n in self.backends]
        self.dns = Dnsmasq(self.dir, hosts=names, srv=self.srv_records("b0", "b1", "b2"))
        self.instances = [
            Switchboard(instance_config(self.dns.port), listeners=("public", "admin"))
            for _ in range(2)
        ]
        for sb in self.instances:
            wait_for(lambda sb=sb: len(backend_set(sb)) == 3, 10, what="three backends resolved")
        self.haproxy = Haproxy([sb.port() for sb in self.instances])

    def tearDown(self):
        self.haproxy.stop()
        for sb in self.instances:
            sb.stop()
        self.dns.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        for b in self.backends.values():
            b.stop()

    def srv_records(self, *names):
        """The SRV record's targets (dnsmasq changes SRV records with a restart)."""
        return [(SRV_NAME, f"{n}.chat.test", self.backends[n].port, 0, 100) for n in names]

    def address_of(self, name):
        return self.backends[name].address

    def name_of(self, address):
        for name, b in self.backends.items():
            if b.address == address:
                return name
        return address

    def test_two_instances_agree_converge_and_drain_together(self):
        rooms = [f"room{i}" for i in range(ROOMS)]
        a, b = self.instances

        async def go():
            # Two clients per room, connected one after the other: HAProxy's round robin
            # sends them to different instances.
            clients = {room: [Client(self.haproxy.url(room)) for _ in range(2)] for room in rooms}
            for room in rooms:
                for c in clients[room]:
                    await c.connect()
            for room in rooms:
                names = {c.backend for c in clients[room]}
                self.assertEqual(len(names), 1, f"{room} split over {names}")
            self.assertGreater(len({clients[r][0].backend for r in rooms}), 1)
            # Both instances carry half of the clients each, and both saw the clients'
            # own address through the PROXY header.
            # (One HAProxy thread alternates strictly; allow a little slack all the same.)
            actives = []
            for sb in (a, b):
                status = get_json(sb, "/status")
                actives.append(sum(x["active_connections"]
                                   for x in status["pools"][0]["backends"]))
            self.assertEqual(sum(actives), 2 * ROOMS)
            self.assertGreaterEqual(min(actives), ROOMS - 4, actives)
            self.assertEqual(placement(a, rooms), placement(b, rooms))
            before = placement(a, rooms)

            # Add b3 to DNS: both instances find it and move its rooms there.
            t0 = time.monotonic()
            self.dns.restart(srv=self.srv_records("b0", "b1", "b2", "b3"))
            for sb in (a, b):
                wait_for(lambda sb=sb: len(backend_set(sb)) == 4, 10, what="b3 found")
            found = time.monotonic() - t0
            after = placement(a, rooms)
            self.assertEqual(after, placement(b, rooms))
            b3 = self.address_of("b3")
            moved = [r for r in rooms if after[r] == b3]
            self.assertTrue(moved, "no room has b3 as its home")
            # Only rooms whose new home is b3 moved (consistent hashing).
            for r in rooms:
                if r not in moved:
                    self.assertEqual(after[r], before[r])
            # Rehome: the moved rooms' clients get 1012 on both instances.
            deadline = time.monotonic() + CLOSE_SPREAD_S + 10
            moved_clients = [c for r in moved for c in clients[r]]
            while time.monotonic() < deadline and any(c.closed_code is None
                                                      for c in moved_clients):
                await asyncio.sleep(0.05)
            self.assertTrue(all(c.closed_code == 1012 for c in moved_clients),
                            [c.closed_code for c in moved_clients])
            converged = max(c.closed_at for c in moved_clients) - t0
            # The others stay connected.
            for r in rooms:
                if r not in moved:
                    self.assertTrue(all(c.closed_code is None for c in clients[r]), r)
            # Reconnecting clients land on b3 through either instance.
            for r in moved:
                clients[r] = [Client(self.haproxy.url(r)) for _ in range(2)]
                for c in clients[r]:
                    await c.connect()
                self.assertEqual({c.backend for c in clients[r]}, {"b3"}, r)

            # Remove b1 from DNS: its clients get 1012 on both instances, paced.
            b1 = self.address_of("b1")
            on_b1 = [c for r in rooms for c in clients[r] if c.backend == "b1"]
            self.assertTrue(on_b1, "no client on b1")
            t1 = time.monotonic()
            self.dns.restart(srv=self.srv_records("b0", "b2", "b3"))
            deadline = time.monotonic() + CLOSE_SPREAD_S + 15
            while time.monotonic() < deadline and any(c.closed_code is None for c in on_b1):
                await asyncio.sleep(0.05)
            self.assertTrue(all(c.closed_code == 1012 for c in on_b1),
                            [c.closed_code for c in on_b1])
            times = sorted(c.closed_at for c in on_b1)
            spread = times[-1] - times[0]
            for sb in (a, b):
                self.assertNotIn(b1, backend_set(sb))
            others = [c for r in rooms for c in clients[r] if c.backend != "b1"]
            self.assertTrue(all(c.closed_code is None for c in others))
            self.assertEqual(placement(a, rooms), placement(b, rooms))
            print(f"\nfleet: {ROOMS} rooms x 2 clients over 2 instances; "
                  f"b3 added: found by both in {found:.2f}s, {len(moved)} rooms moved, "
                  f"last 1012 at {converged:.2f}s; b1 removed: {len(on_b1)} clients got 1012 "
                  f"between {times[0] - t1:.2f}s and {times[-1] - t1:.2f}s "
                  f"(spread {spread:.2f}s, close_spread {CLOSE_SPREAD_S}s)")
            for room in rooms:
                for c in clients[room]:
                    await c.close()

        run(go(), timeout=120)


if __name__ == "__main__":
    unittest.main()
