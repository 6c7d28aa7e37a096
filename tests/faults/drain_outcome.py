#!/usr/bin/env python3
"""A drain that times out must still tell callers the outcome of calls already sent.

tbproxy forwards a unary call and a Stream call to a cluster that then freezes (SIGSTOP), and is
stopped with SIGTERM and a short --drain-timeout. The API promises the trailing metadata
"tbproxy-outcome" (or CallError.outcome) whenever a request may have reached the cluster; both
calls were sent, so each must end with outcome `unknown`, not a bare UNAVAILABLE that a client
could read as "not applied".

Meanwhile a Stream the client keeps open (it never half-closes) must end UNAVAILABLE with outcome
`not_applied` (the drain finishes it; gRPC's Shutdown would otherwise cancel it without one), and
callers that keep sending unary calls through the drain must each get an answer with an outcome:
none may be CANCELLED by gRPC because it arrived after tbproxy stopped its server.

Then busy drains: against a live cluster, callers send calls back to back while tbproxy is
stopped with SIGTERM and started again, BUSY_ROUNDS times. gRPC's Shutdown cancels every call
that reaches the server after it began; tbproxy must stop its server only when callers are not
sending, so no call may end CANCELLED (or ABORTED) without an outcome.

usage: drain_outcome.py --tbproxy=B --devcluster=B
"""
import signal
import sys
import threading
import time

import grpc

import harness
from harness import u128
from injector import restarting_proxy

CALLERS = 4  # Threads sending unary calls through the drain.
BUSY_CALLERS = 8
BUSY_ROUNDS = 4
BUSY_SECONDS = 0.7  # Of load before each SIGTERM.


