#!/usr/bin/env python3
"""Hostile input: raw TCP against tb-devcluster's replica ports and tbproxy's gRPC port while a
well-behaved caller keeps working through tbproxy.

Against the cluster port and tbproxy's native port (--native-listen; both speak the TigerBeetle
framing, PROTOCOL.md §3): random garbage, a header
whose size field is 4 GiB, truncated headers, slow writers (a byte at a time), half-open
connections (write side shut), and a connection flood past --connections-max. Against the gRPC
port: garbage, an HTTP/1.1 request, the HTTP/2 preface followed by garbage frames, a connection
flood, half-open connections, and a Raw call larger than --grpc-message-size-max (it must be
refused with RESOURCE_EXHAUSTED). Afterwards both processes are alive and every call of the
well-behaved caller succeeded. The seed (random bytes) is printed.

usage: hostile_input.py --tbproxy=B --devcluster=B [--seed=1]
"""
import random
import socket
import struct
import sys
import threading
import time

import grpc

import harness
from harness import u128

CONNECTIONS_MAX = 16  # tb-devcluster --connections-max (per replica).
MESSAGE_SIZE_MAX = 1 << 20  # tbproxy --grpc-message-size-max.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return s


def send_and_close(port, data, shut_write=False):
    """Sends data; reads until the peer closes or 1 s passes; never raises on network errors."""
    try:
        with connect(port) as s:
            s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
            s.settimeout(1)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
    except OSError:
        pass


def slow_writer(port, data, pause):
    try:
        with connect(port) as s:
            for byte in data:
                s.sendall(bytes([byte]))
                time.sleep(pause)
    except OSError:
        pass


def flood(port, count, hold):
    sockets = []
    for _ in range(count):
        try:
            sockets.append(connect(port))
        except OSError:
            break
    time.sleep(hold)
    for s in sockets:
        s.close()
    return len(sockets)


def tigerbeetle_attacks(rng, port):
    header = bytearray(rng.randbytes(256))
    header[96:100] = struct.pack("<I", 0xFFFFFFFF)  # size: 4 GiB
    attacks = [lambda: send_and_close(port, rng.randbytes(rng.randint(1, 65536)))
               for _ in range(20)]
    attacks += [lambda: send_and_close(port, bytes(header)),
                lambda: send_and_close(port, bytes(header[:100])),
                lambda: send_and_close(port, bytes(256)),  # an all-zero header
                lambda: send_and_close(port, rng.randbytes(128), shut_write=True),
                lambda: slow_writer(port, rng.randbytes(40), 0.05),
                lambda: flood(port, CONNECTIONS_MAX + 20, 1.0)]
    return attacks


def grpc_attacks(rng, port):
    attacks = [lambda: send_and_close(port, rng.randbytes(rng.randint(1, 65536)))
               for _ in range(10)]
    attacks += [lambda: send_and_close(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                lambda: send_and_close(port, H2_PREFACE + rng.randbytes(4096)),
                # A SETTINGS frame claiming 16 MiB of payload, then nothing.
                lambda: send_and_close(port, H2_PREFACE + b"\xff\xff\xff\x04\x00\x00\x00\x00\x00"),
                lambda: send_and_close(port, H2_PREFACE, shut_write=True),
                lambda: slow_writer(port, H2_PREFACE, 0.05),
                lambda: flood(port, 200, 1.0)]
    return attacks


class GoodCaller(threading.Thread):
    def __init__(self, stub, pb, seed):
        super().__init__(daemon=True)
        self.stub, self.pb, self.seed = stub, pb, seed
        self.stop = threading.Event()
        self.calls = 0
        self.errors = []

    def run(self):
        pb = self.pb
        while not self.stop.is_set():
            self.calls += 1
            account_id = (self.seed << 64) | self.calls
            try:
                reply = self.stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
                    pb.Account(id=u128(pb, account_id), ledger=7, code=1)]), timeout=30)
                if reply.results[0].status_code != harness.STATUS_CREATED:
                    self.errors.append("status %d" % reply.results[0].status_code)
            except grpc.RpcError as error:
                self.errors.append("%s %s" % (error.code().name, error.details()))


def run_attacks(attacks, parallel=8):
    threads = []
    for attack in attacks:
        thread = threading.Thread(target=attack, daemon=True)
        thread.start()
        threads.append(thread)
        if len(threads) >= parallel:
            threads.pop(0).join(30)
    for thread in threads:
        thread.join(30)


def main():
    parser = harness.binaries_parser(__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-native", dest="native", action="store_false",
                        help="skip tbproxy's native port (for builds without --native-listen)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    directory, pb, rpc = harness.temporary_stubs()
    cluster, addresses = harness.start_devcluster(
        args.devcluster, flags=["--connections-max=%d" % CONNECTIONS_MAX])
    native_flags = ["--native-listen=127.0.0.1:0"] if args.native else []
    proxy, port = harness.start_proxy(args.tbproxy, flags=[
        "--cluster-addresses=" + addresses, "--sessions=2",
        "--grpc-message-size-max=%d" % MESSAGE_SIZE_MAX, "--log-level=warning", *native_flags])
    native_port = None
    for line in proxy.preamble:
        if line.startswith("tbproxy native listening on port "):
            native_port = int(line.split()[-1])
    if args.native and native_port is None:
        raise AssertionError("tbproxy did not announce its native port: %s" % proxy.preamble)
    problems = []
    try:
        stub = rpc.TigerBeetleStub(harness.channel(port))
        stub.LookupAccounts(pb.LookupAccountsRequest(ids=[u128(pb, 1)]), timeout=30,
                            wait_for_ready=True)
        good = GoodCaller(stub, pb, args.seed)
        good.start()
        cluster_port = int(addresses.split(",")[0].rsplit(":", 1)[1])
        run_attacks(tigerbeetle_attacks(rng, cluster_port))
        run_attacks(grpc_attacks(rng, port))
        if native_port is not None:
            # The native port speaks the TigerBeetle framing to official clients.
            run_attacks(tigerbeetle_attacks(rng, native_port))
        try:
            stub.Raw(pb.RawRequest(operation=146, events=bytes(MESSAGE_SIZE_MAX + 128)),
                     timeout=30)
            problems.append("a Raw call above --grpc-message-size-max was accepted")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                problems.append("oversized call ended %s, not RESOURCE_EXHAUSTED" % error.code())
        calls_before = good.calls
        harness.wait_until(lambda: good.calls > calls_before + 5, 60,
                           "the good caller to keep going after the attacks")
        good.stop.set()
        good.join(60)
        problems += ["good caller: " + e for e in good.errors[:20]]
        for name, process in (("tb-devcluster", cluster), ("tbproxy", proxy)):
            if not process.alive():
                problems.append("%s died (exit %s):\n%s" % (name, process.process.returncode,
                                                           process.tail()))
        print("hostile input: %d well-behaved calls, all answered OK: %s; native port %s; "
              "seed %d" % (good.calls, not good.errors,
                           "attacked" if native_port else "skipped", args.seed))
    finally:
        if proxy.alive() and proxy.stop() != 0:
            problems.append("tbproxy did not drain cleanly")
        if cluster.alive():
            cluster.stop()
        directory.cleanup()
    return harness.verdict("hostile input", args.seed, problems)


if __name__ == "__main__":
    sys.exit(main())
