// bench/chan_mpmc — 4 producers and 4 consumers on one buffered channel of capacity 1024.
//
//   chan_mpmc [--n N] [--workers W]    N messages in all (default 4,000,000)
#include <rt/csp.hpp>

#include <atomic>
#include <chrono>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 4000000;
  static constexpr std::uint64_t producers = 4, consumers = 4;
  rt::options opts;
  opts.workers = a.workers;
  std::atomic<std::uint64_t> sum{0};
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        auto ch = rt::make_chan<std::uint64_t>(1024);
        rt::wait_group prod, cons;
        auto t0 = std::chrono::steady_clock::now();
        for (std::uint64_t p = 0; p < producers; ++p) {
          prod.add(1);
          rt::go([ch, &prod, n, p]() mutable {
            for (std::uint64_t v = 1 + p; v <= n; v += producers) ch.send(v);
            prod.done();
          });
        }
        for (std::uint64_t c = 0; c < consumers; ++c) {
          cons.add(1);
          rt::go([ch, &cons, &sum]() mutable {
            std::uint64_t local = 0;
            for (std::uint64_t v : ch) local += v;
            sum.fetch_add(local);
            cons.done();
          });
        }
        prod.wait();
        ch.close();
        cons.wait();
        wall = std::chrono::steady_clock::now() - t0;
      },
      opts);
  if (sum != n * (n + 1) / 2) {
    std::fprintf(stderr, "chan_mpmc: checksum mismatch\n");
    return 1;
  }
  bench::print_result("chan_mpmc", "", n, workers, wall, n, sum);
}
