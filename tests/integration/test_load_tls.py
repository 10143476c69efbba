"""sb-load --tls (the wss load of tools/bench, issue 17) against the real binary
terminating TLS in front of the C++ echo backend: echoes over TLS 1.3 and 1.2 with the
server verified against a throwaway CA, a wrong CA refused as a TLS error, and churn
loops that offer their previous session and count the resumed handshakes. This is
sb-load's test: what it reports is what the benchmark's figures are made of."""

import json
import os
import subprocess
import unittest

from sbtest import TOOLS_DIR, EchoBackend, Switchboard, TestPki

LOAD = os.path.join(TOOLS_DIR, "sb-load")


def config(cert, key, backend):
    return f"""
[server]
workers = 1

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "echo"

[listeners.tls]
certificates = [ {{ certificate = "{cert}", private_key = "{key}" }} ]

[pools.echo]
backends = [ {{ address = "{backend}" }} ]
"""


class LoadTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = TestPki()
        cls.cert, cls.key = cls.pki.leaf("localhost", dns=["localhost"], ips=["127.0.0.1"],
                                         kind="ec")
        cls.backend = EchoBackend()
        cls.sb = Switchboard(config(cls.cert, cls.key, cls.backend.address))

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def load(self, *args, ca=None):
        """Runs sb-load --tls with `args`; returns its JSON report."""
        argv = [LOAD, "--url", self.sb.url("/"), "--tls", "--tls-ca", ca or self.pki.ca,
                "--duration", "1", *args]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout.splitlines()[-1])

    def test_closed_loop_over_tls13_verifies_and_echoes(self):
        report = self.load("--mode", "closed", "--connections", "4", "--size", "100000")
        self.assertEqual(report["errors"], 0, report["error_kinds"])
        self.assertGreater(report["messages"], 0)
        self.assertEqual(report["tls"]["version"], "TLSv1.3")
        self.assertEqual(report["tls"]["handshakes"], 4)

    def test_tls12_when_asked(self):
        report = self.load("--mode", "closed", "--connections", "2", "--tls-version", "1.2")
        self.assertEqual(report["errors"], 0, report["error_kinds"])
        self.assertGreater(report["messages"], 0)
        self.assertEqual(report["tls"]["version"], "TLSv1.2")

    def test_a_certificate_from_another_ca_is_a_tls_error(self):
        other = TestPki("Other CA")
        report = self.load("--mode", "closed", "--connections", "1", ca=other.ca)
        self.assertEqual(report["established"], 0)
        self.assertEqual(report["error_kinds"]["tls"], 1)

    def test_churn_loops_resume_their_previous_session(self):
        # TLS 1.2 tickets may be used again, so after its first (full) handshake in the
        # warm-up, every handshake of a loop resumes.
        report = self.load("--mode", "churn", "--connections", "2", "--warmup", "0.3",
                           "--tls-version", "1.2")
        self.assertEqual(report["errors"], 0, report["error_kinds"])
        tls = report["tls"]
        self.assertGreater(tls["handshakes"], 10)
        self.assertGreaterEqual(tls["resumed"], tls["handshakes"] - 2)
        # TLS 1.3 tickets are used once; how many connections resume depends on the
        # server sending a new ticket on resumed connections, so only some is asserted.
        report = self.load("--mode", "churn", "--connections", "2", "--warmup", "0.3")
        self.assertEqual(report["errors"], 0, report["error_kinds"])
        self.assertGreater(report["tls"]["resumed"], 0)

    def test_tls_options_need_tls(self):
        r = subprocess.run([LOAD, "--url", self.sb.url("/"), "--tls-version", "1.2"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("need --tls", r.stderr)


if __name__ == "__main__":
    unittest.main()
