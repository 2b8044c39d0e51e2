// bench/fib_forkjoin — fork-join Fibonacci: calls with n >= 16 fork a fiber for fib(n-1),
// compute fib(n-2) inline and join on a wait_group; below 16 the recursion is serial (the same
// cutoff as the peers). Default n = 32; ns_per_op is per spawned fiber.
#include <rt/csp.hpp>

#include <chrono>

#include "bench_common.hpp"

namespace {

constexpr std::uint64_t cutoff = 16;

std::uint64_t fib_serial(std::uint64_t n) {
  return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

std::uint64_t fib(std::uint64_t n) {
  if (n < cutoff) return fib_serial(n);
  std::uint64_t a = 0;
  rt::wait_group wg;
  wg.add(1);
  rt::go([&a, &wg, n] {
    a = fib(n - 1);
    wg.done();
  });
  const std::uint64_t b = fib(n - 2);
  wg.wait();
  return a + b;
}

std::uint64_t spawns(std::uint64_t n) {
  return n < cutoff ? 0 : 1 + spawns(n - 1) + spawns(n - 2);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 32;
  rt::options opts;
  opts.workers = a.workers;
  std::uint64_t got = 0;
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        auto t0 = std::chrono::steady_clock::now();
        got = fib(n);
        wall = std::chrono::steady_clock::now() - t0;
      },
      opts);
  std::uint64_t x = 0, y = 1;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t t = x + y;
    x = y;
    y = t;
  }
  if (got != x) return 1;
  bench::print_result("fib_forkjoin", "", n, workers, wall, spawns(n), got);
}
