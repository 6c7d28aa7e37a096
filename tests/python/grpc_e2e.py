#!/usr/bin/env python3
"""End-to-end test of tbproxy's gRPC API with real gRPC clients (Debian's python3-grpcio).

Starts tbproxy (embedded dev cluster) on a free port, generates the Python stubs from
proto/tbproxy/v1/tbproxy.proto into a temporary directory, then runs several client processes
at once. Each client uses every RPC: typed creates, lookups, filters, queries, change events,
the Raw RPC with native bytes, and the Stream RPC with pipelined calls whose order must hold.
Further tbproxy runs check bearer tokens with read-only permissions, TLS, and the bound on open
Stream RPCs with its metrics. Finally SIGTERM must drain and exit 0.

usage: grpc_e2e.py <tbproxy binary> <repository root>
"""
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading

CLIENTS = 4
TIMEOUT = 30  # Seconds per RPC: a bound for a hung proxy, not a speed check.


def generate_stubs(root, directory):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", os.path.join(root, "proto"),
                    "--python_out", directory, "--grpc_python_out", directory,
                    os.path.join(root, "proto/tbproxy/v1/tbproxy.proto")], check=True)


def start_proxy(binary, extra_args=(), env=None, preexec_fn=None):
    process = subprocess.Popen([binary, "--listen=127.0.0.1:0", *extra_args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, preexec_fn=preexec_fn)
    line = process.stdout.readline()
    if not line.startswith("tbproxy listening on port "):
        process.kill()
        raise RuntimeError("tbproxy did not start: %r %s" % (line, process.stderr.read()))
    # Keep stderr drained so the proxy never blocks on a full pipe.
    log = []
    threading.Thread(target=lambda: log.extend(process.stderr), daemon=True).start()
    return process, int(line.split()[-1]), log


def stop_proxy(process):
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=60)
    if code != 0:
        raise AssertionError("tbproxy exited with %d after SIGTERM" % code)


# ---- Client side (runs in its own process) -------------------------------------------------

def u128(pb, value):
    return pb.Uint128(lo=value & (2**64 - 1), hi=value >> 64)


def value(v):
    return v.lo | (v.hi << 64)


def native_account(account_id, ledger, code):
    # Account, 128 bytes little-endian (PROTOCOL.md §12.1).
    return struct.pack("<12QQIIIHHQ", account_id & (2**64 - 1), account_id >> 64,
                       *([0] * 10), 0, 0, 0, ledger, code, 0, 0)


