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

    python3 bench/instruction_budget.py [--build DIR] [--budgets FILE]

Defaults: --build build (a Release build with the benchmarks: bash tools/test.sh makes it),
--budgets bench/instruction_budgets.txt.
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


def read_budgets(path: Path) -> list[Budget]:
    budgets = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|")]
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
    return budgets


def instructions(exe: Path, args: list[str]) -> int:
    """Total instructions (callgrind's Ir) of one run at one worker."""
    with tempfile.TemporaryDirectory(prefix="rt-budget-") as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), *args,
               "--workers", "1"]
        env = dict(os.environ, RT_MAXPROCS="1")
        env.pop("RT_CHAOS", None)  # chaos scheduling would add its own instructions
        try:
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, timeout=600)
        except subprocess.TimeoutExpired:
            die(f"{' '.join(cmd)} ran past 600 s")
        if r.returncode != 0:
            die(f"{' '.join(cmd)} failed (status {r.returncode}):\n{r.stderr[-2000:]}")
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    die(f"{' '.join(cmd)}: no totals in callgrind's output")
    return 0  # not reached


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"), help="the Release build directory")
    ap.add_argument("--budgets", default=str(ROOT / "bench" / "instruction_budgets.txt"))
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        die("valgrind not found: apt-get install valgrind (tools/deps.sh installs it)")
    budgets = read_budgets(Path(args.budgets))
    over = []
    print(f"{'operation':<10} {'Ir/op':>8} {'budget':>8} {'limit':>8} {'target':>8}")
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
        print(f"{b.name:<10} {per_op:>8.1f} {b.budget:>8.0f} {limit:>8.1f} {b.target:>8.0f}  "
              f"{verdict}", flush=True)
    if over:
        print(f"instruction_budget: over budget by more than {TOLERANCE:.0%}: {', '.join(over)} "
              f"(find the instructions with valgrind --tool=callgrind and callgrind_annotate; "
              f"see docs/benchmarks.md)")
        return 1
    print("instruction_budget: every operation within its budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
