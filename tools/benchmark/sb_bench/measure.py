"""The scenarios, and one measurement: one scenario against one target.

A measurement starts a fresh sb-echo-backend (on the load CPU), a fresh target (on
the proxy CPU) and sb-load (on the load CPU), reads /proc while sb-load runs, takes
sb-load's JSON report and stops everything it started. Fresh processes every time,
so that no scenario inherits another's connections, buffers or heap.

The wss scenarios (small-wss, large-wss, idle-wss, churn-wss) are small, large, idle
and churn with the client side over TLS 1.3: each measurement makes a fresh ECDSA
P-256 certificate, the target terminates TLS with it, and sb-load --tls verifies
it (the backend side stays plain ws). Only the proxies have TLS (TLS_TARGETS)."""

import json
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import http
from .processes import BenchError, log, sleep_until, tail, wait_for_line
from .procfs import core_seconds, cpu_seconds, cpus_allowed, rss_bytes, socket_count
from .storm import storm_size
from .targets import start_target
from .tls import make_certificate

# Seconds cut from each end of the measured window before CPU time is read, so that
# both samples fall inside sb-load's window (see Measurement.cpu_window).
CPU_MARGIN = 0.25
# Pause after sb-load says its idle connections are open, before RSS is read.
IDLE_SETTLE = 0.5
# Connections opened and closed before an idle measurement's baseline is read: more
# than the 64 handshakes after which switchboard trims its heap at the burst's end
# (Session::kTrimAfterHandshakes), so that the baseline is read after a trim, as the
# figure after the measured burst is, and the warm-up's freed heap counts on neither.
IDLE_WARMUP = 100
# Seconds sb-load may take beyond its warm-up and duration (connecting, closing).
LOAD_SLACK = 60


@dataclass
class Scenario:
    name: str
    title: str
    mode: str  # sb-load --mode; "http" for the HTTP scenarios, which wrk drives
    connections: int
    size: int = 64
    rate: float = 0.0
    warmup: float = 0.0
    duration: float = 5.0  # idle: how long the connections are held
    tls: bool = False  # the wss scenarios: TLS between sb-load and the proxy

    @property
    def kind(self):
        """The plain scenario this one has the shape of (small-wss: small)."""
        return self.name.removesuffix("-wss")

    def load_args(self):
        args = ["--mode", self.mode, "--connections", str(self.connections),
                "--size", str(self.size), "--duration", f"{self.duration:g}"]
        if self.warmup > 0:
            args += ["--warmup", f"{self.warmup:g}"]
        if self.rate > 0:
            args += ["--rate", f"{self.rate:g}"]
        return args

    def describe(self):
        size = human_bytes(self.size)
        what = {
            "small": f"{self.connections} connections, {size} messages, closed loop",
            "rate": f"{self.connections:,} connections, {self.rate:,.0f} messages/s in total, "
                    f"{size} messages",
            "large": f"{self.connections} connections, {size} messages, closed loop",
            "idle": f"{self.connections:,} idle WebSocket connections",
            "churn": f"{self.connections} parallel loops of connect, handshake, one {size} "
                     "echo, close",
            "http-small": f"wrk, {self.connections} keep-alive connections, GET of a {size} "
                          "static file",
            "http-large": f"wrk, {self.connections} keep-alive connections, GET of a {size} "
                          "static file",
            "storm": f"{self.connections:,} clients, a room each, over 4 backends; one "
                     "backend is killed and its clients reconnect",
        }[self.kind]
        if self.tls:
            what = what.replace("WebSocket", "wss") + ", over TLS 1.3 (ECDSA P-256)"
            if self.kind == "churn":
                what += ", resuming the lane's last session"
        if self.name == "storm":
            return what
        if self.kind == "idle":
            return f"{what}; held {self.duration:g} s"
        return f"{what}; {self.warmup:g} s warm-up, {self.duration:g} s measured"


