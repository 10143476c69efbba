"""The Kubernetes example (packaging/kubernetes, docs/kubernetes.md): every manifest
parses and the kustomization lists them all; the pieces agree with each other (the
probes' port is the admin listener's, the SRV name is the headless Service's, the
grace period outlasts preStop + drain_timeout, the load balancer selects the pods);
the ConfigMap's TOML passes `switchboard --check`; and the ConfigMap's entrypoint,
run for real with sh, substitutes the pod IP (IPv4 and IPv6), raises the soft
descriptor limit to the hard one and execs switchboard, whose /healthz then answers on
that address.

Needs Debian's python3-yaml (tools/setup). `kubectl kustomize` is tried only where a
kubectl is installed."""

import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import tomllib
import unittest
import urllib.request

import yaml

from sbtest import BINARY, SOURCE_DIR, Process, split_address

KUBE_DIR = os.path.join(SOURCE_DIR, "packaging", "kubernetes")
KUBECTL = shutil.which("kubectl")


def load(name):
    with open(os.path.join(KUBE_DIR, name)) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert len(docs) == 1, f"{name}: one object per file"
    return docs[0]


def configmap():
    return load("configmap.yaml")


def render(pod_ip="10.1.2.3"):
    """The TOML as the entrypoint writes it for a pod with this IP."""
    return configmap()["data"]["switchboard.toml"].replace("${POD_IP}", pod_ip)


def container():
    return load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]


