# Sourced by bench/run.sh and bench/loadgen_smoke_test.sh: the dev cluster and tbproxy started on
# free loopback ports, found from their "listening" lines, and stopped on exit.
# Needs: work (a scratch folder), devcluster_bin and tbproxy_bin (paths to the binaries).

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# wait_line FILE REGEX: prints the first line of FILE matching REGEX (waits up to 30 s).
wait_line() {
  for _ in $(seq 300); do
    if line="$(grep -m1 -E "$2" "$1" 2>/dev/null)"; then echo "$line"; return 0; fi
    sleep 0.1
  done
  echo "no \"$2\" in $1:" >&2; cat "$1" >&2; return 1
}

# start_cluster NAME [flags...]: starts a dev cluster on a free port; sets cluster_address and
# cluster_pid.
start_cluster() {
  local name="$1"; shift
  "$devcluster_bin" --addresses=127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  cluster_pid=$!
  pids+=("$cluster_pid")
  cluster_address="$(wait_line "$work/$name.out" '^listening on ' | sed 's/^listening on //')"
}

# start_proxy NAME CLUSTER_ADDRESS [tbproxy flags...]: starts tbproxy with its gRPC and native
# ports on free ports; sets proxy_target (gRPC), proxy_native_target (TigerBeetle protocol) and
# proxy_pid.
start_proxy() {
  local name="$1" cluster="$2"; shift 2
  "$tbproxy_bin" --listen=127.0.0.1:0 --native-listen=127.0.0.1:0 --cluster-addresses="$cluster" \
    --log-level=warning "$@" >"$work/$name.out" 2>"$work/$name.err" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  local port
  port="$(wait_line "$work/$name.out" '^tbproxy listening on port' | sed 's/.*port //')"
  proxy_target="127.0.0.1:$port"
  port="$(wait_line "$work/$name.out" '^tbproxy native listening on port' | sed 's/.*port //')"
  proxy_native_target="127.0.0.1:$port"
}
