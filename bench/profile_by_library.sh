#!/usr/bin/env bash
# tbproxy's CPU per call, split by library (kernel, gRPC, protobuf, allocator, tbproxy's own code),
# for every path: the table "The floor under each per-call goal" in bench/PROFILE.md.
#
#   bench/profile_by_library.sh [TBPROXY]
#
# S5 shape: echo dev cluster, 1024 callers x 1 event, a fresh tbproxy per path; `perf record -e
# cpu-clock` (a software clock, so it works where perf has no hardware counters) samples tbproxy
# for 3 s in the middle of a 6 s run, and the load generator's report of the same run gives the
# CPU per call. Needs perf (Debian's linux-perf) and the rights to attach to a process. Uses this
# tree's tb-devcluster and tbproxy-loadgen (build/, or TBPROXY_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${TBPROXY_BUILD_DIR:-build}"
tbproxy_bin="${1:-$build_dir/proxy/tbproxy}"
devcluster_bin="$build_dir/devcluster/tb-devcluster"
loadgen_bin="$build_dir/bench/tbproxy-loadgen"
command -v perf >/dev/null || { echo "profile_by_library.sh: perf is not installed" >&2; exit 2; }
work="$(mktemp -d /tmp/tbproxy-profile.XXXXXX)"
. bench/processes.sh

start_cluster echo --echo
for path in native stream raw typed; do
  start_proxy "proxy-$path" "$cluster_address"
  target=$proxy_target
  [ "$path" = native ] && target=$proxy_native_target
  "$loadgen_bin" --target="$target" --path="$path" --callers=1024 --events=1 --duration=6s \
    --warmup=1s --echo --proxy-pid="$proxy_pid" >"$work/$path.json" 2>"$work/$path.err" &
  loadgen_pid=$!
  sleep 3
  perf record -e cpu-clock -F 1999 -g -p "$proxy_pid" -o "$work/$path.data" -- sleep 3 \
    >/dev/null 2>&1
  wait "$loadgen_pid" || { echo "profile_by_library.sh: $path run FAILED" >&2; cat "$work/$path.err" >&2; exit 1; }
  kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
done
python3 bench/profile_by_library.py "$work"
