#!/usr/bin/env bash
# Builds every libFuzzer target (tb_fuzzer in the CMakeLists) with clang into build-fuzz and runs
# each for TBPROXY_FUZZ_SECONDS (default 20) from its seed corpus, as ctest tests labelled "fuzz".
# The libraries are compiled with coverage instrumentation and ASan/UBSan too, so the fuzzers
# are guided by the code under test and not only by their harness.
#
# usage: scripts/test-fuzz.sh [extra ctest arguments]
# Environment: TBPROXY_FUZZ_SECONDS, TBPROXY_FUZZ_BUILD_DIR (default build-fuzz), TBPROXY_JOBS.
# Prints the configure/build/run durations and ctest's summary line. A crash leaves its input
# (crash-*) in the build directory and prints it; add it to the seed corpus after the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
build_dir="${TBPROXY_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${TBPROXY_FUZZ_SECONDS:-20}"
jobs_args=()
if [ -n "${TBPROXY_JOBS:-}" ]; then jobs_args=(-j "$TBPROXY_JOBS"); fi

start=$(date +%s)
cmake -S "$root" -B "$build_dir" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
  -DTBPROXY_FUZZ=ON -DTBPROXY_FUZZ_SECONDS="$seconds" \
  -DTBPROXY_BUILD_GRPC=OFF -DTBPROXY_BUILD_BENCH=OFF >/dev/null
configured=$(date +%s)

# The fuzz targets are the tests named fuzz_<target>.
mapfile -t targets < <(ctest --test-dir "$build_dir" -N -L fuzz | sed -n 's/^ *Test *#[0-9]*: fuzz_//p')
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
echo "fuzz targets: ${targets[*]}"
cmake --build "$build_dir" "${jobs_args[@]}" --target "${targets[@]}"
built=$(date +%s)

log="$build_dir/fuzz-ctest.log"
set +e
# One fuzzer at a time: each uses one core, and CI has two shared with the build.
(cd "$build_dir" && ctest -L fuzz --output-on-failure "$@") 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
set -e
ran=$(date +%s)
echo
echo "== fuzz summary =="
grep -E '^ *[0-9]+/[0-9]+ Test' "$log" || true
echo "configure $((configured - start))s, build $((built - configured))s, run $((ran - built))s" \
     "(${#targets[@]} targets, ${seconds}s each)"
grep -E 'tests passed' "$log" | tail -n 1
exit "$code"
