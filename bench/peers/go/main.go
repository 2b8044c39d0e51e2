// Command peer-go is the Go side of librt-csp's side-by-side benchmarks.
//
// Each workload mirrors one of the librt-csp C++ benchmarks, written as
// plain idiomatic Go (goroutines, channels, sync.WaitGroup, time.Sleep), so
// that the two runtimes can be compared on the same machine. A run prints
// exactly one JSON line on stdout, for example:
//
//	{"workload":"skynet","mode":"","runtime":"go","n":1000000,"workers":2,
//	 "wall_ns":123456789,"ns_per_op":111.1,"peak_rss_kib":123456,"checksum":499999500000}
//
// Usage:
//
//	peer-go <workload> [mode] [--n N] [--workers W] [--reps R]
//
// --workers sets runtime.GOMAXPROCS (default: $RT_MAXPROCS, else NumCPU).
// --reps runs the workload R times in this process and reports the run with
// the median wall time (peak_rss_kib is for the whole process).
// A checksum mismatch exits 1; a usage error exits 2.
//
// Standard library only: build with build.sh, no module downloads.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sample is what one timed run of a workload reports.
type sample struct {
	wall     time.Duration
	nsPerOp  float64
	checksum uint64
	want     uint64 // expected checksum
	extra    map[string]int64
}

// workload describes one benchmark: its default size and its body.
type workload struct {
	defaultN int64
	check    func(n int64) error // optional validation of n
	run      func(n int64) sample
}

// workloads is keyed by "name" or "name mode".
var workloads = map[string]workload{
	"spawn_million run":      {defaultN: 1_000_000, run: spawnRun},
	"spawn_million park":     {defaultN: 1_000_000, run: spawnPark},
	"spawn_million tutorial": {defaultN: 1_000_000, run: spawnTutorial},
	"skynet":                 {defaultN: 1_000_000, check: checkPowerOf10, run: skynetRun},
	"pingpong":               {defaultN: 1_000_000, run: pingPong},
	"yield_many":             {defaultN: 1_000, run: yieldMany},
	"chan_mpmc":              {defaultN: 4_000_000, run: chanMPMC},
	"fib_forkjoin":           {defaultN: 32, check: checkFibN, run: fibForkJoin},
	"chained_spawn":          {defaultN: 1_000_000, run: chainedSpawn},
	"wake_latency":           {defaultN: 10_000, run: wakeLatency},
	"timers":                 {defaultN: 1_000_000, run: timersRun},
}

// result is the JSON line printed on stdout; extra fields (percentiles) are
// spliced in after checksum.
type result struct {
	Workload   string  `json:"workload"`
	Mode       string  `json:"mode"`
	Runtime    string  `json:"runtime"`
	N          int64   `json:"n"`
	Workers    int     `json:"workers"`
	WallNs     int64   `json:"wall_ns"`
	NsPerOp    float64 `json:"ns_per_op"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	Checksum   uint64  `json:"checksum"`
	Reps       int     `json:"reps,omitempty"`
}

const usageText = `usage: peer-go <workload> [mode] [--n N] [--workers W] [--reps R]
workloads:
  spawn_million run|park|tutorial   (n=1000000)
  skynet                            (n=1000000 leaves, power of 10)
  pingpong                          (n=1000000 round trips)
  yield_many                        (n=1000 goroutines x 10000 yields)
  chan_mpmc                         (n=4000000 messages, 4P/4C, cap 1024)
  fib_forkjoin                      (n=32, spawn cutoff 16)
  chained_spawn                     (n=1000000)
  wake_latency                      (n=10000 samples)
  timers                            (n=1000000 sleepers, [0,100ms))
servers (echo.go; print "listening on ADDR", serve until killed or --max-seconds):
  echo_server|http_hello [--addr 127.0.0.1:0] [--workers W] [--max-seconds S]
--workers W sets GOMAXPROCS (default $RT_MAXPROCS, else NumCPU)
`

func usage(format string, args ...any) {
	if format != "" {
		fmt.Fprintf(os.Stderr, "peer-go: "+format+"\n", args...)
	}
	fmt.Fprint(os.Stderr, usageText)
	os.Exit(2)
}

// parseInt parses a positive flag value or exits with a usage error.
func parseInt(flag, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		usage("bad value %q for %s (want a positive integer)", s, flag)
	}
	return v
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "echo_server" || os.Args[1] == "http_hello") {
		serverMain(os.Args[1], os.Args[2:]) // echo.go
		return
	}
	var positional []string
	var n, workers, reps int64
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			positional = append(positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "n", "workers", "reps":
		case "h", "help":
			usage("")
		default:
			usage("unknown flag %q", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				usage("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		switch name {
		case "n":
			n = parseInt(a, val)
		case "workers":
			workers = parseInt(a, val)
		case "reps":
			reps = parseInt(a, val)
		}
	}
	if len(positional) < 1 || len(positional) > 2 {
		usage("expected <workload> [mode]")
	}
	name, mode := positional[0], ""
	if len(positional) == 2 {
		mode = positional[1]
	}
	key := name
	if mode != "" {
		key += " " + mode
	}
	w, ok := workloads[key]
	if !ok {
		usage("unknown workload/mode %q", key)
	}
	if n == 0 {
		n = w.defaultN
	}
	if w.check != nil {
		if err := w.check(n); err != nil {
			usage("%s: %v", key, err)
		}
	}
	if reps == 0 {
		reps = 1
	}
	if workers == 0 {
		workers = int64(runtime.NumCPU())
		if env := os.Getenv("RT_MAXPROCS"); env != "" {
			workers = parseInt("RT_MAXPROCS", env)
		}
	}
	runtime.GOMAXPROCS(int(workers))

	samples := make([]sample, 0, reps)
	for r := int64(0); r < reps; r++ {
		runtime.GC() // start each rep from a collected heap (outside the timing)
		s := w.run(n)
		if s.checksum != s.want {
			fmt.Fprintf(os.Stderr, "peer-go: %s n=%d: checksum mismatch: got %d, want %d\n",
				key, n, s.checksum, s.want)
			os.Exit(1)
		}
		samples = append(samples, s)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i].wall < samples[j].wall })
	med := samples[(len(samples)-1)/2]

	res := result{
		Workload:   name,
		Mode:       mode,
		Runtime:    "go",
		N:          n,
		Workers:    int(workers),
		WallNs:     med.wall.Nanoseconds(),
		NsPerOp:    med.nsPerOp,
		PeakRSSKiB: peakRSSKiB(),
		Checksum:   med.checksum,
	}
	if reps > 1 {
		res.Reps = int(reps)
	}
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer-go:", err)
		os.Exit(1)
	}
	if len(med.extra) > 0 {
		// Append extra integer fields in a stable (sorted) order.
		keys := make([]string, 0, len(med.extra))
		for k := range med.extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.Write(line[:len(line)-1]) // drop the closing brace
		for _, k := range keys {
			fmt.Fprintf(&b, ",%q:%d", k, med.extra[k])
		}
		b.WriteByte('}')
		line = []byte(b.String())
	}
	fmt.Println(string(line))
}

// peakRSSKiB returns the process's peak resident set size (Linux: KiB).
func peakRSSKiB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}

// perOp divides a wall time by an operation count.
func perOp(wall time.Duration, ops int64) float64 {
	if ops < 1 {
		ops = 1
	}
	return float64(wall.Nanoseconds()) / float64(ops)
}

// percentile returns the nearest-rank p-th percentile of sorted values.
func percentile(sorted []int64, p int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * len)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
