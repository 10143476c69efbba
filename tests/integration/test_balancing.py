"""Balancing through the real binary (SPEC §3 Balancing and Health): keys are rooms,
placement is deterministic across processes, a stopped backend moves only its keys,
a backend that returns gets its new rooms back (and, with rehome, its active rooms,
with 1012), and a reload that adds a backend never splits an active room.

Backends are Python websockets servers that answer "name:message", so every reply
tells which backend served it.
"""

import asyncio
import os
import time
import unittest

import websockets

from sbtest import (PyBackend, Switchboard, free_port, gather_limited, run, wait_for, whoami)


def pool_config(backends, pool_extra="", top="", workers=2):
    backend_list = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    return f"""
[server]
workers = {workers}
{top}

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "game"

[pools.game]
backends = [ {backend_list} ]
hash_key = "query:room"
{pool_extra}
"""


def room_url(sb, room):
    return sb.url(f"/play?room={room}")


class KeysAreRoomsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backends = [PyBackend(f"b{i}") for i in range(3)]
        cls.sb = Switchboard(pool_config([b.address for b in cls.backends], workers=4))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        for b in cls.backends:
            b.stop()

    def test_a_room_always_lands_on_the_same_backend(self):
        async def go():
            for room in range(20):
                names = await gather_limited(whoami(room_url(self.sb, room)) for _ in range(8))
                self.assertEqual(len(set(names)), 1, f"room {room} split over {set(names)}")
        run(go())

    def test_rooms_spread_over_the_backends(self):
        async def go():
            return await gather_limited(whoami(room_url(self.sb, f"spread-{r}")) for r in range(60))
        names = run(go())
        self.assertEqual(set(names), {"b0", "b1", "b2"})

    def test_header_and_cookie_keys(self):
        for key_config, kwargs in (
            ('hash_key = "header:X-Match"', lambda v: {"extra_headers": {"X-Match": v}}),
            ('hash_key = "cookie:match"', lambda v: {"extra_headers": {"Cookie": f"a=1; match={v}"}}),
            ('hash_key = "path_segment:2"', None),
        ):
            cfg = pool_config([b.address for b in self.backends]).replace(
                'hash_key = "query:room"', key_config)
            sb = Switchboard(cfg)
            try:
                async def go():
                    for match in range(10):
                        if kwargs is None:
                            urls = [sb.url(f"/m/{match}/ws")] * 5
                            names = await gather_limited(whoami(u) for u in urls)
                        else:
                            names = await gather_limited(
                                whoami(sb.url("/"), **kwargs(str(match))) for _ in range(5))
                        self.assertEqual(len(set(names)), 1, f"{key_config}: match {match} split")
                run(go())
            finally:
                sb.stop()


class KeylessAlgorithmsTest(unittest.TestCase):
    """Regression (issue 13): the room table pinned every connection from one client
    address to one backend under round_robin and least_connections, which give a key no
    home (docs/balancing.md)."""

    def setUp(self):
        self.backends = [PyBackend(f"b{i}") for i in range(2)]

    def tearDown(self):
        for b in self.backends:
            b.stop()

    def held_connections_per_backend(self, algorithm, count=20):
        cfg = pool_config([b.address for b in self.backends],
                          pool_extra=f'algorithm = "{algorithm}"').replace(
            'hash_key = "query:room"', 'hash_key = "client_ip"')
        sb = Switchboard(cfg)
        try:
            async def go():
                sockets, names = [], []
                try:
                    # One at a time and all held open: each is placed while the others
                    # are live, as a room's further connections would be.
                    for _ in range(count):
                        ws = await websockets.connect(sb.url("/play"))
                        sockets.append(ws)
                        await ws.send("who")
                        names.append((await ws.recv()).split(":", 1)[0])
                finally:
                    for ws in sockets:
                        await ws.close()
                return names
            names = run(go())
        finally:
            sb.stop()
        return {name: names.count(name) for name in set(names)}

    def test_round_robin_spreads_one_client_address_evenly(self):
        self.assertEqual(self.held_connections_per_backend("round_robin"), {"b0": 10, "b1": 10})

    def test_least_connections_spreads_one_client_address_evenly(self):
        self.assertEqual(self.held_connections_per_backend("least_connections"),
                         {"b0": 10, "b1": 10})


class DeterminismTest(unittest.TestCase):
    def test_two_processes_with_one_config_agree_on_1000_keys(self):
        backends = [PyBackend(f"b{i}") for i in range(4)]
        cfg = pool_config([b.address for b in backends], pool_extra='algorithm = "maglev"')
        first, second = Switchboard(cfg), Switchboard(cfg)
        try:
            async def placements(sb):
                return await gather_limited(
                    (whoami(room_url(sb, f"k{k}")) for k in range(1000)), limit=64)
            a = run(placements(first), timeout=120)
            b = run(placements(second), timeout=120)
            self.assertEqual(a, b)
            self.assertEqual(len(set(a)), 4)
        finally:
            first.stop()
            second.stop()
            for b in backends:
                b.stop()


