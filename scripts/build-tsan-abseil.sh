#!/usr/bin/env bash
# Builds the Abseil that Debian bookworm ships (same upstream release, same Debian patches and
# options) with ThreadSanitizer, and installs it into a cache prefix outside the repository.
# Debian's libabsl-dev is not instrumented, so TSan cannot see what absl::Mutex orders; the TSan
# build (scripts/test-sanitizers.sh tsan) finds this copy through CMAKE_PREFIX_PATH instead.
#
# usage: scripts/build-tsan-abseil.sh   Prints the install prefix as its last line.
# Does nothing when the prefix is already complete. The first build took 7 minutes on two busy
# cores; compiles go through ccache, so a rebuild after the prefix is lost is quick.
# Environment: TBPROXY_CACHE_DIR (default: ${XDG_CACHE_HOME:-~/.cache}/tbproxy) holds the
# source, the build and the prefix; TBPROXY_JOBS limits parallel compile jobs.
set -euo pipefail

# Must match libabsl-dev in Debian bookworm (scripts/install-deps.sh installs that one): the
# headers tbproxy compiles against and the instrumented libraries it links come from here.
version=20220623.1-1+deb12u2
upstream=${version%%-*}
# SHA-256 of the .dsc, checked once against the signed bookworm Sources index (InRelease ->
# main/source/Sources.xz). The .dsc in turn lists the checksums of the two tarballs.
dsc_sha256=ba731eaced569332fa4ce802a7ff2615ae57ac25beaf2d02f634ef908f2e62c2
# The pool drops a version after the next point release; the snapshot keeps it.
mirrors=(
  http://deb.debian.org/debian/pool/main/a/abseil
  http://snapshot.debian.org/archive/debian/20250520T000000Z/pool/main/a/abseil
)

cache="${TBPROXY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tbproxy}"
prefix="$cache/absl-tsan-$version"
src_root="$cache/src/abseil-$version"
build_dir="$cache/build/absl-tsan-$version"
# Written last, so a half-finished install is rebuilt; its content is the recipe, so changing
# the flags below rebuilds too.
cmake_args=(
  -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
  "-DCMAKE_C_FLAGS=-fsanitize=thread" "-DCMAKE_CXX_FLAGS=-fsanitize=thread"
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF
  -DABSL_PROPAGATE_CXX_STD=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON
)
stamp="$prefix/.tbproxy-build-recipe"
recipe="abseil $version: ${cmake_args[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$recipe" ]; then
  echo "$prefix"
  exit 0
fi

download() {  # file: fetch into $cache/src from the first mirror that has it
  local file=$1 url
  [ -f "$cache/src/$file" ] && return 0
  for url in "${mirrors[@]}"; do
    if curl -fsSL --retry 3 -o "$cache/src/$file.part" "$url/$file"; then
      mv "$cache/src/$file.part" "$cache/src/$file"
      return 0
    fi
  done
  echo "cannot download $file" >&2
  return 1
}

start=$(date +%s)
mkdir -p "$cache/src"
dsc="abseil_$version.dsc"
download "$dsc"
echo "$dsc_sha256  $cache/src/$dsc" | sha256sum -c --quiet -
# Every file the .dsc lists, checked against its Checksums-Sha256 (dpkg-source checks again).
files=$(sed -n '/^Checksums-Sha256:/,/^[^ ]/{/^ /p}' "$cache/src/$dsc")
while read -r sum _size file; do
  download "$file"
  echo "$sum  $cache/src/$file" | sha256sum -c --quiet -
done <<<"$files"
rm -rf "$src_root"
# Unpacks the orig tarball and applies Debian's patches (options.h pinned, CVE fixes).
(cd "$cache/src" && dpkg-source -x "$dsc" "$src_root" >/dev/null)

rm -rf "$build_dir" "$prefix"
cmake -S "$src_root" -B "$build_dir" "${cmake_args[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
nice -n 5 cmake --build "$build_dir" ${TBPROXY_JOBS:+-j "$TBPROXY_JOBS"} >&2
cmake --install "$build_dir" >/dev/null
echo "$recipe" >"$stamp"
rm -rf "$build_dir" "$src_root"
echo "Abseil $version with ThreadSanitizer built in $(($(date +%s) - start))s" >&2
echo "$prefix"
