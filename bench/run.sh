#!/usr/bin/env bash
# Benchmarks of tbproxy: does batching pay, and what does the proxy itself cost?
#
#   bench/run.sh [--quick] [--no-build] [--out DIR]
#
# With --out DIR (other than bench/results), the report and plots go to DIR/BENCHMARKS.md and
# DIR/plots instead of BENCHMARKS.md and bench/plots, so a trial run leaves the committed ones be.
#
# Starts dev clusters (tb-devcluster, one with --echo) and tbproxy on free 127.0.0.1 ports, runs
# the scenarios below with tbproxy-loadgen (every result is checked; a wrong one fails the run),
# writes one JSON file per run to bench/results/ and regenerates BENCHMARKS.md and its plots
# (bench/report.py).
#
#   S1  one direct session, full 8189-event create_transfers requests (the cluster's best case)
#   S2  fan-in: 1..4096 callers x 1- and 10-event create_transfers through tbproxy, per API path
#       (gRPC typed, raw, stream, and the native TigerBeetle-protocol port, one session per caller)
#   S3  the same callers direct, one session each up to 32 sessions: applications without tbproxy
#       (a replica keeps clients_max = 64 sessions but serves only 32 client connections at once,
#       PROTOCOL.md §2.4, so 32 is the most sessions that can carry requests concurrently)
#   S4  one caller, sequential: latency through tbproxy vs direct
#   S4f the floor under S4 typed: one caller against a bare gRPC server of the same API
#   S5  echo dev cluster, 1024 callers x 1, 10 and 100 events, every path: events per
#       CPU-second of the tbproxy process (/proc/<pid>/stat) and its CPU microseconds per call
#   S5f the floor under S5: the same calls answered at once by a bare gRPC server of the same API
#       (tbproxy-grpc-floor) and, for the native protocol, by the echo dev cluster itself
#   S6  tbproxy RSS: idle, with many idle connected callers, and under S2's largest caller count
#   S6f the floor under S6: the same idle streams held by the bare gRPC server
#   S1d/S2d/S3d  S1, S2 (typed, stream, native) and S3 again against a dev cluster whose
#       requests take 2 ms, like a replicated cluster that fsyncs: a pipeline of prepares of 2 ms each (--prepare-latency,
#       --pipeline-max) when tb-devcluster has it, else every reply held 2 ms (--reply-delay).
#       Per-request latency, not CPU, bounds each session: where coalescing pays on a real cluster
#
# --quick runs a subset with short windows (a few minutes on 2 cores). Nothing is pinned to a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
build=1
out=bench/results
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --out) out="$2"; shift ;;
    *) echo "usage: bench/run.sh [--quick] [--no-build] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$out" = bench/results ]; then
  markdown=BENCHMARKS.md; plots=bench/plots
else
  markdown="$out/BENCHMARKS.md"; plots="$out/plots"
fi

build_dir="${TBPROXY_BUILD_DIR:-build}"
if [ "$build" = 1 ]; then
  TBPROXY_BUILD_DIR="$build_dir" scripts/build.sh --target tbproxy tb-devcluster tbproxy-loadgen \
    tbproxy-grpc-floor
fi
tbproxy_bin="$build_dir/proxy/tbproxy"
floor_bin="$build_dir/bench/tbproxy-grpc-floor"
devcluster_bin="$build_dir/devcluster/tb-devcluster"
loadgen_bin="$build_dir/bench/tbproxy-loadgen"
for bin in "$tbproxy_bin" "$devcluster_bin" "$loadgen_bin" "$floor_bin"; do
  [ -x "$bin" ] || { echo "run.sh: $bin missing (build it or drop --no-build)" >&2; exit 2; }
done

if [ "$quick" = 1 ]; then
  duration=2s; warmup=500ms; latency_duration=3s
  s2_callers=(1 16 256 4096); s2_other_paths_callers=(256 4096)
  s3_callers=(1 16 256 4096)
  idle_streams=10000
  delayed_callers=(16 256 4096)
  s5_events=(10 100)
else
  duration=5s; warmup=1s; latency_duration=10s
  s2_callers=(1 16 256 1024 4096); s2_other_paths_callers=(1 16 256 1024 4096)
  s3_callers=(1 16 256 1024 4096)
  idle_streams=10000
  delayed_callers=(1 16 256 1024 4096)
  s5_events=(1 10 100)
