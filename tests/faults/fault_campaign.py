#!/usr/bin/env python3
"""Fault campaign: steady multi-caller load through tbproxy while tb-devcluster and tbproxy are
frozen, paused, moved to another primary, evicted, restarted and drained; then an audit.

Per seed, two epochs:
  ledger  tb-devcluster (3 replicas, small --clients-max, seeded reply drops/delays/resets)
          keeps its state while faults are injected (see injector.py). Afterwards: every call
          was answered exactly once, and the ledger model holds (ledger.py): balances equal the
          sum of the transfers that exist, nothing created twice, `not_applied` really absent,
          `unknown` resolved by lookup.
  kill    the cluster process is killed and restarted on the same ports under load (its state
          is lost, so no ledger audit): every call is answered, and tbproxy recovers (a new
          account and transfer are created through it afterwards).
Every failed call is counted by gRPC code and by whether it carried an outcome (trailing
metadata `tbproxy-outcome`, or CallError.outcome on streams); a seed fails when a call is answered
with a code only tbproxy's side sends (CANCELLED, ABORTED, ...) and no outcome (load.py). Each
seed, and the run, ends with its totals: calls, transfers audited, ABORTED, CANCELLED, and
CANCELLED without an outcome.
The seed is printed first and with every failure; `--seeds=S --duration=D` reproduces a run.

usage: fault_campaign.py --tbproxy=B --devcluster=B --probe=B [--seeds=1,2] [--duration=20]
       [--callers=6]   (short form for ctest: the defaults; long form: more seeds, longer)
"""
import faulthandler
import random
import sys
import threading
import time

import grpc

import harness
from harness import ACCOUNT_STATUS_EXISTS, STATUS_CREATED, u128
from injector import Injector, restarting_proxy
from ledger import Ledger, audit
from load import Caller, Counters

CALL_TIMEOUT = 5.0  # Seconds: a caller's deadline; DEADLINE_EXCEEDED is an answer too.
JOIN_TIMEOUT = 120  # Seconds for callers to finish once stopped: a bound against hangs.
ACCOUNTS = 16


def create_accounts(stub, pb, ids, give_up_seconds=90):
    """Creates ids (retrying with the same ids until each is created or exists)."""
    remaining = list(ids)
    deadline = time.monotonic() + give_up_seconds
    errors = {}
    while time.monotonic() < deadline:
        try:
            reply = stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
                pb.Account(id=u128(pb, i), ledger=7, code=1) for i in remaining]),
                timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            key = "%s %s" % (error.code().name, error.details())
            errors[key] = errors.get(key, 0) + 1
            time.sleep(0.05)
            continue
        bad = [r.status_code for r in reply.results
               if r.status_code not in (STATUS_CREATED, ACCOUNT_STATUS_EXISTS)]
        assert not bad, "account creation refused: %s" % bad
        return
    raise AssertionError("could not create the campaign's accounts in %ds: %s"
                         % (give_up_seconds, errors))


def run_load(seed, port, pb, rpc, ledger, callers, duration, injector, figures, id_base):
    counters = Counters()
    stop = threading.Event()
    threads = [Caller(i, seed, port, pb, rpc, ledger, counters, stop, id_base + (i << 40),
                      CALL_TIMEOUT) for i in range(callers)]
    for thread in threads:
        thread.start()
    injector.start()
    time.sleep(duration)
    injector.stop.set()
    injector.join(JOIN_TIMEOUT)
    stop.set()
    violations = []
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        if thread.is_alive():
            violations.append("%s still waiting for an answer %ds after the load stopped"
                              % (thread.name, JOIN_TIMEOUT))
        violations += thread.violations
    if injector.is_alive():
        violations.append("the fault injector did not finish")
    if injector.error:
        violations.append("fault injection failed: " + injector.error)
    values = counters.values
    if values.get("calls_issued", 0) != values.get("calls_answered", 0):
        violations.append("calls issued %d, answered %d" % (values.get("calls_issued", 0),
                                                             values.get("calls_answered", 0)))
    violations += counters.missing_outcomes()
    for name, number in values.items():
        figures[name] = figures.get(name, 0) + number
    return violations


def cluster_flags(rng, seed):
    drop = rng.choice([0, 0.002, 0.01, 0.03])
    reset = rng.choice([0, 0.002, 0.01])
    delay = rng.choice(["0ms", "1ms", "10ms"])
    return ["--replica-count=3", "--clients-max=8", "--reply-drop-probability=%g" % drop,
            "--connection-reset-probability=%g" % reset, "--reply-delay=" + delay,
            "--fault-seed=%d" % seed]