def busy_drains(args, pb, rpc):
    """Drains under back-to-back load; returns (problems, counts of answers by code)."""
    cluster, addresses = harness.start_devcluster(args.devcluster)
    factory, state = restarting_proxy(args.tbproxy, [
        "--cluster-addresses=" + addresses, "--drain-timeout=2s", "--log-level=warning"])
    proxy = factory()
    stop = threading.Event()
    answers = []  # (code, outcome, details)

    def caller(index):
        stub = rpc.TigerBeetleStub(harness.channel(state["port"]))
        ids = [u128(pb, 1), u128(pb, index + 2)]
        while not stop.is_set():
            try:
                stub.LookupAccounts(pb.LookupAccountsRequest(ids=ids), timeout=10)
                answers.append(("OK", None, ""))
            except grpc.RpcError as error:
                answers.append((error.code().name, harness.outcome_of(error), error.details()))
                time.sleep(0.005)
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(BUSY_CALLERS)]
    problems = []
    try:
        for thread in threads:
            thread.start()
        for _ in range(BUSY_ROUNDS):
            time.sleep(BUSY_SECONDS)
            code = proxy.stop(signal.SIGTERM)
            if code != 0:
                problems.append("tbproxy exited %d after SIGTERM under load" % code)
            proxy = factory()
        time.sleep(BUSY_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        proxy.stop(signal.SIGKILL)
        cluster.stop(signal.SIGKILL)
    counts = {}
    for code, outcome, _ in answers:
        key = "%s/%s" % (code, outcome or "none")
        counts[key] = counts.get(key, 0) + 1
    bare = [a for a in answers if a[0] in ("CANCELLED", "ABORTED") and a[1] is None]
    if bare:
        problems.append("%d of %d calls sent through busy drains ended without an outcome: %s"
                        % (len(bare), len(answers), bare[:3]))
    if not any(a[:2] == ("UNAVAILABLE", "not_applied") for a in answers):
        problems.append("no call was refused UNAVAILABLE not_applied during busy drains: %s"
                        % counts)
    return problems, counts


def main():
    parser = harness.binaries_parser(__doc__)
    args = parser.parse_args()
    directory, pb, rpc = harness.temporary_stubs()
    cluster, addresses = harness.start_devcluster(args.devcluster)
    proxy, port = harness.start_proxy(args.tbproxy, flags=[
        "--cluster-addresses=" + addresses, "--drain-timeout=2s", "--log-level=warning"])
    answers = {}
    try:
        stub = rpc.TigerBeetleStub(harness.channel(port))
        stub.LookupAccounts(pb.LookupAccountsRequest(ids=[u128(pb, 1)]), timeout=30,
                            wait_for_ready=True)
        cluster.send(signal.SIGSTOP)

        def unary():
            try:
                stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
                    pb.Account(id=u128(pb, 2), ledger=7, code=1)]), timeout=60)
                answers["unary"] = "OK"
            except grpc.RpcError as error:
                answers["unary"] = (error.code().name, harness.outcome_of(error))

        def stream():
            request = pb.StreamRequest(correlation_id=1, create_accounts=pb.CreateAccountsRequest(
                accounts=[pb.Account(id=u128(pb, 3), ledger=7, code=1)]))
            try:
                for response in stub.Stream(iter([request]), timeout=60):
                    answers["stream"] = (response.WhichOneof("result"),
                                         response.error.outcome if response.HasField("error")
                                         else None)
            except grpc.RpcError as error:
                answers.setdefault("stream", (error.code().name, harness.outcome_of(error)))

        release_idle = threading.Event()

        def idle_stream():
            def requests():
                yield pb.StreamRequest(correlation_id=1, lookup_accounts=pb.LookupAccountsRequest(
                    ids=[u128(pb, 1)]))
                release_idle.wait(60)  # Never half-closes while tbproxy drains.
            try:
                for response in stub.Stream(requests(), timeout=60):
                    answers.setdefault("idle_stream_responses", []).append(
                        response.WhichOneof("result"))
                answers["idle_stream"] = "OK"
            except grpc.RpcError as error:
                answers["idle_stream"] = (error.code().name, harness.outcome_of(error))
            release_idle.set()

        stop_callers = threading.Event()
        caller_answers = []

        def caller():
            # A caller of its own channel, sending lookups one after another through the drain.
            own = rpc.TigerBeetleStub(harness.channel(port))
            while not stop_callers.is_set():
                try:
                    own.LookupAccounts(pb.LookupAccountsRequest(ids=[u128(pb, 1)]), timeout=10)
                    caller_answers.append(("OK", None, ""))
                except grpc.RpcError as error:
                    caller_answers.append((error.code().name, harness.outcome_of(error),
                                           error.details()))

        threads = [threading.Thread(target=unary), threading.Thread(target=stream),
                   threading.Thread(target=idle_stream)]
        callers = [threading.Thread(target=caller) for _ in range(CALLERS)]
        for thread in threads[:2]:
            thread.start()
        time.sleep(1)  # Both calls are now sent, waiting on the frozen cluster...
        for thread in threads[2:] + callers:
            thread.start()  # ... and these queue behind them.
        time.sleep(0.5)
        code = proxy.stop(signal.SIGTERM)
        time.sleep(0.5)  # Callers meet the stopped server too (refused connections).
        stop_callers.set()
        for thread in threads + callers:
            thread.join(60)
    finally:
        cluster.stop(signal.SIGKILL)
        directory.cleanup()
    problems = []
    if code != 0:
        problems.append("tbproxy exited %d" % code)
    if answers.get("unary") != ("UNAVAILABLE", "unknown") and answers.get("unary") != (
            "ABORTED", "unknown"):
        problems.append("unary call in flight at drain timeout ended %s; want outcome unknown"
                        % (answers.get("unary"),))
    stream_answer = answers.get("stream")
    if stream_answer not in (("error", 2), ("UNAVAILABLE", "unknown"), ("ABORTED", "unknown")):
        problems.append("stream call in flight at drain timeout ended %s; want outcome unknown"
                        % (stream_answer,))
    if answers.get("idle_stream") != ("UNAVAILABLE", "not_applied"):
        problems.append("a stream left open through the drain ended %s; want UNAVAILABLE "
                        "not_applied" % (answers.get("idle_stream"),))
    # A lookup during the drain is answered (it never reached a frozen cluster: the pool has no
    # reply for it) or refused with an outcome; once the server is gone the client's own
    # UNAVAILABLE (no connection) has none, which is fine: the call was never sent.
    cancelled = [a for a in caller_answers if a[0] == "CANCELLED"]
    if cancelled:
        problems.append("%d of %d calls sent through the drain were CANCELLED: %s"
                        % (len(cancelled), len(caller_answers), cancelled[:3]))
    refused = sum(1 for a in caller_answers if a[:2] == ("UNAVAILABLE", "not_applied"))
    if refused == 0:
        problems.append("no call sent during the drain was refused UNAVAILABLE not_applied: %s"
                        % sorted(set(a[:2] for a in caller_answers)))
    busy_problems, busy_counts = busy_drains(args, pb, rpc)
    problems += busy_problems
    answers["busy_drains"] = busy_counts
    if problems:
        print("drain_outcome FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("drain_outcome passed: %s" % answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