fi
s5_callers=1024
# The 2 ms cluster of S2d/S3d: a pipeline of prepares (as TigerBeetle's primary runs them) when
# this tb-devcluster has that model, otherwise every reply held back 2 ms.
pipeline_max=8
devcluster_help="$("$devcluster_bin" --help 2>&1 || true)"
if grep -q 'prepare.latency' <<<"$devcluster_help"; then
  delayed_flags=(--prepare-latency=2ms --pipeline-max="$pipeline_max")
  delayed_model="pipeline"
else
  delayed_flags=(--reply-delay=2ms)
  delayed_model="reply_delay"
fi
events_list=(1 10)

work="$(mktemp -d /tmp/tbproxy-bench.XXXXXX)"
mkdir -p "$out"
rm -f "$out"/*.json
. "$(dirname "$0")/processes.sh"

# proxy_flags PATH: the loadgen flags that reach the running tbproxy by PATH (typed, raw,
# stream: its gRPC port; native: its TigerBeetle-protocol port, one session per caller).
proxy_flags() {
  if [ "$1" = native ]; then
    echo "--target=$proxy_native_target --path=native"
  else
    echo "--target=$proxy_target --path=$1"
  fi
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# A fresh cluster + tbproxy (the dev cluster keeps every transfer in memory, so long runs get
# a new one per group).
# fresh_proxy [tbproxy flags...]
fresh_proxy() {
  [ -n "${proxy_pid:-}" ] && stop_pid "$proxy_pid"
  [ -n "${proxy_cluster_pid:-}" ] && stop_pid "$proxy_cluster_pid"
  start_cluster proxy-cluster
  proxy_cluster_pid=$cluster_pid
  start_proxy proxy "$cluster_address" "$@"
}
fresh_direct() {
  [ -n "${direct_cluster_pid:-}" ] && stop_pid "$direct_cluster_pid"
  start_cluster direct-cluster
  direct_cluster_pid=$cluster_pid
  direct_address="$cluster_address"
}

failures=0
# run NAME [loadgen flags...]: one loadgen run, its JSON in $out/NAME.json.
run() {
  local name="$1"; shift
  echo "== $name: $*" >&2
  if ! "$loadgen_bin" --label="$name" --output="$out/$name.json" --warmup="$warmup" "$@" \
      >"$work/$name.loadgen.out" 2>"$work/$name.loadgen.err"; then
    echo "run.sh: $name FAILED:" >&2
    cat "$work/$name.loadgen.err" >&2
    failures=$((failures + 1))
  fi
  [ -f "$out/$name.json" ] && sed 's/, "error_samples.*//' "$out/$name.json" | cut -c1-220 >&2
  return 0
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start_floor: starts tbproxy-grpc-floor on a free port; sets floor_pid and floor_port.
start_floor() {
  "$floor_bin" --listen=127.0.0.1:0 >"$work/floor.out" 2>"$work/floor.err" &
  floor_pid=$!
  pids+=("$floor_pid")
  floor_port="$(wait_line "$work/floor.out" '^grpc floor listening on port' | sed 's/.*port //')"
}

# idle_streams_rss LABEL TARGET PID: PID's RSS idle (LABEL_rss_idle.json), then with
# $idle_streams idle Stream RPCs open on TARGET (LABEL_rss_idle_streams.json).
idle_streams_rss() {
  local label=$1 target=$2 pid=$3
  sleep 1
  echo "{\"label\": \"${label}_rss_idle\", \"proxy_rss_kb\": $(rss_kb "$pid"), \"ok\": true}" \
    >"$out/${label}_rss_idle.json"
  if ! "$loadgen_bin" --target="$target" --idle-streams="$idle_streams" --channels=16 \
      --idle-hold=2s --proxy-pid="$pid" --label="${label}_rss_idle_streams" \
      >"$out/${label}_rss_idle_streams.json" 2>"$work/$label.err"; then
    echo "run.sh: $label idle streams FAILED" >&2; cat "$work/$label.err" >&2
    failures=$((failures + 1))
  fi
}

