"""The Prometheus rules and the Grafana dashboard the packages install
(packaging/prometheus, packaging/grafana), checked against the real binary: the rules
pass `promtool check rules` and their unit tests (`promtool test rules`, synthetic
series that make backend-down, 1012-storm and limit alerts fire); a live /metrics
passes `promtool check metrics` (parser and lint: no finding at all); the dashboard is
a valid Grafana JSON model whose every panel has a data source and a target, whose
expressions parse as PromQL; and every switchboard_ metric that a rule or a dashboard
query names has a `# TYPE` line in the live /metrics.

promtool comes from Debian's prometheus package (tools/setup)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import yaml

from sbtest import SOURCE_DIR, PyBackend, Switchboard, run, whoami

PROMETHEUS_DIR = os.path.join(SOURCE_DIR, "packaging", "prometheus")
RULES = os.path.join(PROMETHEUS_DIR, "switchboard-rules.yml")
RULES_TEST = os.path.join(PROMETHEUS_DIR, "switchboard-rules.test.yml")
DASHBOARD = os.path.join(SOURCE_DIR, "packaging", "grafana", "switchboard-dashboard.json")
PROMTOOL = shutil.which("promtool")

# Findings of `promtool check metrics` accepted in the live output. None today: a
# finding is either a naming mistake to fix in proxy/admin/views.cpp or, if it is
# deliberate, goes here with the reason.
ACCEPTED_LINT = ()


def promtool(*args, stdin=None, cwd=None):
    return subprocess.run([PROMTOOL, *args], input=stdin, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def metric_names(expr):
    """The switchboard_ metric names a PromQL expression reads. String literals (label
    values) are dropped first; recording rule names (with a colon) are not metrics."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    tokens = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
    return {t for t in tokens if t.startswith("switchboard_") and ":" not in t}


