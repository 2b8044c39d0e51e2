#!/usr/bin/env bash
# tools/main.sh — THE main job: installs what is missing, builds Release into build/, builds the
# Go peer into build/peers/peer-go, then runs bench/spawn_million beside Go, mode by mode:
#   run        a million fibers each do a small piece of work and finish
#   park       a million fibers all parked at once, then all released
#   tutorial   the Go tutorial's worker program at scale (when spawn_million supports it)
# Prints each JSON result line, then one summary line per mode: librt-csp wall / Go wall and the
# peak RSS per fiber of both.
#
#   bash tools/main.sh [--reps N] [--n N] [--workers W] [--modes run,park,tutorial]
#                      [--no-deps] [--no-build]
#
#   --reps N       runs of each side and mode, each in a fresh process (default 1); the summary
#                  uses the median wall time and the median peak RSS
#   --n N          fibers per run (default: the benchmark's own, 1,000,000)
#   --workers W    worker threads / GOMAXPROCS for both (default: $RT_MAXPROCS, else one per core)
#   --modes LIST   comma-separated modes (default run,park,tutorial)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

reps=1
n=""
workers=""
modes="run,park,tutorial"
deps=1
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="${2:?--reps needs a number}"; shift 2 ;;
    --reps=*) reps="${1#*=}"; shift ;;
    --n) n="${2:?--n needs a number}"; shift 2 ;;
    --n=*) n="${1#*=}"; shift ;;
    --workers) workers="${2:?--workers needs a number}"; shift 2 ;;
    --workers=*) workers="${1#*=}"; shift ;;
    --modes) modes="${2:?--modes needs a list}"; shift 2 ;;
    --modes=*) modes="${1#*=}"; shift ;;
    --no-deps) deps=0; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "main.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$reps" ${n:+"$n"} ${workers:+"$workers"}; do
  case "$v" in ''|*[!0-9]*|0) echo "main.sh: expected a positive integer, got '$v'" >&2; exit 2 ;; esac
done

rt_bin="$root/build/bench/spawn_million"
go_bin="$root/build/peers/peer-go"

if [ "$deps" = 1 ]; then
  bash "$root/tools/deps.sh"
fi
if [ "$build" = 1 ]; then
  echo "== configure + build Release (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build --target spawn_million
  echo "== build the Go peer (build/peers/peer-go)"
  bash bench/peers/go/build.sh "$go_bin"
fi
for b in "$rt_bin" "$go_bin"; do
  [ -x "$b" ] || { echo "main.sh: $b is missing (run without --no-build)" >&2; exit 1; }
done

extra=()
[ -n "$n" ] && extra+=(--n "$n")
[ -n "$workers" ] && extra+=(--workers "$workers")

results=$(mktemp)
trap 'rm -f "$results"' EXIT

# run_one TAG MODE COMMAND...: runs one benchmark process, prints and records its JSON line.
run_one() {
  local tag=$1 mode=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then
    echo "main.sh: FAILED ($tag $mode, exit $rc): $*" >&2
    echo "$out" >&2
    return 1
  fi
  local line
  line=$(printf '%s\n' "$out" | grep '^{' | tail -n 1 || true)
  if [ -z "$line" ]; then
    echo "main.sh: FAILED ($tag $mode): no JSON result line from: $*" >&2
    echo "$out" >&2
    return 1
  fi
  echo "$line"
  printf '%s\t%s\t%s\n' "$tag" "$mode" "$line" >>"$results"
}

failed=0
IFS=, read -r -a mode_list <<<"$modes"
ran_modes=()
for mode in "${mode_list[@]}"; do
  # A mode spawn_million does not know yet (it answers with its usage and exit 2) is skipped.
  if [ "$mode" != run ] && [ "$mode" != park ]; then
    probe_rc=0
    probe=$("$rt_bin" "$mode" --n 1 2>&1) || probe_rc=$?
    if [ "$probe_rc" = 2 ] && grep -qi usage <<<"$probe"; then
      echo "== spawn_million $mode: not supported by this spawn_million yet, skipped"
      continue
    fi
  fi
  echo "== spawn_million $mode (${n:-default} fibers, $reps rep(s) each side)"
  for ((r = 1; r <= reps; r++)); do
    run_one librt-csp "$mode" "$rt_bin" "$mode" ${extra[@]+"${extra[@]}"} || failed=1
    run_one go "$mode" "$go_bin" spawn_million "$mode" ${extra[@]+"${extra[@]}"} || failed=1
  done
  ran_modes+=("$mode")
done

echo "== summary (median of $reps rep(s); ratio = librt-csp / Go, lower is better for librt-csp)"
python3 - "$results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tag, mode, js = line.rstrip("\n").split("\t", 2)
    rows.setdefault(mode, {}).setdefault(tag, []).append(json.loads(js))
def med(rs, key):
    return statistics.median(r[key] for r in rs)
for mode, sides in rows.items():
    c, g = sides.get("librt-csp"), sides.get("go")
    if not c or not g:
        print(f"spawn_million {mode}: incomplete (librt-csp {len(c or [])} runs, go {len(g or [])})")
        continue
    n = c[0]["n"]
    cw, gw = med(c, "wall_ns") / 1e6, med(g, "wall_ns") / 1e6
    crss, grss = med(c, "peak_rss_kib"), med(g, "peak_rss_kib")
    cpf, gpf = crss * 1024 / n, grss * 1024 / n
    print(f"spawn_million {mode}: n={n} wall librt-csp {cw:.1f} ms / go {gw:.1f} ms = "
          f"{cw / gw:.2f}x; peak RSS per fiber librt-csp {cpf:.0f} B / go {gpf:.0f} B = "
          f"{cpf / gpf:.2f}x (peak RSS {crss / 1024:.1f} / {grss / 1024:.1f} MiB)")
PY

if [ "$failed" != 0 ]; then
  echo "main.sh: FAILED (see above)" >&2
  exit 1
fi
echo "main.sh: ok (${ran_modes[*]})"
