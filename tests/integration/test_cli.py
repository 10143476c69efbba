"""The command line (SPEC §1) through the real binary: --version, --help, --check with
every error positioned, startup failures that print one clear line and exit 1, port 0,
and a clean exit on SIGTERM and SIGINT."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import unittest

from sbtest import BINARY, SOURCE_DIR, PyBackend, Switchboard, config, run

import websockets


def run_binary(*args, timeout=10):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


def write_temp(text):
    fd, path = tempfile.mkstemp(suffix=".toml", prefix="sbcli-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class CommandLineTest(unittest.TestCase):
    def test_version(self):
        r = run_binary("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^switchboard \d+\.\d+\.\d+\n$")

    def test_help(self):
        r = run_binary("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check", r.stdout)
        self.assertIn("/etc/switchboard/switchboard.toml", r.stdout)

    def test_unknown_argument_is_a_usage_error(self):
        r = run_binary("--frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown argument", r.stderr)

    def test_check_accepts_a_valid_file(self):
        path = write_temp(config(["127.0.0.1:9"]))
        r = run_binary("--check", "-c", path)
        self.assertEqual((r.returncode, r.stdout), (0, "configuration ok\n"), r.stderr)

    def test_check_accepts_the_shipped_default_configuration(self):
        r = run_binary("--check", "-c", os.path.join(SOURCE_DIR, "conf", "switchboard.toml"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_accepts_the_demo_configuration(self):
        r = run_binary("--check", "-c", os.path.join(SOURCE_DIR, "conf", "demo.toml"))
        self.assertEqual((r.returncode, r.stdout), (0, "configuration ok\n"), r.stderr)

    def test_examples_in_conf_are_valid(self):
        examples = os.path.join(SOURCE_DIR, "conf", "examples")
        for name in sorted(os.listdir(examples)):
            r = run_binary("--check", "-c", os.path.join(examples, name))
            # Their certificate files do not exist here, nor (without the package) the
            # log directory the package creates; everything else must check.
            for line in r.stderr.strip().splitlines():
                if 'directory "/var/log/switchboard" does not exist' in line:
                    continue
                self.assertIn("cannot read: No such file or directory", line, f"{name}: {line}")

    def test_check_prints_every_error_with_its_position(self):
        path = write_temp("""[server]
workers = "two"
drain_timeout = "30 seconds"

[[listeners]]
name = "public"
listen = "0.0.0.0:99999"
pool = "nope"
max_header_byts = 100

[pools.chat]
backends = []
""")
        r = run_binary("--check", "-c", path)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.strip().splitlines()
        for line in lines:
            self.assertRegex(line, rf"^{re.escape(path)}:\d+:\d+: ")
        text = r.stderr
        self.assertIn(f"{path}:2:11: expected an integer", text)
        self.assertIn(f"{path}:3:17:", text)
        self.assertIn(f"{path}:7:10:", text)
        self.assertIn(f"{path}:9:1: unknown key \"max_header_byts\"", text)
        self.assertIn("did you mean \"max_header_bytes\"", text)
        self.assertIn(f"{path}:12:12: a pool needs at least one backend", text)
        self.assertGreaterEqual(len(lines), 5)

    def test_check_reports_a_syntax_error_with_position(self):
        path = write_temp("[server]\nworkers = \n")
        r = run_binary("--check", "-c", path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, rf"^{re.escape(path)}:2:\d+: ")

    # Regression (issue 13): toml11 3.7 recursed once per nested array, and a 2.4 KB file
    # of 1,200 brackets crashed --check with SIGSEGV.
    def test_check_rejects_deep_nesting_with_a_position_not_a_crash(self):
        path = write_temp("a = " + "[" * 1200 + "]" * 1200 + "\n")
        r = run_binary("--check", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, f"{path}:1:37: arrays and inline tables are nested more "
                                   "than 32 deep\n")
        r = run_binary("-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{path}:1:37:", r.stderr)

    def test_check_rejects_a_huge_file_quickly(self):
        path = write_temp("# padding\n" * 200_000)
        r = run_binary("--check", "-c", path, timeout=5)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, rf"^{re.escape(path)}:\d+:\d+: the file is larger than 1 MiB")

    # Regression (issue 13): --check passed these and startup then failed to bind.
    def test_check_rejects_listeners_that_overlap_on_a_port(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        path = write_temp(f"""[admin]