def client(port, index):
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    stub = rpc.TigerBeetleStub(channel)
    base = (index + 1) << 80  # Ids of this client, disjoint from the others, with a high half.
    created = pb.CREATE_ACCOUNT_STATUS_CREATED

    # Typed creates: two accounts, then a linked chain whose second event fails.
    reply = stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
        pb.Account(id=u128(pb, base + 1), ledger=7, code=1, user_data_64=index + 1),
        pb.Account(id=u128(pb, base + 2), ledger=7, code=1, user_data_64=index + 1),
    ]), timeout=TIMEOUT)
    assert [r.status for r in reply.results] == [created, created], reply
    assert reply.results[0].status_code == 0xFFFFFFFF
    assert reply.timestamp > 0
    reply = stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
        pb.Account(id=u128(pb, base + 3), ledger=7, code=1, flags=1),  # linked
        pb.Account(id=u128(pb, base + 4), ledger=0, code=1),
    ]), timeout=TIMEOUT)
    assert reply.results[0].status == pb.CREATE_ACCOUNT_STATUS_LINKED_EVENT_FAILED, reply
    assert reply.results[1].status == pb.CREATE_ACCOUNT_STATUS_LEDGER_MUST_NOT_BE_ZERO, reply

    transfers = [pb.Transfer(id=u128(pb, base + 100 + i), debit_account_id=u128(pb, base + 1),
                             credit_account_id=u128(pb, base + 2), amount=u128(pb, 10 + i),
                             ledger=7, code=1) for i in range(5)]
    reply = stub.CreateTransfers(pb.CreateTransfersRequest(transfers=transfers), timeout=TIMEOUT)
    assert all(r.status == pb.CREATE_TRANSFER_STATUS_CREATED for r in reply.results), reply
    first_transfer_timestamp = reply.results[0].timestamp
    reply = stub.CreateTransfers(pb.CreateTransfersRequest(transfers=transfers[:1]),
                                 timeout=TIMEOUT)
    assert reply.results[0].status == pb.CREATE_TRANSFER_STATUS_EXISTS, reply

    # Lookups return what exists, in request order.
    reply = stub.LookupAccounts(pb.LookupAccountsRequest(
        ids=[u128(pb, base + 2), u128(pb, base + 3), u128(pb, base + 1)]), timeout=TIMEOUT)
    assert [value(a.id) for a in reply.accounts] == [base + 2, base + 1], reply
    assert value(reply.accounts[0].credits_posted) == sum(10 + i for i in range(5))
    assert reply.accounts[1].user_data_64 == index + 1
    reply = stub.LookupTransfers(pb.LookupTransfersRequest(ids=[u128(pb, base + 104)]),
                                 timeout=TIMEOUT)
    assert value(reply.transfers[0].amount) == 14, reply

    # Filters and queries.
    account_filter = pb.AccountFilter(account_id=u128(pb, base + 1), limit=100, flags=1 | 2)
    reply = stub.GetAccountTransfers(pb.GetAccountTransfersRequest(filter=account_filter),
                                     timeout=TIMEOUT)
    assert [value(t.id) for t in reply.transfers] == [base + 100 + i for i in range(5)], reply
    reply = stub.GetAccountBalances(pb.GetAccountBalancesRequest(filter=account_filter),
                                    timeout=TIMEOUT)
    assert len(reply.balances) == 0  # The account has no history flag.
    reply = stub.QueryAccounts(pb.QueryAccountsRequest(filter=pb.QueryFilter(
        user_data_64=index + 1, ledger=7, limit=10)), timeout=TIMEOUT)
    assert sorted(value(a.id) for a in reply.accounts) == [base + 1, base + 2], reply
    reply = stub.QueryTransfers(pb.QueryTransfersRequest(filter=pb.QueryFilter(
        ledger=7, code=1, timestamp_min=first_transfer_timestamp, limit=8189)), timeout=TIMEOUT)
    assert {base + 100 + i for i in range(5)} <= {value(t.id) for t in reply.transfers}
    reply = stub.GetChangeEvents(pb.GetChangeEventsRequest(filter=pb.ChangeEventsFilter(
        timestamp_min=first_transfer_timestamp, limit=2730)), timeout=TIMEOUT)
    mine = [e for e in reply.events if value(e.transfer_id) >= base + 100
            and value(e.transfer_id) < base + 105]
    assert len(mine) == 5, reply
    assert mine[0].type == pb.CHANGE_EVENT_TYPE_SINGLE_PHASE
    assert value(mine[0].debit_account_id) == base + 1

    # Raw: native bytes in, native bytes out.
    raw = stub.Raw(pb.RawRequest(operation=146, events=native_account(base + 5, 7, 2)),
                   timeout=TIMEOUT)
    timestamp, status, reserved = struct.unpack("<QII", raw.results)
    assert status == 0xFFFFFFFF and reserved == 0 and timestamp > 0, raw
    ids = struct.pack("<QQQQ", (base + 5) & (2**64 - 1), (base + 5) >> 64, 1, 0)
    raw = stub.Raw(pb.RawRequest(operation=140, events=ids), timeout=TIMEOUT)
    assert len(raw.results) == 128, raw
    assert struct.unpack_from("<QQ", raw.results)[0] == (base + 5) & (2**64 - 1)
    assert struct.unpack_from("<H", raw.results, 116)[0] == 2  # code

    # Bad input is refused with the documented status, before it reaches the cluster.
    for request in (pb.RawRequest(operation=128), pb.RawRequest(operation=146, events=b"x")):
        try:
            stub.Raw(request, timeout=TIMEOUT)
            raise AssertionError("accepted %r" % request)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    try:
        stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[pb.Account(ledger=1)]),
                            timeout=TIMEOUT)
        raise AssertionError("accepted an account without id")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "accounts[0].id: required" in error.details(), error.details()

    # Stream: 40 transfers, each followed at once by a lookup of it. Calls of one stream apply
    # in order, so every lookup must find the transfer sent just before it.
    count = 40
    def requests():
        for i in range(count):
            transfer_id = base + 1000 + i
            yield pb.StreamRequest(correlation_id=2 * i, create_transfers=pb.CreateTransfersRequest(
                transfers=[pb.Transfer(id=u128(pb, transfer_id), debit_account_id=u128(pb, base + 2),
                                       credit_account_id=u128(pb, base + 1), amount=u128(pb, 1),
                                       ledger=7, code=1)]))
            yield pb.StreamRequest(correlation_id=2 * i + 1, lookup_transfers=pb.LookupTransfersRequest(
                ids=[u128(pb, transfer_id)]))
        yield pb.StreamRequest(correlation_id=10**6, raw=pb.RawRequest(operation=128))
    responses = {}
    for response in stub.Stream(requests(), timeout=TIMEOUT * 4):
        responses[response.correlation_id] = response
    assert len(responses) == 2 * count + 1, len(responses)
    for i in range(count):
        created_reply = responses[2 * i].create_transfers
        assert created_reply.results[0].status == pb.CREATE_TRANSFER_STATUS_CREATED, responses[2 * i]
        found = responses[2 * i + 1].lookup_transfers.transfers
        assert [value(t.id) for t in found] == [base + 1000 + i], responses[2 * i + 1]
    assert responses[10**6].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]

    reply = stub.LookupAccounts(pb.LookupAccountsRequest(ids=[u128(pb, base + 1)]), timeout=TIMEOUT)
    assert value(reply.accounts[0].credits_posted) == count
    channel.close()


