#!/usr/bin/env python3
"""librt-csp side by side with Go and Boost.Fiber: build, run, record, chart, tabulate.

    python3 bench/compare.py                 # the whole suite at the issue's sizes (long)
    python3 bench/compare.py --quick         # smoke test: small sizes, 1 warm-up + 2 runs
    python3 bench/compare.py --only skynet,pingpong --runs 9
    python3 bench/compare.py --no-suite --scaling 1,2,4,8,16
    python3 bench/compare.py --no-suite --callgrind
    python3 bench/compare.py --no-suite --micro
    python3 bench/compare.py --only echo,http   # librt-csp's echo and HTTP servers beside Go's
    python3 bench/compare.py --chart-only bench/results/vm.json   # redraw vm.svg, run nothing

One command builds what it needs (Release into build/, the Go peer into build/peers/peer-go, the
Boost.Fiber peer target peer-boost-fiber), then runs every workload for every runtime
interleaved -- one warm-up round (A B C), then --runs measured rounds, each in its own seeded
shuffled order (so no runtime always runs right after the same one) -- each
run a fresh process printing one JSON line (bench/bench_common.hpp; the peers print the same
fields). It writes

    bench/results/<machine>.json   metadata and every raw JSON line (quick runs: <machine>-quick.*)
    bench/results/<machine>.svg    ratio-to-Go bar charts (and speedup curves with --scaling)
    docs/benchmarks.md             the tables between the <!-- results:begin/end -->,
                                   <!-- targets:... -->, <!-- scaling:... -->,
                                   <!-- callgrind:... -->, <!-- micro:... --> and
                                   <!-- net:... --> markers

Sections not run this time (--only, --no-suite, ...) are kept from the existing JSON of the same
machine and kind (quick or full), so a single workload can be rerun without losing the rest.

Ratios to Go are paired: round i of librt-csp divided by round i of Go (they ran back to back),
then the median over rounds. Exit status: 1 if any run failed (non-zero exit: a checksum
mismatch or a runtime failure) or librt-csp timed out; 2 on usage or build errors; else 0.
Standard library only, but for matplotlib, which draws the chart (Debian: python3-matplotlib;
tools/deps.sh installs it).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
# --variant noprof: the same library configured with -DRT_PROFILING=OFF (probes compiled out).
BUILD_NOPROF = ROOT / "build-noprof"
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
SCHEMA = 1

# ---------------------------------------------------------------------------------------------
# What is run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    mode: str  # "" when the workload has no modes
    n: int  # the size
    quick_n: int  # --quick
    target: tuple | None  # ("wall_ratio", x) | ("kib_per_fiber", x) | ("p99_vs_go",) | None
    metric: str = "wall_ns"  # what "ahead of Boost.Fiber" compares
    per_fiber: bool = True  # n counts fibers, so peak RSS / n means something

    @property
    def key(self) -> str:
        return f"{self.name} {self.mode}" if self.mode else self.name


WORKLOADS = [
    Workload("spawn_million", "run", 1_000_000, 2_000, ("wall_ratio", 0.35)),
    Workload("spawn_million", "park", 1_000_000, 2_000, ("kib_per_fiber", 4.5)),
    Workload("spawn_million", "tutorial", 1_000_000, 500, ("kib_per_fiber", 4.5)),
    Workload("skynet", "", 1_000_000, 10_000, ("wall_ratio", 0.3)),
    Workload("pingpong", "", 1_000_000, 10_000, ("wall_ratio", 0.3), per_fiber=False),
    Workload("yield_many", "", 1_000, 20, ("wall_ratio", 0.3), per_fiber=False),
    Workload("chan_mpmc", "", 4_000_000, 100_000, ("wall_ratio", 1.0), per_fiber=False),
    Workload("fib_forkjoin", "", 32, 22, ("wall_ratio", 1.0), per_fiber=False),
    Workload("chained_spawn", "", 1_000_000, 10_000, ("wall_ratio", 0.5)),
    Workload("wake_latency", "", 10_000, 200, ("p99_vs_go",), metric="p99_ns", per_fiber=False),
    Workload("timers", "", 1_000_000, 2_000, None),
]
BY_KEY = {w.key: w for w in WORKLOADS}

SCALING_WORKLOADS = ["skynet", "fib_forkjoin", "chan_mpmc"]

# Callgrind: small fixed sizes, one worker; ops = what one "operation" is for Ir/op.
CALLGRIND = [
    # (workload, mode, n, ops(n), what an op is)
    ("pingpong", "", 100_000, lambda n: n, "round trip"),
    ("spawn_million", "run", 100_000, lambda n: n, "fiber spawned and finished"),
    ("skynet", "", 100_000, lambda n: (10 * n - 1) // 9, "fiber of the tree"),
    ("yield_many", "", 20, lambda n: n * 10_000, "yield"),
    ("chan_mpmc", "", 200_000, lambda n: n, "message"),
]


@dataclass(frozen=True)
class Runtime:
    name: str  # as in the JSON lines' "runtime" field
    label: str
    color: str

    def exe(self) -> Path:
        """Where the build puts it (librt-csp: the directory of its one-per-workload binaries)."""
        if self.name == "librt-csp":
            return BUILD / "bench"
        if self.name == "rt-noprof":
            return BUILD_NOPROF / "bench"
        if self.name == "go":
            return BUILD / "peers" / "peer-go"
        return BUILD / "bench" / "peers" / "boost_fiber" / "peer-boost-fiber"

    def argv(self, name: str, mode: str, n: int, workers: int | None) -> list[str]:
        exe = SNAPSHOT.get(self.name, self.exe())
        if self.name in ("librt-csp", "rt-noprof"):
            cmd = [str(exe / name)]
        else:
            cmd = [str(exe), name]
        if mode:
            cmd.append(mode)
        cmd += ["--n", str(n)]
        if workers:
            cmd += ["--workers", str(workers)]
        return cmd


# Runtime name -> private copy of its binaries (see snapshot_binaries).
SNAPSHOT: dict[str, Path] = {}

RT = Runtime("librt-csp", "librt-csp", "#1f6fb4")
GO = Runtime("go", "Go", "#7f7f7f")
BF = Runtime("boost_fiber", "Boost.Fiber", "#e07b12")
# librt-csp built with RT_PROFILING=OFF: only with --variant noprof (the cost of the probes).
NP = Runtime("rt-noprof", "librt-csp (probes off)", "#9ecae1")
RUNTIMES = [RT, GO, BF, NP]
LABEL = {r.name: r.label for r in RUNTIMES}

BENCH_TARGETS = sorted({w.name for w in WORKLOADS})


def log(msg: str = "") -> None:
    print(msg, flush=True)


def die(msg: str, code: int = 2) -> None:
    print(f"compare.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, text=True, **kw)


def read_cache() -> dict[str, str]:
    cache = {}
    p = BUILD / "CMakeCache.txt"
    if p.exists():
        for line in p.read_text(errors="replace").splitlines():
            m = re.match(r"^([A-Za-z0-9_.\-]+):[A-Z]+=(.*)$", line)
            if m:
                cache[m.group(1)] = m.group(2)
    return cache


def build(args) -> set[str]:
    """Builds what is needed; returns the runtimes that can run."""
    if not shutil.which("cmake"):
        die("cmake not found (apt-get install cmake)")
    have = {RT.name}
    cache = read_cache()
    if args.rebuild or not cache:
        log("== configure Release into build/ (RT_BUILD_TESTS=OFF)")
        cmd = ["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release",
               "-DRT_BUILD_TESTS=OFF", "-DRT_BUILD_BENCH=ON"]
        if args.rebuild and cache:
            cmd.append("--fresh")
            gen = cache.get("CMAKE_GENERATOR")
            if gen:
                cmd += ["-G", gen]
        elif shutil.which("ninja"):
            cmd += ["-G", "Ninja"]
        if sh(cmd, stdout=subprocess.DEVNULL).returncode != 0:
            die("cmake configure failed")
    elif cache.get("CMAKE_BUILD_TYPE") != "Release" or cache.get("RT_BUILD_BENCH", "ON") in (
            "OFF", "FALSE", "0"):
        log(f"== build/ is configured as {cache.get('CMAKE_BUILD_TYPE') or '(no type)'}: "
            "reconfiguring it as Release with the benchmarks")
        if sh(["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release",
               "-DRT_BUILD_BENCH=ON"], stdout=subprocess.DEVNULL).returncode != 0:
            die("cmake configure failed")
    log("== build the benchmarks (build/bench/)")
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    if sh(["cmake", "--build", "build", *jobs, "--target", *BENCH_TARGETS]).returncode != 0:
        die("building the benchmarks failed")
    # Optional targets: exist only when their packages were found at configure time.
    for target, why in (("peer-boost-fiber", "libboost-fiber-dev"),
                        ("micro_bench", "libbenchmark-dev")):
        r = sh(["cmake", "--build", "build", *jobs, "--target", target],
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            tail = "\n".join(r.stdout.splitlines()[-15:])
            log(f"   {target} not built (is {why} installed? see bench/CMakeLists.txt):\n{tail}")
        elif target == "peer-boost-fiber":
            have.add(BF.name)
    log("== build the Go peer (build/peers/peer-go)")
    if not shutil.which("go"):
        log("   go not found (apt-get install golang-go): Go peer skipped, no ratios to Go")
    elif sh(["bash", "bench/peers/go/build.sh", str(GO.exe())]).returncode != 0:
        log("   building the Go peer failed: Go skipped")
    else:
        have.add(GO.name)
    return have


def build_noprof(args) -> bool:
    """--variant noprof: configures build-noprof/ (Release, RT_PROFILING=OFF) and builds the
    benchmarks there; True when they built."""
    log("== configure and build build-noprof/ (Release, -DRT_PROFILING=OFF)")
    cmd = ["cmake", "-S", ".", "-B", str(BUILD_NOPROF), "-DCMAKE_BUILD_TYPE=Release",
           "-DRT_BUILD_TESTS=OFF", "-DRT_BUILD_BENCH=ON", "-DRT_PROFILING=OFF"]
    if not (BUILD_NOPROF / "CMakeCache.txt").exists() and shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    if sh(cmd, stdout=subprocess.DEVNULL).returncode != 0:
        log("   configuring build-noprof/ failed: rt-noprof skipped")
        return False
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    if sh(["cmake", "--build", str(BUILD_NOPROF), *jobs, "--target",
           *BENCH_TARGETS]).returncode != 0:
        log("   building build-noprof/ failed: rt-noprof skipped")
        return False
    return True


def snapshot_binaries(have: set[str], tmp: Path) -> None:
    """Copies the binaries to run into tmp, so that somebody rebuilding build/ while the suite
    runs (it takes a while) cannot swap or half-write them under it."""
    (tmp / "bench").mkdir()
    for b in BENCH_TARGETS + ["micro_bench"]:
        src = BUILD / "bench" / b
        if src.exists():
            shutil.copy2(src, tmp / "bench" / b)
    SNAPSHOT[RT.name] = tmp / "bench"
    if NP.name in have:
        (tmp / "bench-noprof").mkdir()
        for b in BENCH_TARGETS:
            src = BUILD_NOPROF / "bench" / b
            if src.exists():
                shutil.copy2(src, tmp / "bench-noprof" / b)
        SNAPSHOT[NP.name] = tmp / "bench-noprof"
    for rt in (GO, BF):
        if rt.name in have and rt.exe().exists():
            shutil.copy2(rt.exe(), tmp / rt.exe().name)
            SNAPSHOT[rt.name] = tmp / rt.exe().name


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def first_line(cmd: list[str]) -> str | None:
    try:
        r = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (r.stdout or r.stderr).strip().splitlines()
    return out[0].strip() if r.returncode == 0 and out else None


def metadata(machine: str) -> dict:
    cache = read_cache()
    compiler = cache.get("CMAKE_CXX_COMPILER")
    comp_ver = first_line([compiler, "--version"]) if compiler else None
    boost = None
    for key in ("Boost_DIR", "boost_fiber_DIR"):
        m = re.search(r"(\d+\.\d+\.\d+)", cache.get(key, ""))
        if m:
            boost = m.group(1)
            break
    if boost is None:
        vh = Path("/usr/include/boost/version.hpp")
        if vh.exists():
            m = re.search(r'BOOST_LIB_VERSION "([^"]+)"', vh.read_text(errors="replace"))
            boost = m.group(1).replace("_", ".") if m else None
    commit = first_line(["git", "rev-parse", "HEAD"])
    dirty = None
    try:
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                            text=True, capture_output=True, timeout=20)
        dirty = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    cpu = None
    mem_kib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "machine": machine,
        "hostname": socket.gethostname(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu": cpu,
        "mem_total_kib": mem_kib,
        "kernel": platform.release(),
        "uname": " ".join(platform.uname()),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "compiler": comp_ver or compiler,
        "cxx_flags_release": cache.get("CMAKE_CXX_FLAGS_RELEASE"),
        "build_type": cache.get("CMAKE_BUILD_TYPE"),
        "go": first_line(["go", "version"]),
        "boost": boost,
        "valgrind": first_line(["valgrind", "--version"]),
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def run_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    # The Boost.Fiber peer's default: idle workers spin (work_stealing's own default).
    env.pop("PEER_BOOST_FIBER_SUSPEND", None)
    if extra:
        env.update(extra)
    return env


TIMEOUT_EXE = shutil.which("timeout")


def run_one(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """Runs one benchmark process; returns a record with the raw JSON line and its parse.

    The benchmark is started by coreutils' timeout, which forks it: a process's ru_maxrss starts
    at the RSS of whoever exec'd it (Linux keeps the high-water mark of the memory image exec
    replaces), so started straight from this Python (~25 MiB) every peak_rss_kib would read at
    least that much. timeout is ~1 MiB, and it enforces the per-run limit."""
    rec: dict = {"cmd": cmd}
    t0 = time.monotonic()
    full = cmd
    if TIMEOUT_EXE:
        full = [TIMEOUT_EXE, "--kill-after=10", f"{timeout:g}", *cmd]
    try:
        p = subprocess.run(full, cwd=ROOT, text=True, capture_output=True,
                           timeout=timeout + 30 if TIMEOUT_EXE else timeout,
                           env=env or run_env())
        if TIMEOUT_EXE and p.returncode in (124, 137):  # timeout's "timed out" (and KILLed)
            raise subprocess.TimeoutExpired(cmd, timeout, output=p.stdout, stderr=p.stderr)
    except subprocess.TimeoutExpired as e:
        rec.update(status="timeout", elapsed_s=round(time.monotonic() - t0, 3),
                   error=f"timed out after {timeout:g} s")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        if err:
            rec["stderr_tail"] = err[-2000:]
        return rec
    except OSError as e:
        rec.update(status="failed", elapsed_s=0.0, rc=None, error=str(e))
        return rec
    rec["elapsed_s"] = round(time.monotonic() - t0, 3)
    rec["rc"] = p.returncode
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if lines:
        rec["line"] = lines[-1]
        try:
            rec["result"] = json.loads(lines[-1])
        except json.JSONDecodeError as e:
            rec["error"] = f"bad JSON line: {e}"
    if p.returncode != 0:
        rec["status"] = "failed"
        rec["error"] = f"exit status {p.returncode}"
        rec["stderr_tail"] = (p.stderr or p.stdout)[-2000:]
        if p.returncode < 0 or p.returncode > 128:
            sig = -p.returncode if p.returncode < 0 else p.returncode - 128
            try:
                import signal
                rec["error"] += f" ({signal.Signals(sig).name})"
            except ValueError:
                pass
    elif "result" not in rec:
        rec["status"] = "failed"
        rec.setdefault("error", "no JSON result line")
        rec["stderr_tail"] = (p.stderr or p.stdout)[-2000:]
    else:
        rec["status"] = "ok"
    return rec


def fmt_ms(ns: float | None) -> str:
    if ns is None:
        return "-"
    ms = ns / 1e6
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 1:
        return f"{ms:.1f} ms"
    return f"{ms:.3f} ms"


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_mib(kib: float | None) -> str:
    if kib is None:
        return "-"
    mib = kib / 1024
    if mib >= 1024:
        return f"{mib / 1024:.2f} GiB"
    if mib >= 100:
        return f"{mib:.0f} MiB"
    return f"{mib:.1f} MiB"


def progress_line(i: int, total: int, label: str, rtname: str, phase: str, rec: dict) -> str:
    head = f"[{i:>{len(str(total))}}/{total}] {label:<24} {LABEL[rtname]:<11} {phase:<9} "
    if rec["status"] == "ok" and "rps" in rec["result"]:  # echo, http
        r = rec["result"]
        tail = (f"{r['rps']:>10,.0f} req/s  p50 {fmt_ns(r.get('p50_ns'))}  "
                f"p99 {fmt_ns(r.get('p99_ns'))}")
        if r.get("connections", r.get("n")) != r.get("n"):
            tail += f"  (only {r.get('connections'):,} of {r.get('n'):,} connections)"
        if r.get("errors"):
            tail += f"  {r['errors']} errors"
        return head + tail
    if rec["status"] == "ok":
        r = rec["result"]
        tail = f"{fmt_ms(r.get('wall_ns')):>10}  rss {fmt_mib(r.get('peak_rss_kib')):>9}"
        if "p99_ns" in r:
            tail += f"  p99 {fmt_ns(r['p99_ns'])}"
        if "lateness_p99_ns" in r:
            tail += f"  late p99 {fmt_ns(r['lateness_p99_ns'])}"
        return head + tail
    return head + f"{rec['status'].upper()}: {rec.get('error', '')}"


class Runner:
    def __init__(self, args, total: int):
        self.args = args
        self.total = total
        self.done = 0
        self.failed: list[str] = []  # descriptions of runs that failed (exit status)

    def run(self, label: str, rt: Runtime, phase: str, cmd: list[str],
            env: dict | None = None, timeout: float | None = None) -> dict:
        rec = run_one(cmd, timeout or self.args.timeout, env)
        rec["phase"] = phase
        rec["runtime"] = rt.name
        self.done += 1
        log(progress_line(self.done, self.total, label, rt.name, phase, rec))
        if rec["status"] != "ok":
            if rec.get("stderr_tail"):
                for ln in rec["stderr_tail"].strip().splitlines()[-6:]:
                    log(f"      | {ln}")
            if rec["status"] == "failed" or rt.name == RT.name:
                self.failed.append(f"{label} {rt.label} {phase}: {rec.get('error')}")
        return rec


def round_order(rts: list, rnd: int) -> list:
    """The runtimes in the order round `rnd` runs them: the warm-up round in the listed order,
    every measured round in its own shuffled order (seeded by the round number, so a rerun
    repeats it), so that each runtime follows each other one about equally often. A run's
    aftermath may reach the next one on a small machine -- Boost.Fiber's spawn_million peaks at
    ~9 GiB -- and in a fixed A B C order librt-csp always ran right after it (once measured ~15 %
    slower there than right after Go, medians of 5; a later series showed no clear effect). A
    rotation by one is not enough: with three runtimes it still puts librt-csp after Boost.Fiber
    in two rounds of three."""
    order = list(rts)
    if rnd > 0:
        random.Random(rnd).shuffle(order)
    return order


def interleaved(runner: Runner, label: str, rts: list[Runtime], rounds: int,
                argv_of, env: dict | None = None) -> dict[str, list[dict]]:
    """One warm-up round then `rounds` measured rounds, each runtime once per round in the order
    round_order gives; a runtime that fails or times out is not run again for this
    workload. Returns runtime -> records."""
    recs: dict[str, list[dict]] = {rt.name: [] for rt in rts}
    dropped: set[str] = set()
    for rnd in range(rounds + 1):
        phase = "warm-up" if rnd == 0 else f"run {rnd}/{rounds}"
        for rt in round_order(rts, rnd):
            if rt.name in dropped:
                runner.done += 1
                continue
            rec = runner.run(label, rt, phase, argv_of(rt), env)
            rec["round"] = rnd
            recs[rt.name].append(rec)
            if rec["status"] != "ok":
                dropped.add(rt.name)
                left = rounds - rnd
                if left:
                    log(f"      ({LABEL[rt.name]} {label}: {rec['status']}, its {left} remaining "
                        "run(s) skipped)")
    return recs


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def measured(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r.get("round", 0) > 0 and r["status"] == "ok"]


def spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "count": len(values)}


def paired_ratio(a: list[dict], b: list[dict], field: str) -> dict | None:
    bb = {r["round"]: r["result"].get(field) for r in measured(b)}
    ratios = []
    for r in measured(a):
        x, y = r["result"].get(field), bb.get(r["round"])
        if x is not None and y:
            ratios.append(x / y)
    return spread(ratios)


FIELDS = ["wall_ns", "peak_rss_kib", "ns_per_op", "p50_ns", "p99_ns", "lateness_p50_ns",
          "lateness_p99_ns"]


def summarize(w: Workload, recs: dict[str, list[dict]], quick: bool) -> dict:
    s: dict = {"runtimes": {}, "ratios_to_go": {}, "targets": {}}
    for name, rs in recs.items():
        ok = measured(rs)
        entry: dict = {"runs_ok": len(ok), "runs": len([r for r in rs if r.get("round", 0) > 0]),
                       "status": "ok" if ok else (rs[-1]["status"] if rs else "not run")}
        if rs and rs[-1]["status"] != "ok":
            entry["last_error"] = rs[-1].get("error")
        for f in FIELDS:
            vals = [r["result"][f] for r in ok if r["result"].get(f) is not None]
            if vals:
                entry[f] = spread(vals)
        if ok:
            n = ok[0]["result"].get("n") or w.n
            entry["n"] = n
            entry["workers"] = ok[0]["result"].get("workers")
            entry["kib_per_fiber"] = spread([r["result"]["peak_rss_kib"] / n for r in ok])
        s["runtimes"][name] = entry
    go = recs.get(GO.name, [])
    for name in (RT.name, BF.name):
        if name in recs and go:
            s["ratios_to_go"][name] = {
                f: paired_ratio(recs[name], go, f)
                for f in ("wall_ns", "peak_rss_kib", "p99_ns", "lateness_p99_ns")
                if paired_ratio(recs[name], go, f)}
    if RT.name in recs and BF.name in recs:
        s["rt_vs_boost"] = paired_ratio(recs[RT.name], recs[BF.name], w.metric)
    s["targets"] = judge(w, s, quick)
    return s


def judge(w: Workload, s: dict, quick: bool) -> dict:
    """Each target: {"what", "measured", "status": met|missed|n/a|quick}."""
    out = {}
    rt = s["runtimes"].get(RT.name, {})
    go = s["runtimes"].get(GO.name, {})

    def verdict(ok: bool | None) -> str:
        if ok is None:
            return "n/a"
        if quick:
            return "quick"
        return "met" if ok else "missed"

    if w.target:
        kind = w.target[0]
        if kind == "wall_ratio":
            lim = w.target[1]
            r = s["ratios_to_go"].get(RT.name, {}).get("wall_ns")
            out["main"] = {"what": f"librt-csp wall ≤ {lim:g} × Go",
                           "measured": f"{r['median']:.2f} × Go" if r else "-",
                           "value": r["median"] if r else None,
                           "status": verdict(None if r is None else r["median"] <= lim)}
        elif kind == "kib_per_fiber":
            lim = w.target[1]
            k = rt.get("kib_per_fiber")
            gk = go.get("kib_per_fiber")
            meas = f"{k['median']:.2f} KiB/fiber" if k else "-"
            if gk:
                meas += f" (Go {gk['median']:.2f})"
            out["main"] = {"what": f"librt-csp peak RSS ≤ {lim:g} KiB per parked fiber",
                           "measured": meas, "value": k["median"] if k else None,
                           "status": verdict(None if k is None else k["median"] <= lim)}
        elif kind == "p99_vs_go":
            a, b = rt.get("p99_ns"), go.get("p99_ns")
            ok = None if not (a and b) else a["median"] <= b["median"]
            out["main"] = {"what": "librt-csp wake-up p99 ≤ Go's",
                           "measured": (f"{fmt_ns(a['median'])} vs Go {fmt_ns(b['median'])}"
                                        if a and b else "-"),
                           "value": a["median"] if a else None,
                           "status": verdict(ok)}
    vb = s.get("rt_vs_boost")
    metric = "p99" if w.metric == "p99_ns" else "wall"
    out["boost"] = {"what": f"librt-csp ahead of Boost.Fiber ({metric})",
                    "measured": f"{fmt_ratio(vb['median'], '')} × Boost.Fiber" if vb else "-",
                    "value": vb["median"] if vb else None,
                    "status": verdict(None if vb is None else vb["median"] < 1.0)}
    if not vb and s["runtimes"].get(BF.name, {}).get("status") == "timeout" and rt.get("wall_ns"):
        # Boost.Fiber did not finish within the timeout while librt-csp did.
        out["boost"].update(measured="Boost.Fiber timed out", status=verdict(True))
    return out


# ---------------------------------------------------------------------------------------------
# Scaling, callgrind, micro
# ---------------------------------------------------------------------------------------------


def run_scaling(args, runner: Runner, have: set[str], counts: list[int], quick: bool) -> dict:
    out = {}
    rts = [rt for rt in (RT, GO) if rt.name in have]
    for wname in SCALING_WORKLOADS:
        w = BY_KEY[wname]
        n = w.quick_n if quick else w.n
        per_rt: dict = {rt.name: {} for rt in rts}
        raw: list[dict] = []
        for workers in counts:
            recs = interleaved(runner, f"{wname} W={workers}", rts, args.runs,
                               lambda rt, w=w, n=n, k=workers: rt.argv(w.name, w.mode, n, k))
            for name, rs in recs.items():
                raw += rs
                walls = [r["result"]["wall_ns"] for r in measured(rs)]
                per_rt[name][str(workers)] = spread(walls)
        curves = {}
        for name, pts in per_rt.items():
            base_w = str(counts[0])
            base = pts.get(base_w)
            curves[name] = {
                k: {"wall_ns": v, "speedup": (base["median"] / v["median"]) if base and v else None}
                for k, v in pts.items()}
        out[wname] = {"n": n, "workers": counts, "base_workers": counts[0], "curves": curves,
                      "raw": raw}
    return out


def callgrind_total(path: Path) -> int | None:
    total = None
    try:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total


def run_callgrind(args, runner: Runner, have: set[str]) -> dict:
    out: dict = {}
    if not shutil.which("valgrind"):
        log("== --callgrind: valgrind not found (apt-get install valgrind), skipped")
        return {"error": "valgrind not found"}
    rts = [rt for rt in RUNTIMES if rt.name in have]
    # Go 1.19 reads the time stamp counter with RDTSCP, which valgrind 3.19 cannot decode:
    # cpu.rdtscp=off makes it use RDTSC; asyncpreemptoff=1 spares valgrind the preemption
    # signals, on which it sometimes fails (as bench/instruction_budget.py does).
    env = run_env({"RT_MAXPROCS": "1", "GOMAXPROCS": "1",
                   "GODEBUG": "cpu.rdtscp=off,asyncpreemptoff=1"})
    with tempfile.TemporaryDirectory(prefix="rt-callgrind-") as tmp:
        for name, mode, n, ops_of, op in CALLGRIND:
            key = f"{name} {mode}" if mode else name
            ops = ops_of(n)
            entry: dict = {"n": n, "ops": ops, "op": op, "workers": 1, "runtimes": {}}
            for rt in rts:
                outf = Path(tmp) / f"{rt.name}-{name}-{mode or 'x'}.out"
                cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outf}",
                       *rt.argv(name, mode, n, 1)]
                rec = runner.run(f"callgrind {key}", rt, "callgrind", cmd, env,
                                 timeout=max(args.timeout, 600.0))
                res: dict = {"status": rec["status"], "line": rec.get("line"),
                             "elapsed_s": rec.get("elapsed_s")}
                total = callgrind_total(outf) if rec["status"] == "ok" else None
                if total:
                    res.update(ir_total=total, ir_per_op=total / ops)
                    log(f"      {LABEL[rt.name]}: {total:,} Ir / {ops:,} {op}s = "
                        f"{total / ops:,.0f} Ir per {op}")
                else:
                    why = rec.get("error") or "no callgrind totals"
                    tail = rec.get("stderr_tail") or ""
                    m = re.search(r"(unhandled instruction bytes[^\n]*|Unrecognised instruction"
                                  r"[^\n]*)", tail)
                    if m:
                        what = m.group(1).strip()
                        if "0xF 0x1 0xF9" in what:
                            what = "it cannot decode RDTSCP (0f 01 f9), " + what
                        why += f" (valgrind: {what})"
                    res["error"] = why
                    log(f"      {LABEL[rt.name]}: valgrind could not run it: {why}")
                entry["runtimes"][rt.name] = res
            out[key] = entry
    # A failing run under valgrind is valgrind's problem (e.g. Go's RDTSCP), not a checksum one.
    runner.failed = [f for f in runner.failed if not f.startswith("callgrind ")]
    return out


def run_micro(args, quick: bool) -> dict:
    exe = SNAPSHOT.get(RT.name, BUILD / "bench") / "micro_bench"
    if not exe.exists():
        log("== --micro: build/bench/micro_bench was not built (libbenchmark-dev?), skipped")
        return {"error": "micro_bench not built"}
    cmd = [str(exe), "--benchmark_format=json"]
    if quick:
        cmd.append("--benchmark_min_time=0.05")
    log("== micro-benchmarks: " + " ".join(cmd[1:]))
    try:
        p = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True,
                           timeout=max(args.timeout, 300))
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    if p.returncode != 0:
        log(p.stderr[-2000:])
        return {"error": f"exit status {p.returncode}"}
    data = json.loads(p.stdout)
    rows = []
    for b in data.get("benchmarks", []):
        row = {"name": b["name"], "real_time": b.get("real_time"), "time_unit": b.get("time_unit"),
               "iterations": b.get("iterations")}
        if "per_yield" in b:
            row["per_yield_ns"] = b["per_yield"] * 1e9
        rows.append(row)
        extra = f"  ({row['per_yield_ns']:.1f} ns per yield)" if "per_yield_ns" in row else ""
        log(f"   {b['name']:<34} {b.get('real_time', 0):>10.1f} {b.get('time_unit')}{extra}")
    return {"context": data.get("context"), "benchmarks": rows}


# ---------------------------------------------------------------------------------------------
# The SVG chart (matplotlib)
# ---------------------------------------------------------------------------------------------

# The interpreter that Debian's python3-matplotlib is installed for.
DEBIAN_PYTHON = "/usr/bin/python3"


def no_matplotlib() -> None:
    print("bench/compare.py: drawing the charts needs matplotlib: apt-get install "
          "python3-matplotlib (tools/deps.sh installs it)", file=sys.stderr, flush=True)
    sys.exit(2)


def ensure_matplotlib() -> None:
    """Before any work is done: every run ends with a chart, so fail now rather than hours later.

    `python3` may be another interpreter than Debian's (pyenv, a venv) that does not see
    python3-matplotlib; then this script starts again under Debian's, which does."""
    import importlib.util
    if importlib.util.find_spec("matplotlib"):
        return
    debian = Path(DEBIAN_PYTHON)
    if (debian.exists() and Path(sys.executable).resolve() != debian.resolve()
            and subprocess.run([DEBIAN_PYTHON, "-c", "import matplotlib"],
                               capture_output=True).returncode == 0):
        log(f"== {sys.executable} has no matplotlib: running again under {DEBIAN_PYTHON}")
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, str(Path(__file__).resolve()), *sys.argv[1:]])
    no_matplotlib()


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (imported here: only charts need it)."""
    try:
        import matplotlib
    except ImportError:
        no_matplotlib()
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def fmt_ratio(x: float, sign: str = "×") -> str:
    if x >= 100:
        return f"{x:.0f}{sign}"
    if x >= 10:
        return f"{x:.1f}{sign}"
    if x >= 0.095:
        return f"{x:.2f}{sign}"
    if x <= 0:
        return f"0{sign}"
    return f"{x:.{1 - math.floor(math.log10(x))}f}{sign}"  # two significant digits, no e-notation


def chart_groups(w: Workload, s: dict) -> list[tuple[str, str]]:
    groups = [("wall time", "wall_ns"), ("peak RSS", "peak_rss_kib")]
    if w.name == "wake_latency":
        groups.append(("p99 latency", "p99_ns"))
    if w.name == "timers":
        groups.append(("lateness p99", "lateness_p99_ns"))
    return groups


TARGET_RED = "#c0392b"
TARGET_DASH = (0, (2.5, 1.5))  # 5 and 3 points: matplotlib scales dashes by the line width


class Page:
    """A matplotlib figure laid out like a page: x to the right, y down, both in points from the
    top left corner (fonts are in points too), so that panels of a fixed size stack in a grid
    and the figure grows with the number of workloads instead of squeezing them."""

    def __init__(self, plt, width: float, height: float):
        self.w, self.h = width, height
        self.fig = plt.figure(figsize=(width / 72, height / 72), dpi=72, facecolor="white")
        self.tooltips: dict[str, str] = {}  # gid -> the hover text of that artist in the SVG

    def fx(self, x: float) -> float:
        return x / self.w

    def fy(self, y: float) -> float:
        return 1 - y / self.h

    def text(self, x, y, s, size=12, ha="left", weight="normal", color="#222"):
        return self.fig.text(self.fx(x), self.fy(y), s, fontsize=size, ha=ha, va="baseline",
                             fontweight=weight, color=color)

    def width(self, text) -> float:
        """How wide a text drawn on the page is, in points (1 pixel at 72 dpi)."""
        return text.get_window_extent(self.fig.canvas.get_renderer()).width

    def box(self, x, y, w, h) -> None:
        from matplotlib.patches import Rectangle
        self.fig.add_artist(Rectangle((self.fx(x), self.fy(y + h)), w / self.w, h / self.h,
                                      transform=self.fig.transFigure, facecolor="#fbfbfb",
                                      edgecolor="#ddd", linewidth=1, zorder=-1))

    def axes(self, x0, y0, x1, y1):
        """Axes whose plot area spans these points; no frame, no tick marks."""
        ax = self.fig.add_axes((self.fx(x0), self.fy(y1), (x1 - x0) / self.w, (y1 - y0) / self.h))
        ax.set_facecolor("none")
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0, labelsize=10, labelcolor="#666")
        return ax

    def tooltip(self, artist, text: str) -> None:
        """A browser that opens the SVG shows this text over the artist (an SVG <title>)."""
        gid = f"tip{len(self.tooltips)}"
        artist.set_gid(gid)
        self.tooltips[gid] = text

    def svg(self) -> str:
        import io
        buf = io.StringIO()
        # no date: the same results give the same file
        self.fig.savefig(buf, format="svg", metadata={"Date": None})
        out = buf.getvalue()
        for gid, tip in self.tooltips.items():
            out = out.replace(f'<g id="{gid}">', f'<g id="{gid}">\n   <title>{escape(tip)}</title>',
                              1)
        return out


def draw_svg(data: dict, machine: str) -> str:
    plt = pyplot()
    # hashsalt: the ids of clip paths are random otherwise, and every run would change the file;
    # fonttype none: text stays text, as in a hand-written SVG (half the size of glyph outlines),
    # and each text names the fonts to look for: the shorter that list, the smaller the file
    with plt.rc_context({"svg.hashsalt": "librt-csp", "svg.fonttype": "none",
                         "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"]}):
        page = draw_page(plt, data, machine)
        try:
            return page.svg()
        finally:
            plt.close(page.fig)


def draw_page(plt, data: dict, machine: str) -> Page:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    wl = data.get("workloads", {})
    keys = [w.key for w in WORKLOADS if w.key in wl]
    scaling = {k: v for k, v in (data.get("scaling") or {}).items() if not k.startswith("_")}
    quick = data.get("config", {}).get("quick")
    cols = 3
    pw, ph = 400, 330  # panel size
    top = 110
    rows = math.ceil(len(keys) / cols) if keys else 0
    srows = math.ceil(len(scaling) / cols) if scaling else 0
    height = top + rows * ph + (40 + srows * ph if srows else 0) + 30
    page = Page(plt, cols * pw + 20, max(height, 200))

    meta = data.get("meta", {})
    title = "librt-csp vs Go vs Boost.Fiber" + ("  (quick smoke test: small sizes)" if quick else "")
    page.text(16, 30, title, size=20, weight="bold")
    sub = (f"machine {machine} · {meta.get('date', '?')} · commit "
           f"{(meta.get('git_commit') or '?')[:10]}{'+dirty' if meta.get('git_dirty') else ''} · "
           f"{meta.get('nproc', '?')} CPUs · {meta.get('compiler') or ''} · "
           f"{meta.get('go') or 'no Go'} · Boost {meta.get('boost') or '?'}")
    page.text(16, 52, sub, size=12, color="#555")
    runs = data.get("config", {}).get("runs")
    page.text(16, 72, f"Bars: median ratio to Go in the same round (Go = 1.0, log scale; below the "
              f"line = faster / smaller than Go), {runs} measured run(s) after 1 warm-up, "
              f"interleaved.", size=12, color="#555")
    page.fig.legend(handles=[Patch(color=RT.color, label=RT.label),
                             Patch(color=BF.color, label=BF.label),
                             Line2D([], [], color="#222", linewidth=2, label="Go = 1.0"),
                             Line2D([], [], color=TARGET_RED, linewidth=2, linestyle=TARGET_DASH,
                                    label="librt-csp target")],
                    loc="upper left", bbox_to_anchor=(page.fx(8), page.fy(80)), ncol=4,
                    frameon=False, fontsize=13, handlelength=2, columnspacing=3)

    # one log axis for every panel, so that bars compare across workloads
    vals = [1.0]
    for k in keys:
        s = wl[k]["summary"]
        for name in (RT.name, BF.name):
            for f in ("wall_ns", "peak_rss_kib", "p99_ns", "lateness_p99_ns"):
                r = s["ratios_to_go"].get(name, {}).get(f)
                if r:
                    vals.append(r["median"])
        t = BY_KEY[k].target
        if t and t[0] == "wall_ratio":
            vals.append(t[1])
    lo = 10 ** math.floor(math.log10(max(min(vals), 1e-3)))
    hi = 10 ** math.ceil(math.log10(min(max(vals), 1e4)))
    if hi <= 1:
        hi = 10.0
    if lo >= 1:
        lo = 0.1

    for idx, k in enumerate(keys):
        x0 = 10 + (idx % cols) * pw
        y0 = top + (idx // cols) * ph
        draw_panel(page, x0, y0, pw, ph, BY_KEY[k], wl[k]["summary"], wl[k], (lo, hi))

    if scaling:
        ys = top + rows * ph + 10
        page.text(16, ys + 18, "Speedup with more workers (wall time at the first worker count ÷ "
                  "wall time at W; ideal = dashed)", size=15, weight="bold")
        for idx, (wname, sc) in enumerate(scaling.items()):
            x0 = 10 + (idx % cols) * pw
            y0 = ys + 30 + (idx // cols) * ph
            draw_scaling(page, x0, y0, pw, ph - 20, wname, sc)
    return page


def draw_panel(page: Page, x0, y0, pw, ph, w: Workload, s: dict, entry: dict, vrange):
    from matplotlib.ticker import NullLocator
    lo, hi = vrange
    page.box(x0 + 2, y0 + 2, pw - 8, ph - 8)
    n = entry.get("n")
    head = page.text(x0 + 12, y0 + 22, f"{w.key}" + (f"  (n = {n:,})" if n else ""), size=14,
                     weight="bold")
    go = s["runtimes"].get(GO.name, {})
    if go.get("wall_ns"):
        gtxt = f"Go: {fmt_ms(go['wall_ns']['median'])}, {fmt_mib(go['peak_rss_kib']['median'])}"
        if w.name == "wake_latency" and go.get("p99_ns"):
            gtxt += f", p99 {fmt_ns(go['p99_ns']['median'])}"
        if w.name == "timers" and go.get("lateness_p99_ns"):
            gtxt += f", late p99 {fmt_ns(go['lateness_p99_ns']['median'])}"
    else:
        gtxt = f"Go: {go.get('status', 'not run')} — no ratios"
    page.text(x0 + 12, y0 + 40, gtxt, size=11, color="#555")
    verdict = s.get("targets", {}).get("main")
    if verdict and verdict["status"] in ("met", "missed"):
        met = verdict["status"] == "met"
        mark = page.text(x0 + pw - 14, y0 + 22, "✓ target met" if met else "✗ target missed",
                         size=12, ha="right", weight="bold", color="#1e8449" if met else TARGET_RED)
        # a long title ("spawn_million tutorial  (n = 100,000)") would run into it: one line down
        if page.width(head) + page.width(mark) + 10 > pw - 26:
            mark.set_y(page.fy(y0 + 40))

    # plot area
    px0, px1 = x0 + 52, x0 + pw - 16
    py0, py1 = y0 + 56, y0 + ph - 62
    ax = page.axes(px0, py0, px1, py1)
    # 18 points past lo and hi, where the number of a bar that ends there fits
    pt_per_decade = (py1 - py0 - 36) / math.log10(hi / lo)
    llo, lhi = math.log10(lo) - 18 / pt_per_decade, math.log10(hi) + 18 / pt_per_decade
    ax.set_yscale("log")
    ax.set_ylim(10 ** llo, 10 ** lhi)

    # grid: 1-3 decades
    ticks = []
    d = math.floor(math.log10(lo))
    while 10 ** d <= hi * 1.0001:
        for m in (1, 3):
            v = m * 10 ** d
            if lo <= v <= hi * 1.0001:
                ticks.append(v)
                ax.axhline(v, color="#e3e3e3" if m == 3 else "#cfcfcf", linewidth=1, zorder=0)
        d += 1
    ax.set_yticks(ticks, [f"{v:g}×" for v in ticks])
    ax.yaxis.set_minor_locator(NullLocator())

    groups = chart_groups(w, s)
    gw = (px1 - px0) / len(groups)  # points per group
    bw = min(42.0, gw / 3.2) / gw  # bar width, in groups
    gap = 3 / gw
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=12, color="#222")
    ax.tick_params(axis="x", pad=6)
    target = w.target[1] if w.target and w.target[0] == "wall_ratio" else None
    for gi, (gname, field) in enumerate(groups):
        for bi, rt in enumerate((RT, BF)):
            bx = gi - gap - bw / 2 if bi == 0 else gi + gap + bw / 2  # bar centre
            r = s["ratios_to_go"].get(rt.name, {}).get(field)
            st = s["runtimes"].get(rt.name, {})
            if not r:
                why = st.get("status", "not run") if st.get("status") != "ok" else "n/a"
                ax.annotate(why, (bx, 1.0), xytext=(0, 3), textcoords="offset points",
                            rotation=90, ha="center", va="bottom", fontsize=10, color="#a00")
                continue
            v = r["median"]
            # bars grow from Go's 1.0, up when larger than Go, down when smaller; an edge in
            # the same colour keeps a ratio of exactly 1 visible
            bar = ax.bar(bx, v - 1.0, bottom=1.0, width=bw, color=rt.color, edgecolor=rt.color,
                         linewidth=0.75, zorder=2)[0]
            page.tooltip(bar, f"{rt.label} {gname}: {fmt_ratio(v)} Go "
                              f"(min {fmt_ratio(r['min'])}, max {fmt_ratio(r['max'])})")
            clipped = v > 10 ** lhi or v < 10 ** llo
            at = min(max(v, 10 ** llo), 10 ** lhi)
            up = v >= 1  # the number sits past the end of the bar
            if rt is RT and field == "wall_ns" and target:
                # keep the number clear of the target line: move it past the line (the number
                # takes the 5 to 18 points above the end of the bar, or below it)
                line_pt = (math.log10(target) - math.log10(at)) * pt_per_decade
                if (2 <= line_pt <= 20) if up else (-20 <= line_pt <= -2):
                    at = target
                ax.plot([bx - bw / 2 - 4 / gw, bx + bw / 2 + 4 / gw], [target, target],
                        color=TARGET_RED, linewidth=2, linestyle=TARGET_DASH, zorder=3)
            ax.annotate(fmt_ratio(v) + ("!" if clipped else ""), (bx, at),
                        xytext=(0, 5 if up else -5), textcoords="offset points", ha="center",
                        va="bottom" if up else "top", fontsize=11, fontweight="bold",
                        color="#111", annotation_clip=False, zorder=4)
    ax.axhline(1.0, color="#222", linewidth=1.6, zorder=3)
    ax.annotate("Go", (1.0, 1.0), xycoords=("axes fraction", "data"), xytext=(0, 3),
                textcoords="offset points", ha="right", va="bottom", fontsize=10, color="#222")

    # footnotes: targets that are not ratios, Boost.Fiber verdict
    fy = py1 + 34
    rt = s["runtimes"].get(RT.name, {})
    bf = s["runtimes"].get(BF.name, {})
    if w.target and w.target[0] == "kib_per_fiber":
        parts = []
        for name, e in ((RT.name, rt), (GO.name, go), (BF.name, bf)):
            if e.get("kib_per_fiber"):
                parts.append(f"{LABEL[name].split('.')[0]} {e['kib_per_fiber']['median']:.2f}")
        page.text(x0 + 12, fy, f"KiB/fiber: {' · '.join(parts)} (target ≤ {w.target[1]:g})",
                  size=11, color="#333")
        fy += 16
    elif target:
        page.text(x0 + 12, fy, f"target: librt-csp wall ≤ {target:g} × Go", size=11,
                  color=TARGET_RED)
        fy += 16
    elif w.name == "wake_latency" and rt.get("p99_ns"):
        page.text(x0 + 12, fy, f"target: p99 ≤ Go's; librt-csp p99 "
                  f"{fmt_ns(rt['p99_ns']['median'])}", size=11, color=TARGET_RED)
        fy += 16
    vb = s.get("targets", {}).get("boost")
    if vb and vb.get("measured") not in (None, "-"):
        page.text(x0 + 12, fy, f"vs Boost.Fiber: {vb['measured']}", size=11, color="#555")


def draw_scaling(page: Page, x0, y0, pw, ph, wname: str, sc: dict):
    from matplotlib.lines import Line2D
    page.box(x0 + 2, y0 + 2, pw - 8, ph - 8)
    page.text(x0 + 12, y0 + 22, f"{wname}  (n = {sc.get('n'):,})", size=14, weight="bold")
    counts = sc["workers"]
    px0, px1 = x0 + 50, x0 + pw - 36
    py0, py1 = y0 + 40, y0 + ph - 58
    curves = {rt.name: sc["curves"].get(rt.name) or {} for rt in (RT, GO)}
    speed = {name: {wk: c[str(wk)]["speedup"] for wk in counts
                    if str(wk) in c and c[str(wk)].get("speedup")}
             for name, c in curves.items()}
    observed = [v for d in speed.values() for v in d.values()]
    ymax = max(2.0, math.ceil(max(observed + [1.0]) * 1.25))

    ax = page.axes(px0, py0, px1, py1)
    # worker counts evenly spaced (1, 2, 4, 8, 16 read as steps, not as a linear scale)
    if len(counts) > 1:
        ax.set_xlim(0, len(counts) - 1)
    else:
        ax.set_xlim(-0.5, 0.5)
    ax.set_xticks(range(len(counts)), [f"W={wk}" for wk in counts], fontsize=11, color="#222")
    ax.tick_params(axis="x", pad=8)  # clear of the 0× at the left end of the y axis
    ax.set_ylim(0, ymax)
    step = 1 if ymax <= 8 else 2 if ymax <= 16 else 5
    ticks = list(range(0, int(ymax) + 1, step))
    ax.set_yticks(ticks, [f"{v}×" for v in ticks])
    for v in ticks:
        ax.axhline(v, color="#e3e3e3", linewidth=1, zorder=0)
    # ideal (linear) speedup, clipped to the plot
    ax.plot(range(len(counts)), [wk / counts[0] for wk in counts], color="#aaa", linewidth=1,
            linestyle=(0, (4, 3)), zorder=1)
    for rt in (RT, GO):
        pts = sorted(speed[rt.name].items(), key=lambda kv: counts.index(kv[0]))
        if not pts:
            continue
        other = speed[GO.name if rt is RT else RT.name]
        ax.plot([counts.index(wk) for wk, _ in pts], [sp for _, sp in pts], color=rt.color,
                linewidth=2.5, marker="o", markersize=7, clip_on=False, zorder=2)
        for wk, sp in pts:
            i = counts.index(wk)
            above = sp >= other.get(wk, 0)  # the upper curve labels above, the lower below
            # the first number starts at its point, clear of the y axis' labels
            ax.annotate(f"{sp:.2f}", (i, sp), xytext=(-4 if i == 0 else 0, 7 if above else -7),
                        textcoords="offset points", ha="left" if i == 0 else "center",
                        va="bottom" if above else "top", fontsize=10, fontweight="bold",
                        color=rt.color, annotation_clip=False)
    # legend under the axis
    page.fig.legend(handles=[Line2D([], [], color=RT.color, linewidth=2.5, label=RT.label),
                             Line2D([], [], color=GO.color, linewidth=2.5, label=GO.label),
                             Line2D([], [], color="#aaa", linewidth=1, linestyle=(0, (4, 3)),
                                    label="ideal")],
                    loc="upper left", bbox_to_anchor=(page.fx(x0 + 6), page.fy(py1 + 22)),
                    ncol=3, frameon=False, fontsize=12, handlelength=1.8)


# ---------------------------------------------------------------------------------------------
# docs/benchmarks.md
# ---------------------------------------------------------------------------------------------


def cell(sp: dict | None, fmt) -> str:
    if not sp:
        return "-"
    if sp["count"] == 1 or sp["min"] == sp["max"]:
        return fmt(sp["median"])
    return f"{fmt(sp['median'])} ({fmt(sp['min'])}–{fmt(sp['max'])})"


def status_cell(st: str) -> str:
    return {"met": "**met**", "missed": "**missed**", "quick": "(quick run: not judged)",
            "n/a": "n/a"}.get(st, st)


def rt_cell(s: dict, name: str, field: str, fmt) -> str:
    e = s["runtimes"].get(name)
    if not e:
        return "not run"
    if e.get("status") != "ok":
        return e.get("status", "-")
    return cell(e.get(field), fmt)


def results_md(data: dict, machine: str) -> str:
    wl = data.get("workloads", {})
    if not wl:
        return "_No results yet: run `python3 bench/compare.py`._"
    meta = data.get("meta", {})
    cfg = data.get("config", {})
    quick = cfg.get("quick")
    out = []
    if quick:
        out.append("> **Quick smoke test** (`--quick`): reduced sizes, 1 warm-up + "
                   f"{cfg.get('runs')} runs; the numbers say that everything runs, not how fast. "
                   "Run `python3 bench/compare.py` for the real table.\n")
    out.append(
        f"Machine `{machine}`: {meta.get('cpu') or '?'}, {meta.get('nproc')} CPUs, "
        f"{fmt_mib(meta.get('mem_total_kib'))} RAM, Linux {meta.get('kernel')}; "
        f"{meta.get('compiler')}; {meta.get('go') or 'Go: not available'}; "
        f"Boost {meta.get('boost') or '?'}. Commit `{(meta.get('git_commit') or '?')[:12]}`"
        f"{' (with local changes)' if meta.get('git_dirty') else ''}, {meta.get('date')}. "
        f"{cfg.get('runs')} measured runs per runtime after 1 warm-up, interleaved; "
        f"workers: {cfg.get('workers') or 'default (one per CPU)'}. Load average at start: "
        f"{', '.join(f'{x:.2f}' for x in meta.get('loadavg_at_start') or [])}. "
        f"Raw data: [`bench/results/{data.get('file_stem', machine)}.json`]"
        f"(../bench/results/{data.get('file_stem', machine)}.json), chart: "
        f"[`{data.get('file_stem', machine)}.svg`](../bench/results/"
        f"{data.get('file_stem', machine)}.svg).\n")
    out.append("Wall time, median (min–max). Ratios are paired per round (each runtime ran "
               "right after the other), median over rounds; < 1 means faster than Go.\n")
    out.append("| Workload | n | librt-csp | Go | Boost.Fiber | librt-csp / Go | "
               "Boost.Fiber / Go | Target | |")
    out.append("|---|--:|--:|--:|--:|--:|--:|---|---|")
    for w in WORKLOADS:
        if w.key not in wl:
            continue
        s = wl[w.key]["summary"]
        n = wl[w.key].get("n")
        rr = s["ratios_to_go"]
        t = s["targets"].get("main")
        out.append(
            f"| `{w.key}` | {n:,} | {rt_cell(s, RT.name, 'wall_ns', fmt_ms)} | "
            f"{rt_cell(s, GO.name, 'wall_ns', fmt_ms)} | {rt_cell(s, BF.name, 'wall_ns', fmt_ms)} | "
            f"{cell(rr.get(RT.name, {}).get('wall_ns'), fmt_ratio)} | "
            f"{cell(rr.get(BF.name, {}).get('wall_ns'), fmt_ratio)} | "
            f"{t['what'] if t else '—'} | {status_cell(t['status']) if t else ''} |")
    out.append("")
    out.append("Peak RSS (`getrusage` `ru_maxrss` of the whole process), median (min–max); "
               "KiB per fiber = peak RSS / n.\n")
    out.append("| Workload | librt-csp | Go | Boost.Fiber | librt-csp / Go | Boost.Fiber / Go | "
               "KiB/fiber librt-csp · Go · Boost.Fiber |")
    out.append("|---|--:|--:|--:|--:|--:|--:|")
    for w in WORKLOADS:
        if w.key not in wl:
            continue
        s = wl[w.key]["summary"]
        rr = s["ratios_to_go"]
        kpf = " · ".join(
            f"{s['runtimes'][nm]['kib_per_fiber']['median']:.2f}"
            if s["runtimes"].get(nm, {}).get("kib_per_fiber") else "-"
            for nm in (RT.name, GO.name, BF.name)) if w.per_fiber else "—"
        out.append(
            f"| `{w.key}` | {rt_cell(s, RT.name, 'peak_rss_kib', fmt_mib)} | "
            f"{rt_cell(s, GO.name, 'peak_rss_kib', fmt_mib)} | "
            f"{rt_cell(s, BF.name, 'peak_rss_kib', fmt_mib)} | "
            f"{cell(rr.get(RT.name, {}).get('peak_rss_kib'), fmt_ratio)} | "
            f"{cell(rr.get(BF.name, {}).get('peak_rss_kib'), fmt_ratio)} | "
            f"{kpf} |")
    out.append("")
    lat = [w for w in WORKLOADS if w.key in wl and w.name in ("wake_latency", "timers")]
    if lat:
        out.append("Latency, median over runs of each run's percentile:\n")
        out.append("| Workload | percentile | librt-csp | Go | Boost.Fiber |")
        out.append("|---|---|--:|--:|--:|")
        for w in lat:
            s = wl[w.key]["summary"]
            pre = "" if w.name == "wake_latency" else "lateness_"
            for p in ("p50", "p99"):
                f = f"{pre}{p}_ns"
                out.append(f"| `{w.key}` | {'wake-up' if not pre else 'lateness'} {p} | "
                           f"{rt_cell(s, RT.name, f, fmt_ns)} | {rt_cell(s, GO.name, f, fmt_ns)} | "
                           f"{rt_cell(s, BF.name, f, fmt_ns)} |")
        out.append("")
    failed = [(w.key, nm, e) for w in WORKLOADS if w.key in wl
              for nm, e in wl[w.key]["summary"]["runtimes"].items() if e.get("status") != "ok"]
    if failed:
        out.append("Did not complete: " + "; ".join(
            f"`{k}` {LABEL[nm]}: {e.get('last_error') or e.get('status')}" for k, nm, e in failed)
            + ".\n")
    return "\n".join(out).rstrip() + "\n"


def targets_md(data: dict) -> str:
    wl = data.get("workloads", {})
    if not wl:
        return "_Not judged yet: run `python3 bench/compare.py`._"
    quick = data.get("config", {}).get("quick")
    out = []
    if quick:
        out.append("> From a `--quick` smoke test: sizes are reduced, so nothing is judged.\n")
    out.append("| Workload | Target | Measured | |")
    out.append("|---|---|---|---|")
    boost = []
    for w in WORKLOADS:
        if w.key not in wl:
            continue
        t = wl[w.key]["summary"]["targets"]
        if "main" in t:
            out.append(f"| `{w.key}` | {t['main']['what']} | {t['main']['measured']} | "
                       f"{status_cell(t['main']['status'])} |")
        if "boost" in t:
            boost.append((w.key, t["boost"]))
    for k, b in boost:
        out.append(f"| `{k}` | {b['what']} | {b['measured']} | {status_cell(b['status'])} |")
    met = sum(1 for w in WORKLOADS if w.key in wl for t in wl[w.key]["summary"]["targets"].values()
              if t["status"] == "met")
    missed = [f"`{w.key}` ({t['what']})" for w in WORKLOADS if w.key in wl
              for t in wl[w.key]["summary"]["targets"].values() if t["status"] == "missed"]
    if not quick:
        out.append("")
        out.append(f"{met} met, {len(missed)} missed" +
                   (": " + "; ".join(missed) + "." if missed else "."))
    return "\n".join(out) + "\n"


def scaling_md(data: dict) -> str:
    sc = data.get("scaling")
    if not sc:
        return ("_Not run yet: `python3 bench/compare.py --no-suite --scaling 1,2,4,8,16`._")
    out = []
    meta = sc.get("_meta", {})
    if meta:
        out.append(f"Run {meta.get('date')} on {meta.get('nproc')} CPUs, commit "
                   f"`{(meta.get('git_commit') or '?')[:12]}`"
                   + (" (quick sizes)" if meta.get("quick") else "") +
                   ". Median wall time, and speedup = wall at the first worker count ÷ wall at W "
                   "(worker counts above the CPU count oversubscribe the machine).\n")
    for wname, s in sc.items():
        if wname.startswith("_"):
            continue
        counts = s["workers"]
        out.append(f"`{wname}` (n = {s['n']:,}):\n")
        out.append("| Runtime | " + " | ".join(f"W={c}" for c in counts) + " |")
        out.append("|---|" + "--:|" * len(counts))
        for name, curve in s["curves"].items():
            cells = []
            for c in counts:
                p = curve.get(str(c))
                if not p or not p.get("wall_ns"):
                    cells.append("-")
                else:
                    sp = p.get("speedup")
                    cells.append(f"{fmt_ms(p['wall_ns']['median'])}"
                                 + (f" ({sp:.2f}×)" if sp else ""))
            out.append(f"| {LABEL[name]} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def callgrind_md(data: dict) -> str:
    cg = data.get("callgrind")
    if not cg:
        return "_Not run yet: `python3 bench/compare.py --no-suite --callgrind`._"
    if "error" in cg:
        return f"_Callgrind not run: {cg['error']}._"
    out = []
    meta = cg.get("_meta", {})
    if meta:
        out.append(f"Instructions (callgrind `Ir`, whole process including start-up) divided by "
                   f"operations, one worker (`--workers 1`, `RT_MAXPROCS=1`, `GOMAXPROCS=1`); "
                   f"{meta.get('valgrind')}, commit `{(meta.get('git_commit') or '?')[:12]}`, "
                   f"{meta.get('date')}. Counts repeat to within 0.001% from run to run, "
                   "whatever the machine's load.\n")
    out.append("| Workload | n | operation | librt-csp | Go | Boost.Fiber |")
    out.append("|---|--:|---|--:|--:|--:|")
    notes = set()
    for key, e in cg.items():
        if key.startswith("_"):
            continue
        cells = []
        for name in (RT.name, GO.name, BF.name):
            r = e["runtimes"].get(name)
            if not r:
                cells.append("not run")
            elif r.get("ir_per_op") is not None:
                cells.append(f"{r['ir_per_op']:,.0f}")
            else:
                cells.append("valgrind failed")
                notes.add(f"{LABEL[name]}: {r.get('error')}")
        out.append(f"| `{key}` | {e['n']:,} | {e['op']} | " + " | ".join(cells) + " |")
    if notes:
        out.append("")
        out.append("Runs valgrind could not complete: " + "; ".join(sorted(notes)) + ".")
    return "\n".join(out) + "\n"


def micro_md(data: dict) -> str:
    mi = data.get("micro")
    if not mi:
        return "_Not run yet: `python3 bench/compare.py --no-suite --micro` (or run " \
               "`build/bench/micro_bench` directly)._"
    if "error" in mi:
        return f"_micro_bench not run: {mi['error']}._"
    meta = mi.get("_meta", {})
    out = []
    if meta:
        out.append(f"`build/bench/micro_bench`, commit `{(meta.get('git_commit') or '?')[:12]}`, "
                   f"{meta.get('date')}; /1 and /2 are the worker counts; wall-clock time per "
                   "iteration.\n")
    out.append("| Benchmark | time per iteration | note |")
    out.append("|---|--:|---|")
    for b in mi.get("benchmarks", []):
        note = f"{b['per_yield_ns']:.1f} ns per yield" if b.get("per_yield_ns") else ""
        out.append(f"| `{b['name']}` | {b['real_time']:.1f} {b['time_unit']} | {note} |")
    return "\n".join(out) + "\n"


def replace_region(text: str, name: str, body: str) -> tuple[str, bool]:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pat.search(text):
        return text, False
    return pat.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text, count=1), True


def update_doc(data: dict, machine: str) -> None:
    if not DOC.exists():
        log(f"   {DOC.relative_to(ROOT)} missing: tables not written")
        return
    text = DOC.read_text()
    regions = {"results": results_md(data, machine), "targets": targets_md(data),
               "scaling": scaling_md(data), "callgrind": callgrind_md(data),
               "micro": micro_md(data), "net": net_md(data)}
    missing = []
    for name, body in regions.items():
        text, ok = replace_region(text, name, body)
        if not ok:
            missing.append(name)
    DOC.write_text(text)
    if missing:
        log(f"   {DOC.relative_to(ROOT)}: no markers for {', '.join(missing)} (left alone)")


# ---------------------------------------------------------------------------------------------
# Network I/O: echo and HTTP, librt-csp's servers beside Go's (--only echo,http)
# ---------------------------------------------------------------------------------------------
#
# A net run is a server process (librt-csp's example or the Go peer, started fresh for each run)
# and a load process against it on 127.0.0.1: bench/echo (librt-csp fibers, the same generator
# for both servers) or wrk. Placement, the same for both servers: on a machine with at least two
# CPUs the server gets CPU 0 and one worker (RT_MAXPROCS=1, GOMAXPROCS=1), the load generator CPU
# 1 and one worker (wrk: one thread), each pinned with taskset, so that neither steals the other's
# core and the server's throughput is what one core of it does; with one CPU, both share it.

NET_WORKLOADS = ["echo", "http"]
ECHO_SIZES = [100, 1_000, 10_000]  # connections
ECHO_QUICK_SIZES = [10, 100]
ECHO_MSG = 64  # bytes per request
ECHO_DURATION, ECHO_QUICK_DURATION = 5.0, 0.5  # measured seconds per run
ECHO_WARMUP, ECHO_QUICK_WARMUP = 1.0, 0.2
HTTP_CONNS, HTTP_QUICK_CONNS = 100, 10
HTTP_DURATION, HTTP_QUICK_DURATION = 5, 1  # wrk -d, seconds

NET_TARGETS = ["echo", "net_echo_server", "net_http_hello"]


def net_exe(name: str) -> Path:
    """The librt-csp side of the net workloads, as built (snapshot when taken)."""
    snap = SNAPSHOT.get("net")
    if snap:
        return snap / name
    return BUILD / ("bench" if name == "echo" else "examples/net") / name


def build_net(args) -> bool:
    """Builds the generator and the two librt-csp servers; False (with the reason) if it fails."""
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    r = sh(["cmake", "--build", "build", *jobs, "--target", *NET_TARGETS],
           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = "\n".join(r.stdout.splitlines()[-15:])
        log(f"   building {', '.join(NET_TARGETS)} failed: echo/http skipped\n{tail}")
        return False
    return True


def net_placement() -> dict:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    taskset = shutil.which("taskset")
    if len(cpus) >= 2 and taskset:
        return {"server_cpu": cpus[0], "load_cpu": cpus[1], "server_workers": 1,
                "load_workers": 1, "pinned": True,
                "what": f"server pinned to CPU {cpus[0]} with 1 worker (RT_MAXPROCS=1 / "
                        f"GOMAXPROCS=1), load generator pinned to CPU {cpus[1]} with 1 worker"}
    return {"pinned": False, "server_workers": 1, "load_workers": 1,
            "what": "one CPU (or no taskset): server and load generator share it, 1 worker each"}


def pin(cmd: list[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else cmd


class Server:
    """One server process: started, its address read from its 'listening on ADDR' line."""

    def __init__(self, cmd: list[str], env: dict):
        self.cmd = cmd
        self.err = tempfile.TemporaryFile(mode="w+")
        # Its own session: stopping it never touches this script.
        self.p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.err,
                                  text=True, env=env, start_new_session=True)
        self.addr = None
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.addr is None:
            if not sel.select(timeout=max(deadline - time.monotonic(), 0.01)):
                continue
            line = self.p.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (\S+)", line)
            if m:
                self.addr = m.group(1)
        sel.close()

    def stderr_tail(self) -> str:
        self.err.seek(0)
        return self.err.read()[-2000:]

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s; returns the exit status (None: it had to be killed)."""
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()
        rc = self.p.returncode
        self.err.close()
        return rc