def proxy_flags(addresses):
    # Two sessions within a budget of four: evictions and replacements fit in clients_max 8.
    return ["--cluster-addresses=" + addresses, "--sessions=2", "--session-budget=4",
            "--drain-timeout=5s", "--metrics-listen=127.0.0.1:0", "--log-level=info"]


def ledger_epoch(args, seed, pb, rpc, figures):
    rng = random.Random(seed)
    flags = cluster_flags(rng, seed)
    print("seed %d ledger epoch: tb-devcluster %s" % (seed, " ".join(flags)), flush=True)
    cluster, addresses = harness.start_devcluster(args.devcluster, flags=flags)
    factory, state = restarting_proxy(args.tbproxy, proxy_flags(addresses))
    injector = Injector(seed, cluster, factory, args.probe, addresses, figures, threading.Event())
    try:
        port = state["port"]
        stub = rpc.TigerBeetleStub(harness.channel(port))
        account_base = (seed << 64) | (1 << 48)
        ledger = Ledger(account_base + i for i in range(ACCOUNTS))
        create_accounts(stub, pb, ledger.account_ids)
        violations = run_load(seed, port, pb, rpc, ledger, args.callers, args.duration,
                              injector, figures, (seed << 64) | (2 << 48))
        cluster.send(harness.signal.SIGCONT)
        if not injector.proxy.alive():
            return violations + ["tbproxy died (exit %s) during the load:\n%s" % (
                injector.proxy.process.returncode, injector.proxy.tail())]
        violations += audit(stub, pb, ledger, figures, CALL_TIMEOUT)
        # tbproxy's side of "every call answered": nothing left in flight once callers are done.
        metrics = harness.scrape(harness.metrics_port(injector.proxy))
        # Messages tbproxy sent again after session churn, rather than answering ABORTED (the
        # last tbproxy process's count: a restarted one starts from zero).
        figures["pool_resubmissions"] = figures.get("pool_resubmissions", 0) + sum(
            value for name, value in metrics.items()
            if name.startswith("tbproxy_pool_resubmissions_total"))
        if metrics.get("tbproxy_grpc_calls_in_flight") != 0:
            violations.append("tbproxy_grpc_calls_in_flight is %s after the load"
                              % metrics.get("tbproxy_grpc_calls_in_flight"))
        if not cluster.alive():
            violations.append("tb-devcluster died\n" + cluster.tail())
        if injector.proxy.stop() != 0:
            violations.append("tbproxy did not drain cleanly\n" + injector.proxy.tail())
        return violations
    finally:
        for process in (injector.proxy, cluster):
            if process.alive():
                process.stop(harness.signal.SIGKILL)


