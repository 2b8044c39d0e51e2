// bench/yield_many — N fibers (default 1000) each yield 10,000 times (--yields K: K times; the
// instruction budget check, bench/instruction_budget.py, counts two values of K apart).
#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  // --yields is this workload's own option: taken out before the common parser sees the rest.
  std::uint64_t yields = 10000;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--yields" && i + 1 < argc) {
      yields = std::strtoull(argv[++i], nullptr, 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  bench::args a = bench::parse_args(static_cast<int>(rest.size()), rest.data());
  const std::uint64_t n = a.n ? a.n : 1000;
  rt::options opts;
  opts.workers = a.workers;
  std::atomic<std::uint64_t> total{0};
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        rt::wait_group wg;
        wg.add(static_cast<int>(n));
        auto t0 = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < n; ++i) {
          rt::go([&] {
            std::uint64_t k = 0;
            for (; k < yields; ++k) rt::yield();
            total.fetch_add(k, std::memory_order_relaxed);
            wg.done();
          });
        }
        wg.wait();
        wall = std::chrono::steady_clock::now() - t0;
      },
      opts);
  if (total != n * yields) return 1;
  bench::print_result("yield_many", "", n, workers, wall, n * yields, total);
}
