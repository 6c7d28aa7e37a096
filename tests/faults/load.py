"""Steady multi-caller load through tbproxy: unary CreateTransfers, Stream calls and lookups.

Each caller thread draws its choices from its own random.Random(seed), so a seed reproduces the
offered load (though not the interleaving with faults). Every call is counted when issued and
when answered; a call answered twice, or never, fails the campaign.
"""
import random
import threading
import time

import grpc

from harness import channel, outcome_of, u128

# Codes only tbproxy sends (the client library and the transport never make them up for a call
# the server saw), so each one that may have reached the cluster must carry an outcome. The
# campaign never cancels a call itself: a CANCELLED is tbproxy's (or its gRPC server's) doing.
# UNAVAILABLE and DEADLINE_EXCEEDED without an outcome can be the client's own (no connection,
# a socket closed by SIGKILL, the caller's deadline), so they are counted, not failed.
OUTCOME_REQUIRED_CODES = ("CANCELLED", "ABORTED", "UNKNOWN", "INTERNAL", "DATA_LOSS")
SAMPLES_MAX = 5  # Details kept per code of answers without an outcome, for the report.


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.values = {}
        self.samples = {}  # code name -> details of some answers without an outcome

    def add(self, name, amount=1):
        with self.lock:
            self.values[name] = self.values.get(name, 0) + amount

    def answer(self, code, outcome, details):
        """Counts one failed call by gRPC code and whether it carried an outcome."""
        self.add("answer_%s" % code)
        if outcome is None:
            self.add("answer_%s_no_outcome" % code)
            with self.lock:
                samples = self.samples.setdefault(code, [])
                if len(samples) < SAMPLES_MAX:
                    samples.append(details)

    def missing_outcomes(self):
        """Violations: answers with a code in OUTCOME_REQUIRED_CODES and no outcome."""
        with self.lock:
            return ["%d calls answered %s without an outcome, e.g. %s"
                    % (self.values["answer_%s_no_outcome" % code], code, self.samples[code])
                    for code in OUTCOME_REQUIRED_CODES
                    if self.values.get("answer_%s_no_outcome" % code)]


