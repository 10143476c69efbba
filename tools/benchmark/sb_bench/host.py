"""The machine around the run: the peers from Debian (without their services), the
release build, the descriptor limit, and the facts a result must be read with."""

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

from .processes import log
from .procfs import CLK_TCK

PEER_PACKAGES = ["haproxy", "nginx"]


def _quiet(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kwargs)


def installed(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return "ok installed" in r.stdout


def install_peers(with_wrk=False):
    """apt-get installs whichever peer is missing (and wrk, the HTTP scenarios' load
    generator, when they run), without letting its service run:
    a policy-rc.d (when there is none) keeps the packages from starting them, and
    the services are stopped and disabled afterwards in case one started anyway.
    The benchmark starts its own instances, with its own configurations."""
    missing = [p for p in PEER_PACKAGES + (["wrk"] if with_wrk else []) if not installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        log(f"not root: cannot install {' '.join(missing)}; their targets are skipped")
        return
    log(f"installing {' '.join(missing)} from Debian")
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\n# tools/bench: no service starts while it installs.\n"
                          "exit 101\n")
        policy.chmod(0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
                           + missing, env=env, timeout=900)
        if r.returncode != 0:
            log(f"apt-get install failed ({r.returncode}); the missing peers are skipped")
    finally:
        if made_policy:
            policy.unlink()
        stop_services([p for p in missing if p in PEER_PACKAGES])


def stop_services(services):
    systemd = Path("/run/systemd/system").is_dir()
    for service in services:
        if systemd:
            _quiet(["systemctl", "disable", "--now", service])
        elif Path(f"/etc/init.d/{service}").exists():
            _quiet(["service", service, "stop"])
            _quiet(["update-rc.d", service, "disable"])


def build_release(repo):
    """cmake --preset release && cmake --build --preset release: builds what changed."""
    log("building the release preset")
    for argv in (["cmake", "--preset", "release"],
                 ["cmake", "--build", "--preset", "release", "-j", str(os.cpu_count() or 2)]):
        r = _quiet(argv, cwd=repo)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:])
            raise SystemExit(f"bench: {' '.join(argv)} failed")


def raise_fd_limit():
    """Raises the soft descriptor limit, which every child inherits, to the hard one
    (5,000 idle connections through a proxy take about 10,000 of its descriptors)
    and returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _first_line(text):
    text = text.strip()
    return text.splitlines()[0] if text else ""


def machine_info(tools, repo):
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "cpus_available": sorted(os.sched_getaffinity(0)), "clk_tck": CLK_TCK,
            "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3]}
    versions = {}
    if tools.haproxy:
        versions["haproxy"] = _first_line(_quiet([tools.haproxy, "-v"]).stdout)
    if tools.nginx:
        versions["nginx"] = _first_line(_quiet([tools.nginx, "-v"]).stdout)
    if tools.switchboard.is_file():
        versions["switchboard"] = _first_line(_quiet([str(tools.switchboard), "--version"]).stdout)
    try:
        rev = _quiet(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
        changed = _quiet(["git", "-C", str(repo), "status", "--porcelain", "--", "proxy"])
        if rev.returncode == 0:
            versions["commit"] = rev.stdout.strip() + (
                " (proxy/ has uncommitted changes)" if changed.stdout.strip() else "")
    except OSError:
        pass  # no git: the commit stays unknown
    info["versions"] = versions
    return info
