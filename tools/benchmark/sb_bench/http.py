"""The HTTP scenarios' two programs besides the proxy: the origin and the load.

  origin  a separate nginx (worker_processes 1, on the load CPU) serving two static
          files, 1 KiB and 1 MiB, with keep-alive and sendfile, and a stub_status
          page whose `accepts` counter tells how many connections the proxy opened
          to it. The same origin, configured the same, behind every target; `direct`
          is wrk straight to it.
  wrk     Debian's wrk, one thread, pinned to the load CPU, with a Lua `done` hook
          that prints its summary as one JSON line (requests, bytes, errors by kind,
          latency percentiles). No per-response hook: that would make wrk parse
          every response in Lua and slow the load core down.

Every start and wait is bounded, as in processes.py."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

from .processes import BenchError, free_port, log, tail, wait_for_port
from .procfs import process_tree

# The origin's two files, by the size of their body.
FILES = {1 << 10: "1k", 1 << 20: "1m"}

# wrk's `done` hook: its summary as one JSON line on stdout. latency is in µs;
# summary.duration too. errors.status counts responses with a status above 399.
REPORT_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p999":%.0f,"max":%.0f}}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""

# A response slower than this is counted as a timeout error by wrk (its default is
# 2 s; a 1 MiB response behind a busy proxy takes milliseconds).
WRK_TIMEOUT_S = 5
# Seconds wrk may take beyond its duration before it is interrupted.
WRK_SLACK = 30


def wrk_path():
    return shutil.which("wrk", path=os.environ.get("PATH", "") + ":/usr/bin")


def nginx_path():
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def missing():
    """Why the HTTP scenarios cannot run here, or None."""
    if wrk_path() is None:
        return "wrk is not installed (the HTTP load generator)"
    if nginx_path() is None:
        return "nginx is not installed (the HTTP scenarios' origin)"
    return None


class Origin:
    """The origin nginx of one measurement, started in `work`/origin."""

    def __init__(self, procs, cpu, work, fd_limit):
        self.dir = work / "origin"
        www = self.dir / "www"
        www.mkdir(parents=True)
        for size, name in FILES.items():
            # Not all one byte: nothing between could shortcut a run of zeros.
            block = bytes(range(256)) * 4
            (www / name).write_bytes((block * (size // len(block) + 1))[:size])
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / d).mkdir()
        self.port = free_port()
        self.config_path = self.dir / "nginx.conf"
        self.config_path.write_text(origin_config(self.port, self.dir, fd_limit))
        self.proc = procs.spawn([nginx_path(), "-p", str(self.dir), "-e",
                                 str(self.dir / "error.log"), "-c", str(self.config_path)],
                                cpu, self.dir / "nginx.log")
        wait_for_port(self.proc, self.port, 15)
        self.address = f"127.0.0.1:{self.port}"
        self.pids = process_tree(self.proc.pid)
        deadline = time.monotonic() + 5
        while len(self.pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
            self.pids = process_tree(self.proc.pid)

    def accepts(self):
        """stub_status's count of accepted connections (this request's included)."""
        with urllib.request.urlopen(f"http://{self.address}/nginx_status", timeout=2) as r:
            text = r.read().decode()
        # "Active connections: N \nserver accepts handled requests\n A H R \n..."
        return int(text.splitlines()[2].split()[0])


def origin_config(port, work, fd_limit):
    # As fast as nginx serves a static file: sendfile, the open file cached, no log,
    # and keep-alive without a request limit (nginx closes a connection after 1,000
    # requests by default; the origin must not make the proxies reconnect).
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""\
{user}worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
worker_rlimit_nofile {fd_limit};
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    open_file_cache max=16 inactive=300s;
    default_type application/octet-stream;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {work}/www;
        location = /nginx_status {{
            stub_status;
        }}
    }}
}}
"""


def wrk_argv(url, connections, duration, script):
    # wrk takes whole seconds only.
    if duration != int(duration) or duration < 1:
        raise AssertionError(f"wrk runs whole seconds, not {duration:g}")
    return [wrk_path(), "-t1", "-c", str(connections), "-d", f"{duration:g}s",
            "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(script), url]


def wait_for_wrk(procs, proc, deadline):
    """Waits for wrk to end (interrupting it past `deadline`) and returns its JSON
    summary; raises BenchError when it failed or printed none."""
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        log(f"wrk (pid {proc.pid}) ran past its deadline; interrupting it")
        procs.stop(proc, sig=signal.SIGINT, grace=10)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}: {tail(proc.log_path)}")
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"wrk printed no summary: {tail(proc.log_path)}")


def check(summary, size, what):
    """Raises BenchError unless every request got a 2xx/3xx answer with a body of
    `size` bytes at least: no figure is reported for a target that answered errors."""
    errors = {k: v for k, v in summary["errors"].items() if v}
    if errors:
        raise BenchError(f"{what}: wrk counted errors {errors} in {summary['requests']:,} "
                         "requests (status = answers above 399; connect/read/write = socket "
                         "errors; timeout = no answer within "
                         f"{WRK_TIMEOUT_S} s); no figure")
    if summary["requests"] <= 0:
        raise BenchError(f"{what}: wrk completed no request")
    if summary["bytes"] / summary["requests"] < size:
        raise BenchError(f"{what}: {summary['bytes'] / summary['requests']:,.0f} bytes per "
                         f"response, less than the {size:,}-byte body; no figure")