def net_server_cmd(workload: str, rt: Runtime) -> list[str]:
    if rt is GO:
        exe = SNAPSHOT.get(GO.name, GO.exe())
        return [str(exe), "echo_server" if workload == "echo" else "http_hello",
                "--addr", "127.0.0.1:0", "--max-seconds", "900"]
    name = "net_echo_server" if workload == "echo" else "net_http_hello"
    return [str(net_exe(name)), "0", "--max-seconds", "900"]


def wrk_result(out: str, conns: int, duration: int) -> dict:
    """Parses `wrk --latency` output into the fields of a result line."""
    def dur_ns(s: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[m.group(2)]
    res: dict = {"workload": "http", "runtime": "wrk", "n": conns, "connections": conns,
                 "wall_ns": int(duration * 1e9)}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    for p, key in (("50", "p50_ns"), ("90", "p90_ns"), ("99", "p99_ns")):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        if m:
            res[key] = dur_ns(m.group(1))
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    if m:
        res["max_ns"] = dur_ns(m.group(1))
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errs += int(m.group(1))
    res["errors"] = errs
    return res


def wrk_version() -> str:
    """"wrk debian/4.1.0-3+b2 [epoll]" (wrk -v prints it, then its usage, and exits 1)."""
    try:
        r = subprocess.run(["wrk", "-v"], text=True, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "wrk"
    line = (r.stdout or r.stderr).strip().splitlines()
    return line[0].split(" Copyright")[0].strip() if line else "wrk"


def net_run_one(runner: Runner, workload: str, label: str, rt: Runtime, phase: str, size: int,
                quick: bool, place: dict) -> dict:
    """Starts rt's server, drives it once, stops it; returns the record (like run_one's)."""
    env = run_env({"RT_MAXPROCS": str(place["server_workers"]),
                   "GOMAXPROCS": str(place["server_workers"])})
    server = Server(pin(net_server_cmd(workload, rt), place.get("server_cpu")), env)
    if not server.addr:
        tail = server.stderr_tail()
        rc = server.stop()
        rec = {"status": "failed", "error": f"server did not start (exit status {rc})",
               "stderr_tail": tail,
               "cmd": server.cmd, "phase": phase, "runtime": rt.name}
        runner.done += 1
        log(progress_line(runner.done, runner.total, label, rt.name, phase, rec))
        runner.failed.append(f"{label} {rt.label} {phase}: server did not start")
        return rec
    load_env = run_env({"RT_MAXPROCS": str(place["load_workers"])})
    if workload == "echo":
        dur = ECHO_QUICK_DURATION if quick else ECHO_DURATION
        warm = ECHO_QUICK_WARMUP if quick else ECHO_WARMUP
        cmd = pin([str(net_exe("echo")), "--target", server.addr, "--connections", str(size),
                   "--size", str(ECHO_MSG), "--duration", f"{dur:g}", "--warmup", f"{warm:g}",
                   "--workers", str(place["load_workers"]), "--label", rt.name],
                  place.get("load_cpu"))
        rec = runner.run(label, rt, phase, cmd, load_env, timeout=dur + warm + 120)
    else:
        dur = HTTP_QUICK_DURATION if quick else HTTP_DURATION
        threads = str(place["load_workers"])
        cmd = pin(["wrk", "--latency", "-t", threads, "-c", str(size), "-d", f"{dur}s",
                   f"http://{server.addr}/"], place.get("load_cpu"))
        rec = run_wrk(runner, label, rt, phase, cmd, size, dur)
    if rec["status"] == "ok" and not rec["result"].get("requests"):
        why = rec["result"].get("first_error") or f"{rec['result'].get('errors', 0)} errors"
        rec.update(status="failed", error=f"no request completed ({why})")
        runner.failed.append(f"{label} {rt.label} {phase}: {rec['error']}")
    alive = server.p.poll() is None
    tail = server.stderr_tail()
    rc = server.stop()
    if not alive:
        rec.update(status="failed", error=f"the server exited during the run (status {rc})",
                   stderr_tail=tail)
        runner.failed.append(f"{label} {rt.label} {phase}: server exited")
    return rec


def run_wrk(runner: Runner, label: str, rt: Runtime, phase: str, cmd: list[str], conns: int,
            dur: int) -> dict:
    rec: dict = {"cmd": cmd, "phase": phase, "runtime": rt.name}
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=dur + 60)
    except subprocess.TimeoutExpired:
        rec.update(status="timeout", error=f"wrk timed out after {dur + 60} s")
        p = None
    rec["elapsed_s"] = round(time.monotonic() - t0, 3)
    if p is not None:
        res = wrk_result(p.stdout, conns, dur)
        rec["line"] = p.stdout
        if p.returncode != 0 or "rps" not in res:
            rec.update(status="failed", error=f"wrk exit status {p.returncode}",
                       stderr_tail=(p.stderr or p.stdout)[-2000:])
        else:
            rec.update(status="ok", result=res)
    runner.done += 1
    log(progress_line(runner.done, runner.total, label, rt.name, phase, rec))
    if rec["status"] != "ok":
        runner.failed.append(f"{label} {rt.label} {phase}: {rec.get('error')}")
    return rec


NET_FIELDS = ["rps", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"]


def net_summarize(recs: dict[str, list[dict]], size: int, quick: bool) -> dict:
    s: dict = {"runtimes": {}, "ratios_to_go": {}, "targets": {}}
    for name, rs in recs.items():
        ok = measured(rs)
        e: dict = {"runs_ok": len(ok), "runs": len([r for r in rs if r.get("round", 0) > 0]),
                   "status": "ok" if ok else (rs[-1]["status"] if rs else "not run")}
        if rs and rs[-1]["status"] != "ok":
            e["last_error"] = rs[-1].get("error")
        for f in NET_FIELDS:
            vals = [r["result"][f] for r in ok if r["result"].get(f) is not None]
            if vals:
                e[f] = spread(vals)
        if ok:
            e["connections_min"] = min(r["result"].get("connections", size) for r in ok)
            e["errors"] = sum(r["result"].get("errors", 0) for r in ok)
            firsts = [r["result"].get("first_error") for r in ok if r["result"].get("first_error")]
            if firsts:
                e["first_error"] = firsts[0]
        s["runtimes"][name] = e
    if RT.name in recs and GO.name in recs:
        s["ratios_to_go"][RT.name] = {f: paired_ratio(recs[RT.name], recs[GO.name], f)
                                      for f in ("rps", "p50_ns", "p99_ns")
                                      if paired_ratio(recs[RT.name], recs[GO.name], f)}
    r = s["ratios_to_go"].get(RT.name, {})

    def verdict(ok):
        return "n/a" if ok is None else "quick" if quick else "met" if ok else "missed"
    thr, p99 = r.get("rps"), r.get("p99_ns")
    s["targets"]["throughput"] = {
        "what": "librt-csp requests/s ≥ Go's", "value": thr["median"] if thr else None,
        "measured": f"{thr['median']:.2f} × Go" if thr else "-",
        "status": verdict(None if thr is None else thr["median"] >= 1.0)}
    s["targets"]["p99"] = {
        "what": "librt-csp p99 ≤ Go's", "value": p99["median"] if p99 else None,
        "measured": f"{p99['median']:.2f} × Go" if p99 else "-",
        "status": verdict(None if p99 is None else p99["median"] <= 1.0)}
    short = {n: e["connections_min"] for n, e in s["runtimes"].items()
             if e.get("connections_min") is not None and e["connections_min"] < size}
    if short:
        s["connections_short"] = short
    return s


def run_net(args, runner: Runner, have: set[str], workloads: list[str], quick: bool) -> dict:
    out: dict = {}
    place = net_placement()
    log(f"== net placement: {place['what']}")
    rts = [rt for rt in (RT, GO) if rt.name in have]
    if GO not in rts:
        log("   (no Go peer: librt-csp's servers alone, no ratios)")
    for workload in workloads:
        if workload == "http" and not shutil.which("wrk"):
            log("== http: wrk not found (apt-get install wrk, or bash tools/deps.sh): skipped")
            out["http"] = {"error": "wrk not installed"}
            runner.done += len(rts) * (args.runs + 1)
            continue
        if workload == "echo":
            sizes = args.echo_sizes or (ECHO_QUICK_SIZES if quick else ECHO_SIZES)
        else:
            sizes = [HTTP_QUICK_CONNS if quick else HTTP_CONNS]
        entry: dict = {"sizes": {}, "placement": place, "quick": quick, "runs_measured": args.runs}
        if workload == "echo":
            entry.update(msg_bytes=ECHO_MSG,
                         duration_s=ECHO_QUICK_DURATION if quick else ECHO_DURATION,
                         warmup_s=ECHO_QUICK_WARMUP if quick else ECHO_WARMUP,
                         generator="build/bench/echo")
        else:
            dur = HTTP_QUICK_DURATION if quick else HTTP_DURATION
            entry.update(duration_s=dur, generator=wrk_version(),
                         wrk_args=f"--latency -t {place['load_workers']} -c {sizes[0]} -d {dur}s")
        for size in sizes:
            label = f"{workload} c={size}"
            recs: dict[str, list[dict]] = {rt.name: [] for rt in rts}
            dropped: set[str] = set()
            for rnd in range(args.runs + 1):
                phase = "warm-up" if rnd == 0 else f"run {rnd}/{args.runs}"
                for rt in round_order(rts, rnd):
                    if rt.name in dropped:
                        runner.done += 1
                        continue
                    rec = net_run_one(runner, workload, label, rt, phase, size, quick, place)
                    rec["round"] = rnd
                    recs[rt.name].append(rec)
                    if rec["status"] != "ok":
                        dropped.add(rt.name)
            s = net_summarize(recs, size, quick)
            entry["sizes"][str(size)] = {"summary": s,
                                         "runs": [r for rs in recs.values() for r in rs]}
            thr = s["targets"]["throughput"]
            p99 = s["targets"]["p99"]
            log(f"   -> {label}: throughput {thr['measured']} [{thr['status']}], "
                f"p99 {p99['measured']} [{p99['status']}]")
            for name, got in (s.get("connections_short") or {}).items():
                why = s["runtimes"][name].get("first_error") or "?"
                log(f"   !! {label} {LABEL[name]}: only {got:,} of {size:,} connections were "
                    f"established ({why})")
        out[workload] = entry
    return out


def net_total(args, have: set[str], workloads: list[str], quick: bool) -> int:
    nrt = len([rt for rt in (RT, GO) if rt.name in have])
    total = 0
    for w in workloads:
        sizes = (args.echo_sizes or (ECHO_QUICK_SIZES if quick else ECHO_SIZES)) \
            if w == "echo" else [0]
        total += len(sizes) * nrt * (args.runs + 1)
    return total


def net_md(data: dict) -> str:
    net = data.get("net") or {}
    if not net:
        return "_Not run yet: `python3 bench/compare.py --only echo,http`._"
    out = []
    for workload in NET_WORKLOADS:
        e = net.get(workload)
        if not e:
            continue
        if "error" in e:
            out.append(f"`{workload}`: not run ({e['error']}).\n")
            continue
        meta = e.get("_meta", {})
        place = e.get("placement", {})
        quick = e.get("quick")
        if workload == "echo":
            out.append(f"**echo** — `build/bench/echo` ({e.get('msg_bytes')}-byte requests, "
                       f"closed loop, {e.get('warmup_s'):g} s warm-up then "
                       f"{e.get('duration_s'):g} s measured) against librt-csp's "
                       "`examples/net/echo_server` and Go's `peer-go echo_server`.")
        else:
            out.append(f"**http** — `wrk {e.get('wrk_args')}` ({e.get('generator')}) against "
                       "librt-csp's `examples/net/http_hello` and Go's net/http "
                       "(`peer-go http_hello`).")
        out.append(f" Placement: {place.get('what', '')}. "
                   f"Commit `{(meta.get('git_commit') or '?')[:12]}`, "
                   f"{meta.get('date')}; {e.get('runs_measured')} measured runs per server after "
                   "1 warm-up, interleaved, each run a fresh server process. Medians (min–max); "
                   "ratios paired per round, median over rounds."
                   + (" **Quick run: small sizes, not judged.**" if quick else "") + "\n")
        out.append("| connections | librt-csp req/s | Go req/s | req/s ratio | librt-csp p50 | "
                   "Go p50 | librt-csp p99 | Go p99 | p99 ratio | targets |")
        out.append("|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        notes = []
        for size, se in e.get("sizes", {}).items():
            s = se["summary"]
            r = s["ratios_to_go"].get(RT.name, {})
            t = s["targets"]
            verdicts = []
            for key, name in (("throughput", "req/s"), ("p99", "p99")):
                st = t[key]["status"]
                verdicts.append(f"{name} {status_cell(st)}" if st in ("met", "missed") else "")
            out.append(
                f"| {int(size):,} | {rt_cell(s, RT.name, 'rps', lambda x: f'{x:,.0f}')} | "
                f"{rt_cell(s, GO.name, 'rps', lambda x: f'{x:,.0f}')} | "
                f"{cell(r.get('rps'), fmt_ratio)} | {rt_cell(s, RT.name, 'p50_ns', fmt_ns)} | "
                f"{rt_cell(s, GO.name, 'p50_ns', fmt_ns)} | "
                f"{rt_cell(s, RT.name, 'p99_ns', fmt_ns)} | "
                f"{rt_cell(s, GO.name, 'p99_ns', fmt_ns)} | {cell(r.get('p99_ns'), fmt_ratio)} | "
                f"{', '.join(v for v in verdicts if v) or '-'} |")
            for name, got in (s.get("connections_short") or {}).items():
                notes.append(f"at {int(size):,} connections against {LABEL[name]} only {got:,} "
                             f"were established ({s['runtimes'][name].get('first_error') or '?'})")
            for name, rte in s["runtimes"].items():
                if rte.get("status") != "ok":
                    notes.append(f"{LABEL[name]} at {int(size):,}: {rte.get('last_error')}")
                elif rte.get("errors"):
                    notes.append(f"{LABEL[name]} at {int(size):,}: {rte['errors']} request "
                                 f"errors ({rte.get('first_error') or 'see the JSON'})")
        out.append("")
        if notes:
            out.append("**Not clean:** " + "; ".join(notes) + ".\n")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def select_workloads(only: str | None) -> list[Workload]:
    if not only:
        return list(WORKLOADS)
    chosen = []
    for item in only.split(","):
        item = item.strip().replace(":", " ").replace("/", " ")
        if not item:
            continue
        if item in NET_WORKLOADS:
            continue  # selected by select_net
        hits = [w for w in WORKLOADS if w.key == item or w.name == item]
        if not hits:
            die(f"--only: unknown workload '{item}' (known: "
                + ", ".join([w.key for w in WORKLOADS] + NET_WORKLOADS) + ")")
        chosen += [w for w in hits if w not in chosen]
    return chosen


def select_net(only: str | None) -> list[str]:
    """The net workloads (echo, http) chosen: every one without --only."""
    if not only:
        return list(NET_WORKLOADS)
    items = [x.strip() for x in only.split(",")]
    return [w for w in NET_WORKLOADS if w in items]


def resummarize(data: dict, quick: bool) -> None:
    """Workloads kept from earlier runs: summarize their raw runs again with this script's rules."""
    for key, entry in list(data["workloads"].items()):
        if key not in BY_KEY:
            del data["workloads"][key]
            continue
        recs: dict[str, list[dict]] = {}
        for r in entry.get("runs", []):
            recs.setdefault(r["runtime"], []).append(r)
        entry["summary"] = summarize(BY_KEY[key], recs, quick)


def chart_only(json_path: Path, machine: str | None) -> int:
    """--chart-only: the chart of saved results, redrawn without running anything."""
    try:
        data = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        die(f"--chart-only {json_path}: {e}")
    if data.get("schema") != SCHEMA:
        die(f"--chart-only {json_path}: schema {data.get('schema')}, this script reads {SCHEMA}")
    data.setdefault("workloads", {})
    resummarize(data, bool(data.get("config", {}).get("quick")))
    svg_path = json_path.with_suffix(".svg")
    svg_path.write_text(draw_svg(data, machine or data.get("meta", {}).get("machine")
                                 or json_path.stem))
    log(f"== wrote {svg_path}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Build and run librt-csp's benchmarks beside Go and Boost.Fiber; write "
                    "bench/results/<machine>.{json,svg} and the tables in docs/benchmarks.md.")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: small n for every workload, 1 warm-up + 2 runs, no "
                         "thresholds judged; results go to <machine>-quick.*")
    ap.add_argument("--runs", type=int, help="measured runs per runtime (default 5; --quick 2)")
    ap.add_argument("--only", help="comma-separated workloads, e.g. skynet,spawn_million:park "
                                   "(spawn_million alone means all three modes)")
    ap.add_argument("--workers", type=int, help="worker threads / GOMAXPROCS for every runtime "
                                                "(default: each runtime's own, one per CPU)")
    ap.add_argument("--scaling", metavar="LIST",
                    help="also run skynet, fib_forkjoin and chan_mpmc at each worker count "
                         "(e.g. 1,2,4,8,16) for librt-csp and Go")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions per operation under valgrind --tool=callgrind")
    ap.add_argument("--micro", action="store_true", help="also run build/bench/micro_bench")
    ap.add_argument("--no-suite", action="store_true",
                    help="skip the side-by-side suite (keep its previous results)")
    ap.add_argument("--timeout", type=float,
                    help="seconds per run before it is killed (default 600; --quick 20)")
    ap.add_argument("--machine", help="name for the results files (default: the hostname)")
    ap.add_argument("--rebuild", action="store_true",
                    help="configure build/ afresh (Release, RT_BUILD_TESTS=OFF) and rebuild")
    ap.add_argument("--no-build", action="store_true", help="use build/ as it is")
    ap.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--size", action="append", metavar="WORKLOAD[:MODE]=N",
                    help="run a workload at another size than the issue's (repeatable), e.g. "
                    "spawn_million:park=200000; the docs table shows the n used")
    ap.add_argument("--runtimes", help="comma-separated peers to run beside librt-csp "
                    "(go, boost_fiber; default: all that built)")
    ap.add_argument("--echo-sizes", metavar="LIST",
                    help="connection counts for the echo workload (default 100,1000,10000; "
                         "--quick 10,100)")
    ap.add_argument("-j", "--jobs", type=int, help="parallel build jobs")
    ap.add_argument("--chart-only", metavar="JSON",
                    help="run nothing: draw the chart of saved results (e.g. "
                         "bench/results/vm.json) into the .svg beside them")
    ap.add_argument("--variant", action="append", choices=["noprof"],
                    help="also run librt-csp built another way, as a runtime column: noprof = "
                         "configured with -DRT_PROFILING=OFF in build-noprof/ (\"rt-noprof\"), "
                         "to measure what the profiling probes cost (with --callgrind: "
                         "instructions per operation side by side)")
    args = ap.parse_args()
    if args.chart_only:
        ensure_matplotlib()
        return chart_only(Path(args.chart_only), args.machine)
    for spec in args.size or []:
        key, _, value = spec.partition("=")
        key = key.replace(":", " ")
        if key not in BY_KEY or not value.isdigit():
            die(f"--size {spec}: expected WORKLOAD[:MODE]=N with a known workload")
        import dataclasses
        i = WORKLOADS.index(BY_KEY[key])
        WORKLOADS[i] = dataclasses.replace(WORKLOADS[i], n=int(value))
        BY_KEY[key] = WORKLOADS[i]

    quick = args.quick
    if args.runs is None:
        args.runs = 2 if quick else 5
    if args.runs < 1:
        die("--runs must be at least 1")
    if args.timeout is None:
        args.timeout = 20.0 if quick else 600.0
    if args.workers is not None and args.workers < 1:
        die("--workers must be at least 1")
    counts = []
    if args.scaling:
        try:
            counts = [int(x) for x in args.scaling.split(",") if x.strip()]
        except ValueError:
            die("--scaling wants a comma-separated list of worker counts, e.g. 1,2,4,8,16")
        if not counts or min(counts) < 1:
            die("--scaling wants positive worker counts")
    chosen = [] if args.no_suite else select_workloads(args.only)
    net_chosen = [] if args.no_suite else select_net(args.only)
    if args.echo_sizes:
        try:
            args.echo_sizes = [int(x) for x in args.echo_sizes.split(",") if x.strip()]
        except ValueError:
            die("--echo-sizes wants a comma-separated list of connection counts")
        if not args.echo_sizes or min(args.echo_sizes) < 1:
            die("--echo-sizes wants positive connection counts")
    if not chosen and not net_chosen and not counts and not args.callgrind and not args.micro:
        die("nothing to do (--no-suite without --scaling, --callgrind or --micro)")
    ensure_matplotlib()

    machine = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.machine or socket.gethostname()) or "machine"
    stem = machine + ("-quick" if quick else "")
    t_start = time.monotonic()

    if args.no_build:
        have = {RT.name}
        if GO.exe().exists():
            have.add(GO.name)
        if BF.exe().exists():
            have.add(BF.name)
    else:
        have = build(args)
    if net_chosen and not args.no_build and not build_net(args):
        net_chosen = []
    if net_chosen and not all(net_exe(t).exists() for t in NET_TARGETS):
        log("== echo/http: " + ", ".join(str(net_exe(t).relative_to(ROOT)) for t in NET_TARGETS
                                         if not net_exe(t).exists()) + " missing: skipped")
        net_chosen = []
    if "noprof" in (args.variant or []):
        if args.no_build:
            if all((BUILD_NOPROF / "bench" / b).exists() for b in BENCH_TARGETS):
                have.add(NP.name)
            else:
                log("== --variant noprof: build-noprof/bench is incomplete (--no-build): skipped")
        elif build_noprof(args):
            have.add(NP.name)
    if args.runtimes:
        wanted = {x.strip() for x in args.runtimes.split(",") if x.strip()}
        unknown = wanted - {r.name for r in RUNTIMES}
        if unknown:
            die(f"--runtimes: unknown {', '.join(sorted(unknown))} "
                f"(known: {', '.join(r.name for r in RUNTIMES)})")
        have = {name for name in have if name in wanted or name in (RT.name, NP.name)}
    needed = {w.name for w in chosen} | (set(SCALING_WORKLOADS) if counts else set()) | (
        {c[0] for c in CALLGRIND} if args.callgrind else set())
    missing = [b for b in sorted(needed) if not (BUILD / "bench" / b).exists()]
    if missing:
        die(f"missing benchmark executables in build/bench/: {', '.join(missing)}")
    snap = tempfile.TemporaryDirectory(prefix="rt-compare-bin-")
    snapshot_binaries(have, Path(snap.name))
    if net_chosen:
        (Path(snap.name) / "net").mkdir()
        for t in NET_TARGETS:
            shutil.copy2(net_exe(t), Path(snap.name) / "net" / t)
        SNAPSHOT["net"] = Path(snap.name) / "net"
    rts = [rt for rt in RUNTIMES if rt.name in have]
    log(f"== runtimes: {', '.join(rt.label for rt in rts)}"
        + ("" if all(r in rts for r in (RT, GO, BF)) else f" (missing: "
           + ", ".join(rt.label for rt in (RT, GO, BF) if rt not in rts) + ")"))

    meta = metadata(machine)
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{stem}.json"
    svg_path = RESULTS / f"{stem}.svg"
    data: dict = {}
    if json_path.exists():
        try:
            data = json.loads(json_path.read_text())
            if data.get("schema") != SCHEMA:
                data = {}
        except (OSError, json.JSONDecodeError):
            data = {}
    data["schema"] = SCHEMA
    data["file_stem"] = stem
    data.setdefault("workloads", {})
    resummarize(data, quick)

    total = len(chosen) * len(rts) * (args.runs + 1)
    if counts:
        total += len(SCALING_WORKLOADS) * len(counts) * len([r for r in rts if r is not BF]) * (
            args.runs + 1)
    if args.callgrind:
        total += len(CALLGRIND) * len(rts)
    total += net_total(args, have, net_chosen, quick)
    runner = Runner(args, total)
    section_meta = {k: meta[k] for k in ("date", "git_commit", "git_dirty", "nproc", "valgrind")}
    section_meta["quick"] = quick

    if chosen:
        log(f"== suite: {len(chosen)} workload(s) × {len(rts)} runtime(s) × (1 warm-up + "
            f"{args.runs} runs), timeout {args.timeout:g} s per run"
            + (" [quick sizes]" if quick else ""))
        data["meta"] = meta
        data["config"] = {"quick": quick, "runs": args.runs, "warmups": 1,
                          "workers": args.workers, "timeout_s": args.timeout,
                          "boost_fiber_idle": "spin (default; PEER_BOOST_FIBER_SUSPEND unset)"}
    for w in chosen:
        n = w.quick_n if quick else w.n
        recs = interleaved(runner, w.key, rts, args.runs,
                           lambda rt, w=w, n=n: rt.argv(w.name, w.mode, n, args.workers))
        s = summarize(w, recs, quick)
        data["workloads"][w.key] = {
            "n": n, "date": meta["date"], "git_commit": meta["git_commit"],
            "workers": args.workers, "runs_measured": args.runs, "summary": s,
            "runs": [r for rs in recs.values() for r in rs]}
        parts = []
        for name in (RT.name, BF.name):
            r = s["ratios_to_go"].get(name, {}).get("wall_ns")
            if r:
                parts.append(f"{LABEL[name]}/Go {r['median']:.2f}")
        t = s["targets"].get("main")
        if t:
            parts.append(f"target: {t['what']}: {t['measured']} [{t['status']}]")
        log(f"   -> {w.key}: " + "; ".join(parts))
    if net_chosen:
        log(f"== net: {', '.join(net_chosen)}: librt-csp's servers beside Go's, {args.runs} runs"
            + (" [quick sizes]" if quick else ""))
        net = run_net(args, runner, have, net_chosen, quick)
        data.setdefault("net", {})
        for k, v in net.items():
            v["_meta"] = section_meta
            data["net"][k] = v
    if counts:
        log(f"== scaling: {', '.join(SCALING_WORKLOADS)} at workers {counts}")
        sc = run_scaling(args, runner, have, counts, quick)
        sc["_meta"] = section_meta
        data["scaling"] = sc
    if args.callgrind:
        log("== callgrind: instructions per operation (one worker)")
        cg = run_callgrind(args, runner, have)
        cg["_meta"] = section_meta
        data["callgrind"] = cg
    if args.micro:
        mi = run_micro(args, quick)
        mi["_meta"] = section_meta
        data["micro"] = mi
    data.setdefault("meta", meta)
    data.setdefault("config", {"quick": quick, "runs": args.runs})

    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    svg_path.write_text(draw_svg(data, machine))
    log(f"== wrote {json_path.relative_to(ROOT)}, {svg_path.relative_to(ROOT)}")
    if not args.no_docs:
        update_doc(data, machine)
        log(f"== updated {DOC.relative_to(ROOT)}")
    if chosen or net_chosen:
        log("== targets" + (" (quick run: not judged)" if quick else ""))
        for w in WORKLOADS:
            if w.key in data["workloads"]:
                for t in data["workloads"][w.key]["summary"]["targets"].values():
                    log(f"   {w.key:<24} {t['what']:<46} {t['measured']:<34} {t['status']}")
        for workload, e in (data.get("net") or {}).items():
            for size, se in (e.get("sizes") or {}).items():
                for t in se["summary"]["targets"].values():
                    log(f"   {workload + ' c=' + size:<24} {t['what']:<46} {t['measured']:<34} "
                        f"{t['status']}")
    log(f"== done in {time.monotonic() - t_start:.0f} s")
    if runner.failed:
        log("== FAILED runs:")
        for f in runner.failed:
            log(f"   {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
