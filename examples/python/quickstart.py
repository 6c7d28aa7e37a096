#!/usr/bin/env python3
"""tbproxy quickstart: create two accounts and a transfer, look them up, print balances.

usage: quickstart.py [host:port]   (default: $TBPROXY_ADDRESS, else 127.0.0.1:50051)
"""
import os
import secrets
import sys

import grpc
from tbproxy.v1 import tbproxy_pb2 as pb
from tbproxy.v1 import tbproxy_pb2_grpc as rpc


def u128(value):  # Python int -> Uint128 {lo, hi}
    return pb.Uint128(lo=value & (2**64 - 1), hi=value >> 64)


def to_int(value):  # Uint128 -> Python int
    return value.hi << 64 | value.lo


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "TBPROXY_ADDRESS", "127.0.0.1:50051")
    stub = rpc.TigerBeetleStub(grpc.insecure_channel(address))
    # Choose ids before the first attempt and reuse them on every retry.
    debit_id, credit_id, transfer_id = (secrets.randbits(127) + 1 for _ in range(3))
    try:
        reply = stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
            pb.Account(id=u128(debit_id), ledger=1, code=1),
            pb.Account(id=u128(credit_id), ledger=1, code=1),
        ]), timeout=10)
        for result in reply.results:  # One result per account, in request order.
            if result.status != pb.CREATE_ACCOUNT_STATUS_CREATED:
                sys.exit("account not created: " + pb.CreateAccountStatus.Name(result.status))
        reply = stub.CreateTransfers(pb.CreateTransfersRequest(transfers=[
            pb.Transfer(id=u128(transfer_id), debit_account_id=u128(debit_id),
                        credit_account_id=u128(credit_id), amount=u128(100), ledger=1, code=1),
        ]), timeout=10)
        if reply.results[0].status != pb.CREATE_TRANSFER_STATUS_CREATED:
            sys.exit("transfer not created: " +
                     pb.CreateTransferStatus.Name(reply.results[0].status))
        reply = stub.LookupAccounts(pb.LookupAccountsRequest(
            ids=[u128(debit_id), u128(credit_id)]), timeout=10)
    except grpc.RpcError as error:
        # not_applied: safe to retry as is; unknown: retry with the same ids.
        outcome = dict(error.trailing_metadata() or ()).get("tbproxy-outcome", "-")
        sys.exit(f"{error.code().name} (outcome {outcome}): {error.details()}")
    for account in reply.accounts:
        print(f"account {to_int(account.id):032x} "
              f"debits_posted={to_int(account.debits_posted)} "
              f"credits_posted={to_int(account.credits_posted)}")


if __name__ == "__main__":
    main()