class BackendChangesTest(unittest.TestCase):
    def setUp(self):
        self.ports = [free_port() for _ in range(3)]
        self.backends = [PyBackend(f"b{i}", port=p) for i, p in enumerate(self.ports)]
        self.extra = []

    def tearDown(self):
        for b in self.backends + self.extra:
            b.stop()

    def placements(self, sb, rooms):
        async def go():
            return await gather_limited(whoami(room_url(sb, r)) for r in rooms)
        return dict(zip(rooms, run(go())))

    def test_stopping_a_backend_moves_only_its_keys_and_new_rooms_return(self):
        sb = Switchboard(pool_config([f"127.0.0.1:{p}" for p in self.ports],
                                     pool_extra="retries = 2"))
        try:
            rooms = [f"r{i}" for i in range(60)]
            before = self.placements(sb, rooms)
            self.backends[1].stop()
            after = self.placements(sb, rooms)
            for room in rooms:
                if before[room] != "b1":
                    self.assertEqual(after[room], before[room], f"{room} moved needlessly")
                else:
                    self.assertNotEqual(after[room], "b1")
            # Back on the same address: once its retry interval (5 s) has passed it is
            # tried again, and the rooms whose home it is come back to it.
            self.backends[1] = PyBackend("b1", port=self.ports[1])
            wait_for(lambda: self.placements(sb, rooms) == before, timeout=20, interval=0.5,
                     what="keys to return to the restarted backend")
        finally:
            sb.stop()

    def test_rehome_moves_active_rooms_back_whole_with_1012(self):
        sb = Switchboard(pool_config([f"127.0.0.1:{p}" for p in self.ports],
                                     pool_extra="rehome = true",
                                     top='close_spread = "1s"'))
        try:
            rooms = [f"r{i}" for i in range(30)]
            home = self.placements(sb, rooms)
            b1_rooms = [r for r in rooms if home[r] == "b1"]
            self.assertTrue(b1_rooms)
            self.backends[1].stop()

            async def hold_and_watch():
                # Two members per room that lived on b1, now placed elsewhere.
                conns = []
                for room in b1_rooms:
                    for _ in range(2):
                        ws = await websockets.connect(room_url(sb, room))
                        await ws.send("hello")
                        name = (await ws.recv()).split(":")[0]
                        self.assertNotEqual(name, "b1")
                        conns.append((room, name, ws))
                # Members of one room agree on their temporary backend.
                for room in b1_rooms:
                    self.assertEqual(len({n for r, n, _ in conns if r == room}), 1)
                # b1 comes back; a first connection to it marks it up again and the
                # active rooms that belong to it are moved back, with 1012.
                self.backends[1] = PyBackend("b1", port=self.ports[1])
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    fresh = [f"probe{i}" for i in range(20)]
                    names = await gather_limited(whoami(room_url(sb, r)) for r in fresh)
                    if "b1" in names:
                        break
                    await asyncio.sleep(0.5)
                codes = []
                for room, name, ws in conns:
                    try:
                        await asyncio.wait_for(ws.recv(), 10)
                    except websockets.ConnectionClosed:
                        pass
                    codes.append(ws.close_code)
                self.assertEqual(set(codes), {1012})
                # Reconnecting, every room is whole on b1 again.
                for room in b1_rooms:
                    names = await gather_limited(whoami(room_url(sb, room)) for _ in range(3))
                    self.assertEqual(set(names), {"b1"})
            run(hold_and_watch(), timeout=90)
            reasons = [r["reason"] for r in sb.access_log() if r["close_code"] == 1012]
            self.assertIn("rehome", reasons)
        finally:
            sb.stop()

    def test_adding_a_backend_by_reload_never_splits_an_active_room(self):
        sb = Switchboard(pool_config([f"127.0.0.1:{p}" for p in self.ports]))
        try:
            async def go():
                rooms = [f"r{i}" for i in range(40)]
                held = {}
                for room in rooms:
                    ws = await websockets.connect(room_url(sb, room))
                    await ws.send("x")
                    held[room] = ((await ws.recv()).split(":")[0], ws)
                new = PyBackend("b3")
                self.extra.append(new)
                sb.write_config(pool_config([f"127.0.0.1:{p}" for p in self.ports] + [new.address]))
                sb.signal(__import__("signal").SIGHUP)
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: sb.wait_line(r"configuration reloaded generation=2"))
                for room in rooms:
                    self.assertEqual(await whoami(room_url(sb, room)), held[room][0],
                                     f"active room {room} was split")
                for _, ws in held.values():
                    await ws.close()
                # With the rooms gone, the new backend gets its share of new rooms.
                names = await gather_limited(whoami(room_url(sb, f"new{i}")) for i in range(80))
                self.assertIn("b3", names)
            run(go(), timeout=60)
        finally:
            sb.stop()


if __name__ == "__main__":
    unittest.main()
