#!/usr/bin/env python3
"""Overload: ten times more concurrent calls than tbproxy admits, against a slow cluster.

tb-devcluster (echo mode, --reply-delay) bounds capacity; tbproxy runs with small bounds
(--callers-max, --queued-events-max, one session). The test first measures how many calls of
EVENTS events complete per second with CAPACITY_CALLERS callers, then keeps 10x --callers-max
calls outstanding for --duration seconds (asynchronous futures, each re-issued when answered).
It checks:
  - every call is answered exactly once: OK with one result per event, or RESOURCE_EXHAUSTED
    with outcome not_applied (a refusal); nothing else, and never DEADLINE_EXCEEDED (a refusal
    is prompt: it does not wait out the caller's deadline);
  - admitted calls complete with all their results;
  - tbproxy's RSS, sampled throughout, stays under RSS_BOUND_BYTES;
  - it recovers: once the load stops, sequential calls all succeed.
Figures (capacity, offered, refused, RSS) are printed; no assertion is about speed.

usage: overload.py --tbproxy=B --devcluster=B [--duration=15] [--seed=1]
"""
import struct
import sys
import threading
import time

import grpc

import harness

EVENTS = 100  # Accounts per call.
CALLERS_MAX = 64  # tbproxy --callers-max.
QUEUED_EVENTS_MAX = 2000  # tbproxy --queued-events-max: 20 calls of EVENTS.
OFFERED_FACTOR = 10
CALL_TIMEOUT = 60.0  # A refusal must come long before this; admitted calls too.
# tbproxy's resident memory at rest is about 20-40 MiB; its queues are bounded to
# QUEUED_EVENTS_MAX * 128 bytes plus CALLERS_MAX calls of at most 16 MiB each (gRPC's message
# limit), far above what these calls carry. The bound leaves room for gRPC's buffers.
RSS_BOUND_BYTES = 256 * 2**20


def raw_accounts(seed, call_number):
    body = bytearray()
    for i in range(EVENTS):
        account_id = (seed << 96) | (call_number << 16) | (i + 1)
        body += struct.pack("<QQ", account_id & harness.U64, account_id >> 64)
        body += bytes(96) + struct.pack("<IHHQ", 7, 1, 0, 0)  # ledger 7, code 1
    assert len(body) == 128 * EVENTS
    return bytes(body)


class Load:
    """Keeps `outstanding` calls in flight, each answered call replaced by a new one."""

    def __init__(self, stub, pb, seed, outstanding):
        self.stub, self.pb, self.seed = stub, pb, seed
        self.lock = threading.Lock()
        self.stopping = False
        self.issued = 0
        self.answered = 0
        self.codes = {}
        self.problems = []
        self.request = pb.RawRequest(operation=146, events=raw_accounts(seed, 1))
        self.done = threading.Condition(self.lock)
        for _ in range(outstanding):
            self.issue()

    def issue(self):
        with self.lock:
            if self.stopping:
                return
            self.issued += 1
        future = self.stub.Raw.future(self.request, timeout=CALL_TIMEOUT)
        future.add_done_callback(self.on_done)

    def on_done(self, future):
        error = future.exception()
        code = error.code() if error is not None else grpc.StatusCode.OK
        with self.lock:
            self.answered += 1
            self.codes[code.name] = self.codes.get(code.name, 0) + 1
            if code == grpc.StatusCode.OK:
                if len(future.result().results) != 16 * EVENTS:
                    self.problems.append("admitted call got %d result bytes"
                                         % len(future.result().results))
            elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                if harness.outcome_of(error) != "not_applied":
                    self.problems.append("refusal without outcome not_applied: %s"
                                         % error.details())
            else:
                self.problems.append("call ended %s: %s" % (code.name, error.details()))
            self.done.notify_all()
        self.issue()

    def stop(self, timeout):
        with self.lock:
            self.stopping = True
            self.done.wait_for(lambda: self.answered == self.issued, timeout)
            return self.issued, self.answered