class Caller(threading.Thread):
    BATCH_EVENTS_MAX = 20
    STREAM_CALLS_MAX = 8

    def __init__(self, index, seed, port, pb, rpc, ledger, counters, stop, id_base, timeout):
        super().__init__(daemon=True, name="caller-%d" % index)
        self.random = random.Random(seed * 1000 + index)
        self.pb, self.rpc = pb, rpc
        self.port = port
        self.ledger = ledger
        self.counters = counters
        self.stop = stop
        self.next_id = id_base
        self.timeout = timeout
        self.violations = []
        self.pending_retries = []  # Transfers told `unknown`, retried later with the same ids.

    def new_transfers(self, count):
        pb, accounts = self.pb, self.ledger.account_ids
        transfers = []
        for _ in range(count):
            debit, credit = self.random.sample(accounts, 2)
            amount = self.random.randint(1, 1000)
            self.next_id += 1
            self.ledger.add(self.next_id, debit, credit, amount)
            transfers.append(pb.Transfer(id=u128(pb, self.next_id),
                                         debit_account_id=u128(pb, debit),
                                         credit_account_id=u128(pb, credit),
                                         amount=u128(pb, amount), ledger=7, code=1))
        return transfers

    def run(self):
        stub = self.rpc.TigerBeetleStub(channel(self.port))
        while not self.stop.is_set():
            choice = self.random.random()
            if self.pending_retries and choice < 0.1:
                self.unary(stub, [self.pending_retries.pop()])
            elif choice < 0.75:
                self.unary(stub, self.new_transfers(self.random.randint(1, self.BATCH_EVENTS_MAX)))
            elif choice < 0.9:
                self.stream(stub)
            else:
                self.lookup(stub)

    def unary(self, stub, transfers):
        ids = [t.id.lo | (t.id.hi << 64) for t in transfers]
        self.counters.add("calls_issued")
        try:
            reply = stub.CreateTransfers(self.pb.CreateTransfersRequest(transfers=transfers),
                                         timeout=self.timeout)
        except grpc.RpcError as error:
            self.counters.add("calls_answered")
            self.counters.add("calls_error_%s" % error.code().name)
            self.counters.answer(error.code().name, outcome_of(error),
                                 "unary: %s" % error.details())
            self.count_churn(error)
            self.ledger.record_error(ids, error)
            self.maybe_retry(transfers, error)
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                time.sleep(0.02)  # tbproxy is down or restarting: back off as a client would.
            return
        self.counters.add("calls_answered")
        self.counters.add("calls_ok")
        if len(reply.results) != len(ids):
            self.violations.append("%d results for %d transfers" % (len(reply.results), len(ids)))
        self.ledger.record_results(ids, reply.results)

    def count_churn(self, error):
        """Counts ABORTED answers caused by tbproxy's session churn (a session evicted), by outcome:
        calls_error_ABORTED_evicted_not_applied are evictions before the request executed, which
        tbproxy sends again on another session, so only those whose attempts or deadline ran out
        (they stay rare); _unknown ones were evicted after a resend and may have been applied."""
        if error.code() == grpc.StatusCode.ABORTED and "session evicted" in (error.details() or ""):
            self.counters.add("calls_error_ABORTED_evicted_%s" % (outcome_of(error) or "none"))

    def maybe_retry(self, transfers, error):
        if outcome_of(error) != "not_applied" and self.random.random() < 0.5:
            self.pending_retries.extend(transfers)

    def stream(self, stub):
        pb = self.pb
        batches = {n: self.new_transfers(self.random.randint(1, 4))
                   for n in range(self.random.randint(1, self.STREAM_CALLS_MAX))}
        requests = [pb.StreamRequest(correlation_id=n, create_transfers=pb.CreateTransfersRequest(
            transfers=transfers)) for n, transfers in batches.items()]
        self.counters.add("calls_issued", len(requests))
        answered = {}
        try:
            for response in stub.Stream(iter(requests), timeout=self.timeout):
                n = response.correlation_id
                if n in answered or n not in batches:
                    self.violations.append("stream answered correlation id %d twice or unasked" % n)
                    continue
                answered[n] = response
        except grpc.RpcError as error:
            # The stream ended: calls without a response have no answer of their own; their
            # outcome is what the stream's status says.
            for n, transfers in batches.items():
                if n not in answered:
                    self.counters.add("calls_answered")
                    self.counters.add("calls_error_%s" % error.code().name)
                    self.counters.answer(error.code().name, outcome_of(error),
                                         "stream status: %s" % error.details())
                    self.count_churn(error)
                    self.ledger.record_error([t.id.lo | (t.id.hi << 64) for t in transfers], error)
        else:
            missing = set(batches) - set(answered)
            if missing:
                self.violations.append("stream ended OK without answering %s" % sorted(missing))
        for n, response in answered.items():
            self.counters.add("calls_answered")
            ids = [t.id.lo | (t.id.hi << 64) for t in batches[n]]
            kind = response.WhichOneof("result")
            if kind == "create_transfers":
                self.counters.add("calls_ok")
                self.ledger.record_results(ids, response.create_transfers.results)
            else:
                self.counters.add("calls_stream_error")
                error = StreamError(response.error)
                self.counters.answer(error.code().name, outcome_of(error),
                                     "stream call: %s" % response.error.message)
                self.count_churn(error)
                self.ledger.record_error(ids, error)

    def lookup(self, stub):
        pb = self.pb
        ids = self.random.sample(self.ledger.account_ids, 4)
        self.counters.add("calls_issued")
        try:
            reply = stub.LookupAccounts(pb.LookupAccountsRequest(ids=[u128(pb, i) for i in ids]),
                                        timeout=self.timeout)
            self.counters.add("calls_ok")
            if self.ledger.accounts_durable and len(reply.accounts) != len(ids):
                self.violations.append("lookup of campaign accounts found %d of %d"
                                       % (len(reply.accounts), len(ids)))
        except grpc.RpcError as error:
            self.counters.add("calls_error_%s" % error.code().name)
            self.counters.answer(error.code().name, outcome_of(error),
                                 "lookup: %s" % error.details())
        self.counters.add("calls_answered")


class StreamError:
    """A per-call error inside a Stream response, shaped like grpc.RpcError for the ledger."""

    def __init__(self, status):
        self.status = status

    def code(self):
        for code in grpc.StatusCode:
            if code.value[0] == self.status.code:
                return code
        return grpc.StatusCode.UNKNOWN

    def details(self):
        return self.status.message

    def trailing_metadata(self):
        words = {1: "not_applied", 2: "unknown"}  # Outcome enum of tbproxy.v1.
        if self.status.outcome in words:
            return (("tbproxy-outcome", words[self.status.outcome]),)
        return ()
