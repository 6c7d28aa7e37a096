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

usage: drain_outcome.py --tbproxy=B --devcluster=B
"""
import signal
import sys
import threading
import time

import grpc

import harness
from harness import u128

CALLERS = 4  # Threads sending unary calls through the drain.


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
        for thread in threads + callers:
            thread.start()
        time.sleep(1)  # Both calls are now waiting on the frozen cluster.
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
    if problems:
        print("drain_outcome FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("drain_outcome passed: %s" % answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
