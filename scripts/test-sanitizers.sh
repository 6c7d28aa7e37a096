#!/usr/bin/env bash
# Builds the libraries and tests twice, with AddressSanitizer+UndefinedBehaviorSanitizer
# (build-asan) and with ThreadSanitizer (build-tsan), and runs the unit tests and the in-process
# integration tests (ctest labels "unit" and "integration") in each. The gRPC front end and the
# benchmarks are left out (-DTBPROXY_BUILD_GRPC=OFF, -DTBPROXY_BUILD_BENCH=OFF): Debian's grpc++
# is not built with sanitizers, and the layers below it are where our own threads and buffers
# live.
#
# usage: scripts/test-sanitizers.sh [asan|tsan]...   (default: both)
# Environment: TBPROXY_SANITIZER_BUILD_ROOT (default: the repository root) holds the build
# directories; TBPROXY_JOBS limits parallel compile jobs (default: ninja's choice);
# TBPROXY_SANITIZER_CTEST_ARGS adds ctest arguments (e.g. "-E CoalescerRandomized").
#
# The TSan build links an Abseil built with ThreadSanitizer (scripts/build-tsan-abseil.sh, cached
# outside the repository), not Debian's libabsl: TSan must see what absl::Mutex orders, or it
# reports races on data that absl::Mutex protects. scripts/tsan.supp lists the reports that are
# suppressed, each with its reason.
# Prints, per build, the configure/build/test durations and ctest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
build_root="${TBPROXY_SANITIZER_BUILD_ROOT:-$root}"
jobs_args=()
if [ -n "${TBPROXY_JOBS:-}" ]; then jobs_args=(-j "$TBPROXY_JOBS"); fi

kinds=("$@")
if [ ${#kinds[@]} -eq 0 ]; then kinds=(asan tsan); fi

# ThreadSanitizer in clang 14 cannot map its shadow memory when the kernel randomises mmap with
# more than 28 bits (Linux 6.x default on x86_64); running without address randomisation avoids it.
tsan_runner=()
if command -v setarch >/dev/null && [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ]; then
  tsan_runner=(setarch "$(uname -m)" -R)
fi

summary=()
status=0
for kind in "${kinds[@]}"; do
  case "$kind" in
    asan) sanitize="address,undefined" ;;
    tsan) sanitize="thread" ;;
    *) echo "unknown sanitizer build '$kind' (asan or tsan)" >&2; exit 2 ;;
  esac
  build_dir="$build_root/build-$kind"
  log="$build_dir/sanitizer-ctest.log"
  rm -f "$log"
  start=$(date +%s)
  extra_args=()
  if [ "$kind" = tsan ]; then
    if ! absl_prefix=$(scripts/build-tsan-abseil.sh | tail -n 1); then
      summary+=("$kind: building Abseil with ThreadSanitizer FAILED")
      status=1
      continue
    fi
    # absl_DIR as well as the prefix path: a cache configured against Debian's Abseil keeps it.
    extra_args=(-DCMAKE_PREFIX_PATH="$absl_prefix" -Dabsl_DIR="$absl_prefix/lib/cmake/absl")
  fi
  prepared=$(date +%s)
  # Configuring every time is cheap and picks up a moved Abseil prefix.
  cmake -S "$root" -B "$build_dir" -G Ninja \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTBPROXY_SANITIZE="$sanitize" -DTBPROXY_BUILD_GRPC=OFF -DTBPROXY_BUILD_BENCH=OFF \
    "${extra_args[@]}" >/dev/null
  # Any Debian libabsl on a TSan link line would bring back the uninstrumented absl::Mutex.
  if [ "$kind" = tsan ] && grep -qE '/usr/lib/[^ ]*libabsl_' "$build_dir/build.ninja"; then
    summary+=("$kind: Debian's libabsl is on a link line; see $build_dir/build.ninja")
    status=1
    continue
  fi
  configured=$(date +%s)
  if ! cmake --build "$build_dir" "${jobs_args[@]}"; then
    summary+=("$kind: configure $((configured - start))s, build FAILED after $(($(date +%s) - configured))s")
    status=1
    continue
  fi
  built=$(date +%s)
  runner=()
  if [ "$kind" = tsan ]; then runner=("${tsan_runner[@]}"); fi
  # halt_on_error: a sanitizer report fails the test instead of scrolling past.
  set +e
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/scripts/tsan.supp" \
    "${runner[@]}" ctest --test-dir "$build_dir" -L '^(unit|integration)$' --output-on-failure \
      --timeout 600 -j "$(nproc)" ${TBPROXY_SANITIZER_CTEST_ARGS:-} 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  set -e
  tested=$(date +%s)
  line=$(grep -E 'tests passed|No tests were found' "$log" | tail -n 1 || true)
  summary+=("$kind: prepare $((prepared - start))s, configure $((configured - prepared))s, build $((built - configured))s, test $((tested - built))s; ${line:-ctest printed no summary}")
  if [ "$code" -ne 0 ]; then status=1; fi
done

echo
echo "== sanitizer summary =="
for line in "${summary[@]}"; do echo "$line"; done
exit "$status"
