#!/usr/bin/env python3
"""A drain that times out must still tell callers the outcome of calls already sent.

tbproxy forwards a unary call and a Stream call to a cluster that then freezes (SIGSTOP), and is
stopped with SIGTERM and a short --drain-timeout. The API promises the trailing metadata
"tbproxy-outcome" (or CallError.outcome) whenever a request may have reached the cluster; both
calls were sent, so each must end with outcome `unknown`, not a bare UNAVAILABLE that a client
could read as "not applied".

usage: drain_outcome.py --tbproxy=B --devcluster=B
"""
import signal
import sys
import threading
import time

import grpc

import harness
from harness import u128


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

        threads = [threading.Thread(target=unary), threading.Thread(target=stream)]
        for thread in threads:
            thread.start()
        time.sleep(1)  # Both calls are now waiting on the frozen cluster.
        code = proxy.stop(signal.SIGTERM)
        for thread in threads:
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
    if problems:
        print("drain_outcome FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("drain_outcome passed: %s" % answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
