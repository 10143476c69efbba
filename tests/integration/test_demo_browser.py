"""The demo as a person would try it (issue 14, item 6): two tools/chat-backend servers
behind switchboard on conf/demo.toml (its listen and backend addresses replaced by free
ones), and headless Chromium driven over the DevTools protocol with python3-websockets.

Two tabs in one room talk to each other through switchboard (the page and its WebSocket
both cross the proxy: SPEC §3 "HTTP requests" and "Keys are rooms"); a room's page names
the backend that admin /route names for its key; the admin status page lists the rooms and
where they live. The chat screenshot is written to SB_ARTIFACT_DIR (default: the temporary
directory) as demo-chat.png; docs/demo-chat.png is that file.

Every wait is bounded; Chromium, switchboard and the backends are stopped by their PIDs."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import websockets

from sbtest import SOURCE_DIR, Process, Switchboard, admin_get, free_port, run, split_address, wait_for

CHAT_BACKEND = os.path.join(SOURCE_DIR, "tools", "chat-backend")
DEMO_CONFIG = os.path.join(SOURCE_DIR, "conf", "demo.toml")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class ChatBackend(Process):
    """tools/chat-backend on a port of its own choosing."""

    def __init__(self, name):
        super().__init__([CHAT_BACKEND, "--listen", "127.0.0.1:0", "--name", name])
        self.name = name
        host, port = split_address(self.wait_line(r"^listening (\S+)$", stream="out").group(1))
        self.address = f"{host}:{port}"


def demo_config(backend_addresses):
    """conf/demo.toml with its listeners on free ports and the given backends."""
    with open(DEMO_CONFIG) as f:
        text = f.read()
    replacements = [("127.0.0.1:8080", "127.0.0.1:0"), ("127.0.0.1:9901", "127.0.0.1:0"),
                    ("127.0.0.1:9001", backend_addresses[0]), ("127.0.0.1:9002", backend_addresses[1])]
    for old, new in replacements:
        quoted = f'"{old}"'
        assert quoted in text, f"{DEMO_CONFIG} no longer has {quoted}"
        text = text.replace(quoted, f'"{new}"')
    return text + '\n[server]\nworkers = 2\n'


class Page:
    """One browser tab, over its own DevTools WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self._id = 0

    async def call(self, method, **params):
        self._id += 1
        await self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # no domain is enabled, so only answers arrive; skip any event anyway
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, expression):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression, timeout=10.0, what=None):
        """Polls a JS expression until it is truthy; returns its value or fails after
        `timeout` seconds. An exception (the document being replaced) counts as falsy."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                last = await self.evaluate(expression)
            except AssertionError as e:
                last = e
            if last and not isinstance(last, AssertionError):
                return last
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for "
                                     f"{what or expression}; last: {last!r}")
            await asyncio.sleep(0.05)

    async def has_message(self, text, what):
        """Waits until a line of the message list reads `text` (sender name and message)."""
        await self.until("[...document.querySelectorAll('#messages li')]"
                         f".some((li) => li.textContent === {json.dumps(text)})", what=what)

    async def open(self, url, ready="true"):
        """Navigates to `url` and waits until it has loaded and the JS expression `ready`
        holds; fails with what the page shows instead (an error answer, say)."""
        await self.call("Page.navigate", url=url)
        await self.until(f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
                         timeout=15, what=f"{url} to load")
        try:
            await self.until(ready, timeout=5, what=ready)
        except AssertionError as e:
            shows = await self.evaluate("document.body ? document.body.innerText.slice(0, 300) : ''")
            raise AssertionError(f"{url} is not the expected page ({e}); it shows: {shows!r}")

    async def text(self, element_id):
        return await self.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent")

    async def type_and_send(self, text):
        """Types into the text box and presses Enter, as a person would."""
        await self.evaluate("document.getElementById('text').focus()")
        await self.call("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                            windowsVirtualKeyCode=13, text="\r" if kind == "keyDown" else "")

    async def screenshot(self, path, whole_page=False):
        shot = await self.call("Page.captureScreenshot", format="png",
                               captureBeyondViewport=whole_page)
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))


class Browser:
    """Headless Chromium with its DevTools endpoint on a loopback port; `extra_args` go
    on its command line (a certificate to trust, say)."""

    def __init__(self, extra_args=()):
        self.profile = tempfile.mkdtemp(prefix="sbdemo-chromium-")
        self.port = free_port()
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-background-timer-throttling",
             "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
             "--window-size=900,560", "--remote-debugging-address=127.0.0.1",
             f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             *extra_args, "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._endpoint, timeout=30, interval=0.1, what="chromium's DevTools endpoint")

    def _endpoint(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"chromium exited with {self.proc.returncode}; see "
                                 f"{self.profile}/chromium.log")
        try:
            return self._json("/json/version")
        except OSError:
            return None

    def _json(self, path, method="GET"):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    async def new_page(self):
        """A new tab on about:blank, connected."""
        target = self._json("/json/new?about:blank", method="PUT")
        ws = await websockets.connect(target["webSocketDebuggerUrl"], max_size=None)
        return Page(ws)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def artifact(name):
    directory = os.environ.get("SB_ARTIFACT_DIR", tempfile.gettempdir())
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, name)


class ChatBackendTest(unittest.TestCase):
    """tools/chat-backend's plain HTTP answers, without a proxy or a browser."""

    def test_page_redirect_health_and_not_found(self):
        backend = ChatBackend("solo")
        self.addCleanup(backend.stop)

        def get(path):
            try:
                with urllib.request.urlopen(f"http://{backend.address}{path}", timeout=10) as r:
                    return r.status, r.geturl(), r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, path, e.read().decode()

        self.assertEqual(get("/healthz")[0], 200)
        status, url, body = get("/")  # to ?room=lobby
        self.assertEqual((status, url), (200, f"http://{backend.address}/?room=lobby"))
        self.assertIn('<span id="room">lobby</span>', body)
        status, _, body = get("/?room=%3Cb%3E")
        self.assertIn('<span id="room">&lt;b&gt;</span>', body)
        self.assertIn('<span class="tag" id="page-backend">solo</span>', body)
        self.assertNotIn("<b>", body)
        self.assertEqual(get("/nothing")[0], 404)


