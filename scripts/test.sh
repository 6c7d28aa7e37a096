#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds everything, runs every
# test with ctest (unit tests, end-to-end suites with real clients, Prometheus, fault campaign),
# then the unit and integration tests again under AddressSanitizer+UndefinedBehaviorSanitizer and
# under ThreadSanitizer, and a short run of every fuzzer. Ends with one line adding up all four:
# "tests: N passed, N failed, N skipped".
#
# Extra arguments go to the main ctest run. TBPROXY_TEST_MAIN_ONLY=1 skips the sanitizer and
# fuzz builds (quicker while developing). The TSan build needs an Abseil built with TSan; the
# first run builds it into ~/.cache/tbproxy (scripts/build-tsan-abseil.sh), later runs reuse it.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
build_dir="${TBPROXY_BUILD_DIR:-build}"

scripts/install-deps.sh || exit 1
scripts/build.sh || exit 1

status=0
main_log="$build_dir/ctest-main.log"
(cd "$build_dir" && ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@") 2>&1 |
  tee "$main_log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

logs=("$main_log")
if [ "${TBPROXY_TEST_MAIN_ONLY:-0}" != 1 ]; then
  scripts/test-sanitizers.sh asan tsan || status=1
  logs+=("$root/build-asan/sanitizer-ctest.log" "$root/build-tsan/sanitizer-ctest.log")
  scripts/test-fuzz.sh || status=1
  logs+=("$root/build-fuzz/fuzz-ctest.log")
fi

# Add up ctest's "NN% tests passed, F tests failed out of T" lines of every run.
total=0
failed=0
skipped=0
for log in "${logs[@]}"; do
  line=$(grep -E 'tests failed out of [0-9]+' "$log" 2>/dev/null | tail -n 1)
  if [ -z "$line" ]; then
    echo "no ctest summary in $log" >&2
    status=1
    continue
  fi
  failed=$((failed + $(sed -E 's/.* ([0-9]+) tests failed out of.*/\1/' <<<"$line")))
  total=$((total + $(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")))
  # ctest lists skipped tests (GTEST_SKIP) once, under "The following tests did not run:".
  skipped=$((skipped + $(grep -cE '^\s+[0-9]+ - .* \(Skipped\)$' "$log" || true)))
done
# Name every failed test again here, so the end of a long CI log says which ones they were.
if [ "$failed" -gt 0 ]; then
  echo
  echo "failed tests:"
  for log in "${logs[@]}"; do
    sed -n '/^The following tests FAILED:/,/^$/p' "$log" 2>/dev/null | grep -E '^\s+[0-9]+ - ' |
      sed -E "s|^\s+|  $(basename "$(dirname "$log")"): |"
  done
fi
echo
echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
exit "$status"
