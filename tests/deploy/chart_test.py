#!/usr/bin/env python3
"""Checks the Helm chart: values against values.schema.json, rendering with the default and
example values, and refusal to render any configuration that could overflow the cluster's
session table (README "Session budget")."""
import pathlib
import re
import sys
import unittest

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import render_chart  # noqa: E402
from render_chart import RenderError  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tbproxy"
VALUES = pathlib.Path(__file__).resolve().parent / "values"


def schema_errors(value, schema, path="values"):
    """The draft-07 subset values.schema.json uses: type, enum, required, properties, items,
    minimum, maximum, minLength, minItems, maxItems, pattern."""
    errors = []
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    expected = schema.get("type")
    if expected == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected an integer, got {value!r}"]
    elif expected in kinds and not isinstance(value, kinds[expected]):
        return [f"{path}: expected {expected}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} > maximum {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than {schema['minLength']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    for key in schema.get("required", []):
        if key not in value:
            errors.append(f"{path}: missing {key}")
    for key, sub in schema.get("properties", {}).items():
        if isinstance(value, dict) and key in value:
            errors += schema_errors(value[key], sub, f"{path}.{key}")
    if "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors


def config_settings():
    """The settings tbproxy reads (proxy/app/config.cc), as flag names with underscores."""
    names = re.findall(r"^TB_SETTING_FLAG\((\w+),", (ROOT / "proxy" / "app" / "config.cc").read_text(),
                       re.M)
    if len(names) < 10:
        raise AssertionError(f"only {len(names)} settings found in proxy/app/config.cc")
    return set(names)


def merged_values(*files):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in files:
        render_chart.merge(values, yaml.safe_load(path.read_text()))
    return values


def render(*files, sets=()):
    """{kind: [manifest]} of a successful rendering."""
    manifests = {}
    for name, text in render_chart.render_chart(CHART, files, sets):
        if name.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                manifests.setdefault(document["kind"], []).append(document)
    return manifests


def only(manifests, kind):
    assert len(manifests[kind]) == 1, manifests.get(kind)
    return manifests[kind][0]


class SchemaTest(unittest.TestCase):
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())

    def test_default_and_example_values_match_the_schema(self):
        self.assertEqual(schema_errors(merged_values(), self.schema), [])
        for path in sorted(VALUES.glob("*.yaml")):
            with self.subTest(path.name):
                self.assertEqual(schema_errors(merged_values(path), self.schema), [])

    def test_schema_rejects_out_of_range_values(self):
        values = merged_values()
        values["proxy"]["sessionBudget"] = 64
        values["cluster"]["reservedSessions"] = 0
        values["cluster"]["addresses"] = ["no-port"]
        values["image"]["pullPolicy"] = "Sometimes"
        errors = schema_errors(values, self.schema)
        self.assertEqual(len(errors), 4, errors)