@unittest.skipUnless(CHROMIUM, "chromium is not installed (tools/setup installs it)")
class DemoInBrowserTest(unittest.TestCase):
    def setUp(self):
        self.backends = [ChatBackend("demo-1"), ChatBackend("demo-2")]
        for b in self.backends:
            self.addCleanup(b.stop)
        self.names = {b.address: b.name for b in self.backends}
        self.sb = Switchboard(demo_config([b.address for b in self.backends]),
                              listeners=("admin", "public"))
        self.addCleanup(self.sb.stop)
        self.public = "http://127.0.0.1:%d" % self.sb.port("public")
        self.admin = "http://127.0.0.1:%d" % self.sb.port("admin")
        wait_for(self.both_backends_checked, timeout=15, interval=0.1,
                 what="both chat backends up by health check")
        self.browser = Browser()
        self.addCleanup(self.browser.close)

    def both_backends_checked(self):
        pool = json.loads(admin_get(self.sb, "/status"))["pools"][0]
        return all(b["state"] == "up" and b["health"]["last_result"] == "ok"
                   for b in pool["backends"])

    async def open_room(self, room):
        """A new tab on the room's page through switchboard, its socket connected."""
        page = await self.browser.new_page()
        await page.open(f"{self.public}/?room={room}", ready="!!document.getElementById('state')")
        await page.until("document.getElementById('state').className === 'up' && "
                          "document.getElementById('me').textContent",
                          what=f"the chat socket of room {room} to connect")
        return page

    def route(self, key):
        return json.loads(admin_get(self.sb, f"/route?pool=chat&key={key}"))

    def test_two_tabs_in_one_room_see_each_other(self):
        async def go():
            first, second = await self.open_room("alpha"), await self.open_room("alpha")
            one, two = await first.text("me"), await second.text("me")
            self.assertNotEqual(one, two)
            # Both tabs, page and socket, are on the backend that holds the room.
            home = self.names[self.route("alpha")["room"]["backend"]]
            for page in (first, second):
                self.assertEqual(await page.text("page-backend"), home)
                self.assertEqual(await page.text("socket-backend"), home)
            await first.until("document.getElementById('messages').innerText.includes("
                              f"{json.dumps(two + ' joined')})", what="the second tab's arrival")

            await first.type_and_send("Hello from the first tab!")
            for page in (second, first):  # every member, the sender included
                await page.has_message(f"{one}Hello from the first tab!",
                                       what="the first tab's message in both tabs")
            self.assertEqual(await first.evaluate("document.getElementById('text').value"), "")

            self.assertTrue(await second.evaluate("sendMessage('Hi! Same room, same backend.')"))
            await first.has_message(f"{two}Hi! Same room, same backend.",
                                    what="the reply in the first tab")
            await first.type_and_send(f"Both of us are on {home}.")
            await second.has_message(f"{one}Both of us are on {home}.",
                                     what="the last message in the second tab")
            messages = await second.evaluate(
                "[...document.querySelectorAll('#messages li')].map((li) => li.textContent)")
            self.assertEqual([m for m in messages if m.startswith(one) or m.startswith(two)][-3:],
                             [f"{one}Hello from the first tab!", f"{two}Hi! Same room, same backend.",
                              f"{one}Both of us are on {home}."])
            await first.screenshot(artifact("demo-chat.png"))
            for page in (first, second):
                await page.ws.close()
        run(go(), timeout=120)

    def test_rooms_live_where_route_says_and_the_status_page_shows_them(self):
        async def go():
            gamma = await self.open_room("gamma")
            alphas = [await self.open_room("alpha") for _ in range(2)]
            route = self.route("gamma")
            self.assertTrue(route["room"]["active"])
            self.assertEqual(route["room"]["connections"], 1)
            self.assertEqual(route["room"]["backend"], route["backend"])
            self.assertEqual(await gamma.text("page-backend"), self.names[route["backend"]])
            self.assertEqual(await gamma.text("socket-backend"), self.names[route["backend"]])
            alpha_home = self.route("alpha")["room"]["backend"]

            status = await self.browser.new_page()
            await status.open(self.admin + "/")
            rows = await status.until(
                "(() => { const rows = [...document.querySelectorAll('.room-list tr[data-room]')]"
                ".map((tr) => [...tr.cells].map((td) => td.textContent));"
                " return rows.length === 2 && rows; })()",
                what="the status page's rooms table to show both rooms")
            self.assertCountEqual(rows, [["alpha", alpha_home, "2"],
                                         ["gamma", route["backend"], "1"]])
            text = await status.evaluate("document.body.innerText")
            self.assertRegex(text, r"2\s+rooms")
            for address in self.names:
                self.assertIn(address, text)
            await status.screenshot(artifact("demo-status.png"), whole_page=True)

            # A room that empties leaves the page (within a second or two of /events).
            await gamma.call("Page.navigate", url="about:blank")
            await status.until("document.querySelectorAll('.room-list tr[data-room]').length === 1 && "
                               "!document.querySelector('.room-list tr[data-room=\"gamma\"]')",
                               what="room gamma to leave the status page")
            for page in (gamma, status, *alphas):
                await page.ws.close()
        run(go(), timeout=120)


if __name__ == "__main__":
    unittest.main()