def check_health(port):
    """Waits (Health/Watch) until the proxy reports SERVING; False if the stream ends first."""
    import grpc
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda x: x,
                                    response_deserializer=lambda x: x)
        reply = check(b"", timeout=TIMEOUT, wait_for_ready=True)
        assert reply in (b"\x08\x01", b"\x08\x02"), reply  # SERVING or NOT_SERVING.
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                     request_serializer=lambda x: x,
                                     response_deserializer=lambda x: x)
        for status in watch(b"", timeout=TIMEOUT):
            if status == b"\x08\x01":
                return True
        return False


def check_health_watch_quiet(port):
    """A Health/Watch stream hears the status once and then nothing while it does not change
    (the proxy polls its readiness every 100 ms; gRPC would forward every poll)."""
    import grpc
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                     request_serializer=lambda x: x,
                                     response_deserializer=lambda x: x)
        statuses = []
        try:
            for status in watch(b"", timeout=1.5):
                statuses.append(status)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
        assert statuses == [b"\x08\x01"], "Watch sent %r in 1.5 s" % statuses


def check_reflection(port):
    """Server reflection lists the service, so grpcurl works without the proto file."""
    import grpc
    with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda x: x, response_deserializer=lambda x: x)
        # ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
        replies = list(info(iter([b"\x3a\x00"]), timeout=TIMEOUT))
        assert len(replies) == 1 and b"tbproxy.v1.TigerBeetle" in replies[0], replies


