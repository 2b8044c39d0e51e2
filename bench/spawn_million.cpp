// bench/spawn_million — spawns a million fibers and waits for all of them.
//
//   spawn_million run       each fiber does a small piece of work and finishes
//   spawn_million park      all of them park at once, then all are released
//   spawn_million tutorial  the seed tutorial's fixed program with n workers: each sends its 3
//                           lines on one unbuffered channel, a closer fiber closes it after a
//                           wait_group, main counts the lines (3n)
//   [--n N] [--workers W]   fiber count (default 1,000,000); worker threads
//
// Prints one JSON line (bench_common.hpp). bench/peers/go does the same in Go, side by side.
#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "bench_common.hpp"

namespace {

// The "small piece of work" each fiber of mode run does (identical in the Go peer).
std::uint64_t work(std::uint64_t i) {
  return (i * 2654435761ull) % 1000003ull;
}

std::uint64_t run_mode(std::uint64_t n) {
  std::atomic<std::uint64_t> sum{0};
  rt::wait_group wg;
  wg.add(static_cast<int>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    rt::go([&sum, &wg, i] {
      sum.fetch_add(work(i), std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  return sum.load();
}

std::uint64_t park_mode(std::uint64_t n) {
  rt::wait_group started, release, finished;
  std::atomic<std::uint64_t> count{0};
  release.add(1);
  started.add(static_cast<int>(n));
  finished.add(static_cast<int>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    rt::go([&] {
      started.done();
      release.wait();  // all n fibers are parked here at once
      count.fetch_add(1, std::memory_order_relaxed);
      finished.done();
    });
  }
  started.wait();
  release.done();
  finished.wait();
  return count.load();
}

// The tutorial's worker: three progress lines on an unbuffered channel, then done.
void tutorial_worker(std::string task, rt::chan<std::string> ch, rt::wait_group& wg) {
  for (int i = 1; i <= 3; ++i) ch.send(task + " " + std::to_string(i) + " complete\n");
  wg.done();
}

std::uint64_t tutorial_mode(std::uint64_t n) {
  auto ch = rt::make_chan<std::string>();
  rt::wait_group wg;
  for (std::uint64_t k = 1; k <= n; ++k) {
    wg.add(1);
    rt::go(tutorial_worker, "worker " + std::to_string(k), ch, std::ref(wg));
  }
  rt::go([&wg, ch]() mutable {
    wg.wait();
    ch.close();
  });
  std::uint64_t lines = 0;
  for (const std::string& line : ch) lines += !line.empty();
  return lines;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv, 1);
  // parse_args takes the first word as the workload; here it is the mode.
  std::string mode = a.workload.empty() ? "run" : a.workload;
  std::uint64_t n = a.n ? a.n : 1000000;
  rt::options opts;
  opts.workers = a.workers;
  unsigned workers = 0;
  std::uint64_t checksum = 0, expected = 0;
  std::chrono::nanoseconds wall{};
  int rc = rt::run(
      [&]() -> int {
        workers = rt::worker_count();
        auto t0 = std::chrono::steady_clock::now();
        if (mode == "run") {
          checksum = run_mode(n);
        } else if (mode == "park") {
          checksum = park_mode(n);
        } else if (mode == "tutorial") {
          checksum = tutorial_mode(n);
        } else {
          std::fprintf(stderr, "usage: spawn_million run|park|tutorial [--n N] [--workers W]\n");
          return 2;
        }
        wall = std::chrono::steady_clock::now() - t0;
        return 0;
      },
      opts);
  if (rc != 0) return rc;
  if (mode == "run") {
    for (std::uint64_t i = 0; i < n; ++i) expected += work(i);
  } else {
    expected = mode == "tutorial" ? 3 * n : n;
  }
  if (checksum != expected) {
    std::fprintf(stderr, "spawn_million %s: checksum %llu, expected %llu\n", mode.c_str(),
                 (unsigned long long)checksum, (unsigned long long)expected);
    return 1;
  }
  bench::print_result("spawn_million", mode, n, workers, wall, n, checksum);
  return 0;
}
