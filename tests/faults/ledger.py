"""The ledger model of the fault campaign: what callers were told, and the audit against the
cluster's state read back through tbproxy at the end.

Every transfer has a unique id and moves `amount` from one of the campaign's accounts to another
(no flags, so TigerBeetle only refuses it if it already exists). A transfer's attempts are
recorded as they are answered:
  ("result", status, timestamp)  the call succeeded and this was its per-event result;
  ("error", code, outcome)       the call failed; outcome 'not_applied', 'unknown' or None.
"""
import threading
import time

import grpc

from harness import STATUS_CREATED, TRANSFER_STATUS_EXISTS, outcome_of, u128, value

LOOKUP_CHUNK = 500  # Ids per lookup call, well below the 8189 limit of one batch.
# Codes the API documents as never applied even without an outcome word.
NEVER_APPLIED_CODES = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT,
                       grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


class Ledger:
    def __init__(self, account_ids):
        self.account_ids = list(account_ids)
        # False when the cluster may lose its state (kill epoch): lookups may find nothing.
        self.accounts_durable = True
        self.lock = threading.Lock()
        self.transfers = {}  # id -> (debit, credit, amount)
        self.attempts = {}  # id -> [attempt, ...]

    def add(self, transfer_id, debit, credit, amount):
        with self.lock:
            assert transfer_id not in self.transfers, "transfer id %d reused" % transfer_id
            self.transfers[transfer_id] = (debit, credit, amount)
            self.attempts[transfer_id] = []

    def record_results(self, transfer_ids, results):
        with self.lock:
            for transfer_id, result in zip(transfer_ids, results):
                self.attempts[transfer_id].append(("result", result.status_code, result.timestamp))

    def record_error(self, transfer_ids, error):
        outcome = outcome_of(error)
        if outcome is None and error.code() in NEVER_APPLIED_CODES:
            outcome = "not_applied"
        with self.lock:
            for transfer_id in transfer_ids:
                self.attempts[transfer_id].append(("error", error.code(), outcome))


def with_retries(call, attempts=60):
    """Runs a read-only call until it succeeds (faults may still drop replies during the audit)."""
    last = None
    for _ in range(attempts):
        try:
            return call()
        except grpc.RpcError as error:
            last = error
            time.sleep(0.1)
    raise AssertionError("audit lookup kept failing: %s %s" % (last.code(), last.details()))


def audit(stub, pb, ledger, figures, timeout):
    """Checks the model against the cluster; returns a list of violations (empty: passed)."""
    violations = []
    ids = list(ledger.transfers)
    found = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start:start + LOOKUP_CHUNK]
        reply = with_retries(lambda: stub.LookupTransfers(
            pb.LookupTransfersRequest(ids=[u128(pb, i) for i in chunk]), timeout=timeout))
        for transfer in reply.transfers:
            transfer_id = value(transfer.id)
            if transfer_id in found:
                violations.append("lookup returned transfer %d twice" % transfer_id)
            found[transfer_id] = transfer

    for transfer_id, attempts in ledger.attempts.items():
        violations += audit_transfer(transfer_id, ledger.transfers[transfer_id], attempts,
                                     found.get(transfer_id), figures)

    # Balances: every account's posted amounts equal the sum of its transfers that exist.
    debits = {a: 0 for a in ledger.account_ids}
    credits = dict(debits)
    for transfer_id in found:
        debit, credit, amount = ledger.transfers[transfer_id]
        debits[debit] += amount
        credits[credit] += amount
    reply = with_retries(lambda: stub.LookupAccounts(
        pb.LookupAccountsRequest(ids=[u128(pb, a) for a in ledger.account_ids]), timeout=timeout))
    if len(reply.accounts) != len(ledger.account_ids):
        violations.append("lookup found %d of %d accounts" % (len(reply.accounts),
                                                              len(ledger.account_ids)))
    for account in reply.accounts:
        account_id = value(account.id)
        if value(account.debits_posted) != debits[account_id]:
            violations.append("account %d debits_posted %d, transfers sum to %d" % (
                account_id, value(account.debits_posted), debits[account_id]))
        if value(account.credits_posted) != credits[account_id]:
            violations.append("account %d credits_posted %d, transfers sum to %d" % (
                account_id, value(account.credits_posted), credits[account_id]))
    figures["transfers_audited"] = figures.get("transfers_audited", 0) + len(ids)
    figures["transfers_found"] = figures.get("transfers_found", 0) + len(found)
    figures["accounts_audited"] = figures.get("accounts_audited", 0) + len(reply.accounts)
    return violations


def count(figures, name):
    figures[name] = figures.get(name, 0) + 1


def audit_transfer(transfer_id, transfer, attempts, found, figures):
    """The checks of one transfer; returns its violations."""
    violations = []
    debit, credit, amount = transfer
    if found is not None and (value(found.debit_account_id), value(found.credit_account_id),
                              value(found.amount)) != (debit, credit, amount):
        violations.append("transfer %d exists with other fields" % transfer_id)
    results = [a for a in attempts if a[0] == "result"]
    errors = [a for a in attempts if a[0] == "error"]
    created = [a for a in results if a[1] == STATUS_CREATED]
    if len(created) > 1:
        violations.append("transfer %d reported created %d times" % (transfer_id, len(created)))
    for _, status, timestamp in results:
        if status not in (STATUS_CREATED, TRANSFER_STATUS_EXISTS):
            violations.append("transfer %d got status %d" % (transfer_id, status))
        elif found is None:
            violations.append("transfer %d reported %s but does not exist" % (
                transfer_id, "created" if status == STATUS_CREATED else "exists"))
        elif status == STATUS_CREATED and timestamp != found.timestamp:
            violations.append("transfer %d created at %d, stored at %d" % (
                transfer_id, timestamp, found.timestamp))
    if not attempts:
        violations.append("transfer %d was never answered" % transfer_id)
    elif results:
        count(figures, "transfers_answered_with_result")
    elif all(outcome == "not_applied" for _, _, outcome in errors):
        count(figures, "transfers_not_applied")
        if found is not None:
            violations.append("transfer %d was reported not_applied but exists" % transfer_id)
    else:
        count(figures, "transfers_unknown_resolved_%s" % ("applied" if found else "absent"))
    return violations