def scenarios(quick):
    """The default run's scenarios, or the small-scale ones of --quick."""
    if quick:
        return [
            Scenario("small", "small messages", "closed", 20, 64, warmup=0.3, duration=1),
            Scenario("rate", "fixed rate", "rate", 100, 64, rate=1000, warmup=0.3, duration=1),
            Scenario("large", "large messages", "large", 2, 64 << 10, warmup=0.3, duration=1),
            Scenario("idle", "idle connections", "idle", 200, duration=1),
            Scenario("churn", "connection churn", "churn", 8, 64, warmup=0.3, duration=1),
            Scenario("small-wss", "small messages over TLS", "closed", 20, 64, warmup=0.3,
                     duration=1, tls=True),
            Scenario("large-wss", "large messages over TLS", "large", 2, 64 << 10, warmup=0.3,
                     duration=1, tls=True),
            Scenario("idle-wss", "idle TLS connections", "idle", 200, duration=1, tls=True),
            Scenario("churn-wss", "TLS connection churn", "churn", 8, 64, warmup=0.3,
                     duration=1, tls=True),
            Scenario("http-small", "HTTP, 1 KiB responses", "http", 50, 1 << 10, warmup=1,
                     duration=2),
            Scenario("http-large", "HTTP, 1 MiB responses", "http", 10, 1 << 20, warmup=1,
                     duration=2),
            # The duration is only the run's estimate: the storm ends when its clients
            # are back (storm.py has its sizes and deadlines).
            Scenario("storm", "reconnect storm", "storm", storm_size(True).clients, duration=8),
        ]
    return [
        Scenario("small", "small messages", "closed", 100, 64, warmup=2, duration=10),
        Scenario("rate", "fixed rate", "rate", 1000, 64, rate=5000, warmup=2, duration=10),
        Scenario("large", "large messages", "large", 4, 1 << 20, warmup=2, duration=10),
        Scenario("idle", "idle connections", "idle", 5000, duration=3),
        Scenario("churn", "connection churn", "churn", 32, 64, warmup=1, duration=8),
        Scenario("small-wss", "small messages over TLS", "closed", 100, 64, warmup=2,
                 duration=10, tls=True),
        Scenario("large-wss", "large messages over TLS", "large", 4, 1 << 20, warmup=2,
                 duration=10, tls=True),
        Scenario("idle-wss", "idle TLS connections", "idle", 5000, duration=3, tls=True),
        Scenario("churn-wss", "TLS connection churn", "churn", 32, 64, warmup=1, duration=8,
                 tls=True),
        Scenario("http-small", "HTTP, 1 KiB responses", "http", 50, 1 << 10, warmup=2,
                 duration=10),
        Scenario("http-large", "HTTP, 1 MiB responses", "http", 10, 1 << 20, warmup=2,
                 duration=10),
        Scenario("storm", "reconnect storm", "storm", storm_size(False).clients, duration=30),
    ]


def human_bytes(n):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n}-byte"


