// bench/timers — N fibers (default 1,000,000) each sleep a pseudo-random time in [0, 100 ms)
// (the peers' LCG on the index) and record how late they woke. Reports wall time and the
// lateness p50/p99.
#include <rt/csp.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  using clock = std::chrono::steady_clock;
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 1000000;
  rt::options opts;
  opts.workers = a.workers;
  std::vector<std::int64_t> late(n);
  std::atomic<std::uint64_t> count{0};
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        rt::wait_group wg;
        wg.add(static_cast<int>(n));
        auto t0 = clock::now();
        for (std::uint64_t i = 0; i < n; ++i) {
          rt::go([&, i] {
            const std::uint64_t x = i * 6364136223846793005ull + 1442695040888963407ull;
            const std::chrono::nanoseconds d((x >> 33) % 100000000ull);
            const auto start = clock::now();
            rt::sleep_for(d);
            late[i] = (clock::now() - start - d).count();
            count.fetch_add(1, std::memory_order_relaxed);
            wg.done();
          });
        }
        wg.wait();
        wall = clock::now() - t0;
      },
      opts);
  if (count != n) return 1;
  std::sort(late.begin(), late.end());
  auto pct = [&](int p) {
    return late[std::min<std::size_t>(late.size() - 1, (late.size() * p + 99) / 100 - 1)];
  };
  std::string extra = ",\"lateness_p50_ns\":" + std::to_string(pct(50)) +
                      ",\"lateness_p99_ns\":" + std::to_string(pct(99));
  bench::print_result("timers", "", n, workers, wall, n, count, extra);
}
