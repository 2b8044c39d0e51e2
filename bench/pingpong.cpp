// bench/pingpong — unbuffered round trips between two fibers (Go: two goroutines, two chan int).
//
//   pingpong [--n N] [--workers W]     N round trips (default 1,000,000)
#include <rt/csp.hpp>

#include <chrono>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 1000000;
  rt::options opts;
  opts.workers = a.workers;
  std::uint64_t sum = 0;
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        auto ping = rt::make_chan<std::uint64_t>();
        auto pong = rt::make_chan<std::uint64_t>();
        rt::go([ping, pong, n]() mutable {
          for (std::uint64_t i = 0; i < n; ++i) pong.send(*ping.recv());
        });
        auto t0 = std::chrono::steady_clock::now();
        for (std::uint64_t i = 1; i <= n; ++i) {
          ping.send(i);
          sum += *pong.recv();
        }
        wall = std::chrono::steady_clock::now() - t0;
      },
      opts);
  if (sum != n * (n + 1) / 2) {
    std::fprintf(stderr, "pingpong: checksum %llu, expected %llu\n", (unsigned long long)sum,
                 (unsigned long long)(n * (n + 1) / 2));
    return 1;
  }
  bench::print_result("pingpong", "", n, workers, wall, n, sum);
}
