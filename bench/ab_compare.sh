#!/usr/bin/env bash
# tbproxy CPU per call of two tbproxy builds, side by side: S5 (echo cluster; 1, 10 and 100
# events per call; every path) and S2d (the 2 ms pipeline model; one event per call), 1024
# callers, the two builds alternated run by run so that a slow spell of the machine hits both.
#
#   bench/ab_compare.sh BEFORE_TBPROXY AFTER_TBPROXY [ROUNDS]
#
# Uses this tree's tb-devcluster and tbproxy-loadgen (build/, or TBPROXY_BUILD_DIR). Writes one
# JSON line per run to $out (default /tmp/tbproxy-ab) and prints a table of medians
# (bench/ab_summary.py). Every result is still checked by the load generator. duration=5s
# (the default) sets the length of each measured run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/ab_compare.sh BEFORE_TBPROXY AFTER_TBPROXY [ROUNDS]" >&2; exit 2; }
declare -A tbproxy_of=([before]="$1" [after]="$2")
rounds="${3:-2}"
build_dir="${TBPROXY_BUILD_DIR:-build}"
devcluster_bin="$build_dir/devcluster/tb-devcluster"
loadgen_bin="$build_dir/bench/tbproxy-loadgen"
out="${out:-/tmp/tbproxy-ab}"
work="$(mktemp -d /tmp/tbproxy-ab-work.XXXXXX)"
. bench/processes.sh
rm -rf "$out"; mkdir -p "$out"

# run_one SIDE SCENARIO PATH EVENTS CLUSTER_ADDRESS
run_one() {
  local side=$1 scenario=$2 path=$3 events=$4 address=$5
  tbproxy_bin="${tbproxy_of[$side]}"
  start_proxy "proxy-$side" "$address"
  local target=$proxy_target echo_flag=()
  [ "$path" = native ] && target=$proxy_native_target
  [ "$scenario" = s5 ] && echo_flag=(--echo)
  "$loadgen_bin" --target="$target" --path="$path" --callers=1024 --events="$events" \
    --duration="${duration:-5s}" --warmup=1s "${echo_flag[@]}" --proxy-pid="$proxy_pid" \
    --label="${side}_${scenario}_${path}_e${events}" \
    >>"$out/${side}_${scenario}_${path}_e${events}.jsonl" 2>/dev/null ||
    echo "ab_compare.sh: $side $scenario $path $events FAILED" >&2
  kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
}

start_cluster echo --echo
echo_address=$cluster_address
for _ in $(seq "$rounds"); do
  for events in 1 10 100; do
    for path in typed raw stream native; do
      for side in before after; do run_one "$side" s5 "$path" "$events" "$echo_address"; done
    done
  done
done
for _ in $(seq "$rounds"); do
  for path in typed stream native; do
    for side in before after; do
      start_cluster "delayed-$side" --prepare-latency=2ms --pipeline-max=8
      run_one "$side" s2d "$path" 1 "$cluster_address"
      kill "$cluster_pid"; wait "$cluster_pid" 2>/dev/null || true
    done
  done
done
python3 bench/ab_summary.py "$out"
