// bench/bench_common.hpp — what every librt-csp benchmark executable shares: argument parsing
// and the one JSON result line that bench/compare reads (same fields as the Go and Boost.Fiber
// peers in bench/peers/).
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bench {

// Command line: <workload> [mode] [--n N] [--workers W].
struct args {
  std::string workload;
  std::string mode;
  std::uint64_t n = 0;   // 0: the workload's default
  unsigned workers = 0;  // 0: the runtime's default (RT_MAXPROCS, else one per core)
};

inline args parse_args(int argc, char** argv, int first = 1) {
  args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--n" && i + 1 < argc) {
      a.n = std::strtoull(argv[++i], nullptr, 10);
    } else if (s == "--workers" && i + 1 < argc) {
      a.workers = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else if (a.workload.empty()) {
      a.workload = s;
    } else if (a.mode.empty()) {
      a.mode = s;
    } else {
      std::fprintf(stderr, "unexpected argument: %s\n", argv[i]);
      std::exit(2);
    }
  }
  return a;
}

// Peak resident set size of this process so far, in KiB.
inline long peak_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// Prints the result line: one JSON object, fields shared with the peers.
inline void print_result(const char* workload, const std::string& mode, std::uint64_t n,
                         unsigned workers, std::chrono::nanoseconds wall, std::uint64_t ops,
                         std::uint64_t checksum, const std::string& extra = {}) {
  const double ns = static_cast<double>(wall.count());
  std::printf(
      "{\"workload\":\"%s\",\"mode\":\"%s\",\"runtime\":\"librt-csp\",\"n\":%llu,"
      "\"workers\":%u,\"wall_ns\":%lld,\"wall_ms\":%.1f,\"ns_per_op\":%.1f,"
      "\"peak_rss_kib\":%ld,\"checksum\":%llu%s}\n",
      workload, mode.c_str(), static_cast<unsigned long long>(n), workers,
      static_cast<long long>(wall.count()), ns / 1e6, ops ? ns / static_cast<double>(ops) : 0.0,
      peak_rss_kib(), static_cast<unsigned long long>(checksum), extra.c_str());
  std::fflush(stdout);
}

}  // namespace bench