@dataclass
class Measurement:
    scenario: Scenario
    target: str
    tools: object   # targets.Tools
    procs: object   # processes.Processes
    limits: object  # targets.Limits
    proxy_cpu: int
    load_cpu: int

    def run(self):
        """Returns the result (a dict for bench.json); raises BenchError when the
        measurement could not be made."""
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"sb-bench-{self.target}-") as tmp:
            try:
                result = self._run(Path(tmp))
            finally:
                for proc in reversed(list(self.procs.live)):
                    self.procs.stop(proc)
        result["wall_s"] = round(time.monotonic() - started, 2)
        return result

    def _run(self, work):
        s = self.scenario
        if s.mode == "http":
            return self._run_http(work)
        echo = self.procs.spawn([str(self.tools.echo), "--listen", "127.0.0.1:0"],
                                self.load_cpu, work / "echo.log")
        backend = wait_for_line(echo, "listening ", 10).split()[1]
        cert = make_certificate(work, "ec") if s.tls else None
        proxy = start_target(self.target, self.tools, self.procs, self.proxy_cpu, work, backend,
                             self.limits, tls=cert)
        result = {"address": proxy.address}
        if proxy.proc is not None:
            result["proxy_pids"] = proxy.pids
            result["proxy_cpus"] = cpus_allowed(proxy.proc.pid)
        tls_args = ["--tls", "--tls-ca", cert[0]] if s.tls else []
        if s.kind == "idle":
            # What a proxy allocates once, not per connection (TLS libraries' lazy
            # state, caches of cipher contexts, spare read buffers, first pages of its
            # pools), is in the baseline: IDLE_WARMUP connections opened and closed
            # first, as tools/ops-bench does.
            warm = self.procs.spawn([str(self.tools.load), "--url", f"ws://{proxy.address}/",
                                     "--mode", "idle", "--connections", str(IDLE_WARMUP),
                                     "--duration", "0.3"] + tls_args,
                                    self.load_cpu, work / "warmup.log")
            try:
                warm.wait(timeout=LOAD_SLACK)
            except subprocess.TimeoutExpired:
                raise BenchError(f"the idle warm-up did not end: {tail(warm.log_path)}")
            finally:
                self.procs.stop(warm)
            if warm.returncode != 0:
                raise BenchError(f"the idle warm-up failed: {tail(warm.log_path)}")
            time.sleep(IDLE_SETTLE)
        rss_before = rss_bytes(proxy.pids)

        load = self.procs.spawn([str(self.tools.load), "--url", f"ws://{proxy.address}/"]
                                + tls_args + s.load_args(), self.load_cpu, work / "load.log")
        started = time.monotonic()
        deadline = started + s.warmup + s.duration + LOAD_SLACK
        if s.kind == "idle":
            line = wait_for_line(load, "idle ", deadline - started)
            time.sleep(IDLE_SETTLE)
            idle = int(line.split()[1])
            rss_after = rss_bytes(proxy.pids)
            result.update(idle_connections=idle, rss_before=rss_before, rss_after=rss_after)
            if proxy.proc is not None and idle > 0:
                result["rss_bytes_per_connection"] = (rss_after - rss_before) / idle
        else:
            result.update(self.cpu_window(load, [echo.pid, load.pid], proxy, started))

        report = self.wait_for_report(load, deadline)
        result["load"] = report
        if proxy.proc is not None and proxy.proc.poll() is not None:
            raise BenchError(f"{self.target} exited with {proxy.proc.returncode} during the "
                             f"run: {tail(proxy.proc.log_path)}")
        derive(s, result, report)
        return result

    def _run_http(self, work):
        """An HTTP scenario: the origin nginx and wrk on the load CPU, the target in
        front of the origin on the proxy CPU. A first wrk run of `warmup` seconds
        (its connections, the proxy's pool of origin connections, caches), then the
        measured one of `duration` seconds, with the proxy's CPU time read inside
        its window as for the other scenarios."""
        s = self.scenario
        why = http.missing()
        if why:
            raise BenchError(why)
        origin = http.Origin(self.procs, self.load_cpu, work, self.limits.fd_limit)
        proxy = start_target(self.target, self.tools, self.procs, self.proxy_cpu, work,
                             origin.address, self.limits, http=True)
        result = {"address": proxy.address, "origin": origin.address,
                  "configs": {p.name: p.read_text() for p in proxy.configs}}
        if proxy.proc is not None:
            result["proxy_pids"] = proxy.pids
            result["proxy_cpus"] = cpus_allowed(proxy.proc.pid)
        script = work / "report.lua"
        script.write_text(http.REPORT_LUA)
        url = f"http://{proxy.address}/{http.FILES[s.size]}"

        if s.warmup > 0:
            warm = self.procs.spawn(http.wrk_argv(url, s.connections, s.warmup, script),
                                    self.load_cpu, work / "wrk-warmup.log")
            summary = http.wait_for_wrk(self.procs, warm,
                                        time.monotonic() + s.warmup + http.WRK_SLACK)
            http.check(summary, s.size, "warm-up")
            result["warmup"] = summary

        accepts0 = origin.accepts()
        load = self.procs.spawn(http.wrk_argv(url, s.connections, s.duration, script),
                                self.load_cpu, work / "wrk.log")
        started = time.monotonic()
        result.update(self.cpu_window(load, [load.pid] + origin.pids, proxy, started,
                                      warmup=0))
        summary = http.wait_for_wrk(self.procs, load, started + s.duration + http.WRK_SLACK)
        # Less the connection of the second stub_status request (the first one's
        # is in accepts0).
        result["origin_connections"] = origin.accepts() - accepts0 - 1
        result["load"] = summary
        if proxy.proc is not None and proxy.proc.poll() is not None:
            raise BenchError(f"{self.target} exited with {proxy.proc.returncode} during the "
                             f"run: {tail(proxy.proc.log_path)}")
        http.check(summary, s.size, "measured run")
        if self.target == "nginx":
            # proxy_buffering (on): responses nginx spilled to a temp file because the
            # client read slower than the origin sent (one warning each).
            errlog = work / "nginx-error.log"
            text = errlog.read_text(errors="replace") if errlog.exists() else ""
            result["nginx_temp_file_responses"] = text.count("buffered to a temporary file")
        derive_http(result, summary)
        if self.target == "direct":
            # wrk's own connections, not a proxy's pool.
            result["figures"]["origin_conns_per_1k"] = None
        return result

    def cpu_window(self, load, load_pids, proxy, started, warmup=None):
        """Reads the proxy's CPU time at two moments inside sb-load's measured window.

        sb-load opens all its connections, warms up, then measures for `duration`.
        The moment its sockets are all there (churn, which does not wait: its first
        socket) stands for the start of the warm-up; both samples are taken
        CPU_MARGIN inside the window that follows, which covers the few
        milliseconds the last handshakes take. The proxy's CPU time between the
        samples is then divided by the messages carried meanwhile: sb-load's
        steady rate over its window times the time between the samples."""
        s = self.scenario
        warmup = s.warmup if warmup is None else warmup
        want = 1 if s.mode == "churn" else s.connections
        while socket_count(load.pid) < want:
            if load.poll() is not None or time.monotonic() > started + LOAD_SLACK:
                return {"cpu_note": f"{Path(load.args[0]).name} never had all its connections; "
                                    "no CPU figure"}
            time.sleep(0.005)
        opened = time.monotonic()
        margin = min(CPU_MARGIN, s.duration / 5)

        def sample():
            return (time.monotonic(), cpu_seconds(proxy.pids), cpu_seconds(load_pids),
                    core_seconds(self.proxy_cpu), core_seconds(self.load_cpu))

        sleep_until(opened + warmup + margin)
        t0, proxy0, load0, proxy_core0, load_core0 = sample()
        sleep_until(opened + warmup + s.duration - margin)
        t1, proxy1, load1, proxy_core1, load_core1 = sample()
        interval = t1 - t0
        # Shares of one core over the window. The load core's "others" include this
        # script, which sleeps between its two samples.
        cores = {
            "proxy_core_busy": (proxy_core1[0] - proxy_core0[0]) / interval,
            "proxy_core_others": (proxy_core1[0] - proxy_core0[0] - (proxy1 - proxy0)) / interval,
            "proxy_core_steal": (proxy_core1[1] - proxy_core0[1]) / interval,
            "load_core_busy": (load_core1[0] - load_core0[0]) / interval,
            "load_core_others": (load_core1[0] - load_core0[0] - (load1 - load0)) / interval,
            "load_core_steal": (load_core1[1] - load_core0[1]) / interval,
        }
        window = {"cpu_interval_s": round(interval, 3),
                  "cores": {k: round(max(v, 0.0), 3) for k, v in cores.items()}}
        if proxy.proc is not None:
            window["cpu_seconds"] = round(proxy1 - proxy0, 3)
        return window

    def wait_for_report(self, load, deadline):
        try:
            load.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # SIGINT makes sb-load close its connections and report what it has.
            log(f"sb-load (pid {load.pid}) ran past its deadline; interrupting it")
            self.procs.stop(load, sig=signal.SIGINT, grace=10)
        if load.returncode != 0:
            raise BenchError(f"sb-load exited with {load.returncode}: {tail(load.log_path)}")
        for line in Path(load.log_path).read_text(errors="replace").splitlines():
            if line.startswith("{"):
                return json.loads(line)
        raise BenchError(f"sb-load printed no report: {tail(load.log_path)}")


