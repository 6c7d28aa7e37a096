#!/usr/bin/env python3
"""tbproxy's metrics listener end to end, with the real Prometheus tools:

1. starts tbproxy (embedded dev cluster, gRPC and metrics on 127.0.0.1 port 0);
2. /healthz answers 200 at once, /readyz turns 200 once a session registered;
3. `promtool check metrics` accepts the exposition (naming and unit conventions);
4. a real Prometheus server scrapes it and answers queries on tbproxy's series, and accepts every
   expression of the Grafana dashboard and of the alert rules;
5. SIGTERM drains and stops tbproxy with exit code 0.

    metrics_e2e.py path/to/tbproxy
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

STARTUP_TIMEOUT_S = 60
SCRAPE_TIMEOUT_S = 60


def get(url):
    """(status, body) of an HTTP GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


def wait_for(what, predicate, timeout_s):
    """Polls `predicate` until it returns a truthy value; the deadline only bounds a hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s} s")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_tbproxy(binary, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(
        [binary, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--sessions=2",
         "--session-budget=4"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline()
    if not line.startswith("tbproxy listening on port"):
        process.kill()
        raise AssertionError(f"tbproxy did not start: {line!r}\n{pathlib.Path(log_path).read_text()}")
    match = re.search(r"event=metrics_listening port=(\d+)", pathlib.Path(log_path).read_text())
    if not match:
        process.kill()
        raise AssertionError("no metrics_listening line in tbproxy's log")
    return process, int(match.group(1))


def check_exposition(base):
    status, body = get(base + "/healthz")
    assert status == 200, status
    wait_for("/readyz 200", lambda: get(base + "/readyz")[0] == 200, STARTUP_TIMEOUT_S)
    status, text = get(base + "/metrics")
    assert status == 200, status
    for expected in ('tbproxy_build_info{tigerbeetle_release=', "tbproxy_session_budget 4",
                     "tbproxy_sessions_registered ", "# TYPE tbproxy_request_duration_seconds histogram"):
        assert expected in text, f"{expected!r} missing from /metrics"
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True)
    assert lint.returncode == 0, f"promtool check metrics:\n{lint.stdout}{lint.stderr}"
    print("exposition: ok, promtool check metrics: ok")


def check_prometheus_scrapes(metrics_port, directory):
    port = free_port()
    config = pathlib.Path(directory) / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "tbproxy",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(pathlib.Path(directory) / "prometheus.log", "w"))
    try:
        def query(expression):
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": expression})
            status, body = get(url)
            if status != 200:
                return None
            result = json.loads(body)["data"]["result"]
            return result or None

        up = wait_for("Prometheus to scrape tbproxy", lambda: query('up{job="tbproxy"} == 1'),
                      SCRAPE_TIMEOUT_S)
        assert up[0]["value"][1] == "1", up
        sessions = wait_for("tbproxy_sessions_registered > 0 in Prometheus",
                            lambda: query("tbproxy_sessions_registered > 0"), SCRAPE_TIMEOUT_S)
        assert float(sessions[0]["value"][1]) >= 1, sessions
        budget = query("tbproxy_session_budget")
        assert budget and budget[0]["value"][1] == "4", budget
        info = query("tbproxy_build_info")
        assert info and info[0]["metric"]["version"], info
        for expression in monitoring_expressions():
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": expression})
            status, body = get(url)
            assert status == 200, f"Prometheus refused {expression!r}: {body}"
        print("prometheus: scraped, queries ok, dashboard and alert expressions ok")
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


def monitoring_expressions():
    """Every PromQL expression of the dashboard (Grafana variables filled in) and the alerts."""
    root = pathlib.Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "docker" / "grafana" / "dashboards" / "tbproxy.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions = [e.replace("$__rate_interval", "1m").replace("$job", ".*") for e in expressions]
    alerts = yaml.safe_load((root / "docker" / "prometheus" / "alerts.yml").read_text())
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    assert len(expressions) > 20, expressions
    return expressions


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "tbproxy.log")
        process, metrics_port = start_tbproxy(sys.argv[1], log_path)
        try:
            check_exposition(f"http://127.0.0.1:{metrics_port}")
            check_prometheus_scrapes(metrics_port, directory)
        except BaseException:
            print(pathlib.Path(log_path).read_text(), file=sys.stderr)
            process.kill()
            raise
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        assert code == 0, f"tbproxy exited with {code}"
        log = pathlib.Path(log_path).read_text()
        assert "event=stopped" in log, log
        print("drain: exit 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
