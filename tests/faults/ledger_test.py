#!/usr/bin/env python3
"""Unit tests of the fault campaign's audit rules (ledger.audit_transfer): each rule must catch
the violation it exists for, so that a passing campaign means something."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

from harness import STATUS_CREATED, TRANSFER_STATUS_EXISTS  # noqa: E402
from ledger import Ledger, audit_transfer  # noqa: E402


class Number:
    def __init__(self, number):
        self.lo, self.hi = number & (2**64 - 1), number >> 64


class Stored:
    """A transfer as LookupTransfers returns it."""

    def __init__(self, debit, credit, amount, timestamp):
        self.debit_account_id, self.credit_account_id = Number(debit), Number(credit)
        self.amount, self.timestamp = Number(amount), timestamp


class Error:
    def __init__(self, code, outcome):
        self._code, self._outcome = code, outcome

    def code(self):
        return self._code

    def trailing_metadata(self):
        return (("tbproxy-outcome", self._outcome),) if self._outcome else ()


TRANSFER = (1, 2, 10)


def check(attempts, found):
    return audit_transfer(7, TRANSFER, attempts, found, {})


class AuditTransferTest(unittest.TestCase):
    def test_created_and_stored_passes(self):
        self.assertEqual(check([("result", STATUS_CREATED, 5)], Stored(1, 2, 10, 5)), [])

    def test_created_but_missing_is_a_violation(self):
        self.assertTrue(check([("result", STATUS_CREATED, 5)], None))

    def test_created_twice_is_a_violation(self):
        attempts = [("result", STATUS_CREATED, 5), ("result", STATUS_CREATED, 5)]
        self.assertTrue(any("2 times" in v for v in check(attempts, Stored(1, 2, 10, 5))))

    def test_other_timestamp_is_a_violation(self):
        self.assertTrue(check([("result", STATUS_CREATED, 5)], Stored(1, 2, 10, 6)))

    def test_other_fields_are_a_violation(self):
        self.assertTrue(check([("result", STATUS_CREATED, 5)], Stored(2, 1, 10, 5)))

    def test_not_applied_but_stored_is_a_violation(self):
        attempts = [("error", grpc.StatusCode.RESOURCE_EXHAUSTED, "not_applied")]
        self.assertTrue(check(attempts, Stored(1, 2, 10, 5)))
        self.assertEqual(check(attempts, None), [])

    def test_unknown_resolves_either_way(self):
        figures = {}
        attempts = [("error", grpc.StatusCode.DEADLINE_EXCEEDED, "unknown")]
        self.assertEqual(audit_transfer(7, TRANSFER, attempts, None, figures), [])
        self.assertEqual(audit_transfer(7, TRANSFER, attempts, Stored(1, 2, 10, 5), figures), [])
        self.assertEqual(figures, {"transfers_unknown_resolved_absent": 1,
                                   "transfers_unknown_resolved_applied": 1})

    def test_retry_answered_exists_passes(self):
        attempts = [("error", grpc.StatusCode.ABORTED, "unknown"),
                    ("result", TRANSFER_STATUS_EXISTS, 9)]
        self.assertEqual(check(attempts, Stored(1, 2, 10, 5)), [])

    def test_unexpected_status_and_no_answer_are_violations(self):
        self.assertTrue(check([("result", 34, 0)], None))
        self.assertTrue(check([], None))

    def test_record_error_uses_documented_never_applied_codes(self):
        ledger = Ledger([1, 2])
        ledger.add(7, *TRANSFER)
        ledger.record_error([7], Error(grpc.StatusCode.RESOURCE_EXHAUSTED, None))
        ledger.record_error([7], Error(grpc.StatusCode.UNAVAILABLE, None))
        self.assertEqual([a[2] for a in ledger.attempts[7]], ["not_applied", None])
        with self.assertRaises(AssertionError):
            ledger.add(7, *TRANSFER)


if __name__ == "__main__":
    unittest.main()