def kill_epoch(args, seed, pb, rpc, figures):
    print("seed %d kill epoch" % seed, flush=True)
    cluster, addresses = harness.start_devcluster(args.devcluster, flags=[
        "--replica-count=3", "--log-messages"])
    holder = {"cluster": cluster}
    factory, state = restarting_proxy(args.tbproxy, proxy_flags(addresses))

    class ClusterKiller(Injector):
        def run(self):
            # At least one kill per epoch, whatever the seed draws afterwards.
            if not self.stop.wait(self.random.uniform(0.5, 2.0)):
                try:
                    self.kill_cluster()
                    self.figures["fault_kill_cluster"] = self.figures.get(
                        "fault_kill_cluster", 0) + 1
                except Exception as error:
                    self.error = "%s: %s" % (type(error).__name__, error)
                    return
            super().run()

        def kill_cluster(self):
            holder["cluster"].stop(harness.signal.SIGKILL)
            time.sleep(self.random.uniform(0, 1.0))
            # The same three addresses: tbproxy was given them.
            for attempt in range(50):
                try:
                    holder["cluster"], _ = harness.start_devcluster(
                        args.devcluster, addresses, ["--replica-count=3", "--log-messages"])
                    break
                except RuntimeError:
                    time.sleep(0.1)
            self.cluster = holder["cluster"]
            # A real cluster's view never goes back, and sessions that saw view v rightly
            # ignore a cluster in an older one: restart in the view the old process had.
            # One signal at a time: a second SIGUSR1 sent before the first is handled would
            # merge with it (signals are not queued).
            for view in range(1, self.views + 1):
                self.cluster.send(harness.signal.SIGUSR1)
                harness.wait_until(lambda: any("view %d," % view in line
                                               for line in list(self.cluster.log)),
                                   30, "tb-devcluster to reach view %d" % view)
            if not self.cluster.alive():
                raise AssertionError("restarted tb-devcluster died: %s" % self.cluster.tail())
            # A fresh cluster has no accounts: recreate them so that load keeps flowing.
            create_accounts(stub, pb, ledger.account_ids)

    stop = threading.Event()
    injector = ClusterKiller(seed, cluster, factory, args.probe, addresses, figures, stop,
                             faults=("kill_cluster", "view_change", "proxy_kill"))
    try:
        stub = rpc.TigerBeetleStub(harness.channel(state["port"]))
        ledger = Ledger((seed << 64) | (3 << 48) | i for i in range(ACCOUNTS))
        ledger.accounts_durable = False
        create_accounts(stub, pb, ledger.account_ids)
        violations = run_load(seed, state["port"], pb, rpc, ledger, args.callers,
                              max(5, args.duration // 2), injector, figures,
                              (seed << 64) | (4 << 48))
        # Recovery: a new account and a transfer to it go through.
        fresh = (seed << 64) | (5 << 48)
        try:
            create_accounts(stub, pb, [fresh, fresh + 1])
        except AssertionError as error:
            return violations + ["no recovery after the faults (%s): %s\ntbproxy log:\n%s\n"
                                 "tb-devcluster log:\n%s" % (figures, error, injector.proxy.tail(30),
                                                              holder["cluster"].tail(10))]
        reply = stub.CreateTransfers(pb.CreateTransfersRequest(transfers=[pb.Transfer(
            id=u128(pb, fresh), debit_account_id=u128(pb, fresh),
            credit_account_id=u128(pb, fresh + 1), amount=u128(pb, 1), ledger=7, code=1)]),
            timeout=60, wait_for_ready=True)
        if reply.results[0].status_code != STATUS_CREATED:
            violations.append("after the kills, a new transfer got %d"
                              % reply.results[0].status_code)
        return violations
    finally:
        for process in (injector.proxy, holder["cluster"]):
            if process.alive():
                process.stop(harness.signal.SIGKILL)


def answers_line(figures):
    """Failed calls by gRPC code, each with how many carried no outcome."""
    codes = sorted(name[len("answer_"):] for name in figures
                   if name.startswith("answer_") and not name.endswith("_no_outcome"))
    return ", ".join("%s=%d (%d without outcome)" % (
        code, figures["answer_" + code], figures.get("answer_%s_no_outcome" % code, 0))
        for code in codes) or "none"


def totals_line(figures):
    return ("calls=%d transfers_audited=%d ABORTED=%d CANCELLED=%d "
            "CANCELLED_without_outcome=%d" % (
                figures.get("calls_issued", 0), figures.get("transfers_audited", 0),
                figures.get("answer_ABORTED", 0), figures.get("answer_CANCELLED", 0),
                figures.get("answer_CANCELLED_no_outcome", 0)))


def main():
    parser = harness.binaries_parser(__doc__)
    parser.add_argument("--probe", required=True)
    parser.add_argument("--seeds", default="1", help="comma-separated seeds")
    parser.add_argument("--random-seeds", type=int, default=0,
                        help="instead of --seeds: this many seeds drawn from the clock")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per epoch")
    parser.add_argument("--callers", type=int, default=6)
    parser.add_argument("--epochs", default="ledger,kill", help="which epochs to run")
    args = parser.parse_args()
    faulthandler.register(harness.signal.SIGQUIT)  # `kill -QUIT` shows where a hung run waits.
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.random_seeds:
        seeds = [int(time.time()) + i for i in range(args.random_seeds)]
    directory, pb, rpc = harness.temporary_stubs()
    failed = []
    totals = {}
    for seed in seeds:
        figures = {}
        print("fault campaign: seed %d (reproduce with --seeds=%d)" % (seed, seed), flush=True)
        violations = []
        if "ledger" in args.epochs:
            violations += ledger_epoch(args, seed, pb, rpc, figures)
        if "kill" in args.epochs:
            violations += ["kill epoch: " + v for v in kill_epoch(args, seed, pb, rpc, figures)]
        faults = sum(v for k, v in figures.items() if k.startswith("fault_"))
        print("seed %d figures: %d faults injected; %s" % (seed, faults, ", ".join(
            "%s=%d" % item for item in sorted(figures.items())
            if not item[0].startswith("answer_"))), flush=True)
        print("seed %d errors by code: %s" % (seed, answers_line(figures)), flush=True)
        print("seed %d totals: %s" % (seed, totals_line(figures)), flush=True)
        for name, number in figures.items():
            totals[name] = totals.get(name, 0) + number
        if violations:
            failed.append(seed)
            print("seed %d FAILED (%d violations):\n  %s" % (seed, len(violations),
                                                           "\n  ".join(violations[:50])))
    directory.cleanup()
    print("fault campaign errors by code: %s" % answers_line(totals))
    print("fault campaign totals (%d seeds): %s" % (len(seeds), totals_line(totals)))
    if failed:
        print("fault campaign FAILED for seeds %s (rerun: --seeds=%s)"
              % (failed, ",".join(map(str, failed))))
        return 1
    print("fault campaign passed for seeds %s" % seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
