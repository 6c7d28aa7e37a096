#!/usr/bin/env python3
"""The table of bench/profile_by_library.sh: tbproxy's CPU per call split by library, from the
perf profiles and load-generator reports it leaves in DIR (PATH.data, PATH.json).

    python3 bench/profile_by_library.py DIR
"""
import json
import os
import re
import subprocess
import sys

PATHS = ["native", "stream", "raw", "typed"]
# Column -> shared objects whose self time it sums.
COLUMNS = [
    ("kernel", ["[kernel.kallsyms]"]),
    ("gRPC", ["libgrpc.so", "libgpr.so", "libgrpc++.so"]),
    ("protobuf", ["libprotobuf.so"]),
    ("tcmalloc", ["libtcmalloc_minimal.so"]),
    ("absl::Mutex", ["libabsl_synchronization.so"]),
    ("tbproxy's code", ["tbproxy"]),
]
# Kernel entry points reported per call (their time including what they call).
SYSCALLS = ["__sys_sendmsg", "__sys_recvfrom", "__sys_recvmsg", "__x64_sys_futex",
            "__x64_sys_epoll_wait", "__x64_sys_epoll_ctl"]


def perf_report(data, *args):
    return subprocess.run(["perf", "report", "-i", data, "--stdio", *args],
                          capture_output=True, text=True, check=True).stdout


def self_share_by_dso(data):
    shares = {}
    for line in perf_report(data, "--no-children", "--sort", "dso", "-g", "none").splitlines():
        match = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if match:
            shares[match.group(2)] = float(match.group(1)) / 100
    return shares


def syscall_shares(data):
    shares = {}
    for line in perf_report(data, "--children", "--sort", "sym", "-g", "none").splitlines():
        match = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[k\]\s+(\S+)$", line)
        if match and match.group(2) in SYSCALLS:
            shares[match.group(2)] = float(match.group(1)) / 100
    return shares


def column_share(shares, prefixes):
    return sum(share for dso, share in shares.items()
               if any(dso == p or dso.startswith(p) for p in prefixes))


def main():
    directory = sys.argv[1]
    print("| path | µs per call | " + " | ".join(name for name, _ in COLUMNS) + " |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    notes = []
    for path in PATHS:
        data = os.path.join(directory, f"{path}.data")
        report = [json.loads(line) for line in open(os.path.join(directory, f"{path}.json"))
                  if line.startswith("{")][-1]
        if not report.get("ok"):
            sys.exit(f"{path}: the load generator reported a failure")
        us_per_call = 1e6 * report["proxy_cpu_seconds"] / report["calls"]
        shares = self_share_by_dso(data)
        cells = [f"{us_per_call * column_share(shares, prefixes):.2f}" for _, prefixes in COLUMNS]
        print(f"| {path} | {us_per_call:.2f} | " + " | ".join(cells) + " |")
        calls = syscall_shares(data)
        notes.append(f"{path}: " + ", ".join(
            f"{name.split('sys_')[-1]} {us_per_call * share:.2f}"
            for name, share in sorted(calls.items(), key=lambda item: -item[1]) if share >= 0.005))
    print("\nSystem calls, µs per call (including the kernel work they cause):")
    for note in notes:
        print("- " + note)


if __name__ == "__main__":
    main()
