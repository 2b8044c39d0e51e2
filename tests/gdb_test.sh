#!/usr/bin/env bash
# tests/gdb_test.sh — the gdb extension (tools/gdb/librt-csp-gdb.py) on a live process:
# `info fibers` lists the parked, named fiber 2 and `fiber bt 2` shows its stack from its saved
# context, down to the function that parked it. Exits 77 (skipped) when gdb is missing.
#   bash tests/gdb_test.sh GDB_TARGET_BINARY
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=$1
if ! command -v gdb >/dev/null; then
  echo "gdb_test: gdb not installed (apt-get install gdb); skipped"
  exit 77
fi
out=$(gdb -nx -batch -ex "source $here/../tools/gdb/librt-csp-gdb.py" -ex run \
          -ex 'info fibers' -ex 'fiber bt 2' -ex 'info fibers' -ex kill "$target" 2>&1) || true
echo "$out"
fail() { echo "gdb_test: FAILED: $1" >&2; exit 1; }
grep -q '^fiber 1 \[running\]' <<<"$out" || fail "info fibers: no running fiber 1"
grep -q '^fiber 2 \[parked: chan receive\] "gdbfiber"' <<<"$out" || fail "info fibers: fiber 2"
grep -q 'gdb_parked_here' <<<"$out" || fail "fiber bt 2: no gdb_parked_here frame"
grep -q 'gdb_target\.cpp:15' <<<"$out" || fail "fiber bt 2: no gdb_target.cpp:15"
# The registers were put back: the second `info fibers` still works and main's thread is intact.
[ "$(grep -c '^fiber 2 \[parked: chan receive\]' <<<"$out")" = 2 ] || fail "second info fibers"
echo "gdb_test: ok"
