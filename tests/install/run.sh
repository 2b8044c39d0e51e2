#!/usr/bin/env bash
# tests/install/run.sh — installs librt-csp from a build directory into a temporary prefix, then
# builds tests/install/main.cpp against the installed copy three ways and runs each:
#   1. CMake: find_package(rt-csp CONFIG REQUIRED) + rt::csp        (static library)
#   2. CMake: rt::csp_shared                                         (shared library, rpath)
#   3. pkg-config rt-csp, static link and shared link with -Wl,-rpath
#
#   bash tests/install/run.sh [BUILD_DIR]     (default: build; relative to the repository root)
# Prints "install test: ok" on success.
set -euo pipefail
# Tool output is captured before grep -q reads it: with pipefail, `ldd X | grep -q Y` fails
# whenever grep exits at its match before ldd has written everything (SIGPIPE), a flaky result.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build="${1:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
if [ ! -f "$build/cmake_install.cmake" ]; then
  echo "install test: $build is not a configured build directory (run tools/test.sh first)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
expected="install app: 8 fibers, sum 36, main fiber 1"

check() {  # check NAME COMMAND...: runs the app, compares its output line
  local name=$1; shift
  local out
  if ! out=$("$@" 2>&1); then
    echo "install test: $name: exited non-zero; output:" >&2
    echo "$out" >&2
    exit 1
  fi
  if [ "$out" != "$expected" ]; then
    echo "install test: $name: unexpected output:" >&2
    echo "  got:      $out" >&2
    echo "  expected: $expected" >&2
    exit 1
  fi
  echo "install test: $name: $out"
}

# The library directory as configured (lib, or lib/<multiarch> for a /usr prefix).
libdir_rel=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
libdir="$prefix/${libdir_rel:-lib}"

echo "== build and install $build into a temporary prefix"
cmake --build "$build"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in include/rt/csp.hpp lib/cmake/rt-csp/rt-csp-config.cmake lib/pkgconfig/rt-csp.pc; do
  f="${f/#lib/${libdir_rel:-lib}}"
  if [ ! -f "$prefix/$f" ]; then
    echo "install test: $f was not installed; installed files:" >&2
    cat "$tmp/install.log" >&2
    exit 1
  fi
done
echo "   installed: $(grep -c 'Installing\|Up-to-date' "$tmp/install.log") files"

echo "== CMake find_package(rt-csp CONFIG)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$here" -B "$tmp/app" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/app-configure.log" 2>&1 || {
  cat "$tmp/app-configure.log" >&2; exit 1; }
cmake --build "$tmp/app" >"$tmp/app-build.log" 2>&1 || { cat "$tmp/app-build.log" >&2; exit 1; }
check "cmake rt::csp (static)" "$tmp/app/install_app"
check "cmake rt::csp_shared" "$tmp/app/install_app_shared"
if grep -q 'librt-csp' <<<"$(ldd "$tmp/app/install_app")"; then
  echo "install test: rt::csp should link the static library, but install_app needs librt-csp.so" >&2
  exit 1
fi
if ! grep -q "=> $libdir/librt-csp.so" <<<"$(ldd "$tmp/app/install_app_shared")"; then
  echo "install test: install_app_shared does not load the installed librt-csp.so:" >&2
  ldd "$tmp/app/install_app_shared" >&2
  exit 1
fi

echo "== pkg-config rt-csp"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cflags=$(pkg-config --cflags rt-csp)
libs=$(pkg-config --libs rt-csp)
echo "   pkg-config --cflags --libs rt-csp: $cflags $libs"
cxx="${CXX:-c++}"
# Static: librt-csp.a in place of -lrt-csp (the system libraries stay dynamic).
# shellcheck disable=SC2086
$cxx -O2 $cflags "$here/main.cpp" -o "$tmp/pc_static" \
  -Wl,-Bstatic -lrt-csp -Wl,-Bdynamic $libs
check "pkg-config (static)" "$tmp/pc_static"
if grep -q 'NEEDED.*librt-csp' <<<"$(readelf -d "$tmp/pc_static")"; then
  echo "install test: the static pkg-config link still needs librt-csp.so" >&2
  exit 1
fi
# Shared: the installed .so, found at run time through the rpath.
# shellcheck disable=SC2086
$cxx -O2 $cflags "$here/main.cpp" -o "$tmp/pc_shared" $libs -Wl,-rpath,"$libdir"
check "pkg-config (shared)" "$tmp/pc_shared"
if ! grep -q "=> $libdir/librt-csp.so" <<<"$(ldd "$tmp/pc_shared")"; then
  echo "install test: pc_shared does not load the installed librt-csp.so" >&2
  exit 1
fi

echo "install test: ok"
