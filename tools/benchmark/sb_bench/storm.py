"""The storm scenario: a backend dies and its clients reconnect, all at once, to the
backends that remain. What does each surviving backend see, and how long until
every client is connected again?

One measurement of one variant: four sb-echo-backends (b0..b3, on the load CPU, each
writing the time of every 101 it sends to an accept log), the target in front of
them (on the proxy CPU) with the variant's configuration, and sb-storm (on the load
CPU, tools/storm) with N clients, a room each. Once all N are open and SETTLE seconds
have passed (the rate limiters' buckets and windows are full again), b0 gets
SIGKILL: a crash, no Close frames. Its clients reconnect with the client libraries'
policy (tools/storm/storm_run.h); sb-storm reports once all N are open again, or
after the scenario's deadline. The survivors are then stopped (which flushes their logs).

Variants, each configured as an operator protecting the backends would (the
reasoning is in docs/benchmarks.md, "Storm"):

  switchboard            admission off: ring by room, TCP health checks every 1 s
  switchboard+admission  the same with [pools.p.admission]: each backend's bucket
                         refills at RATE connections/s and holds BURST, shed with
                         Close 1013 and retry_after = RETRY_AFTER
  haproxy                leastconn, the same health checks, `rate-limit sessions`
                         on the frontend at the rate the three survivors may take
                         together (3 x RATE), `maxconn` per server with a queue
  nginx                  least_conn, `limit_req` at 3 x RATE with a burst of 3 x
                         BURST (nodelay), `limit_conn`, 503 with Retry-After

Figures, from the kill on: each surviving backend's new connections per 100 ms
(the peak over the survivors) and in any sliding 1-s window (the most of any
survivor); the seconds until every client that lost its connection had an open
WebSocket again; the share of those clients refused at least once (1013, 503, 429,
a refused or reset connection); errors (handshake timeouts, malformed answers)."""

import json
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import BenchError, tail, wait_for_line
from .procfs import core_seconds, cpu_seconds
from .targets import start_target

BACKENDS = 4
KILLED = 0  # b0 dies
# Seconds between "all clients connected" and the kill: the limiters refill (a bucket
# of BURST at RATE/s takes BURST/RATE s; HAProxy's rate counter covers one second).
SETTLE = 2.0
# The variants of the scenario, by the target they run.
VARIANTS = {"switchboard": ["switchboard", "switchboard+admission"],
            "haproxy": ["haproxy"], "nginx": ["nginx"]}
# sb-storm's attempt outcomes besides "open": refusals (these, and http_<status> for
# any answer other than 101) make a client "refused at least once"; ERRORS are
# failures of another kind.
REFUSED = {"close_1013", "close_other", "refused", "reset"}
ERRORS = {"timeout", "malformed"}


def is_refused(kind):
    return kind in REFUSED or kind.startswith("http_")


@dataclass
class StormSize:
    clients: int
    rate: int          # new connections per second each backend is to take
    burst: int         # each backend's bucket
    retry_after: int   # seconds: switchboard's retry_after, the peers' Retry-After
    fill_timeout: float  # seconds for all clients to connect at the start
    deadline: float      # seconds from the kill until "not all back"

    def admitted_rate(self):
        """What the three survivors may take together per second."""
        return (BACKENDS - 1) * self.rate

    def bound(self, clients):
        """The target of issue 16 for `clients` clients: 1.2 x (clients / total
        admitted rate) + 1.5 x retry_after."""
        return 1.2 * clients / self.admitted_rate() + 1.5 * self.retry_after


def storm_size(quick):
    if quick:
        return StormSize(clients=300, rate=20, burst=10, retry_after=2, fill_timeout=30,
                         deadline=20)
    return StormSize(clients=8000, rate=250, burst=125, retry_after=2, fill_timeout=90,
                     deadline=60)


def variants_for(target):
    """The storm's variants of `target`; [] when it has no balancer (direct, relay)."""
    return VARIANTS.get(target, [])


def run(variant, size, tools, procs, limits, proxy_cpu, load_cpu, work):
    """One storm measurement; returns its result (for bench.json) or raises BenchError.
    Stops every process it started."""
    started = time.monotonic()
    try:
        result = _run(variant, size, tools, procs, limits, proxy_cpu, load_cpu, work)
    finally:
        for proc in reversed(list(procs.live)):
            procs.stop(proc)
    result["wall_s"] = round(time.monotonic() - started, 2)
    return result


