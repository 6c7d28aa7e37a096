#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds everything, and runs
# every test with ctest (unit tests, end-to-end suites with real clients, Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd "${TBPROXY_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"
