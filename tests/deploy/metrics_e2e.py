#!/usr/bin/env python3
"""tbproxy's metrics listener end to end, with the real Prometheus tools:

1. starts tbproxy (embedded dev cluster, gRPC, native port and metrics on 127.0.0.1 port 0);
2. /healthz answers 200 at once, /readyz turns 200 once a session registered;
3. native traffic: the official Node client (when --node is given and tests/node has its
   packages) through a relay that records its requests, the last of them sent again on a new
   connection (answered from the stored reply), and a connection of garbage;
4. `promtool check metrics` accepts the exposition (naming and unit conventions);
5. a real Prometheus server scrapes it and answers queries on tbproxy's series, the native front
   end's included, and accepts every expression of the Grafana dashboard and of the alert rules;
6. SIGTERM drains and stops tbproxy with exit code 0.

    metrics_e2e.py path/to/tbproxy [--node=path/to/node]
"""
import argparse
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import struct
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

STARTUP_TIMEOUT_S = 60
SCRAPE_TIMEOUT_S = 60
NODE_TIMEOUT_S = 60
ROOT = pathlib.Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "tests" / "node" / "node_modules" / "tigerbeetle-node"
HEADER_SIZE = 256
SIZE_OFFSET = 96      # Frame.size, u32 little endian.
COMMAND_OFFSET = 114  # Frame.command.
COMMAND_REQUEST = 5


def get(url):
    """(status, body) of an HTTP GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:  # Refused, reset or timed out (URLError is one too).
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


def start_prometheus(config, directory):
    """(process, port) of a Prometheus serving on 127.0.0.1. Its port is picked free and then
    given to it, so another program may take it in between (tests run in parallel): then it
    exits at once, and it is started again on another port."""
    log_path = pathlib.Path(directory) / "prometheus.log"
    for _ in range(5):
        port = free_port()
        with open(log_path, "w") as log:  # Prometheus keeps its own copy of the descriptor.
            prometheus = subprocess.Popen(
                ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while prometheus.poll() is None and time.monotonic() < deadline:
            if get(f"http://127.0.0.1:{port}/-/ready")[0] == 200:
                return prometheus, port
            time.sleep(0.1)
        prometheus.kill()
        prometheus.wait(timeout=30)
        log = log_path.read_text()
        if "address already in use" not in log:
            raise AssertionError(f"Prometheus did not become ready:\n{log}")
    raise AssertionError("Prometheus found no free port in 5 tries")


def start_tbproxy(binary, log_path):
    """(process, metrics port, native port); the native port's line comes before the gRPC one."""
    log = open(log_path, "w")
    process = subprocess.Popen(
        [binary, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
         "--native-listen=127.0.0.1:0", "--sessions=2", "--session-budget=4"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    native_line = process.stdout.readline()
    line = process.stdout.readline()
    native = re.match(r"tbproxy native listening on port (\d+)$", native_line.strip())
    if not native or not line.startswith("tbproxy listening on port"):
        process.kill()
        raise AssertionError(f"tbproxy did not start: {native_line!r} {line!r}\n"
                             f"{pathlib.Path(log_path).read_text()}")
    match = re.search(r"event=metrics_listening port=(\d+)", pathlib.Path(log_path).read_text())
    if not match:
        process.kill()
        raise AssertionError("no metrics_listening line in tbproxy's log")
    return process, int(match.group(1)), int(native.group(1))


def read_message(sock):
    """One whole message (header and body) from `sock`, or None when it closed."""
    data = b""
    while len(data) < HEADER_SIZE or len(data) < struct.unpack_from("<I", data, SIZE_OFFSET)[0]:
        chunk = sock.recv(65536 if len(data) >= HEADER_SIZE else HEADER_SIZE - len(data))
        if not chunk:
            return None
        data += chunk
        if len(data) >= HEADER_SIZE and struct.unpack_from("<I", data, SIZE_OFFSET)[0] < HEADER_SIZE:
            return None
    return data


class RequestRecorder:
    """A TCP relay to tbproxy's native port that keeps every request message a client sends."""

    def __init__(self, native_port):
        self.native_port = native_port
        self.requests = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.native_port))
            threading.Thread(target=self._relay, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, False), daemon=True).start()

    def _relay(self, source, target, record):
        try:
            while (message := read_message(source)) is not None:
                if record and message[COMMAND_OFFSET] == COMMAND_REQUEST:
                    self.requests.append(message)
                target.sendall(message)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