def check_tokens(binary, directory):
    import hashlib
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    token_file = os.path.join(directory, "tokens")
    with open(token_file, "w") as f:
        for name, permission, token in (("app", "write", "w-secret"), ("bi", "read", "r-secret")):
            f.write("%s:%s:sha256:%s\n" % (name, permission,
                                           hashlib.sha256(token.encode()).hexdigest()))
    process, port, log = start_proxy(binary, ["--token-file=" + token_file])
    try:
        stub = rpc.TigerBeetleStub(grpc.insecure_channel("127.0.0.1:%d" % port))
        create = pb.CreateAccountsRequest(accounts=[pb.Account(id=u128(pb, 77), ledger=1, code=1)])
        def code_of(call, request, token):
            metadata = [("authorization", "Bearer " + token)] if token else []
            try:
                call(request, timeout=TIMEOUT, metadata=metadata)
                return grpc.StatusCode.OK
            except grpc.RpcError as error:
                return error.code()
        assert code_of(stub.CreateAccounts, create, None) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(stub.CreateAccounts, create, "nope") == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(stub.CreateAccounts, create, "r-secret") == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(stub.Raw, pb.RawRequest(operation=146, events=native_account(78, 1, 1)),
                       "r-secret") == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(stub.CreateAccounts, create, "w-secret") == grpc.StatusCode.OK
        lookup = pb.LookupAccountsRequest(ids=[u128(pb, 77)])
        assert code_of(stub.LookupAccounts, lookup, "r-secret") == grpc.StatusCode.OK
    finally:
        stop_proxy(process)
    text = "".join(log)
    assert "w-secret" not in text and "r-secret" not in text, "a token reached the log"