listen = "[::]:{port + 1}"

[[listeners]]
name = "public"
listen = "0.0.0.0:{port}"
pool = "chat"

[[listeners]]
name = "local"
listen = "127.0.0.1:{port}"
pool = "chat"

[[listeners]]
name = "status"
listen = "127.0.0.1:{port + 1}"
pool = "chat"

[[listeners]]
name = "v6"
listen = "[::]:{port}"
pool = "chat"

[pools.chat]
backends = [{{ address = "127.0.0.1:9" }}]
""")
        r = run_binary("--check", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr.splitlines(), [
            f'{path}:11:10: 127.0.0.1:{port} overlaps 0.0.0.0:{port} of listener "public" '
            "(a wildcard address takes its port on every address of its family)",
            f"{path}:16:10: 127.0.0.1:{port + 1} overlaps [::]:{port + 1} of the admin listener "
            "(a wildcard address takes its port on every address of its family)",
        ])

    def test_check_rejects_an_access_log_in_a_missing_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            target = os.path.join(tmp, "missing", "access.log")
            path = write_temp(f'[log]\naccess_log = "{target}"\n' + config(["127.0.0.1:9"]))
            r = run_binary("--check", "-c", path)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr, f'{path}:2:14: access log: directory '
                                       f'"{os.path.dirname(target)}" does not exist\n')
            plain = os.path.join(tmp, "plain")
            with open(plain, "w") as f:
                f.write("x")
            path = write_temp(f'[log]\naccess_log = "{plain}/access.log"\n' +
                              config(["127.0.0.1:9"]))
            r = run_binary("--check", "-c", path)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f'{path}:2:14: access log: "{plain}" is not a directory', r.stderr)

    def test_missing_file_is_an_error(self):
        r = run_binary("--check", "-c", "/nonexistent/switchboard.toml")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read the configuration file", r.stderr)

    def test_bad_config_at_startup_exits_1(self):
        path = write_temp("[server]\nworkers = -1\n")
        r = run_binary("-c", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:2:11:", r.stderr)

    def test_port_in_use_exits_1_with_one_clear_line(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            path = write_temp(config(["127.0.0.1:9"]).replace("127.0.0.1:0", f"127.0.0.1:{port}"))
            r = run_binary("-c", path)
        self.assertEqual(r.returncode, 1)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}: address already in use", lines[0])
        self.assertIn("public", lines[0])

    def test_port_held_by_another_switchboard_is_in_use_too(self):
        first = Switchboard(config(["127.0.0.1:9"]))
        try:
            path = write_temp(config(["127.0.0.1:9"]).replace(
                "127.0.0.1:0", f"127.0.0.1:{first.port()}"))
            r = run_binary("-c", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("address already in use", r.stderr)
        finally:
            first.stop()


class RunAndStopTest(unittest.TestCase):
    def serve_one(self, sb):
        async def go():
            async with websockets.connect(sb.url("/")) as ws:
                await ws.send("x")
                self.assertEqual(await ws.recv(), "b:x")
        run(go())

    def test_port_zero_is_reported_and_serves_on_every_worker(self):
        backend = PyBackend("b")
        sb = Switchboard(config([backend.address], workers=4))
        try:
            host, port = sb.addresses["public"]
            self.assertEqual(host, "127.0.0.1")
            self.assertGreater(port, 0)
            for _ in range(20):  # connections spread over the four workers' sockets
                self.serve_one(sb)
        finally:
            self.assertEqual(sb.stop(), 0)
            backend.stop()

    def test_sigterm_and_sigint_exit_cleanly(self):
        for signum in (signal.SIGTERM, signal.SIGINT):
            backend = PyBackend("b")
            sb = Switchboard(config([backend.address]))
            try:
                self.serve_one(sb)
                sb.signal(signum)
                self.assertEqual(sb.wait(timeout=10), 0)
            finally:
                sb.stop()
                backend.stop()


if __name__ == "__main__":
    unittest.main()
