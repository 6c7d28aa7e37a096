#!/usr/bin/env python3
"""Checks that the monitoring files speak of metrics tbproxy really exports:

- every `tbproxy_*` name in the Grafana dashboard, the alert rules and the README's metric table
  is a family registered in proxy/metrics/metrics.cc (histograms also as _bucket, _sum, _count);
- every family registered in proxy/metrics/metrics.cc is documented in the README;
- the alert rules and the Prometheus configuration pass `promtool check`, and the chart's copy of
  the rules is byte-identical to docker/'s.
"""
import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
NAME = re.compile(r"\btbproxy_[a-z0-9_]+\b")


def exported_families():
    """{family name: is histogram} from the Name(...) calls and helpers in proxy/metrics/metrics.cc."""
    source = (ROOT / "proxy" / "metrics" / "metrics.cc").read_text()
    families = {}
    for match in re.finditer(r'(Build\w+\(\)\s*\.Name\(|gauge\(|counter\()\s*"(tbproxy_[a-z0-9_]+)"',
                             source):
        families[match.group(2)] = "BuildHistogram" in match.group(1)
    if len(families) < 15:
        raise AssertionError(f"only {len(families)} families found in proxy/metrics/metrics.cc")
    return families


def known_series():
    names = set()
    for family, histogram in exported_families().items():
        names.add(family)
        if histogram:
            names |= {family + "_bucket", family + "_sum", family + "_count"}
    return names


def dashboard_expressions():
    dashboard = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "tbproxy.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [variable["query"] for variable in dashboard["templating"]["list"]]
    return dashboard, expressions


class MetricNamesTest(unittest.TestCase):
    def assert_known(self, where, text):
        unknown = set(NAME.findall(text)) - known_series()
        self.assertEqual(unknown, set(), f"{where} uses metrics tbproxy does not export")

    def test_dashboard_uses_exported_metrics(self):
        dashboard, expressions = dashboard_expressions()
        self.assertEqual(dashboard["uid"], "tbproxy")
        self.assertGreaterEqual(len(dashboard["panels"]), 10)
        ids = [panel["id"] for panel in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        for expression in expressions:
            self.assert_known("the dashboard", expression)
        used = {name for e in expressions for name in NAME.findall(e)}
        for family in ("tbproxy_session_evictions_total", "tbproxy_message_fill_ratio_bucket",
                       "tbproxy_queue_wait_seconds_bucket", "tbproxy_refusals_total"):
            self.assertIn(family, used)

    def test_alerts_use_exported_metrics(self):
        rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
        for rule in rules:
            self.assert_known(f"alert {rule['alert']}", rule["expr"])

    def test_readme_documents_every_family_and_nothing_else(self):
        readme = (ROOT / "README.md").read_text()
        table = re.search(r"^\| Metric \| Type \| Labels \| Meaning \|\n(.*?)\n\n", readme,
                          re.S | re.M)
        self.assertIsNotNone(table, "README.md has no metric table")
        documented = set(NAME.findall(table.group(1)))
        self.assertEqual(documented, set(exported_families()))


class PromtoolTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("promtool") is None:
            self.fail("promtool (Debian package prometheus) is missing: run scripts/install-deps.sh")

    def test_rules_are_valid(self):
        result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                                text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_prometheus_configuration_is_valid(self):
        config = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
        self.assertEqual(config["rule_files"], ["/etc/prometheus/alerts.yml"])
        with tempfile.TemporaryDirectory() as directory:
            # The container path of the rules file is replaced by the file itself.
            config["rule_files"] = [str(ALERTS)]
            path = pathlib.Path(directory) / "prometheus.yml"
            path.write_text(yaml.safe_dump(config))
            result = subprocess.run(["promtool", "check", "config", str(path)],
                                    capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_chart_rules_are_the_same_file(self):
        self.assertEqual((ROOT / "helm" / "tbproxy" / "files" / "alerts.yml").read_bytes(),
                         ALERTS.read_bytes())


if __name__ == "__main__":
    unittest.main(verbosity=2)
