// bench/skynet — 1,000,000 leaves in a 10-ary tree of fibers (1,111,111 in all); each node sums
// its children's numbers received over a channel. The root must get 499999500000.
//
//   skynet [--n LEAVES] [--workers W]     LEAVES a power of 10 (default 1,000,000)
#include <rt/csp.hpp>

#include <chrono>

#include "bench_common.hpp"

namespace {

void skynet(rt::chan<std::uint64_t> out, std::uint64_t num, std::uint64_t size) {
  if (size == 1) {
    out.send(num);
    return;
  }
  auto rc = rt::make_chan<std::uint64_t>();
  const std::uint64_t child = size / 10;
  for (std::uint64_t i = 0; i < 10; ++i) rt::go(skynet, rc, num + i * child, child);
  std::uint64_t sum = 0;
  for (int i = 0; i < 10; ++i) sum += *rc.recv();
  out.send(sum);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv);
  const std::uint64_t n = a.n ? a.n : 1000000;
  std::uint64_t total = 0;
  for (std::uint64_t level = 1;; level *= 10) {
    total += level;
    if (level == n) break;
    if (level > n) {
      std::fprintf(stderr, "skynet: --n must be a power of 10\n");
      return 2;
    }
  }
  rt::options opts;
  opts.workers = a.workers;
  std::uint64_t sum = 0;
  unsigned workers = 0;
  std::chrono::nanoseconds wall{};
  rt::run(
      [&] {
        workers = rt::worker_count();
        auto root = rt::make_chan<std::uint64_t>();
        auto t0 = std::chrono::steady_clock::now();
        rt::go(skynet, root, std::uint64_t{0}, n);
        sum = *root.recv();
        wall = std::chrono::steady_clock::now() - t0;
      },
      opts);
  if (sum != n * (n - 1) / 2) {
    std::fprintf(stderr, "skynet: checksum %llu, expected %llu\n", (unsigned long long)sum,
                 (unsigned long long)(n * (n - 1) / 2));
    return 1;
  }
  bench::print_result("skynet", "", n, workers, wall, total, sum);
}
