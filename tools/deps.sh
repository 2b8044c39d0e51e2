#!/usr/bin/env bash
# tools/deps.sh — installs the Debian 12 packages librt-csp needs to build, test and benchmark,
# and only those that are missing. Idempotent; quiet when there is nothing to do.
#
#   bash tools/deps.sh            install what is missing (root, or through sudo)
#   bash tools/deps.sh --check    only report what is missing (exit 1 if anything is)
set -euo pipefail

packages=(
  # toolchain
  build-essential g++ cmake ninja-build pkg-config python3
  # the library's own dependencies
  libboost-context-dev libdw-dev
  # the gdb extension's test (tools/gdb)
  gdb
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev valgrind
  # peer benchmarks (Go, Boost.Fiber)
  golang-go libboost-fiber-dev
  # the http workload of bench/compare.py (a standard HTTP load generator)
  wrk
  # the charts of bench/compare.py (bench/results/<machine>.svg)
  python3-matplotlib
)

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "deps.sh: unknown argument: $1" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "deps: missing: ${missing[*]}"
if [ "$check_only" = 1 ]; then
  exit 1
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo -n)
  else
    echo "deps: not root and no sudo: install them with" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update"
"${sudo[@]}" apt-get update -qq
echo "deps: apt-get install ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} package(s)"