# ---- Machine ---------------------------------------------------------------------------------
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
cat >"$out/machine.json" <<JSON
{"nproc": $(nproc), "cpu_model": "$cpu_model", "kernel": "$(uname -r)",
 "mem_total_kb": $(awk '/^MemTotal:/ {print $2}' /proc/meminfo),
 "loadavg_at_start": "$(cut -d' ' -f1-3 /proc/loadavg)", "pinning": "none",
 "delayed_model": "$delayed_model", "delayed_flags": "${delayed_flags[*]}",
 "pipeline_max": $pipeline_max, "s5_callers": $s5_callers,
 "quick": $([ "$quick" = 1 ] && echo true || echo false),
 "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "commit": "$(git rev-parse --short HEAD)"}
JSON

# ---- S6 (idle first, on a fresh proxy) ---------------------------------------------------------
# Room for the idle streams above the default --stream-rpcs-max (10,000, exactly S6's count).
fresh_proxy --stream-rpcs-max=$((idle_streams * 2))
idle_streams_rss s6 "$proxy_target" "$proxy_pid"
# S6f, the floor under S6: the same idle streams held by tbproxy-grpc-floor, a gRPC server of the
# same API that does nothing: what gRPC itself keeps per stream.
start_floor
idle_streams_rss s6f_floor "127.0.0.1:$floor_port" "$floor_pid"
stop_pid "$floor_pid"

# ---- S1: one direct session, full requests -----------------------------------------------------
fresh_direct
run s1_direct_8189 --target=direct --cluster-addresses="$direct_address" --sessions=1 \
  --callers=1 --events=8189 --accounts=8189 --duration="$duration"

# ---- S4: one sequential caller, latency --------------------------------------------------------
fresh_proxy
run s4_proxy_typed --target="$proxy_target" --path=typed --callers=1 --events=1 \
  --duration="$latency_duration" --proxy-pid="$proxy_pid"
run s4_proxy_native --target="$proxy_native_target" --path=native --callers=1 --events=1 \
  --duration="$latency_duration" --proxy-pid="$proxy_pid"
run s4_direct --target=direct --cluster-addresses="$direct_address" --callers=1 --events=1 \
  --duration="$latency_duration"
# S4f, the floor under S4 typed: the same caller against a gRPC server of the same API that
# answers at once, with no cluster behind it: one gRPC round trip and nothing else.
start_floor
run s4f_floor_typed --target="127.0.0.1:$floor_port" --path=typed --callers=1 --events=1 \
  --duration="$latency_duration" --echo --proxy-pid="$floor_pid"
stop_pid "$floor_pid"
# The same with --busy-poll: the pool thread polls instead of sleeping between a lone caller's
# calls, which saves the wake-ups that dominate at one caller (bench/PROFILE.md).
fresh_proxy --busy-poll=100us
run s4_proxy_typed_busy_poll --target="$proxy_target" --path=typed --callers=1 --events=1 \
  --duration="$latency_duration" --proxy-pid="$proxy_pid"
run s4_proxy_native_busy_poll --target="$proxy_native_target" --path=native --callers=1 \
  --events=1 --duration="$latency_duration" --proxy-pid="$proxy_pid"

# ---- S2: fan-in through tbproxy ------------------------------------------------------------------
# A fresh dev cluster and tbproxy per run: the dev cluster keeps every transfer in memory, and one
# that already holds millions of them was seen to stall for up to seconds (its CPU time jumps
# while tbproxy's and the load generator's fall idle), which lands in whichever run is measured.
for callers in "${s2_callers[@]}"; do
  for events in "${events_list[@]}"; do
    paths=(typed)
    if [[ " ${s2_other_paths_callers[*]} " == *" $callers "* ]]; then
      paths=(typed raw stream native)
    fi
    for path in "${paths[@]}"; do
      fresh_proxy
      # shellcheck disable=SC2046  # proxy_flags prints two flags without spaces inside.
      run "s2_${path}_c${callers}_e${events}" $(proxy_flags "$path") \
        --callers="$callers" --events="$events" --duration="$duration" \
        --proxy-pid="$proxy_pid"
    done
  done
done

# ---- S3: the same callers direct, at most 32 sessions ---------------------------------------------
for callers in "${s3_callers[@]}"; do
  fresh_direct
  for events in "${events_list[@]}"; do
    run "s3_direct_c${callers}_e${events}" --target=direct --cluster-addresses="$direct_address" \
      --callers="$callers" --sessions=$((callers < 32 ? callers : 32)) --events="$events" \
      --duration="$duration"
  done
done

# ---- S2d/S3d: a cluster whose every request takes 2 ms ---------------------------------------
# S1d first: one direct session with full requests on the same model, the ceiling S2d is
# compared with.
[ -n "${direct_cluster_pid:-}" ] && stop_pid "$direct_cluster_pid"
start_cluster delayed-s1-cluster "${delayed_flags[@]}"
direct_cluster_pid=$cluster_pid
run s1d_direct_8189 --target=direct --cluster-addresses="$cluster_address" --sessions=1 \
  --callers=1 --events=8189 --accounts=8189 --duration="$duration"
for callers in "${delayed_callers[@]}"; do
  stop_pid "$proxy_pid"; stop_pid "$proxy_cluster_pid"
  start_cluster delayed-cluster "${delayed_flags[@]}"
  proxy_cluster_pid=$cluster_pid
  start_proxy proxy "$cluster_address"
  [ -n "${direct_cluster_pid:-}" ] && stop_pid "$direct_cluster_pid"
  start_cluster delayed-direct-cluster "${delayed_flags[@]}"
  direct_cluster_pid=$cluster_pid
  for events in "${events_list[@]}"; do
    for path in typed stream native; do
      # shellcheck disable=SC2046  # proxy_flags prints several flags
      run "s2d_${path}_c${callers}_e${events}" $(proxy_flags "$path") \
        --callers="$callers" --events="$events" --duration="$duration" --proxy-pid="$proxy_pid"
    done
    run "s3d_direct_c${callers}_e${events}" --target=direct --cluster-addresses="$cluster_address" \
      --callers="$callers" --sessions=$((callers < 32 ? callers : 32)) --events="$events" \
      --duration="$duration"
  done
done

# ---- S5: echo cluster, tbproxy's own CPU cost, by events per call ----------------------------
stop_pid "$proxy_pid"; proxy_pid=
start_cluster echo-cluster --echo
echo_address="$cluster_address"
for events in "${s5_events[@]}"; do
  for path in typed raw stream native; do
    # A fresh tbproxy per run: one run's leftover virtual sessions or streams cost nothing in
    # the next one's CPU window.
    [ -n "${proxy_pid:-}" ] && stop_pid "$proxy_pid"
    start_proxy proxy-echo "$echo_address"
    # shellcheck disable=SC2046
    run "s5_echo_${path}_c${s5_callers}_e${events}" $(proxy_flags "$path") \
      --callers="$s5_callers" --events="$events" --duration="$duration" --echo \
      --proxy-pid="$proxy_pid"
  done
done

# ---- S5f: the floor under S5: the same calls answered with no work ---------------------------
# A bare gRPC server of the same API that answers every create at once (tbproxy-grpc-floor) for
# the gRPC paths, and an echo dev cluster with one session per caller for the native protocol
# (a one-thread server of the same protocol, answering at once): what gRPC, the protocol and the
# kernel cost per call on this machine before tbproxy does anything.
stop_pid "$proxy_pid"; proxy_pid=
for events in "${s5_events[@]}"; do
  for path in typed raw stream; do
    start_floor
    run "s5f_floor_${path}_c${s5_callers}_e${events}" --target="127.0.0.1:$floor_port" \
      --path="$path" --callers="$s5_callers" --events="$events" --duration="$duration" --echo \
      --proxy-pid="$floor_pid"
    stop_pid "$floor_pid"
  done
  start_cluster floor-cluster --echo --clients_max=$((2 * s5_callers)) \
    --connections_max=$((2 * s5_callers))
  run "s5f_floor_native_c${s5_callers}_e${events}" --target=direct \
    --cluster-addresses="$cluster_address" --sessions="$s5_callers" --callers="$s5_callers" \
    --events="$events" --duration="$duration" --echo --proxy-pid="$cluster_pid"
  stop_pid "$cluster_pid"
done

echo "run.sh: $failures failed run(s); results in $out" >&2
# Debian's python3 has python3-matplotlib; another python3 first on PATH may not.
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
"$python" bench/report.py --results "$out" --markdown "$markdown" --plots "$plots"
[ "$failures" = 0 ]
