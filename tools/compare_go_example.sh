#!/usr/bin/env bash
# tools/compare_go_example.sh — checks that a C++ example prints exactly what its Go original
# prints: builds examples/go/<name> with the installed go (offline: no module downloads), runs
# both programs and diffs their standard output.
#
#   bash tools/compare_go_example.sh GO_DIR CXX_BINARY [GO_BINARY]
#
#   GO_DIR       the Go program's directory (a main package with its own go.mod, stdlib only)
#   CXX_BINARY   the C++ port, built (e.g. build/examples/toolbox/toolbox_pipeline)
#   GO_BINARY    the go command (default: go from PATH)
#
# Exit status: 0 when the outputs are the same; 1 when they differ or either program fails;
# 77 (ctest's SKIP_RETURN_CODE) when go is missing or cannot build the program here (too old a
# toolchain, no writable cache): go is optional for this project.
set -uo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 GO_DIR CXX_BINARY [GO_BINARY]" >&2
  exit 2
fi
go_dir=$1
cxx_bin=$2
go_cmd=${3:-go}

if ! command -v "$go_cmd" >/dev/null 2>&1; then
  echo "compare_go_example: no go command ($go_cmd): skipped" >&2
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rt-go-example.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# Offline and self-contained: no proxy, no toolchain download, a cache of our own unless the
# caller set one (a CI user may have no writable home).
export GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off
export GOCACHE=${GOCACHE:-$work/gocache} GOPATH=${GOPATH:-$work/gopath}

if ! (cd "$go_dir" && "$go_cmd" build -o "$work/go_example" .) >"$work/build.log" 2>&1; then
  echo "compare_go_example: go cannot build $go_dir here: skipped" >&2
  cat "$work/build.log" >&2
  exit 77
fi

status=0
"$work/go_example" >"$work/go.out" || { echo "compare_go_example: the Go program failed" >&2; status=1; }
"$cxx_bin" >"$work/cxx.out" || { echo "compare_go_example: the C++ program failed" >&2; status=1; }
if ! diff -u --label "go: $go_dir" --label "c++: $cxx_bin" "$work/go.out" "$work/cxx.out"; then
  echo "compare_go_example: the outputs differ" >&2
  status=1
fi
if [[ $status -eq 0 ]]; then
  echo "compare_go_example: same output ($(wc -l <"$work/go.out") lines)"
fi
exit $status
