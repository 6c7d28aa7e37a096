#!/usr/bin/env bash
# Configures (once) and builds tbproxy into build/ with clang, Ninja and ccache.
# Extra arguments are passed to the build step, e.g. `scripts/build.sh --target tbproxy`.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${TBPROXY_BUILD_DIR:-build}"
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE="${TBPROXY_BUILD_TYPE:-RelWithDebInfo}" ${TBPROXY_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" "$@"
