#!/usr/bin/env bash
# ctest "bench_loadgen_smoke": tbproxy-loadgen against a tbproxy and dev clusters started here, on
# free 127.0.0.1 ports. Passes only if every run completed calls and every result checked out,
# and if the checker rejects answers that are wrong (lookups on an echo cluster, which finds
# nothing, without --echo). No timing is asserted.
#
# It also runs the floor server of bench/run.sh's S5f (tbproxy-grpc-floor) on every gRPC path: its
# answers must pass the same checks.
#
#   loadgen_smoke_test.sh TBPROXY TB_DEVCLUSTER TBPROXY_LOADGEN TBPROXY_GRPC_FLOOR
set -euo pipefail
tbproxy="$1"; devcluster="$2"; loadgen="$3"; floor="$4"
work="$(mktemp -d /tmp/tbproxy-loadgen-smoke.XXXXXX)"
devcluster_bin="$devcluster"; tbproxy_bin="$tbproxy"
. "$(dirname "$0")/processes.sh"

failed=0
expect() {  # EXIT_STATUS NAME loadgen-flags...: runs the loadgen and checks its exit and report.
  local want="$1" name="$2"; shift 2
  local got=0
  "$loadgen" --warmup=100ms "$@" >"$work/$name.json" 2>"$work/$name.err" || got=$?
  local report
  report="$(tail -n1 "$work/$name.json")"
  if [ "$got" != "$want" ]; then
    echo "FAIL $name: exit $got, want $want"; cat "$work/$name.err"; echo "$report"; failed=1
    return
  fi
  if [ "$want" = 0 ]; then
    if ! grep -q '"ok": true' <<<"$report" || grep -q '"calls": 0,' <<<"$report"; then
      echo "FAIL $name: report not ok: $report"; failed=1; return
    fi
    if ! grep -q '"failures": 0,' <<<"$report" && ! grep -q '"idle_streams"' <<<"$report"; then
      echo "FAIL $name: failures reported: $report"; failed=1; return
    fi
  else
    if ! grep -q '"ok": false' <<<"$report"; then
      echo "FAIL $name: expected a failed report: $report"; failed=1; return
    fi
  fi
  echo "ok   $name"
}

start_cluster cluster
start_proxy proxy "$cluster_address"
mix="create_transfers:6,create_accounts:1,lookup_accounts:2,lookup_transfers:2"
for path in typed raw stream; do
  expect 0 "$path" --target="$proxy_target" --path="$path" --callers=32 --events=3 --mix="$mix" \
    --duration=1s --accounts=64 --proxy-pid="$proxy_pid"
done
expect 0 native --target="$proxy_native_target" --path=native --callers=32 --events=3 --mix="$mix" \
  --duration=1s --accounts=64 --proxy-pid="$proxy_pid"
if ! grep -q '"path": "native"' "$work/native.json" || ! grep -q '"proxy_cpu_seconds"' "$work/native.json"; then
  echo "FAIL native: report lacks path native or tbproxy's CPU: $(cat "$work/native.json")"; failed=1
fi
# The old spelling of the native path: tbproxy's native port as a "cluster" of direct sessions.
expect 0 native_as_direct --target=direct --cluster-addresses="$proxy_native_target" --callers=8 \
  --sessions=8 --events=2 --duration=500ms
expect 0 open_loop --target="$proxy_target" --path=typed --callers=8 --rate=300 --events=2 \
  --duration=1s
expect 0 idle_streams --target="$proxy_target" --idle-streams=32 --channels=2 --idle-hold=200ms
start_cluster direct-cluster
expect 0 direct --target=direct --cluster-addresses="$cluster_address" --callers=16 --sessions=4 \
  --events=5 --mix="$mix" --duration=1s

# The checker must catch wrong answers: an echo cluster creates nothing, so lookups find nothing.
start_cluster echo-cluster --echo
start_proxy proxy-echo "$cluster_address"
expect 0 echo_knows_it --target="$proxy_target" --path=raw --callers=4 --mix=lookup_accounts \
  --duration=500ms --echo
expect 1 echo_wrong_results --target="$proxy_target" --path=typed --callers=4 --mix=lookup_accounts \
  --duration=500ms
expect 1 echo_wrong_results_native --target="$proxy_native_target" --path=native --callers=4 \
  --mix=lookup_accounts --duration=500ms

# The floor server answers creates (typed, raw and on a stream) as tbproxy on an echo cluster does.
"$floor" --listen=127.0.0.1:0 >"$work/floor.out" 2>"$work/floor.err" &
floor_pid=$!
pids+=("$floor_pid")
floor_port="$(wait_line "$work/floor.out" '^grpc floor listening on port' | sed 's/.*port //')"
for path in typed raw stream; do
  expect 0 "floor_$path" --target="127.0.0.1:$floor_port" --path="$path" --callers=32 --events=3 \
    --mix=create_transfers:3,create_accounts:1 --duration=500ms --echo --proxy-pid="$floor_pid"
done
# Account lookups find nothing there (as on an echo cluster); transfer lookups are not served.
for path in typed stream; do
  expect 0 "floor_lookups_find_nothing_$path" --target="127.0.0.1:$floor_port" --path="$path" \
    --callers=4 --mix=lookup_accounts --duration=300ms --echo
done
expect 1 floor_has_no_transfer_lookups --target="127.0.0.1:$floor_port" --path=typed --callers=4 \
  --mix=lookup_transfers --duration=300ms --echo

exit "$failed"
