"""The certificates of the TLS measurements (tools/bench's wss scenarios and
tools/ops-bench's tls): a fresh self-signed one per measurement, made by the openssl
command, for `localhost` and 127.0.0.1."""

import subprocess


def make_certificate(work, kind="ec"):
    """Writes WORK/KIND.pem and WORK/KIND.key and returns (certificate, key): an
    ECDSA P-256 key (kind "ec") or an RSA-2048 one ("rsa"), valid for two days. The
    certificate is its own CA, so a client verifies the server with it as the CA
    file."""
    key, cert = str(work / f"{kind}.key"), str(work / f"{kind}.pem")
    newkey = (["-newkey", "rsa:2048"] if kind == "rsa"
              else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", "2", "-keyout", key,
                    "-out", cert, "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key