def check_tls(binary, directory):
    """--tls-cert-file/--tls-key-file serve TLS; plaintext clients are refused."""
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, cwd=directory, capture_output=True)
    curve = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    openssl("genpkey", *curve, "-out", "ca.key")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=tbproxy-test-ca")
    openssl("genpkey", *curve, "-out", "server.key")
    openssl("req", "-new", "-key", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    process, port, _ = start_proxy(binary, [
        "--tls-cert-file=" + os.path.join(directory, "server.pem"),
        "--tls-key-file=" + os.path.join(directory, "server.key")])
    try:
        with open(os.path.join(directory, "ca.pem"), "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        request = pb.LookupAccountsRequest(ids=[u128(pb, 1)])
        with grpc.secure_channel("127.0.0.1:%d" % port, credentials) as channel:
            rpc.TigerBeetleStub(channel).LookupAccounts(request, timeout=TIMEOUT)
        with grpc.insecure_channel("127.0.0.1:%d" % port) as channel:
            try:
                rpc.TigerBeetleStub(channel).LookupAccounts(request, timeout=TIMEOUT)
                raise AssertionError("plaintext accepted by a TLS listener")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    finally:
        stop_proxy(process)


def metrics_port_of(log):
    """The port of --metrics-listen=127.0.0.1:0, from tbproxy's log."""
    import re
    import time
    deadline = time.monotonic() + TIMEOUT
    while not re.search(r"event=metrics_listening port=(\d+)", "".join(log)):
        assert time.monotonic() < deadline, "no metrics_listening line in tbproxy's log"
        time.sleep(0.01)
    return int(re.search(r"event=metrics_listening port=(\d+)", "".join(log))[1])


def metrics_sample(metrics_port, name):
    """The value of the unlabelled series `name` on /metrics."""
    import re
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                timeout=TIMEOUT) as reply:
        text = reply.read().decode()
    return float(re.search(r"^%s (\S+)$" % name, text, re.M)[1])


def check_stream_bound(binary):
    """--stream-rpcs-max: one stream past the bound is refused RESOURCE_EXHAUSTED, not applied,
    and counted; a stream that ends gives its place back. /metrics shows both."""
    import queue
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    process, port, log = start_proxy(binary, ["--stream-rpcs-max=2",
                                              "--metrics-listen=127.0.0.1:0"])
    try:
        metrics_port = metrics_port_of(log)

        def sample(name):
            return metrics_sample(metrics_port, name)

        channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        stub = rpc.TigerBeetleStub(channel)

        def open_stream():
            """A stream with one answered lookup; returns (requests queue, responses, call)."""
            requests = queue.Queue()
            call = stub.Stream(iter(requests.get, None), timeout=TIMEOUT * 4)
            requests.put(pb.StreamRequest(correlation_id=1, lookup_accounts=pb.LookupAccountsRequest(
                ids=[u128(pb, 1)])))
            try:
                assert next(call).correlation_id == 1
            except grpc.RpcError:
                requests.put(None)  # Ends the request iterator's thread.
                raise
            return requests, call

        def close_stream(stream):
            requests, call = stream
            requests.put(None)
            assert list(call) == []
            assert call.code() == grpc.StatusCode.OK, call.code()

        first, second = open_stream(), open_stream()
        try:
            open_stream()
            raise AssertionError("a third stream was opened with --stream-rpcs-max=2")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            assert "--stream-rpcs-max" in error.details(), error.details()
            assert ("tbproxy-outcome", "not_applied") in error.trailing_metadata(), \
                error.trailing_metadata()
        assert sample("tbproxy_grpc_streams_open") == 2
        assert sample("tbproxy_grpc_streams_refused_total") == 1
        close_stream(first)
        third = open_stream()
        close_stream(second)
        close_stream(third)
        assert sample("tbproxy_grpc_streams_open") == 0
        channel.close()
    finally:
        stop_proxy(process)


def check_connection_bound(binary):
    """--grpc-connections-max: a connection past the bound is closed at accept, so its calls fail
    UNAVAILABLE and nothing reaches the cluster; a connection the client closes gives its place
    back. /metrics shows the open connections and the refusals."""
    import time
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    process, port, log = start_proxy(binary, ["--grpc-connections-max=2",
                                              "--metrics-listen=127.0.0.1:0"])
    try:
        metrics_port = metrics_port_of(log)
        # A channel of its own connection: gRPC would otherwise share one between channels.
        options = [("grpc.use_local_subchannel_pool", 1)]

        def lookup(channel):
            stub = rpc.TigerBeetleStub(channel)
            return stub.LookupAccounts(pb.LookupAccountsRequest(ids=[u128(pb, 1)]),
                                       timeout=TIMEOUT)

        channels = [grpc.insecure_channel("127.0.0.1:%d" % port, options=options)
                    for _ in range(2)]
        for channel in channels:
            lookup(channel)
        assert metrics_sample(metrics_port, "tbproxy_grpc_connections") == 2
        third = grpc.insecure_channel("127.0.0.1:%d" % port, options=options)
        try:
            lookup(third)
            raise AssertionError("a third connection was served with --grpc-connections-max=2")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        third.close()
        assert metrics_sample(metrics_port, "tbproxy_grpc_connections_refused_total") >= 1
        assert metrics_sample(metrics_port, "tbproxy_grpc_connections") == 2

        channels.pop().close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            channel = grpc.insecure_channel("127.0.0.1:%d" % port, options=options)
            try:
                lookup(channel)
                channels.append(channel)
                break
            except grpc.RpcError as error:
                channel.close()
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                assert time.monotonic() < deadline, "the closed connection's place never freed"
                time.sleep(0.05)
        for channel in channels:
            channel.close()
    finally:
        stop_proxy(process)


def full_lookup(stub, pb, high):
    """Creates 8,189 accounts (ids with `high` as their upper half) and returns the lookup that
    finds them all: the largest response a call can get."""
    ids = [u128(pb, (high << 64) + i + 1) for i in range(8189)]
    reply = stub.CreateAccounts(pb.CreateAccountsRequest(accounts=[
        pb.Account(id=i, ledger=1, code=1) for i in ids]), timeout=TIMEOUT)
    assert len(reply.results) == 8189, len(reply.results)
    return pb.LookupAccountsRequest(ids=ids)


def assert_call_memory_refuses(stub, lookup):
    """The lookup is refused at once for --grpc-call-memory-max, not applied."""
    import grpc
    try:
        stub.LookupAccounts(lookup, timeout=TIMEOUT)
        raise AssertionError("a lookup was served while unread responses held the budget")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "--grpc-call-memory-max" in error.details(), error.details()
        assert ("tbproxy-outcome", "not_applied") in error.trailing_metadata()


def await_lookup_served(stub, lookup, what):
    """Retries the lookup, refused for --grpc-call-memory-max meanwhile, until it is served."""
    import time
    import grpc
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            assert len(stub.LookupAccounts(lookup, timeout=TIMEOUT).accounts) == 8189
            return
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            assert time.monotonic() < deadline, "%s never came back" % what
            time.sleep(0.05)


def await_call_memory_free(metrics_port):
    """Waits until no call holds memory. A call gives its reservation back when gRPC is done with
    it, which may be a moment after its client has the response."""
    import time
    deadline = time.monotonic() + TIMEOUT
    while metrics_sample(metrics_port, "tbproxy_grpc_call_memory_bytes") != 0:
        assert time.monotonic() < deadline, "calls that were answered still hold memory"
        time.sleep(0.01)


def check_call_memory_bound(binary):
    """--grpc-call-memory-max: a client that sends large lookups on a stream and never reads the
    responses holds the budget, so another client's large call is refused RESOURCE_EXHAUSTED
    (not applied) instead of tbproxy holding ever more responses; once the reader goes away, the
    memory is back and the call is served. /metrics shows the reserved bytes and the refusals."""
    import threading
    import time
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    process, port, log = start_proxy(binary, ["--grpc-call-memory-max=16777216",
                                              "--metrics-listen=127.0.0.1:0"])
    try:
        metrics_port = metrics_port_of(log)
        options = [("grpc.use_local_subchannel_pool", 1),
                   ("grpc.max_receive_message_length", 64 << 20)]
        channel = grpc.insecure_channel("127.0.0.1:%d" % port, options=options)
        stub = rpc.TigerBeetleStub(channel)
        lookup = full_lookup(stub, pb, 9)
        assert len(stub.LookupAccounts(lookup, timeout=TIMEOUT).accounts) == 8189
        await_call_memory_free(metrics_port)

        # Each lookup reserves about 4.5 MiB: three fit in 16 MiB, the next ones the stream
        # reads are answered RESOURCE_EXHAUSTED (unread too).
        stop = threading.Event()

        def requests():
            for k in range(20):
                yield pb.StreamRequest(correlation_id=k + 1, lookup_accounts=lookup)
            stop.wait()

        # A flow-control window that stays at 64 KiB while nothing is read (no BDP probes to
        # widen it), so the answered lookups' responses cannot leave tbproxy.
        slow_channel = grpc.insecure_channel("127.0.0.1:%d" % port, options=options + [
            ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 64 * 1024)])
        slow = rpc.TigerBeetleStub(slow_channel).Stream(requests(), timeout=TIMEOUT * 4)
        deadline = time.monotonic() + TIMEOUT
        while metrics_sample(metrics_port, "tbproxy_grpc_call_memory_refused_total") < 1:
            assert time.monotonic() < deadline, "the stream's lookups were not refused"
            time.sleep(0.05)
        assert metrics_sample(metrics_port, "tbproxy_grpc_call_memory_bytes") > 12 << 20
        assert_call_memory_refuses(stub, lookup)
        slow.cancel()
        stop.set()
        slow_channel.close()
        await_lookup_served(stub, lookup, "the stream's memory")
        await_call_memory_free(metrics_port)
        channel.close()
    finally:
        stop_proxy(process)


