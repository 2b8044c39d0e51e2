// bench/chained_spawn — each fiber spawns the next, N deep (default 1,000,000); the last one
// tells main.
#include <rt/csp.hpp>

#include <chrono>

#include "bench_common.hpp"

namespace {

void spawn_next(std::uint64_t depth, std::uint64_t n, rt::chan<std::uint64_t> done) {
  if (depth == n) {
    done.send(depth);
    return;
  }
  rt::go(spawn_next, depth + 1, n, done);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 1000000;
  rt::options opts;
  opts.workers = a.workers;
  std::uint64_t depth = 0;
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        auto done = rt::make_chan<std::uint64_t>();
        auto t0 = std::chrono::steady_clock::now();
        rt::go(spawn_next, std::uint64_t{1}, n, done);
        depth = *done.recv();
        wall = std::chrono::steady_clock::now() - t0;
      },
      opts);
  if (depth != n) return 1;
  bench::print_result("chained_spawn", "", n, workers, wall, n, depth);
}
