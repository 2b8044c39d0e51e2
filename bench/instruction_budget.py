#!/usr/bin/env python3
"""bench/instruction_budget.py — the machine-independent performance guard (CI step (j)).

For each operation of bench/instruction_budgets.txt, runs its benchmark twice under
`valgrind --tool=callgrind` at one worker (RT_MAXPROCS=1, --workers 1), a small and a large size,
and reports the instructions per operation:

    (Ir(large) - Ir(small)) / (ops(large) - ops(small))

so that process start-up, rt::run's set-up and shutdown cancel out. Instruction counts do not
move with the machine's load (wall times on a shared 2-core VM move by tens of percent), so the
check can fail on a regression of a few percent without false alarms. It fails (exit 1) when a
count exceeds its budget by more than 5 %, prints every count, its budget and the issue's
target, and exits 2 when it cannot measure (no valgrind, no build, a run failed).

    python3 bench/instruction_budget.py [--build DIR] [--budgets FILE] [--go PEER | --no-go]

Defaults: --build build (a Release build with the benchmarks: bash tools/test.sh makes it),
--budgets bench/instruction_budgets.txt, --go build/peers/peer-go when it exists (tools/main.sh
builds it). Go's count for the same operation (the file's `go` lines) is printed beside ours,
for comparison only: it never fails the check. Go 1.19's runtime reads the time stamp counter
with RDTSCP, which valgrind 3.19 cannot decode: GODEBUG=cpu.rdtscp=off makes it use RDTSC
(and asyncpreemptoff=1 spares valgrind the preemption signals, on which it sometimes fails).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.05  # a count may exceed its budget by this fraction before the check fails


@dataclass
class GoRun:
    name: str  # the budget line it stands beside
    args: list[str]  # workload and mode of bench/peers/go
    small: list[str]
    large: list[str]
    ops_small: int
    ops_large: int


@dataclass
class Budget:
    name: str
    command: list[str]  # binary (under build/bench) and mode
    small: list[str]
    large: list[str]
    ops_small: int
    ops_large: int
    budget: float
    target: float


def die(msg: str) -> None:
    print(f"instruction_budget: {msg}", file=sys.stderr)
    sys.exit(2)


def read_budgets(path: Path) -> tuple[list[Budget], dict[str, GoRun]]:
    budgets = []
    go_runs: dict[str, GoRun] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if fields[0] == "go":
            if len(fields) != 7:
                die(f"{path}:{lineno}: a go line has 7 fields separated by '|', found {len(fields)}")
            try:
                g = GoRun(fields[1], fields[2].split(), fields[3].split(), fields[4].split(),
                          int(fields[5]), int(fields[6]))
            except ValueError as e:
                die(f"{path}:{lineno}: {e}")
            go_runs[g.name] = g
            continue
        if len(fields) != 8:
            die(f"{path}:{lineno}: expected 8 fields separated by '|', found {len(fields)}")
        try:
            b = Budget(fields[0], fields[1].split(), fields[2].split(), fields[3].split(),
                       int(fields[4]), int(fields[5]), float(fields[6]), float(fields[7]))
        except ValueError as e:
            die(f"{path}:{lineno}: {e}")
        if b.ops_large <= b.ops_small:
            die(f"{path}:{lineno}: the large run must have more operations than the small one")
        budgets.append(b)
    if not budgets:
        die(f"{path}: no budgets")
    return budgets, go_runs


def instructions(exe: Path, args: list[str], fatal: bool = True) -> int | None:
    """Total instructions (callgrind's Ir) of one run at one worker. A failed run ends the check
    (fatal) or gives None."""
    def fail(msg: str) -> None:
        if fatal:
            die(msg)
        print(f"instruction_budget: {msg}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="rt-budget-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), *args,
               "--workers", "1"]
        # GOMAXPROCS and GODEBUG for Go's peer (see the top of this file); ours ignores them.
        env = dict(os.environ, RT_MAXPROCS="1", GOMAXPROCS="1", GODEBUG="cpu.rdtscp=off,asyncpreemptoff=1")
        env.pop("RT_CHAOS", None)  # chaos scheduling would add its own instructions
        try:
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, timeout=600)
        except subprocess.TimeoutExpired:
            fail(f"{' '.join(cmd)} ran past 600 s")
            return None
        if r.returncode != 0:
            fail(f"{' '.join(cmd)} failed (status {r.returncode}):\n{r.stderr[-2000:]}")
            return None
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    fail(f"{' '.join(cmd)}: no totals in callgrind's output")
    return None


def go_per_op(peer: Path | None, g: GoRun | None) -> str:
    """Go's instructions per operation for the same operation, or why there is none."""
    if peer is None or g is None:
        return "-"
    small = instructions(peer, [*g.args, *g.small], fatal=False)
    large = instructions(peer, [*g.args, *g.large], fatal=False)
    if small is None or large is None:
        return "failed"
    return f"{(large - small) / (g.ops_large - g.ops_small):.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"), help="the Release build directory")
    ap.add_argument("--budgets", default=str(ROOT / "bench" / "instruction_budgets.txt"))
    ap.add_argument("--go", help="Go's peer binary (default: BUILD/peers/peer-go if built)")
    ap.add_argument("--no-go", action="store_true", help="do not count Go's peer")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        die("valgrind not found: apt-get install valgrind (tools/deps.sh installs it)")
    budgets, go_runs = read_budgets(Path(args.budgets))
    peer = None
    if not args.no_go:
        peer = Path(args.go) if args.go else Path(args.build) / "peers" / "peer-go"
        if not peer.is_file():
            if args.go:
                die(f"{peer}: no such Go peer (tools/main.sh builds build/peers/peer-go)")
            peer = None
    over = []
    print(f"{'operation':<10} {'Ir/op':>8} {'budget':>8} {'limit':>8} {'target':>8}  "
          f"{'verdict':<11} {'Go Ir/op':>8}")
    for b in budgets:
        exe = Path(args.build) / "bench" / b.command[0]
        if not exe.is_file():
            die(f"{exe} not built (build the benchmarks: bash tools/test.sh, or "
                f"cmake --build {args.build} --target {b.command[0]})")
        mode = b.command[1:]
        small = instructions(exe, [*mode, *b.small])
        large = instructions(exe, [*mode, *b.large])
        per_op = (large - small) / (b.ops_large - b.ops_small)
        limit = b.budget * (1 + TOLERANCE)
        verdict = "ok" if per_op <= limit else "OVER BUDGET"
        if per_op > limit:
            over.append(b.name)
        go = go_per_op(peer, go_runs.get(b.name))
        print(f"{b.name:<10} {per_op:>8.1f} {b.budget:>8.0f} {limit:>8.1f} {b.target:>8.0f}  "
              f"{verdict:<11} {go:>8}", flush=True)
    if over:
        print(f"instruction_budget: over budget by more than {TOLERANCE:.0%}: {', '.join(over)} "
              f"(find the instructions with valgrind --tool=callgrind and callgrind_annotate; "
              f"see docs/benchmarks.md)")
        return 1
    print("instruction_budget: every operation within its budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