def derive(s, result, report):
    """Adds the table's figures (result["figures"]) and anything worth a note."""
    rtt = report["rtt_us"]
    if report.get("errors"):
        result["errors"] = report["errors"]
        result["error_kinds"] = {k: v for k, v in report["error_kinds"].items() if v}
    if s.kind != "idle" and report["messages"] == 0:
        kinds = {k: v for k, v in report["error_kinds"].items() if v}
        raise BenchError(f"no message was echoed (sb-load errors: {kinds})")
    if "cpu_seconds" in result:
        interval = result["cpu_interval_s"]
        per_sec = report["handshakes_per_sec"] if s.kind == "churn" else report["messages_per_sec"]
        if per_sec * interval > 0:
            cpu = result["cpu_seconds"]
            result["cpu_share"] = round(cpu / interval, 3)  # of one core
            result["cpu_us_per_message"] = cpu * 1e6 / (per_sec * interval)
            result["cpu_ms_per_gb"] = cpu * 1e3 / (report["bytes_per_sec"] * interval / 1e9)
    cpu_per_message = result.get("cpu_us_per_message")
    if s.tls:
        result["tls"] = report.get("tls")
        if not report.get("tls", {}).get("version"):
            raise BenchError("sb-load reported no TLS connection")
    if s.kind == "small":
        result["figures"] = {"msgs_per_sec": report["messages_per_sec"], "rtt_p50_us": rtt["p50"],
                             "rtt_p99_us": rtt["p99"], "cpu_us_per_msg": cpu_per_message}
    elif s.kind == "rate":
        result["figures"] = {"rtt_p50_us": rtt["p50"], "rtt_p99_us": rtt["p99"],
                             "rtt_p999_us": rtt["p999"], "cpu_us_per_msg": cpu_per_message}
        if report["received"] < 0.99 * report["sent"] or report["dropped"]:
            result["rate_note"] = (f"sent {report['sent']}, received {report['received']}, "
                                   f"dropped {report['dropped']}")
    elif s.kind == "large":
        result["figures"] = {"mb_per_sec": report["bytes_per_sec"] / 1e6,
                             "cpu_ms_per_gb": result.get("cpu_ms_per_gb")}
    elif s.kind == "idle":
        result["figures"] = {"bytes_per_conn": result.get("rss_bytes_per_connection")}
        if result["idle_connections"] < s.connections:
            result["idle_note"] = (f"only {result['idle_connections']} of {s.connections} "
                                   "connections opened")
    elif s.kind == "churn":
        result["figures"] = {"handshakes_per_sec": report["handshakes_per_sec"],
                             "cpu_us_per_handshake": cpu_per_message}
        if s.tls:
            # Of the TLS handshakes in sb-load's window, the share that resumed the
            # lane's previous session (its first, full handshake is in the warm-up).
            tls = report["tls"]
            result["figures"]["resumed_share"] = (tls["resumed"] / tls["handshakes"]
                                                  if tls["handshakes"] else None)
            if tls["handshakes"] and not tls["resumed"]:
                result["tls_note"] = (f"none of {tls['handshakes']} TLS handshakes resumed a "
                                      "session")


