#!/usr/bin/env bash
# Installs what tbproxy needs to build, run and test, from Debian bookworm packages (and the npm
# registry for the Node-based test clients). Idempotent: packages already present are skipped,
# and apt is not touched at all when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # Build tools.
  cmake ninja-build clang ccache pkg-config
  # Unpacks Debian's Abseil source for the ThreadSanitizer build (scripts/build-tsan-abseil.sh).
  dpkg-dev
  # Libraries (why each is there: README "Dependencies").
  libabsl-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libasio-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  # JSON reader for the state-machine conformance test (devcluster/conformance_test.cc).
  nlohmann-json3-dev
  # HTTP listener for /metrics, /healthz and /readyz (proxy/metrics/metrics_http.cc).
  libcivetweb-dev
  # Thread-caching allocator linked into tbproxy, tb-devcluster and the load generator
  # (cmake/TbTargets.cmake: tb_use_fast_malloc).
  libgoogle-perftools-dev
  # Test peers: real gRPC client, real Prometheus, the official Node client's runtime, linters;
  # python3-h2 is a bare HTTP/2 client for a peer that never reads its responses.
  python3 python3-grpcio python3-protobuf python3-grpc-tools python3-yaml yamllint python3-h2
  prometheus openssl curl
  # The container test (tests/deploy/container_test.py): a bookworm root for the image's runtime
  # stage, namespaces for running tbproxy in it, and an engine to build and run the image itself.
  debootstrap iproute2 podman runc
  # Plots of BENCHMARKS.md (bench/report.py).
  python3-matplotlib
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# Node.js and npm run the official TigerBeetle client and grpc-js. A machine that already has
# them (from Debian or from another packaging of Node that bundles npm) keeps what it has:
# Debian's npm package conflicts with Node builds that ship their own npm.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_prefix=()
  [ "$(id -u)" -eq 0 ] || sudo_prefix=(sudo)
  "${sudo_prefix[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_prefix[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

# Node packages for the end-to-end tests (the official TigerBeetle client, grpc-js), pinned by
# tests/node/package-lock.json. Skipped when already installed at the locked versions.
if [ -f tests/node/package-lock.json ]; then
  if [ ! -f tests/node/node_modules/.package-lock.json ] ||
     ! cmp -s <(sed -n '/"packages"/,$p' tests/node/package-lock.json) \
               <(sed -n '/"packages"/,$p' tests/node/node_modules/.package-lock.json); then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
