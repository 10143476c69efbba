"""The five targets, each started fresh for every measurement, relaying to the
measurement's own echo backend:

  direct       no proxy: sb-load talks to sb-echo-backend (what the backend and the
               load generator cost, and the best any proxy could do)
  relay        sb-bench-relay (tools/benchmark/relay.h): reads and writes only, the floor
  haproxy      HAProxy, nbthread 1, mode http (it parses the upgrade, then tunnels)
  nginx        nginx, worker_processes 1 (a master and one worker, both counted)
  switchboard  workers = 1, access log off

Each runs with its own configuration in the measurement's temp dir, logs nothing per
connection, and uses long timeouts so that nothing is cut during a measurement.

For the HTTP scenarios (http=True) the backend is the origin nginx of http.py and the
proxies are configured for plain HTTP/1.1 proxying: keep-alive to the clients, a pool
of idle keep-alive connections to the origin, X-Forwarded-For/-Proto/-Host added by
each (switchboard adds them by default, the peers are told to); the relay needs no
change, it relays bytes (one origin connection per client connection)."""

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .processes import free_port, wait_for_line, wait_for_port
from .procfs import process_tree

ALL_TARGETS = ["direct", "relay", "haproxy", "nginx", "switchboard"]
PEERS = ["haproxy", "nginx"]  # what every figure is also given as a ratio to
TLS_TARGETS = ["haproxy", "nginx", "switchboard"]  # those that terminate TLS (wss scenarios)


@dataclass
class Tools:
    """Where the programs are: the project's in a build directory, the peers on PATH
    (or in /usr/sbin, where Debian puts them)."""
    build_dir: Path

    def __post_init__(self):
        self.echo = self.build_dir / "tools" / "sb-echo-backend"
        self.load = self.build_dir / "tools" / "sb-load"
        self.storm = self.build_dir / "tools" / "sb-storm"
        self.relay = self.build_dir / "tools" / "benchmark" / "sb-bench-relay"
        self.switchboard = self.build_dir / "proxy" / "switchboard"
        path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
        self.haproxy = shutil.which("haproxy", path=path)
        self.nginx = shutil.which("nginx", path=path)

    def missing(self, target):
        """Why `target` cannot run here, or None."""
        if target == "direct":
            return None
        program = getattr(self, target)
        if program is None:
            return f"{target} is not installed"
        if not Path(program).is_file():
            return f"{program} is missing"
        return None


@dataclass
class Limits:
    fd_limit: int   # the soft RLIMIT_NOFILE every child inherits
    max_conns: int  # the proxied connections a peer must accept at once


@dataclass
class Proxy:
    """A running target: the address sb-load connects to and the processes whose CPU
    time and memory are charged to it (none for direct)."""
    address: str
    proc: object = None
    pids: list = field(default_factory=list)
    configs: list = field(default_factory=list)  # the configuration files written


def start_target(name, tools, procs, cpu, work, backend, limits, tls=None, http=False,
                 config=None, env=None):
    """Starts target `name` pinned to `cpu`, with its files in `work`, relaying to
    `backend` (HOST:PORT); returns once it accepts connections. With `tls`, a
    (certificate, private key) pair of PEM files, the proxies terminate TLS. With
    `http`, they proxy HTTP/1.1 requests to an HTTP origin (WebSocket otherwise).
    `config`, when given, writes the configuration instead: called with the port the
    peer is to listen on (None for switchboard, which binds port 0), it returns the
    file's text (the storm scenario's several backends and limits). `env`, when given,
    is the proxy's environment (tools/tls-resumption preloads a library)."""
    if tls is not None and name in ("direct", "relay"):
        raise AssertionError(f"{name} has no TLS")
    if tls is not None and http:
        raise AssertionError("the HTTP scenarios have no TLS")
    make_config = config
    if name == "direct":
        return Proxy(backend)
    if name == "relay":
        proc = procs.spawn([str(tools.relay), "--backend", backend], cpu, work / "relay.log",
                           env=env)
        address = wait_for_line(proc, "listening ", 10).split()[1]
    elif name == "switchboard":
        config = work / "switchboard.toml"
        if make_config is not None:
            config.write_text(make_config(None))
        else:
            config.write_text(switchboard_http_config(backend) if http
                              else switchboard_config(backend, tls))
        proc = procs.spawn([str(tools.switchboard), "-c", str(config)], cpu,
                           work / "switchboard.log", env=env)
        # "listening public 127.0.0.1:PORT" on stderr, once it accepts.
        address = wait_for_line(proc, "listening public ", 15).split()[2]
    elif name == "haproxy":
        port = free_port()
        config = work / "haproxy.cfg"
        if make_config is not None:
            config.write_text(make_config(port))
        else:
            config.write_text(haproxy_http_config(port, backend, work, limits) if http
                              else haproxy_config(port, backend, work, limits, tls))
        proc = procs.spawn([tools.haproxy, "-db", "-f", str(config)], cpu, work / "haproxy.log",
                           env=env)
        wait_for_port(proc, port, 15)
        address = f"127.0.0.1:{port}"
    elif name == "nginx":
        port = free_port()
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / d).mkdir()
        config = work / "nginx.conf"
        if make_config is not None:
            config.write_text(make_config(port))
        else:
            config.write_text(nginx_http_config(port, backend, work, limits) if http
                              else nginx_config(port, backend, work, limits, tls))
        proc = procs.spawn([tools.nginx, "-p", str(work), "-e", str(work / "nginx-error.log"),
                            "-c", str(config)], cpu, work / "nginx.log", env=env)
        wait_for_port(proc, port, 15)
        address = f"127.0.0.1:{port}"
    else:
        raise AssertionError(name)
    pids = process_tree(proc.pid)
    # nginx's master forks its worker around the time it starts listening.
    deadline = time.monotonic() + 5
    while name == "nginx" and len(pids) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        pids = process_tree(proc.pid)
    configs = [work / f for f in ("switchboard.toml", "haproxy.cfg", "nginx.conf")
               if (work / f).exists()]
    return Proxy(address, proc, pids, configs)


