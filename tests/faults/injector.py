"""Fault injection against a running tb-devcluster and tbproxy, driven by a seeded random.

Faults that keep the cluster's in-memory state (so the ledger audit still holds):
  stop_cont      SIGSTOP the cluster process, wait, SIGCONT (a frozen cluster: no replies).
  pause          SIGUSR2 twice: the cluster drops every message in between.
  view_change    SIGUSR1: the primary moves to the next replica (needs --replica-count>1).
  evict          register extra client sessions (tbproxy-probe) so that, with a small
                 --clients-max, the cluster evicts the least recently used ones, tbproxy's too.
  proxy_drain    SIGTERM tbproxy (it must drain and exit 0) and start it again on its port.
  proxy_kill     SIGKILL tbproxy and start it again on its port.
Reply drops, delays and connection resets are tb-devcluster flags, chosen per seed at start.
"""
import random
import signal
import subprocess
import threading
import time

from harness import start_proxy

FAULTS = ("stop_cont", "pause", "view_change", "evict", "proxy_drain", "proxy_kill")


class Injector(threading.Thread):
    def __init__(self, seed, cluster, proxy_factory, probe, addresses, figures, stop,
                 faults=FAULTS):
        super().__init__(daemon=True, name="injector")
        self.random = random.Random(seed)
        self.cluster = cluster
        self.proxy_factory = proxy_factory  # Returns a new tbproxy Process on the same port.
        self.proxy = proxy_factory()
        self.probe = probe
        self.addresses = addresses
        self.figures = figures
        self.stop = stop
        self.faults = faults
        self.error = None
        self.views = 0  # View changes so far: a restarted cluster is brought back to this view.

    def run(self):
        try:
            while not self.stop.wait(self.random.uniform(0.2, 1.5)):
                fault = self.random.choice(self.faults)
                getattr(self, fault)()
                self.figures["fault_" + fault] = self.figures.get("fault_" + fault, 0) + 1
        except Exception as error:  # Reported by the campaign, which then fails.
            self.error = "%s: %s\ntbproxy log:\n%s" % (type(error).__name__, error,
                                                     self.proxy.tail(20))

    def stop_cont(self):
        self.cluster.send(signal.SIGSTOP)
        time.sleep(self.random.uniform(0.1, 2.0))
        self.cluster.send(signal.SIGCONT)

    def pause(self):
        self.cluster.send(signal.SIGUSR2)
        time.sleep(self.random.uniform(0.1, 1.0))
        self.cluster.send(signal.SIGUSR2)

    def view_change(self):
        self.cluster.send(signal.SIGUSR1)
        self.views += 1

    def evict(self):
        for _ in range(self.random.randint(1, 4)):
            # The probe's own success does not matter (the cluster may be mid-fault).
            subprocess.run([self.probe, "--addresses=" + self.addresses, "--create_accounts=1",
                            "--ledger=99", "--timeout=3s"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)

    def proxy_drain(self):
        code = self.proxy.stop(signal.SIGTERM, timeout=60)
        if code != 0:
            raise AssertionError("tbproxy exited %d after SIGTERM\n%s" % (code, self.proxy.tail()))
        self.proxy = self.proxy_factory()

    def proxy_kill(self):
        self.proxy.stop(signal.SIGKILL)
        self.proxy = self.proxy_factory()


def restarting_proxy(binary, flags):
    """A factory that starts tbproxy on a port fixed by its first start."""
    state = {"port": 0}

    def start():
        for attempt in range(50):
            try:
                process, port = start_proxy(binary, state["port"], flags)
                state["port"] = port
                return process
            except RuntimeError:
                if attempt == 49:
                    raise
                time.sleep(0.1)  # The old process's socket may linger for a moment.
    return start, state