def duration_seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class ManifestsTest(unittest.TestCase):
    def test_every_manifest_parses_and_is_in_the_kustomization(self):
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(KUBE_DIR, "*.yaml")))
        kustomization = load("kustomization.yaml")
        self.assertEqual(sorted(kustomization["resources"]),
                         [f for f in files if f != "kustomization.yaml"])
        kinds = {}
        for name in kustomization["resources"]:
            doc = load(name)
            self.assertIn("apiVersion", doc, name)
            self.assertTrue(doc["metadata"]["name"], name)
            kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        self.assertEqual(kinds, {"Namespace": 1, "ConfigMap": 1, "Deployment": 1, "Service": 2,
                                 "PodDisruptionBudget": 1})

    def test_the_toml_passes_switchboard_check(self):
        # Passes once DNS discovery (srv), active health checks and slow_start are
        # merged: until then --check rejects them as "not supported yet".
        with tempfile.TemporaryDirectory(prefix="sbtest-") as d:
            path = os.path.join(d, "switchboard.toml")
            with open(path, "w") as f:
                f.write(render())
            r = subprocess.run([BINARY, "--check", "-c", path], capture_output=True, text=True,
                               timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration ok", r.stdout + r.stderr)

    def test_admin_listens_on_the_pod_ip_where_the_probes_look(self):
        config = tomllib.loads(render("10.1.2.3"))
        host, admin_port = split_address(config["admin"]["listen"])
        self.assertEqual(host, "10.1.2.3")
        c = container()
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports["admin"], admin_port)
        self.assertEqual(ports["ws"], split_address(config["listeners"][0]["listen"])[1])
        self.assertEqual(config["listeners"][0]["listen"], f"0.0.0.0:{ports['ws']}")
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(c[probe]["httpGet"], {"path": "/healthz", "port": "admin"}, probe)
        pod_ip = [e for e in c["env"] if e["name"] == "POD_IP"][0]
        self.assertEqual(pod_ip["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP")
        annotations = load("deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/port"], str(admin_port))

    def test_the_grace_period_outlasts_the_drain(self):
        drain = duration_seconds(tomllib.loads(render())["server"]["drain_timeout"])
        pod = load("deployment.yaml")["spec"]["template"]["spec"]
        c = container()
        pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(pre_stop[0], "sleep")
        self.assertGreater(pod["terminationGracePeriodSeconds"], int(pre_stop[1]) + drain)
        # /healthz answers 503 for the whole drain: liveness must not kill it meanwhile.
        live = c["livenessProbe"]
        self.assertGreater(live["periodSeconds"] * live["failureThreshold"], drain)

    def test_the_pod_runs_unprivileged(self):
        pod = load("deployment.yaml")["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        c = container()
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"])
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        # Its one writable place, where the entrypoint writes the configuration.
        config_path = [e["value"] for e in c["env"] if e["name"] == "SWITCHBOARD_CONFIG"][0]
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        self.assertIn(os.path.dirname(config_path), mounts)
        self.assertTrue(mounts["/etc/switchboard"]["readOnly"])

    def test_the_srv_name_is_the_headless_services(self):
        service = load("backend-service.yaml")
        self.assertEqual(service["spec"]["clusterIP"], "None")
        port_names = [p["name"] for p in service["spec"]["ports"]]
        self.assertIn("ws", port_names)
        namespace = load("kustomization.yaml")["namespace"]
        self.assertEqual(load("namespace.yaml")["metadata"]["name"], namespace)
        pool = tomllib.loads(render())["pools"]["chat"]
        self.assertEqual(pool["backends"],
                         [{"srv": f"_ws._tcp.{service['metadata']['name']}.{namespace}"
                                  ".svc.cluster.local"}])
        self.assertIn("resolve_interval", pool)
        self.assertIn("health_check", pool)
        self.assertIn("slow_start", pool)
        self.assertTrue(pool["rehome"])

    def test_the_load_balancer_selects_the_pods(self):
        service = load("service.yaml")
        self.assertEqual(service["spec"]["type"], "LoadBalancer")
        self.assertEqual(service["spec"]["externalTrafficPolicy"], "Local")
        labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
        for key, value in service["spec"]["selector"].items():
            self.assertEqual(labels.get(key), value)
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], "ws")
        pdb = load("pdb.yaml")
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                         load("deployment.yaml")["spec"]["selector"]["matchLabels"])

    @unittest.skipUnless(KUBECTL, "kubectl is not installed")
    def test_kubectl_kustomize_builds(self):
        r = subprocess.run([KUBECTL, "kustomize", KUBE_DIR], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        self.assertEqual(len(docs), 6)
        for doc in docs:
            if doc["kind"] != "Namespace":
                self.assertEqual(doc["metadata"]["namespace"], "chat", doc["kind"])


class EntrypointTest(unittest.TestCase):
    """The ConfigMap's entrypoint.sh run with sh, on a small configuration of its own
    (the ConfigMap's needs DNS), as the container would run it."""

    TEMPLATE = """
[admin]
listen = "${POD_IP}:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"

[pools.chat]
backends = [ { address = "127.0.0.1:9" } ]
"""

    def start(self, pod_ip):
        d = tempfile.mkdtemp(prefix="sbtest-")
        self.addCleanup(shutil.rmtree, d, True)
        bin_dir = os.path.join(d, "bin")
        os.mkdir(bin_dir)
        os.symlink(os.path.abspath(BINARY), os.path.join(bin_dir, "switchboard"))
        script = os.path.join(d, "entrypoint.sh")
        with open(script, "w") as f:
            f.write(configmap()["data"]["entrypoint.sh"])
        template = os.path.join(d, "template.toml")
        with open(template, "w") as f:
            f.write(self.TEMPLATE)
        config = os.path.join(d, "run", "switchboard.toml")
        os.mkdir(os.path.dirname(config))
        env = dict(os.environ, POD_IP=pod_ip, SWITCHBOARD_TEMPLATE=template,
                   SWITCHBOARD_CONFIG=config, PATH=bin_dir + os.pathsep + os.environ["PATH"])
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

        def low_soft_limit():
            # As a container runtime may start it: a soft limit far below the hard one.
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))

        p = Process(["sh", script], env=env, preexec_fn=low_soft_limit)
        self.addCleanup(p.stop)
        return p, config, hard

    def check(self, pod_ip, bracketed):
        p, config, hard = self.start(pod_ip)
        m = p.wait_line(r"^listening admin (\S+)$", stream="err")
        host, port = split_address(m.group(1))
        self.assertEqual(host, pod_ip)
        with open(config) as f:
            self.assertIn(f'listen = "{bracketed}:0"', f.read())
        # exec: the shell became switchboard, which gets the kubelet's SIGTERM itself.
        with open(f"/proc/{p.pid}/comm") as f:
            self.assertEqual(f.read().strip(), "switchboard")
        with open(f"/proc/{p.pid}/limits") as f:
            soft_now = re.search(r"(?m)^Max open files\s+(\d+)", f.read()).group(1)
        self.assertEqual(int(soft_now), hard)
        with urllib.request.urlopen(f"http://{bracketed}:{port}/healthz", timeout=10) as r:
            self.assertEqual((r.status, r.read()), (200, b"ok\n"))
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0)

    def test_ipv4_pod(self):
        self.check("127.0.0.1", "127.0.0.1")

    def test_ipv6_pod(self):
        self.check("::1", "[::1]")

    def test_without_pod_ip_it_refuses_to_start(self):
        p, _, _ = self.start("")
        p.wait(timeout=15)
        # stop() of an exited process collects the rest of its output.
        self.assertNotEqual(p.stop(), 0)
        self.assertTrue(any("POD_IP must be set" in line for line in p.output()), p.output())


if __name__ == "__main__":
    unittest.main()