def _run(variant, size, tools, procs, limits, proxy_cpu, load_cpu, work):
    backends, addresses, logs = [], [], []
    for i in range(BACKENDS):
        logs.append(work / f"b{i}.accepts")
        proc = procs.spawn([str(tools.echo), "--listen", "127.0.0.1:0", "--name", f"b{i}",
                            "--accept-log", str(logs[-1])], load_cpu, work / f"b{i}.log")
        backends.append(proc)
    for proc in backends:
        addresses.append(wait_for_line(proc, "listening ", 10).split()[1])

    target = "switchboard" if variant.startswith("switchboard") else variant
    writer = {"switchboard": lambda port: switchboard_config(addresses, size, False),
              "switchboard+admission": lambda port: switchboard_config(addresses, size, True),
              "haproxy": lambda port: haproxy_config(port, addresses, size, work, limits),
              "nginx": lambda port: nginx_config(port, addresses, size, work, limits)}[variant]
    if variant == "switchboard+admission":
        why = unsupported(tools, writer(None), work)
        if why:
            raise Unsupported(why)
    proxy = start_target(target, tools, procs, proxy_cpu, work, None, limits, config=writer)
    result = {"address": proxy.address, "clients": size.clients,
              "configs": {p.name: p.read_text() for p in proxy.configs}}

    client = procs.spawn([str(tools.storm), "--address", proxy.address,
                          "--clients", str(size.clients), "--max-seconds",
                          f"{size.fill_timeout + SETTLE + size.deadline:g}"],
                         load_cpu, work / "client.log")
    fill_started = time.monotonic()
    wait_for_line(client, "connected ", size.fill_timeout)
    result["fill_s"] = round(time.monotonic() - fill_started, 2)
    time.sleep(SETTLE)

    ours = [p.pid for i, p in enumerate(backends) if i != KILLED] + [client.pid]
    cpu0 = cpu_seconds(proxy.pids), cpu_seconds(ours)
    cores0 = core_seconds(proxy_cpu)[0], core_seconds(load_cpu)[0]
    kill_at = time.monotonic()
    procs.stop(backends[KILLED], sig=signal.SIGKILL)
    report = wait_for_report(client, kill_at + size.deadline + 15)
    cpu1 = cpu_seconds(proxy.pids), cpu_seconds(ours)
    cores1 = core_seconds(proxy_cpu)[0], core_seconds(load_cpu)[0]
    span = time.monotonic() - kill_at
    result["proxy_cpu_s"] = round(cpu1[0] - cpu0[0], 2)
    # What other programs took of each core from the kill to the report. The storm is
    # mostly waiting (backoff, retry-after), so this is mostly idle time that other
    # programs filled; ours run at nice -10 and take precedence. Kept in bench.json,
    # not in the table. (The killed backend's last moments count as others.)
    result["cores_others"] = {
        name: round(max(0.0, cores1[i] - cores0[i] - (cpu1[i] - cpu0[i])) / span, 3)
        for i, name in enumerate(("proxy_core", "load_core"))}
    procs.stop(client)
    if proxy.proc.poll() is not None:
        raise BenchError(f"{target} exited with {proxy.proc.returncode} during the storm: "
                         f"{tail(proxy.proc.log_path)}")
    # Stopping the survivors writes out the rest of their accept logs.
    procs.stop(proxy.proc)
    for i, proc in enumerate(backends):
        if i != KILLED:
            procs.stop(proc)
    accepts = {f"b{i}": read_accepts(logs[i]) for i in range(BACKENDS) if i != KILLED}
    result.update(figures(report, accepts, kill_at, size, variant))
    return result


class Unsupported(BenchError):
    """The switchboard binary has no admission control yet: the variant is skipped."""


