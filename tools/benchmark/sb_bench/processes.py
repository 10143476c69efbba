"""Starting, pinning and stopping the processes of a run, and waiting on them.

Every wait here has a deadline: a program that does not come up, or does not go
away, costs seconds, never the run."""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .procfs import process_tree

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
# The benchmark's processes run at this nice value when the run may raise priority
# (root): on a shared machine, other work then takes less of their cores. Every
# target gets the same, so comparisons stay fair.
NICE = -10


class BenchError(Exception):
    """A measurement that could not be made; the run goes on with the next one."""


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def name_of(proc):
    return Path(proc.args[0]).name


class Processes:
    """Every process the run starts, by PID, so that all of them are stopped at the
    end whatever happened. Each child is pinned to one CPU (as `taskset -c CPU`
    would), runs at NICE when allowed, gets SIGKILL should this script die
    (PR_SET_PDEATHSIG), and runs in a session of its own, so that a Ctrl-C reaches
    only this script, which then stops them in order. Its stdout and stderr go to a
    log file (a pipe nobody reads could fill up and stall it)."""

    def __init__(self):
        self.live = []

    def spawn(self, argv, cpu, log_path, env=None):
        def pin():
            os.sched_setaffinity(0, {cpu})
            try:
                os.setpriority(os.PRIO_PROCESS, 0, NICE)
            except OSError:
                pass  # not root: the default priority
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        with open(log_path, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, preexec_fn=pin,
                                    start_new_session=True, env=env)
        proc.log_path = log_path
        self.live.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM, grace=5.0):
        """Sends `sig` to proc, waits up to `grace` seconds, then kills it; then
        kills any descendant it left behind (nginx's workers, were the master to go
        without them). Only processes this run started are touched, each by PID."""
        if proc not in self.live:
            return
        descendants = [p for p in process_tree(proc.pid) if p != proc.pid]
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"{name_of(proc)} (pid {proc.pid}) did not stop in {grace:g} s; killing it")
                proc.kill()
                proc.wait(timeout=5)
        for pid in descendants:
            deadline = time.monotonic() + 2
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.live.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.live)):
            self.stop(proc, grace=3.0)


def tail(path, lines=5):
    """The last lines of a log, joined, for an error message."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _exited(proc):
    return BenchError(f"{name_of(proc)} exited with {proc.returncode}: {tail(proc.log_path)}")


def wait_for_line(proc, prefix, timeout):
    """Waits until a line of proc's log starts with `prefix`; returns that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(proc.log_path, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
        if proc.poll() is not None:
            raise _exited(proc)
        time.sleep(0.01)
    raise BenchError(f"{name_of(proc)} printed no '{prefix.strip()}' in {timeout:g} s: "
                     f"{tail(proc.log_path)}")


def wait_for_port(proc, port, timeout):
    """Waits until 127.0.0.1:port accepts a connection (for the peers, which do not
    say when they listen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _exited(proc)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"{name_of(proc)} is not listening on port {port} after {timeout:g} s: "
                     f"{tail(proc.log_path)}")


def free_port():
    """A port free right now, for the peers that cannot report the one they bound.
    Another process could take it before the peer binds it; then that measurement
    fails and says so."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sleep_until(t):
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)
