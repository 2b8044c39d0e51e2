// examples/profiling/unbalanced — a deliberately unbalanced workload, for docs/profiling.md.
//
// One fiber spawns 64 jobs whose costs differ by a factor of 1,000 (job k spins for k^2 units),
// and one "hog" computes for ~30 ms without a switch point. Run it under the profilers to see
// what imbalance looks like: steals in rt::stats() and RT_SCHEDTRACE, long slices and idle gaps
// in the trace (tools/rt-trace), the hog in RT_HOGWARN=1.
//
//   RT_SCHEDTRACE=5 RT_HOGWARN=1 RT_TRACE=unbalanced.json ./unbalanced
#include <rt/csp.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

// Burns CPU without a switch point: `units` of ~1 us each.
std::uint64_t spin(std::uint64_t units) {
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (std::uint64_t i = 0; i < units * 300; ++i) x ^= (x << 13) ^ (x >> 7) ^ i;
  return x;
}

}  // namespace

int main() {
  std::uint64_t checksum = 0;
  rt::run([&] {
    auto results = rt::make_chan<std::uint64_t>(64);
    rt::wait_group wg;
    wg.add(1);
    rt::go([&wg] {
      rt::this_fiber::set_name("hog");
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
      while (std::chrono::steady_clock::now() < until) spin(10);  // never yields
      wg.done();
    });
    for (std::uint64_t k = 1; k <= 64; ++k) {
      wg.add(1);
      rt::go([k, results, &wg]() mutable {
        // Every job yields now and then, as well-behaved fibers do.
        std::uint64_t sum = 0;
        for (std::uint64_t round = 0; round < k; ++round) {
          sum += spin(k);
          rt::yield();
        }
        results.send(sum);
        wg.done();
      });
    }
    for (int k = 0; k < 64; ++k) checksum ^= *results.recv();
    wg.wait();
  });
  std::printf("unbalanced: done (checksum %016llx)\n", static_cast<unsigned long long>(checksum));
}