def unsupported(tools, config_text, work):
    """Why this switchboard cannot load the admission configuration (`--check`), or
    None when it can."""
    path = work / "admission-check.toml"
    path.write_text(config_text)
    r = subprocess.run([str(tools.switchboard), "--check", "-c", str(path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    if r.returncode == 0:
        return None
    return "switchboard --check refuses [pools.p.admission]: " + r.stdout.strip()[-300:]


def wait_for_report(client, deadline):
    """Waits for sb-storm's report line (it reports by itself at its --max-seconds,
    then waits for SIGTERM so that its CPU time can still be read)."""
    while time.monotonic() < deadline:
        for line in Path(client.log_path).read_text(errors="replace").splitlines(True):
            # A line without its newline may still be being written.
            if line.startswith("{") and line.endswith("\n"):
                return json.loads(line)
        if client.poll() is not None:
            break
        time.sleep(0.05)
    raise BenchError(f"sb-storm printed no report: {tail(client.log_path)}")


def read_accepts(path):
    """The accept log's times (µs of CLOCK_MONOTONIC) as seconds, sorted."""
    try:
        text = path.read_text()
    except OSError:
        return []
    return sorted(int(line) / 1e6 for line in text.split())


def peak_per_bucket(times, start, width):
    counts = {}
    for t in times:
        if t >= start:
            k = int((t - start) // width)
            counts[k] = counts.get(k, 0) + 1
    return max(counts.values(), default=0)


def max_in_window(times, start, width):
    """The most of `times` (sorted) at or after `start` in any window [t, t + width)."""
    times = [t for t in times if t >= start]
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def figures(report, accepts, kill_at, size, variant):
    affected = report["affected"]
    back = [c["back_at"] for c in affected.values()]
    all_back = bool(affected) and all(b is not None for b in back)
    refused = sum(1 for c in affected.values()
                  if any(is_refused(a[2]) for a in c["attempts"]))
    kinds, hints = {}, {}
    for c in affected.values():
        for a in c["attempts"]:
            kinds[a[2]] = kinds.get(a[2], 0) + 1
            if a[3] is not None and a[2] != "open":
                # The seconds a refusal told the client to wait (1013's reason, Retry-After).
                by_kind = hints.setdefault(a[2], {})
                by_kind[str(a[3])] = by_kind.get(str(a[3]), 0) + 1
    errors = sum(v for k, v in kinds.items() if k in ERRORS)
    survivors = {name: {"accepts_after_kill": sum(1 for t in times if t >= kill_at),
                        "peak_per_100ms": peak_per_bucket(times, kill_at, 0.1),
                        "max_per_1s_window": max_in_window(times, kill_at, 1.0),
                        # The fill included: the same limits held from the start.
                        "max_per_1s_window_whole_run": max_in_window(times, 0.0, 1.0)}
                 for name, times in accepts.items()}
    # All survivors' new connections per 100 ms from the kill on: the storm's shape.
    after = sorted(t for times in accepts.values() for t in times if t >= kill_at)
    timeline = [0] * (int((after[-1] - kill_at) / 0.1) + 1 if after else 0)
    for t in after:
        timeline[int((t - kill_at) / 0.1)] += 1
    reconnect = max(back) - kill_at if all_back else None
    fig = {
        "affected": len(affected),
        "peak_per_100ms": max(s["peak_per_100ms"] for s in survivors.values()),
        "max_per_1s": max(s["max_per_1s_window"] for s in survivors.values()),
        "reconnect_s": reconnect,
        "refused_share": refused / len(affected) if affected else None,
        "refused_clients": refused,
        "errors": errors,
        "attempts": sum(kinds.values()),
    }
    if variant != "switchboard":
        # SPEC §3 Admission: in any second a backend takes at most rate + burst; the
        # reconnect bound of issue 16 with N = all clients, and with N = the clients
        # that actually reconnected (the tighter reading). The peers are held to the
        # same figures: their limits are set to the same total (3 x RATE, a burst of
        # 3 x BURST for nginx), only not per backend.
        fig["limit_1s"] = size.rate + (size.burst or size.rate)
        fig["bound_s"] = size.bound(size.clients)
        fig["bound_affected_s"] = size.bound(len(affected))
    client = {k: v for k, v in report.items() if k != "affected"}
    if affected:
        client["first_drop_after_kill_s"] = round(report["first_drop"] - kill_at, 4)
    out = {"figures": fig, "survivors": survivors, "attempt_kinds": kinds,
           "retry_hints": hints, "survivors_per_100ms": timeline, "client": client,
           "kill_at": kill_at}
    if not all_back:
        missing = sum(1 for b in back if b is None)
        out["storm_note"] = (f"not all back: {missing} of {len(affected)} clients had no open "
                             f"connection {size.deadline:g} s after the kill")
    if not affected:
        out["storm_note"] = "no client lost its connection"
    return out


# ---- the variants' configurations ----

def switchboard_config(backends, size, admission):
    # Rooms: each client's `room` query parameter is its hash key, so the ring spreads
    # the clients over the four backends (all of them come from 127.0.0.1, which would
    # put them all on one with the default client_ip key). TCP health checks every
    # second, down after two failures, as HAProxy's below. The proxy's own limits are
    # off: what is measured is what the admission table adds.
    listed = ", ".join(f'{{ address = "{b}" }}' for b in backends)
    text = f"""\
[server]
workers = 1
drain_timeout = "1s"

[log]
access_log = "off"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "p"

[pools.p]
backends = [ {listed} ]
algorithm = "ring"
hash_key = "query:room"

[pools.p.health_check]
kind = "tcp"
interval = "1s"
timeout = "1s"
rise = 2
fall = 2
"""
    if admission:
        text += f"""
[pools.p.admission]
backend_new_connections_per_second = {size.rate}
burst = {size.burst}
shed = "close_1013"
retry_after = "{size.retry_after}s"
"""
    return text


def haproxy_config(port, backends, size, work, limits):
    # leastconn (HAProxy's advice for long sessions) and the same TCP checks as
    # switchboard's. `rate-limit sessions` is HAProxy's tool for connection storms:
    # it is per frontend, not per server, so it is set to what the three survivors
    # may take together; connections over it wait in the listen backlog (raised to
    # hold every client). `maxconn` per server is each backend's capacity, its share
    # with one of four lost plus 10 %; connections over it wait in the queue up to
    # `timeout queue`, then get 503 (with a Retry-After, added as an operator would).
    # A connect refused by the dead backend is retried on another (`option
    # redispatch 1`: on every retry).
    per_server = math.ceil(1.1 * size.clients / (BACKENDS - 1))
    servers = "\n".join(f"    server b{i} {b} maxconn {per_server}"
                        for i, b in enumerate(backends))
    return f"""\
global
    nbthread 1
    maxconn {limits.max_conns}
    pidfile {work}/haproxy.pid

defaults
    mode http
    maxconn {limits.max_conns}
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout client-fin 5s
    timeout queue 5s
    retries 3
    option redispatch 1

frontend public
    bind 127.0.0.1:{port} backlog {limits.max_conns}
    rate-limit sessions {size.admitted_rate()}
    http-after-response set-header Retry-After {size.retry_after} if {{ status 503 }}
    default_backend echo

backend echo
    balance leastconn
    default-server check inter 1s fall 2 rise 2
{servers}
"""


def nginx_config(port, backends, size, work, limits):
    # least_conn, passive health (max_fails=1 fail_timeout=10s, the defaults, stated)
    # and proxy_next_upstream's default (error, timeout) for a refused connect.
    # limit_req is nginx's rate tool; its key is usually the client address, and every
    # client here is 127.0.0.1, so the key is the server: one bucket for everyone, at
    # what the three survivors may take together, with a burst of three backends'
    # BURST taken at once (nodelay: no queueing of upgrades). limit_conn caps
    # concurrent connections at the backends' capacity (their shares with one lost,
    # plus 10 %). Refusals are 503 with a Retry-After (the map adds it to 503s only).
    user = "user root;\n" if os.geteuid() == 0 else ""
    capacity = math.ceil(1.1 * size.clients)
    servers = "\n".join(f"        server {b} max_fails=1 fail_timeout=10s;" for b in backends)
    return f"""\
{user}worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
worker_rlimit_nofile {limits.fd_limit};
events {{
    worker_connections {2 * limits.max_conns + 100};
}}
http {{
    access_log off;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    limit_req_zone $server_name zone=storm:1m rate={size.admitted_rate()}r/s;
    limit_conn_zone $server_name zone=conns:1m;
    map $status $retry_after {{
        503 {size.retry_after};
        default "";
    }}
    upstream echo {{
        least_conn;
{servers}
    }}
    server {{
        listen 127.0.0.1:{port} backlog={limits.max_conns};
        server_name storm;
        limit_req zone=storm burst={(BACKENDS - 1) * size.burst} nodelay;
        limit_req_status 503;
        limit_conn conns {capacity};
        limit_conn_status 503;
        add_header Retry-After $retry_after always;
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_connect_timeout 5s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""