NODE_SCRIPT = """
const tb = require(process.argv[1]);
const { account } = require(process.argv[2]);
const keepAlive = setInterval(() => {}, 1000);  // The client's retries do not keep Node alive.
(async () => {
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: [process.argv[3]] });
  const created = await client.createAccounts([account(77n)]);
  const [found] = await client.lookupAccounts([77n]);
  client.destroy();
  clearInterval(keepAlive);
  console.log(JSON.stringify({ created: created[0].status, found: String(found.id) }));
})().catch((e) => { console.log(String(e)); process.exit(1); });
"""


def drive_native_traffic(native_port, node, metrics_base):
    """Native traffic for the tbproxy_native_* series; returns whether the Node client ran."""
    with socket.create_connection(("127.0.0.1", native_port)) as garbage:
        garbage.sendall(bytes([0xA5]) * HEADER_SIZE)  # A bad checksum: closed, unanswered.
        try:
            answer = read_message(garbage)
        except ConnectionResetError:
            answer = None
        assert answer is None, answer
    if not (node and os.path.exists(node) and NODE_CLIENT.exists()):
        print(f"native: no Node client (--node={node!r}, {NODE_CLIENT}); garbage only")
        return False
    recorder = RequestRecorder(native_port)
    try:
        run = subprocess.run([node, "-e", NODE_SCRIPT, str(NODE_CLIENT),
                              str(NODE_CLIENT.parents[1] / "tb_helpers.js"),
                              f"127.0.0.1:{recorder.port}"],
                             capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    finally:
        recorder.close()
    assert run.returncode == 0, f"Node client failed: {run.stdout}{run.stderr}"
    assert '"found":"77"' in run.stdout, run.stdout
    assert recorder.requests, "the relay saw no request"
    # Once tbproxy has seen the client's connection close, its last request again, on a new
    # connection, is answered there from the stored reply.
    wait_for("the Node client's connection to close",
             lambda: "\ntbproxy_native_connections 0\n" in get(metrics_base + "/metrics")[1],
             STARTUP_TIMEOUT_S)
    with socket.create_connection(("127.0.0.1", native_port)) as replay:
        replay.settimeout(10)
        replay.sendall(recorder.requests[-1])
        reply = read_message(replay)
        assert reply is not None and reply[COMMAND_OFFSET] == 8, reply  # Command.reply
    print(f"native: Node client ok, {len(recorder.requests)} requests relayed, duplicate answered")
    return True


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


def check_native_series(query, node_ran):
    """The native front end's series as Prometheus stored them."""
    expected = ["tbproxy_native_protocol_closes_total > 0", "tbproxy_native_connections >= 0",
                "tbproxy_native_connections_refused_total == 0",
                'tbproxy_native_session_evictions_total{reason="no_session"} == 0']
    if node_ran:
        # A register, a create, a lookup and the lookup again: the client may retry on its own.
        expected += ["tbproxy_native_requests_total >= 4", "tbproxy_native_batches_total >= 2",
                     "tbproxy_native_replies_total >= 4", "tbproxy_native_sessions == 1",
                     "tbproxy_native_duplicate_requests_total >= 1",
                     # Its batches are counted under the native front end, not as gRPC calls.
                     'sum(tbproxy_requests_total{frontend="native"}) >= 2']
    for expression in expected:
        wait_for(f"{expression} in Prometheus", lambda: query(expression), SCRAPE_TIMEOUT_S)


def check_prometheus_scrapes(metrics_port, directory, node_ran):
    config = pathlib.Path(directory) / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "tbproxy",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    prometheus, port = start_prometheus(config, directory)
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
        check_native_series(query, node_ran)
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
    dashboard = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "tbproxy.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions = [e.replace("$__rate_interval", "1m").replace("$job", ".*") for e in expressions]
    alerts = yaml.safe_load((ROOT / "docker" / "prometheus" / "alerts.yml").read_text())
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    assert len(expressions) > 20, expressions
    return expressions


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tbproxy")
    parser.add_argument("--node", default="", help="Node.js, for the official client's traffic")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "tbproxy.log")
        process, metrics_port, native_port = start_tbproxy(args.tbproxy, log_path)
        try:
            check_exposition(f"http://127.0.0.1:{metrics_port}")
            node_ran = drive_native_traffic(native_port, args.node,
                                            f"http://127.0.0.1:{metrics_port}")
            check_prometheus_scrapes(metrics_port, directory, node_ran)
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
