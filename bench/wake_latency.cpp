// bench/wake_latency — time from readying a fiber to it running: a receiver blocks on an
// unbuffered channel; a sender, after sleeping 50 µs (so the receiver's worker goes idle),
// sends the current time; the receiver records now - then. Reports p50 and p99 over N samples
// (default 10,000).
#include <rt/csp.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  using clock = std::chrono::steady_clock;
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 10000;
  rt::options opts;
  opts.workers = a.workers;
  std::vector<std::int64_t> lat(n);
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  std::uint64_t got = 0;
  rt::run(
      [&] {
        workers = rt::worker_count();
        auto ch = rt::make_chan<clock::time_point>();
        auto done = rt::make_chan<std::uint64_t>();
        auto t0 = clock::now();
        rt::go([&, ch, done]() mutable {
          std::uint64_t k = 0;
          for (; k < n; ++k) lat[k] = (clock::now() - *ch.recv()).count();
          done.send(k);
        });
        rt::go([ch, n]() mutable {
          for (std::uint64_t i = 0; i < n; ++i) {
            rt::sleep_for(std::chrono::microseconds(50));
            ch.send(clock::now());
          }
        });
        got = *done.recv();
        wall = clock::now() - t0;
      },
      opts);
  std::sort(lat.begin(), lat.end());
  auto pct = [&](int p) {
    return lat[std::min<std::size_t>(lat.size() - 1, (lat.size() * p + 99) / 100 - 1)];
  };
  const std::int64_t p50 = pct(50), p99 = pct(99);
  std::string extra = ",\"p50_ns\":" + std::to_string(p50) + ",\"p99_ns\":" + std::to_string(p99);
  bench::print_result("wake_latency", "", n, workers, wall, 0, got, extra);
}