def measure_capacity(stub, pb, seconds):
    load = Load(stub, pb, 1, outstanding=4)
    time.sleep(seconds)
    issued, answered = load.stop(CALL_TIMEOUT * 2)
    ok = load.codes.get("OK", 0)
    return ok / seconds, load.problems + ([] if issued == answered else ["capacity calls lost"])


def main():
    parser = harness.binaries_parser(__doc__)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    directory, pb, rpc = harness.temporary_stubs()
    cluster, addresses = harness.start_devcluster(args.devcluster,
                                                  flags=["--echo", "--reply-delay=50ms"])
    proxy, port = harness.start_proxy(args.tbproxy, flags=[
        "--cluster-addresses=" + addresses, "--sessions=1", "--session-budget=2",
        "--callers-max=%d" % CALLERS_MAX, "--queued-events-max=%d" % QUEUED_EVENTS_MAX,
        "--metrics-listen=127.0.0.1:0", "--log-level=info"])
    problems = []
    try:
        stub = rpc.TigerBeetleStub(harness.channel(port))
        stub.Raw(pb.RawRequest(operation=146, events=raw_accounts(args.seed, 0)),
                 timeout=CALL_TIMEOUT, wait_for_ready=True)
        capacity, found = measure_capacity(stub, pb, 3)
        problems += found
        rss_max = proxy.rss_bytes()
        load = Load(stub, pb, args.seed, outstanding=OFFERED_FACTOR * CALLERS_MAX)
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            rss_max = max(rss_max, proxy.rss_bytes())
            time.sleep(0.1)
        issued, answered = load.stop(CALL_TIMEOUT * 2)
        rss_max = max(rss_max, proxy.rss_bytes())
        problems += load.problems[:20]
        if issued != answered:
            problems.append("%d calls issued, %d answered" % (issued, answered))
        if load.codes.get("RESOURCE_EXHAUSTED", 0) == 0:
            problems.append("no call was refused: the load did not exceed the bounds")
        if rss_max > RSS_BOUND_BYTES:
            problems.append("tbproxy RSS reached %d MiB (bound %d MiB)"
                            % (rss_max >> 20, RSS_BOUND_BYTES >> 20))
        # tbproxy's own account agrees: nothing in flight or queued, and it counted as many
        # bound refusals as the callers saw (the capacity phase refused none).
        metrics = harness.scrape(harness.metrics_port(proxy))
        refused = sum(v for k, v in metrics.items() if k.startswith("tbproxy_refusals_total")
                      and ("callers_max" in k or "queued_" in k))
        if refused != load.codes.get("RESOURCE_EXHAUSTED", 0):
            problems.append("tbproxy counted %d refusals, callers saw %d"
                            % (refused, load.codes.get("RESOURCE_EXHAUSTED", 0)))
        for gauge in ("tbproxy_grpc_calls_in_flight", "tbproxy_queued_events"):
            if metrics.get(gauge) != 0:
                problems.append("%s is %s after every call was answered"
                                % (gauge, metrics.get(gauge)))
        # Recovery: with the load gone, calls are admitted again.
        for number in range(10):
            reply = stub.Raw(pb.RawRequest(operation=146, events=raw_accounts(args.seed, 2 + number)),
                             timeout=CALL_TIMEOUT)
            if len(reply.results) != 16 * EVENTS:
                problems.append("after the overload, a call got %d result bytes"
                                % len(reply.results))
        if not proxy.alive() or not cluster.alive():
            problems.append("a process died")
        print("overload: capacity %.0f calls/s (%d events each) with 4 callers; offered %d "
              "outstanding calls for %ds: %d calls, answers %s; tbproxy RSS max %d MiB "
              "(bound %d MiB); recovered" % (capacity, EVENTS, OFFERED_FACTOR * CALLERS_MAX,
                                             args.duration, issued, load.codes, rss_max >> 20,
                                             RSS_BOUND_BYTES >> 20))
    finally:
        code = proxy.stop()
        if code != 0:
            problems.append("tbproxy exited %d after SIGTERM" % code)
        cluster.stop()
        directory.cleanup()
    return harness.verdict("overload", args.seed, problems)


if __name__ == "__main__":
    sys.exit(main())