class DefaultRenderingTest(unittest.TestCase):
    manifests = render()

    def test_renders_the_expected_objects(self):
        self.assertEqual(sorted(self.manifests), ["ConfigMap", "Deployment",
                                                  "HorizontalPodAutoscaler",
                                                  "PodDisruptionBudget", "Service",
                                                  "ServiceAccount"])

    def test_hpa_bounds_follow_the_session_budget(self):
        hpa = only(self.manifests, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["spec"]["maxReplicas"], 6)  # 6 x 8 = 48 = 64 - 16.
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "tbproxy")
        # With an HPA the Deployment leaves the replica count to it.
        self.assertNotIn("replicas", only(self.manifests, "Deployment")["spec"])

    def test_service_exposes_grpc_and_metrics(self):
        ports = {p["name"]: p["port"] for p in only(self.manifests, "Service")["spec"]["ports"]}
        self.assertEqual(ports, {"grpc": 50051, "metrics": 9464})

    def test_probes_use_grpc_health_and_healthz(self):
        container = only(self.manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["readinessProbe"]["grpc"], {"port": 50051})
        self.assertEqual(container["startupProbe"]["grpc"], {"port": 50051})
        self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])
        pod = only(self.manifests, "Deployment")["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])

    def test_config_map_carries_the_session_settings(self):
        data = only(self.manifests, "ConfigMap")["data"]
        self.assertEqual(data["TBPROXY_SESSIONS"], "4")
        self.assertEqual(data["TBPROXY_SESSION_BUDGET"], "8")
        self.assertEqual(data["TBPROXY_CLUSTER_ADDRESSES"], "tigerbeetle-0.tigerbeetle:3000")
        self.assertEqual(data["TBPROXY_LISTEN"], "0.0.0.0:50051")
        self.assertEqual(data["TBPROXY_METRICS_LISTEN"], "0.0.0.0:9464")
        self.assertFalse(any(key.startswith("TBPROXY_TLS") for key in data))
        container = only(self.manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["envFrom"], [{"configMapRef": {"name": "tbproxy"}}])
        self.assertNotIn("args", container)

    def test_config_map_names_only_real_settings(self):
        for manifests in (self.manifests, render(VALUES / "production.yaml")):
            for key in only(manifests, "ConfigMap")["data"]:
                self.assertTrue(key.startswith("TBPROXY_"), key)
                self.assertIn(key[len("TBPROXY_"):].lower(), config_settings())

    def test_config_changes_roll_the_pods(self):
        annotations = only(self.manifests, "Deployment")["spec"]["template"]["metadata"][
            "annotations"]
        changed = render(sets=["proxy.sessions=3"])
        changed_annotations = only(changed, "Deployment")["spec"]["template"]["metadata"][
            "annotations"]
        self.assertRegex(annotations["checksum/config"], "^[0-9a-f]{64}$")
        self.assertNotEqual(annotations["checksum/config"], changed_annotations["checksum/config"])


class ProductionRenderingTest(unittest.TestCase):
    manifests = render(VALUES / "production.yaml")

    def test_tls_and_tokens_come_from_secret_references(self):
        pod = only(self.manifests, "Deployment")["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "tbproxy-tls")
        self.assertEqual(volumes["auth"]["secret"]["secretName"], "tbproxy-tokens")
        self.assertNotIn("Secret", self.manifests)  # The chart never holds key material.
        data = only(self.manifests, "ConfigMap")["data"]
        self.assertEqual(data["TBPROXY_TLS_CERT_FILE"], "/etc/tbproxy/tls/tls.crt")
        self.assertEqual(data["TBPROXY_TLS_CLIENT_CA_FILE"], "/etc/tbproxy/tls/ca.crt")
        self.assertEqual(data["TBPROXY_TOKEN_FILE"], "/etc/tbproxy/auth/tokens")
        self.assertEqual(data["TBPROXY_CLUSTER_ADDRESSES"],
                         "10.0.0.1:3000,10.0.0.2:3000,10.0.0.3:3000")
        self.assertEqual(data["TBPROXY_CLUSTER_ID"], "0x1234abcd")
        container = pod["containers"][0]
        self.assertEqual(container["args"], ["--queued-events-max=2000000"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        self.assertEqual(mounts, {"tls": "/etc/tbproxy/tls", "auth": "/etc/tbproxy/auth"})
        # Kubernetes gRPC probes cannot speak TLS: readiness falls back to /readyz.
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")

    def test_monitoring_resources_render(self):
        monitor = only(self.manifests, "ServiceMonitor")
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")
        self.assertEqual(monitor["metadata"]["labels"]["release"], "prometheus")
        rule = only(self.manifests, "PrometheusRule")
        alerts = yaml.safe_load((ROOT / "docker" / "prometheus" / "alerts.yml").read_text())
        self.assertEqual(rule["spec"], alerts)
        names = {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}
        self.assertTrue({"TbproxySessionEvicted", "TbproxySessionBudgetNearClientsMax",
                         "TbproxyRefusingCalls", "TbproxyHighLatency"} <= names)
        self.assertIn("{{ $labels.reason }}", yaml.safe_dump(rule))

    def test_pod_annotations_are_kept(self):
        annotations = only(self.manifests, "Deployment")["spec"]["template"]["metadata"][
            "annotations"]
        self.assertEqual(annotations["team"], "payments")


class SessionBudgetTest(unittest.TestCase):
    def assert_fails(self, pattern, *files, sets=()):
        with self.assertRaisesRegex(RenderError, pattern):
            render(*files, sets=sets)

    def test_hpa_max_replicas_above_the_budget_fails(self):
        self.assert_fails(r"session budget exceeded: 7 pods x proxy.sessionBudget 8 = 56 "
                          r"sessions, but cluster.clientsMax 64 - cluster.reservedSessions 16 "
                          r"leaves 48", VALUES / "budget-exceeded.yaml")

    def test_surge_pods_count_against_the_budget(self):
        self.assert_fails(r"7 pods x proxy.sessionBudget 8 = 56", VALUES / "surge-exceeds-budget.yaml")

    def test_fixed_replica_count_above_the_budget_fails(self):
        self.assert_fails(r"4 pods x proxy.sessionBudget 13 = 52",
                          VALUES / "fixed-replicas-exceed-budget.yaml")

    def test_fixed_replica_count_within_the_budget_renders(self):
        manifests = render(sets=["autoscaling.enabled=false", "replicaCount=6"])
        self.assertEqual(only(manifests, "Deployment")["spec"]["replicas"], 6)
        self.assertNotIn("HorizontalPodAutoscaler", manifests)

    def test_sessions_above_the_per_pod_budget_fail(self):
        self.assert_fails(r"proxy.sessions \(9\) must not exceed proxy.sessionBudget \(8\)",
                          VALUES / "sessions-above-budget.yaml")

    def test_no_room_for_other_clients_fails(self):
        self.assert_fails(r"reservedSessions must be at least 1", sets=["cluster.reservedSessions=0"])

    def test_tls_without_a_secret_fails(self):
        self.assert_fails(r"tls.enabled needs tls.secretName", sets=["tls.enabled=true"])

    def test_min_replicas_above_max_fails(self):
        self.assert_fails(r"minReplicas must not exceed", sets=["autoscaling.minReplicas=5",
                                                                "autoscaling.maxReplicas=4"])


class RendererTest(unittest.TestCase):
    """The renderer itself: the Go-template behaviour the chart relies on."""

    def render_text(self, source, values=None):
        nodes, _ = render_chart.Parser(render_chart.lex(source, "t"), "t", {}).parse_body(set())
        root = {"Values": values or {}}
        return render_chart.Renderer({}, {}, root).render(nodes, root, [{"$": root}])

    def test_trim_markers(self):
        self.assertEqual(self.render_text("a  \n  {{- 1 -}}  \n b"), "a1b")
        self.assertEqual(self.render_text("a {{ 1 }} b"), "a 1 b")

    def test_if_else_if_else(self):
        source = "{{ if eq .Values.x 1 }}one{{ else if eq .Values.x 2 }}two{{ else }}many{{ end }}"
        self.assertEqual(self.render_text(source, {"x": 1}), "one")
        self.assertEqual(self.render_text(source, {"x": 2}), "two")
        self.assertEqual(self.render_text(source, {"x": 3}), "many")

    def test_range_and_with(self):
        self.assertEqual(self.render_text("{{ range $k, $v := .Values }}{{ $k }}={{ $v }};{{ end }}",
                                          {"b": 2, "a": 1}), "a=1;b=2;")
        self.assertEqual(self.render_text("{{ with .Values.m }}{{ .n }}{{ else }}none{{ end }}",
                                          {"m": {"n": 5}}), "5")
        self.assertEqual(self.render_text("{{ with .Values.m }}{{ .n }}{{ else }}none{{ end }}"),
                         "none")

    def test_pipelines_and_functions(self):
        self.assertEqual(self.render_text('{{ "abc" | quote }}'), '"abc"')
        self.assertEqual(self.render_text('{{ .Values.x | default "d" }}'), "d")
        self.assertEqual(self.render_text("{{ mul (add 1 2) 4 }}"), "12")
        self.assertEqual(self.render_text('{{ printf "%s-%d" "a" 3 }}'), "a-3")
        self.assertEqual(self.render_text("{{ toYaml .Values | nindent 2 }}", {"a": [1]}),
                         "\n  a:\n  - 1")

    def test_unknown_functions_and_fail_are_errors(self):
        with self.assertRaisesRegex(RenderError, "not supported"):
            self.render_text("{{ lookup 1 }}")
        with self.assertRaisesRegex(RenderError, "stop here"):
            self.render_text('{{ fail "stop here" }}')
        with self.assertRaisesRegex(RenderError, "missing"):
            self.render_text("{{ if true }}x")


if __name__ == "__main__":
    unittest.main(verbosity=2)