def switchboard_config(backend, tls=None):
    # A short drain: when the proxy is stopped, its connections are already gone.
    listener_tls = ""
    if tls is not None:
        listener_tls = (f'[listeners.tls]\ncertificates = [ {{ certificate = "{tls[0]}", '
                        f'private_key = "{tls[1]}" }} ]\n')
    return f"""\
[server]
workers = 1
drain_timeout = "1s"

[log]
access_log = "off"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "p"
{listener_tls}
[pools.p]
backends = [ {{ address = "{backend}" }} ]
"""


def haproxy_config(port, backend, work, limits, tls=None):
    # mode http: HAProxy parses the upgrade request, as nginx and switchboard do, then
    # tunnels the WebSocket; `timeout tunnel` governs the connection from then on.
    # No `log` line: HAProxy logs nothing. maxconn is explicit because the default
    # follows the descriptor limit. HAProxy takes the certificate and its key in one
    # file.
    bind_tls = ""
    if tls is not None:
        combined = work / "haproxy.pem"
        combined.write_text(Path(tls[0]).read_text() + Path(tls[1]).read_text())
        bind_tls = f" ssl crt {combined}"
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

frontend public
    bind 127.0.0.1:{port}{bind_tls}
    default_backend echo

backend echo
    server echo {backend}
"""


def nginx_config(port, backend, work, limits, tls=None):
    # The WebSocket recipe of nginx's documentation (proxy_http_version 1.1 and the
    # Upgrade/Connection headers). Everything nginx writes stays in `work`; `user
    # root` keeps the worker able to read it when the run is root's. Each proxied
    # connection takes two of worker_connections.
    user = "user root;\n" if os.geteuid() == 0 else ""
    listen_tls = ""
    if tls is not None:
        # nginx 1.22 leaves TLS 1.3 out of its default ssl_protocols (1.23.4 adds it):
        # without this line it would do the cheaper TLS 1.2 handshake the others do not.
        listen_tls = (f" ssl;\n        ssl_protocols TLSv1.2 TLSv1.3;\n"
                      f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]}")
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
    upstream echo {{
        server {backend};
    }}
    server {{
        listen 127.0.0.1:{port}{listen_tls};
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


def switchboard_http_config(backend):
    # The HTTP pool's defaults (SPEC §2: idle_timeout 60s, response_timeout 60s,
    # max_request_body 10MiB) and the listener's keepalive_timeout, as the peers get
    # them below; idle backend connections sized above the scenario's 50 clients, as an
    # operator would (nginx gets the same `keepalive 64`; HAProxy keeps any number).
    return f"""\
[server]
workers = 1
drain_timeout = "1s"

[log]
access_log = "off"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "origin"
keepalive_timeout = "60s"

[pools.origin]
backends = [ {{ address = "{backend}" }} ]

[pools.origin.http]
max_idle_connections = 64
"""


def haproxy_http_config(port, backend, work, limits):
    # Keep-alive both ways (HAProxy's default, http-keep-alive, stated), idle server
    # connections reused by any request (`http-reuse always`: what nginx's upstream
    # keepalive and switchboard's pool do; HAProxy's default, `safe`, would keep the
    # first request of each client connection off them). The same timeouts as the
    # others: 60 s idle on both sides, 60 s for a response. X-Forwarded-For (`option
    # forwardfor`), -Proto and -Host, as switchboard sends them.
    return f"""\
global
    nbthread 1
    maxconn {limits.max_conns}
    pidfile {work}/haproxy.pid

defaults
    mode http
    option http-keep-alive
    maxconn {limits.max_conns}
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 60s
    timeout http-keep-alive 60s
    timeout client-fin 5s

frontend public
    bind 127.0.0.1:{port}
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend origin

backend origin
    http-reuse always
    server origin {backend}
"""


def nginx_http_config(port, backend, work, limits):
    # nginx's reverse-proxy recipe for keep-alive to the upstream: HTTP/1.1, an empty
    # Connection header, `keepalive 64` idle connections per worker (as switchboard's
    # max_idle_connections, sized above the scenario's 50 clients). proxy_buffering stays on (nginx's default: a response
    # is read into 8 buffers of a page and, when the client is slower, spilled to a
    # temp file under `work`). The timeouts and body limit the others have: 60 s
    # keep-alive to clients and to the origin, 60 s per response, 10 MiB bodies.
    # keepalive_requests stays at its default (1,000 per client connection).
    user = "user root;\n" if os.geteuid() == 0 else ""
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
    keepalive_timeout 60s;
    client_max_body_size 10m;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream origin {{
        server {backend};
        keepalive 64;
        keepalive_timeout 60s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
