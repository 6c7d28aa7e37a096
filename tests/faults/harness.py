"""Processes and gRPC helpers shared by the fault, overload and hostile-input suites.

tb-devcluster and tbproxy run as separate processes, so a test can kill, stop, restart or signal
either one. Both bind 127.0.0.1 on ephemeral ports; a restart reuses the port the first start got.
The Python stubs are generated at test time with the helper of tests/python/grpc_e2e.py.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from grpc_e2e import generate_stubs  # noqa: E402  (reuse: protoc into a temporary directory)

U64 = 2**64 - 1
STATUS_CREATED = 0xFFFFFFFF
TRANSFER_STATUS_EXISTS = 46  # TigerBeetle 0.17 create_transfer_result.exists.
ACCOUNT_STATUS_EXISTS = 21


def load_stubs(directory):
    """Generates tbproxy.v1 stubs into directory and imports them; returns (pb, rpc)."""
    generate_stubs(ROOT, directory)
    sys.path.insert(0, directory)
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc
    return pb, rpc


def binaries_parser(description):
    """An argument parser with the two binaries every scenario runs, --tbproxy and --devcluster."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tbproxy", required=True)
    parser.add_argument("--devcluster", required=True)
    return parser


def u128(pb, number):
    return pb.Uint128(lo=number & U64, hi=number >> 64)


def value(number):
    return number.lo | (number.hi << 64)


class Process:
    """A child process whose stderr is kept (bounded) for failure reports."""

    LOG_LINES_MAX = 2000

    def __init__(self, args, ready_prefix):
        self.args = args
        self.log = []
        # stdin is a pipe so the child may stop with its parent (--stop-on-stdin-close).
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        # Lines before the ready line (e.g. tbproxy's native port) are kept in `preamble`.
        self.preamble = []
        line = self.process.stdout.readline()
        while line and not line.startswith(ready_prefix) and len(self.preamble) < 8:
            self.preamble.append(line.strip())
            line = self.process.stdout.readline()
        if not line.startswith(ready_prefix):
            self.process.kill()
            raise RuntimeError("%s did not start: %r\n%s" % (args[0], line,
                                                             self.process.stderr.read()))
        self.ready_line = line.strip()
        threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()

    def _drain(self, stream):
        for line in stream:
            self.log.append(line)
            if len(self.log) > self.LOG_LINES_MAX:
                del self.log[: self.LOG_LINES_MAX // 2]

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def send(self, number):
        if self.alive():
            os.kill(self.process.pid, number)

    def stop(self, number=signal.SIGTERM, timeout=60):
        """Sends number (if still running) and waits; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(number)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("%s did not exit within %ds of signal %d"
                                 % (self.args[0], timeout, number))

    def rss_bytes(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def tail(self, lines=40):
        return "".join(self.log[-lines:])


def start_devcluster(binary, addresses="127.0.0.1:0", flags=()):
    """Starts tb-devcluster; returns (process, 'host:port,...')."""
    process = Process([binary, "--addresses=" + addresses, "--stop-on-stdin-close", *flags],
                      "listening on ")
    return process, process.ready_line[len("listening on "):]


def start_proxy(binary, port=0, flags=()):
    """Starts tbproxy on 127.0.0.1:port; returns (process, port)."""
    process = Process([binary, "--listen=127.0.0.1:%d" % port, *flags],
                      "tbproxy listening on port ")
    return process, int(process.ready_line.split()[-1])


def channel(port):
    import grpc
    # Reconnect quickly after a proxy restart; the defaults back off for up to two minutes.
    return grpc.insecure_channel("127.0.0.1:%d" % port, options=[
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        ("grpc.enable_retries", 0),
    ])


def outcome_of(error):
    """tbproxy's outcome word of a failed call: 'not_applied', 'unknown' or None (not given)."""
    for key, word in (error.trailing_metadata() or ()):
        if key == "tbproxy-outcome":
            return word
    return None


def wait_until(predicate, timeout, what):
    """Polls predicate until true; a bound against hangs, not a speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("gave up after %ds waiting for %s" % (timeout, what))


def metrics_port(process, timeout=30):
    """The port of tbproxy's metrics listener, from its log (needs --log-level=info or lower)."""
    found = []

    def look():
        for line in list(process.log):
            match = re.search(r"event=metrics_listening port=(\d+)", line)
            if match:
                found.append(int(match.group(1)))
                return True
        return False
    wait_until(look, timeout, "tbproxy's metrics_listening log line")
    return found[0]


def scrape(port):
    """tbproxy's /metrics as {series (name and labels): value}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as reply:
        text = reply.read().decode()
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, number = line.rpartition(" ")
            series[name] = float(number)
    return series


def temporary_stubs():
    directory = tempfile.TemporaryDirectory(prefix="tbproxy-stubs-")
    pb, rpc = load_stubs(directory.name)
    return directory, pb, rpc


def verdict(name, seed, problems):
    """Prints the scenario's closing line (and its problems) and returns its exit code."""
    if problems:
        print("%s FAILED (seed %d):\n  %s" % (name, seed, "\n  ".join(problems)))
        return 1
    print("%s passed (seed %d)" % (name, seed))
    return 0