def unread_unary_calls(port, path, request_bytes, count):
    """Opens an HTTP/2 connection that sends `count` unary calls and never grants flow-control
    window, so their responses can never be sent; returns the socket (close it to end them)."""
    import select
    import socket
    import struct
    import h2.config
    import h2.connection
    import h2.settings

    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    framed = b"\x00" + struct.pack(">I", len(request_bytes)) + request_bytes
    unsent = {}
    for _ in range(count):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", path),
                                   (":authority", "127.0.0.1"),
                                   ("content-type", "application/grpc"), ("te", "trailers")])
        unsent[stream] = framed
    while unsent:
        for stream in list(unsent):
            window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
            while window > 0 and unsent[stream]:
                chunk, unsent[stream] = unsent[stream][:window], unsent[stream][window:]
                conn.send_data(stream, chunk, end_stream=not unsent[stream])
                window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
            if not unsent[stream]:
                del unsent[stream]
        sock.sendall(conn.data_to_send())
        if unsent and select.select([sock], [], [], TIMEOUT)[0]:
            data = sock.recv(1 << 20)
            assert data, "tbproxy closed the connection"
            conn.receive_data(data)  # Window updates from tbproxy; nothing is acknowledged.
            sock.sendall(conn.data_to_send())
    return sock


def check_unread_unary_calls(binary):
    """--grpc-call-memory-max holds for unary calls too: calls whose responses a peer never reads
    keep their memory until gRPC is done with them, so another client's call is refused
    RESOURCE_EXHAUSTED; once the peer's connection closes, the memory is back."""
    import time
    import grpc
    from tbproxy.v1 import tbproxy_pb2 as pb
    from tbproxy.v1 import tbproxy_pb2_grpc as rpc

    process, port, log = start_proxy(binary, ["--grpc-call-memory-max=16777216",
                                              "--metrics-listen=127.0.0.1:0"])
    try:
        metrics_port = metrics_port_of(log)
        channel = grpc.insecure_channel("127.0.0.1:%d" % port,
                                        options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = rpc.TigerBeetleStub(channel)
        lookup = full_lookup(stub, pb, 10)
        await_call_memory_free(metrics_port)
        # Each lookup reserves about 4.5 MiB: three fit in 16 MiB; the fourth is refused.
        peer = unread_unary_calls(port, "/tbproxy.v1.TigerBeetle/LookupAccounts",
                                  lookup.SerializeToString(), 4)
        deadline = time.monotonic() + TIMEOUT
        while metrics_sample(metrics_port, "tbproxy_grpc_call_memory_refused_total") < 1:
            assert time.monotonic() < deadline, "the peer's fourth lookup was not refused"
            time.sleep(0.05)
        assert_call_memory_refuses(stub, lookup)
        peer.close()
        await_lookup_served(stub, lookup, "the peer's memory")
        await_call_memory_free(metrics_port)
        channel.close()
    finally:
        stop_proxy(process)


def check_fd_limit(binary):
    """tbproxy raises its soft descriptor limit to the hard one, and warns when the hard one is
    below what its connection bounds need."""
    import resource
    import time

    def soft_limit(pid):
        with open("/proc/%d/limits" % pid) as limits:
            line = next(l for l in limits if l.startswith("Max open files"))
        return int(line.split()[3])

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard >= 8192:
        process, _, log = start_proxy(
            binary, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 8192)))
        try:
            assert soft_limit(process.pid) == 8192, soft_limit(process.pid)
        finally:
            stop_proxy(process)
        assert "fd_limit_low" not in "".join(log), "".join(log)
    process, _, log = start_proxy(
        binary, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512)))
    try:
        deadline = time.monotonic() + TIMEOUT
        while "event=fd_limit_low" not in "".join(log):
            assert time.monotonic() < deadline, "no fd_limit_low warning: %s" % "".join(log)
            time.sleep(0.01)
        assert "limit=512" in "".join(log) and "needed=" in "".join(log), "".join(log)
    finally:
        stop_proxy(process)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        client(int(sys.argv[2]), int(sys.argv[3]))
        return 0
    binary, root = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as directory:
        generate_stubs(root, directory)
        sys.path.insert(0, directory)
        env = dict(os.environ, PYTHONPATH=directory)
        process, port, log = start_proxy(binary)
        try:
            assert check_health(port), "never SERVING"
            check_health_watch_quiet(port)
            check_reflection(port)
            clients = [subprocess.Popen([sys.executable, __file__, "--client", str(port), str(i)],
                                        env=env) for i in range(CLIENTS)]
            codes = [c.wait(timeout=300) for c in clients]
            assert codes == [0] * CLIENTS, "client exit codes %s" % codes
            assert check_health(port), "not SERVING after the clients"
        finally:
            stop_proxy(process)
        assert "NOT DURABLE" in "".join(log), "the embedded cluster must be announced loudly"
        check_tokens(binary, directory)
        check_tls(binary, directory)
        check_stream_bound(binary)
        check_connection_bound(binary)
        check_call_memory_bound(binary)
        check_unread_unary_calls(binary)
        check_fd_limit(binary)
    print("grpc_e2e: %d concurrent clients, health (Check and Watch), reflection, tokens, TLS, "
          "the stream, connection and call memory bounds, the descriptor limit "
          "and drain: ok"
          % CLIENTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