def rules():
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels(model):
    """Every panel, those inside collapsed rows too."""
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions(model):
    """(where, expr) for every panel target and every query variable."""
    for panel in panels(model):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r}", target.get("expr", "")
    for variable in model["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query


def as_promql(expr):
    """A dashboard expression with Grafana's variables replaced, so that promtool can
    parse it; label_values() (a Grafana function) becomes its metric selector."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    expr = re.sub(r"\$\{?(\w+)\}?", ".*", expr)
    m = re.fullmatch(r"label_values\((.*),\s*\w+\)", expr.strip(), re.S)
    return m.group(1) if m else expr


@unittest.skipUnless(PROMTOOL, "promtool is not installed (tools/setup installs prometheus)")
class RulesTest(unittest.TestCase):
    def test_promtool_check_rules(self):
        r = promtool("check", "rules", RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_promtool_rule_unit_tests(self):
        # Backend down, all backends down, 1012 storm, connections near the listener,
        # server and backend limits (and not for a limit of 0), descriptors, reload
        # failures, refusals, health checks, DNS, draining: firing and silent cases.
        r = promtool("test", "rules", os.path.basename(RULES_TEST), cwd=PROMETHEUS_DIR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_every_alert_has_severity_and_annotations(self):
        alerts = [r for r in rules() if "alert" in r]
        self.assertGreaterEqual(len(alerts), 10)
        names = [a["alert"] for a in alerts]
        self.assertEqual(len(names), len(set(names)), "alert names must be unique")
        for alert in alerts:
            with self.subTest(alert=alert["alert"]):
                self.assertRegex(alert["alert"], r"^Switchboard[A-Z0-9]\w+$")
                self.assertIn(alert["labels"]["severity"], ("warning", "critical"))
                self.assertTrue(alert["annotations"]["summary"].strip())
                self.assertTrue(alert["annotations"]["description"].strip())

    def test_the_issue_alerts_exist(self):
        names = {r["alert"] for r in rules() if "alert" in r}
        for name in ("SwitchboardListenerNearConnectionLimit",
                     "SwitchboardServerNearConnectionLimit",
                     "SwitchboardBackendNearConnectionLimit",
                     "SwitchboardFileDescriptorsNearLimit", "SwitchboardBackendDown",
                     "SwitchboardPoolAllBackendsDown", "SwitchboardHealthChecksFailing",
                     "SwitchboardConfigReloadFailed", "SwitchboardConnectionsRefused",
                     "Switchboard1012Storm", "SwitchboardDnsLookupsFailing",
                     "SwitchboardDrainingTooLong"):
            self.assertIn(name, names)


class DashboardTest(unittest.TestCase):
    def test_dashboard_model(self):
        model = dashboard()  # valid JSON, or this raises
        self.assertGreaterEqual(model["schemaVersion"], 36)
        self.assertTrue(model["uid"])
        variables = {v["name"]: v for v in model["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        for name in ("instance", "pool"):
            self.assertEqual(variables[name]["type"], "query")
            self.assertEqual(variables[name]["datasource"]["uid"], "${datasource}")
        ids = [p["id"] for p in panels(model)]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")

    def test_every_panel_has_a_datasource_and_a_target(self):
        graphs = [p for p in panels(dashboard()) if p["type"] != "row"]
        self.assertGreaterEqual(len(graphs), 15)
        for panel in graphs:
            with self.subTest(panel=panel["title"]):
                self.assertEqual(panel["datasource"], {"type": "prometheus", "uid": "${datasource}"})
                self.assertTrue(panel["targets"])
                for target in panel["targets"]:
                    self.assertEqual(target["datasource"]["uid"], "${datasource}")
                    self.assertTrue(target["expr"].strip())
                    self.assertTrue(target["refId"])
                for key in ("h", "w", "x", "y"):
                    self.assertIn(key, panel["gridPos"])

    def test_the_issue_panels_exist(self):
        used = set()
        for _, expr in dashboard_expressions(dashboard()):
            used |= metric_names(expr)
        for name in ("switchboard_connections_active", "switchboard_listener_max_connections",
                     "switchboard_handshake_duration_seconds_bucket", "switchboard_messages_total",
                     "switchboard_bytes_total", "switchboard_closes_total",
                     "switchboard_rejections_total", "switchboard_backend_up",
                     "switchboard_backend_health_check_seconds", "switchboard_backend_slow_start",
                     "switchboard_dns_lookups_total", "switchboard_config_reloads_total",
                     "switchboard_rooms"):
            self.assertIn(name, used)

    @unittest.skipUnless(PROMTOOL, "promtool is not installed (tools/setup installs prometheus)")
    def test_dashboard_expressions_parse(self):
        # promtool parses PromQL only inside rule files: one recording rule per query.
        exprs = [(where, as_promql(e)) for where, e in dashboard_expressions(dashboard())]
        doc = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query_{i}:check", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
        with tempfile.TemporaryDirectory(prefix="sbtest-") as d:
            path = os.path.join(d, "dashboard-queries.yml")
            with open(path, "w") as f:
                yaml.safe_dump(doc, f)
            r = promtool("check", "rules", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + "\n" +
                         "\n".join(f"{i}: {w}: {e}" for i, (w, e) in enumerate(exprs)))


@unittest.skipUnless(PROMTOOL, "promtool is not installed (tools/setup installs prometheus)")
class LiveMetricsTest(unittest.TestCase):
    """One real switchboard with an admin listener, one WebSocket relayed through it
    (so the histogram and the close counters have samples), then /metrics."""

    @classmethod
    def setUpClass(cls):
        cls.backend = PyBackend("b1")
        try:
            cls.sb = Switchboard(f"""
[server]
workers = 1
max_connections = 5000

[admin]
listen = "127.0.0.1:0"

[[listeners]]
name = "public"
listen = "127.0.0.1:0"
pool = "chat"
max_connections = 1000

[pools.chat]
backends = [ {{ address = "{cls.backend.address}" }} ]
max_connections_per_backend = 300
""", listeners=("public", "admin"))
        except BaseException:
            cls.backend.stop()
            raise
        try:
            assert run(whoami(cls.sb.url("/chat"))) == "b1"
            host, port = cls.sb.addresses["admin"]
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
                cls.metrics = r.read().decode()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sb.stop()
        cls.backend.stop()

    def exported(self):
        """name -> type, from the # TYPE lines."""
        return dict(re.findall(r"^# TYPE (\S+) (\S+)$", self.metrics, re.M))

    def test_promtool_check_metrics_finds_nothing(self):
        r = promtool("check", "metrics", stdin=self.metrics)
        findings = [line for line in (r.stdout + r.stderr).splitlines()
                    if line.strip() and not any(a in line for a in ACCEPTED_LINT)]
        self.assertEqual(findings, [], "promtool check metrics:\n" + r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0)

    def test_limits_and_descriptors_are_exported(self):
        self.assertRegex(self.metrics, r"(?m)^switchboard_server_max_connections 5000$")
        self.assertRegex(self.metrics,
                         r'(?m)^switchboard_listener_max_connections\{listener="public"\} 1000$')
        self.assertRegex(self.metrics,
                         r'(?m)^switchboard_backend_max_connections\{pool="chat"\} 300$')
        open_fds = int(re.search(r"(?m)^switchboard_open_fds (\d+)$", self.metrics).group(1))
        max_fds = int(re.search(r"(?m)^switchboard_max_fds (\d+)$", self.metrics).group(1))
        self.assertGreater(open_fds, 3)
        self.assertGreaterEqual(max_fds, open_fds)
        with open(f"/proc/{self.sb.pid}/limits") as f:
            soft = re.search(r"(?m)^Max open files\s+(\d+)", f.read()).group(1)
        self.assertEqual(max_fds, int(soft))

    def assert_all_exported(self, used, source):
        exported = self.exported()

        def known(name):
            if name in exported:
                return True
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            return base != name and exported.get(base) in ("histogram", "summary")

        missing = sorted(f"{name} (in {', '.join(sorted(where))})"
                         for name, where in used.items() if not known(name))
        self.assertEqual(missing, [], f"{source} use metrics that /metrics does not export")

    def test_every_metric_the_rules_use_is_exported(self):
        used = {}
        for rule in rules():
            for name in metric_names(rule["expr"]):
                used.setdefault(name, set()).add(rule.get("alert") or rule.get("record"))
        self.assertGreater(len(used), 10)
        self.assert_all_exported(used, "the rules")

    def test_every_metric_the_dashboard_uses_is_exported(self):
        used = {}
        for where, expr in dashboard_expressions(dashboard()):
            for name in metric_names(expr):
                used.setdefault(name, set()).add(where)
        self.assertGreater(len(used), 15)
        self.assert_all_exported(used, "the dashboard's queries")


class MetricNamesTest(unittest.TestCase):
    """The extraction the checks above rely on."""

    def test_names_labels_strings_and_recording_rules(self):
        expr = ('sum without (reason) (rate(switchboard_rejections_total{reason="switchboard_x"}[5m]))'
                ' / instance:switchboard_connections_active:sum'
                ' and histogram_quantile(0.99, switchboard_handshake_duration_seconds_bucket)')
        self.assertEqual(metric_names(expr), {"switchboard_rejections_total",
                                              "switchboard_handshake_duration_seconds_bucket"})

    def test_grafana_variables_become_promql(self):
        self.assertEqual(as_promql('rate(x{instance=~"$instance"}[$__rate_interval])'),
                         'rate(x{instance=~".*"}[5m])')
        self.assertEqual(as_promql("label_values(switchboard_rooms{instance=~\"$instance\"}, pool)"),
                         'switchboard_rooms{instance=~".*"}')


if __name__ == "__main__":
    unittest.main()
