// peer-boost-fiber: the Boost.Fiber side of librt-csp's side-by-side
// benchmarks. It runs the same workloads as the Go peer (and as librt-csp's own
// benchmark driver) on Boost.Fiber 1.74, with the work_stealing scheduling
// algorithm on every worker thread (the main thread is one of them), 64 KiB
// fixedsize_stack stacks (librt-csp's default), and prints exactly one JSON
// line per run on stdout:
//
//   {"workload":"spawn_million","mode":"run","runtime":"boost_fiber","n":1000000,
//    "workers":2,"wall_ns":...,"ns_per_op":...,"peak_rss_kib":...,"checksum":...}
//
// usage: peer-boost-fiber <workload> [mode] [--n N] [--workers W]
//   --workers: OS threads running fibers; default $RT_MAXPROCS if set, else
//              std::thread::hardware_concurrency(). With W = 1 the round_robin
//              algorithm is used instead (Boost 1.74's work_stealing spins
//              forever looking for a steal victim when it is alone; see
//              runtime.cpp).
//              Idle workers spin (work_stealing's default suspend = false);
//              PEER_BOOST_FIBER_SUSPEND=1 makes them sleep instead and adds
//              "ws_suspend":1 to the JSON line.
//   wall_ns:   steady_clock around the workload only (not thread start-up).
//   peak_rss_kib: getrusage(RUSAGE_SELF).ru_maxrss.
//   Exit status: 0 ok; 1 checksum mismatch or runtime failure (message on
//   stderr); 2 usage error (unknown workload/mode, bad flag).
//
// Workloads (default n in parentheses):
//   spawn_million run       (1e6)  spawn n fibers, each adds (i*2654435761)%1000003 to an atomic sum.
//   spawn_million park      (1e6)  n fibers all block on one release event, then are released.
//   spawn_million tutorial  (1e6)  n workers push 3 strings each over an unbuffered channel; main counts.
//   skynet                  (1e6)  10-ary fiber tree over n leaves summing leaf numbers via channels.
//   pingpong                (1e6)  round trips between two fibers over two unbuffered channels.
//   yield_many              (1000) n fibers each yield 10000 times; cost per yield.
//   chan_mpmc               (4e6)  4 producers / 4 consumers over buffered_channel<uint64_t>(1024).
//   fib_forkjoin            (32)   fork/join fib(n), cutoff 16, cost per spawned fiber.
//   chained_spawn           (1e6)  each fiber spawns the next, n deep.
//   wake_latency            (1e4)  channel hand-off latency after ~50us sleeps; p50/p99.
//   timers                  (1e6)  n fibers sleep_for a pseudo-random [0,100ms); lateness p50/p99.
//
// Memory: each fiber owns a 64 KiB malloc'd stack (virtual); only touched
// pages count toward RSS (measured: ~9.3 KiB per live fiber, i.e. ~9 GiB for
// 1e6 live fibers). spawn_million run/park/tutorial and timers keep nearly all
// 1e6 fibers alive at once (the spawning loop does not yield), so they need
// ~64 GiB of *virtual* address space, which Linux's default overcommit
// heuristic allows; malloc'd stacks come from a few large heap mappings, so
// vm.max_map_count is not a limit. All workloads run at their default n on a
// 24 GiB machine. If a stack allocation does fail, the run prints an error on
// stderr and exits 1 rather than hanging.

#include <sys/resource.h>

#include <cinttypes>
#include <cstdarg>
#include <cstring>
#include <string_view>

#include "common.hpp"

namespace peer {

void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  // Fibers may still be running on other threads; do not try to unwind them.
  std::_Exit(1);
}

}  // namespace peer

