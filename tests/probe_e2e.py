#!/usr/bin/env python3
"""End-to-end check of tbproxy-probe (client_core's session and TCP transport) against tb-devcluster.

Usage: probe_e2e.py PATH/TO/tb-devcluster PATH/TO/tbproxy-probe

Every scenario starts its own dev cluster on 127.0.0.1 with ephemeral ports and stops it.
"""
import signal
import socket
import subprocess
import sys

DEVCLUSTER, PROBE = sys.argv[1], sys.argv[2]


class DevCluster:
    def __init__(self, *flags):
        self.process = subprocess.Popen(
            [DEVCLUSTER, "--addresses=127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addresses = None
        for line in self.process.stdout:
            if line.startswith("listening on "):
                self.addresses = line.split("listening on ", 1)[1].strip()
                break
        if self.addresses is None:
            raise RuntimeError("tb-devcluster did not report its addresses")

    def wait_for_log(self, text):
        for line in self.process.stderr:
            if text in line:
                return
        raise RuntimeError(f"tb-devcluster never logged {text!r}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def probe(*flags):
    result = subprocess.run([PROBE, *flags], capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout, result.stderr


failures = []


def check(name, condition, details):
    print(("PASS " if condition else "FAIL ") + name)
    if not condition:
        failures.append(name)
        print(details)


def expect_ok(name, cluster, *flags, accounts=3):
    code, out, err = probe(f"--addresses={cluster.addresses}", f"--create-accounts={accounts}",
                           "--timeout=30s", *flags)
    check(name, code == 0 and out.count(": created") == accounts and
          f"{accounts} of {accounts} found" in out and out.rstrip().endswith("ok"),
          f"exit {code}\nstdout:\n{out}\nstderr:\n{err}")


with DevCluster() as cluster:
    expect_ok("one replica", cluster)
    expect_ok("one replica, a second session", cluster, accounts=50)

with DevCluster("--replica-count=3") as cluster:
    expect_ok("three replicas", cluster)
    cluster.process.send_signal(signal.SIGUSR1)  # View change: replica 1 becomes primary.
    cluster.wait_for_log("view 1, primary is replica 1")
    code, out, err = probe(f"--addresses={cluster.addresses}", "--timeout=30s")
    check("three replicas after a view change", code == 0 and "view 1" in out,
          f"exit {code}\nstdout:\n{out}\nstderr:\n{err}")

with DevCluster("--reply-drop-probability=0.5", "--fault-seed=3") as cluster:
    expect_ok("half of the replies lost: retries deliver", cluster)

with DevCluster() as cluster:
    code, out, err = probe(f"--addresses={cluster.addresses}", "--cluster=1", "--timeout=2s")
    check("wrong cluster id: clear failure", code == 3 and "no register reply" in err,
          f"exit {code}\nstdout:\n{out}\nstderr:\n{err}")

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
unused_port = listener.getsockname()[1]
listener.close()
code, out, err = probe(f"--addresses=127.0.0.1:{unused_port}", "--timeout=1s")
check("nothing listening: clear failure", code == 3 and "tbproxy-probe:" in err,
      f"exit {code}\nstdout:\n{out}\nstderr:\n{err}")

code, out, err = probe("--addresses=nonsense")
check("bad flags: usage error", code == 2 and "--addresses" in err,
      f"exit {code}\nstdout:\n{out}\nstderr:\n{err}")

sys.exit(1 if failures else 0)
