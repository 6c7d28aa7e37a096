#!/usr/bin/env bash
# One command to try tbproxy: installs what is missing, builds, and runs the proxy on the
# embedded (in-memory, not durable) dev cluster. Arguments are passed to tbproxy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh --target tbproxy
exec "${TBPROXY_BUILD_DIR:-build}/proxy/tbproxy" "$@"
