#!/usr/bin/env bash
# Builds peer-go, the Go side of librt-csp's side-by-side benchmarks.
# Usage: bash bench/peers/go/build.sh OUT_PATH   (any cwd; stdlib only, offline)
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_PATH" >&2
  exit 2
fi

src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$(dirname "$1")"
out_dir=$(cd "$(dirname "$1")" && pwd)
out="$out_dir/$(basename "$1")"

# Without a usable HOME, keep Go's build cache and GOPATH next to the output.
if [ -z "${HOME:-}" ] || [ ! -d "$HOME" ] || [ ! -w "$HOME" ]; then
  state="$out_dir/.go-peer"
  export GOCACHE="${GOCACHE:-$state/gocache}"
  export GOPATH="${GOPATH:-$state/gopath}"
  export GOENV=off
  mkdir -p "$GOCACHE" "$GOPATH"
fi
export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off
export CGO_ENABLED="${CGO_ENABLED:-0}"

cd "$src"
go build -trimpath -o "$out" .