def derive_http(result, summary):
    """The HTTP scenarios' figures: requests/s, latency, MB/s (response bytes as wrk
    read them, heads included: each crosses the proxy once) and the proxy's CPU per
    request and per GB over the CPU window, at wrk's mean rate."""
    seconds = summary["duration_us"] / 1e6
    per_sec = summary["requests"] / seconds
    bytes_per_sec = summary["bytes"] / seconds
    lat = summary["latency_us"]
    figures = {"req_per_sec": per_sec, "latency_p50_us": lat["p50"],
               "latency_p99_us": lat["p99"], "mb_per_sec": bytes_per_sec / 1e6,
               "cpu_us_per_req": None, "cpu_ms_per_gb": None}
    if "cpu_seconds" in result:
        interval = result["cpu_interval_s"]
        cpu = result["cpu_seconds"]
        result["cpu_share"] = round(cpu / interval, 3)
        figures["cpu_us_per_req"] = cpu * 1e6 / (per_sec * interval)
        figures["cpu_ms_per_gb"] = cpu * 1e3 / (bytes_per_sec * interval / 1e9)
    # Backend connections the proxy opened per 1,000 requests in the measured run
    # (its pool's churn; direct: wrk's own connections).
    figures["origin_conns_per_1k"] = result["origin_connections"] * 1e3 / summary["requests"]
    result["figures"] = figures