namespace {

using peer::Params;
using peer::Result;

struct Workload {
  const char* name;
  const char* mode;  // "" when the workload has no modes
  std::uint64_t default_n;
  Result (*fn)(Params const&);
};

constexpr Workload kWorkloads[] = {
    {"spawn_million", "run", 1'000'000, peer::spawn_run},
    {"spawn_million", "park", 1'000'000, peer::spawn_park},
    {"spawn_million", "tutorial", 1'000'000, peer::spawn_tutorial},
    {"skynet", "", 1'000'000, peer::skynet},
    {"pingpong", "", 1'000'000, peer::pingpong},
    {"yield_many", "", 1'000, peer::yield_many},
    {"chan_mpmc", "", 4'000'000, peer::chan_mpmc},
    {"fib_forkjoin", "", 32, peer::fib_forkjoin},
    {"chained_spawn", "", 1'000'000, peer::chained_spawn},
    {"wake_latency", "", 10'000, peer::wake_latency},
    {"timers", "", 1'000'000, peer::timers},
};

[[noreturn]] void usage(const char* why) {
  if (why != nullptr && *why != '\0') std::fprintf(stderr, "peer-boost-fiber: %s\n", why);
  std::fprintf(stderr,
               "usage: peer-boost-fiber <workload> [mode] [--n N] [--workers W]\n"
               "workloads:\n"
               "  spawn_million [run|park|tutorial]  (default mode run, n=1000000)\n"
               "  skynet          (n=1000000 leaves, power of 10)\n"
               "  pingpong        (n=1000000 round trips)\n"
               "  yield_many      (n=1000 fibers x 10000 yields)\n"
               "  chan_mpmc       (n=4000000 messages)\n"
               "  fib_forkjoin    (n=32, cutoff 16)\n"
               "  chained_spawn   (n=1000000)\n"
               "  wake_latency    (n=10000 samples)\n"
               "  timers          (n=1000000)\n"
               "--workers defaults to $RT_MAXPROCS, else the hardware thread count.\n");
  std::exit(2);
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

unsigned default_workers() {
  if (const char* env = std::getenv("RT_MAXPROCS"); env != nullptr && *env != '\0') {
    std::uint64_t v = 0;
    if (parse_u64(env, v) && v >= 1 && v <= 4096) return static_cast<unsigned>(v);
    std::fprintf(stderr, "peer-boost-fiber: ignoring invalid RT_MAXPROCS=%s\n", env);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : hc;
}

bool is_power_of_10(std::uint64_t n) {
  if (n == 0) return false;
  while (n % 10 == 0) n /= 10;
  return n == 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("missing workload");
  const std::string_view name = argv[1];
  std::string_view mode;
  int argi = 2;
  if (argi < argc && std::strncmp(argv[argi], "--", 2) != 0) mode = argv[argi++];

  std::uint64_t n = 0;
  bool have_n = false;
  unsigned workers = 0;
  for (; argi < argc; ++argi) {
    std::string_view a = argv[argi];
    std::string_view key = a;
    std::string_view val;
    bool have_val = false;
    if (auto eq = a.find('='); eq != std::string_view::npos) {
      key = a.substr(0, eq);
      val = a.substr(eq + 1);
      have_val = true;
    }
    if (key != "--n" && key != "--workers") usage(("unknown argument: " + std::string(a)).c_str());
    if (!have_val) {
      if (argi + 1 >= argc) usage(("missing value for " + std::string(key)).c_str());
      val = argv[++argi];
    }
    std::uint64_t v = 0;
    if (!parse_u64(val, v)) usage(("bad value for " + std::string(key) + ": " + std::string(val)).c_str());
    if (key == "--n") {
      n = v;
      have_n = true;
    } else {
      if (v < 1 || v > 4096) usage("--workers must be in [1, 4096]");
      workers = static_cast<unsigned>(v);
    }
  }

  const Workload* wl = nullptr;
  bool name_known = false;
  for (auto const& w : kWorkloads) {
    if (name != w.name) continue;
    name_known = true;
    // An omitted mode selects the workload's first (default) mode.
    if (mode.empty() || mode == w.mode) {
      wl = &w;
      break;
    }
  }
  if (!name_known) usage(("unknown workload: " + std::string(name)).c_str());
  if (wl == nullptr) usage(("unknown mode for " + std::string(name) + ": " + std::string(mode)).c_str());

  if (!have_n) n = wl->default_n;
  if (n == 0) usage("--n must be >= 1");
  if (std::string_view(wl->name) == "skynet" && !is_power_of_10(n)) usage("skynet: --n must be a power of 10");
  if (workers == 0) workers = default_workers();

  Result res;
  bool ws_suspend = false;
  {
    peer::Runtime rt(workers);
    ws_suspend = rt.work_stealing() && rt.suspend();
    Params params{n, &rt};
    res = wl->fn(params);
    rt.shutdown();
  }

  if (res.checksum != res.expected) {
    // No JSON line for a wrong result: the error goes to stderr, exit 1.
    std::fprintf(stderr,
                 "peer-boost-fiber: %s%s%s: checksum mismatch: got %" PRIu64 ", want %" PRIu64 "\n",
                 wl->name, wl->mode[0] ? " " : "", wl->mode, res.checksum, res.expected);
    return 1;
  }

  struct rusage ru{};
  getrusage(RUSAGE_SELF, &ru);

  std::printf("{\"workload\":\"%s\",\"mode\":\"%s\",\"runtime\":\"boost_fiber\",\"n\":%" PRIu64
              ",\"workers\":%u,\"wall_ns\":%" PRIu64 ",\"ns_per_op\":%.1f,\"peak_rss_kib\":%ld,\"checksum\":%" PRIu64,
              wl->name, wl->mode, n, workers, res.wall_ns, res.ns_per_op, static_cast<long>(ru.ru_maxrss),
              res.checksum);
  for (auto const& e : res.extra) std::printf(",\"%s\":%" PRId64, e.key, e.value);
  if (ws_suspend) std::printf(",\"ws_suspend\":1");
  std::printf("}\n");
  std::fflush(stdout);
  return 0;
}
