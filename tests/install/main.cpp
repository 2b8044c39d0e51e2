// tests/install/main.cpp — spawns a few fibers against an installed librt-csp and prints a line
// that tests/install/run.sh checks: "install app: 8 fibers, sum 36, main fiber 1".
#include <rt/csp.hpp>

#include <atomic>
#include <cstdio>

int main() {
  constexpr int kFibers = 8;
  std::atomic<int> sum{0};
  std::uint64_t main_id = 0;
  int rc = rt::run([&] {
    main_id = rt::this_fiber::id();
    rt::wait_group wg;
    for (int i = 1; i <= kFibers; ++i) {
      wg.add(1);
      rt::go([&sum, &wg](int k) {
        rt::yield();
        sum.fetch_add(k, std::memory_order_relaxed);
        wg.done();
      }, i);
    }
    wg.wait();
  });
  std::printf("install app: %d fibers, sum %d, main fiber %llu\n", kFibers, sum.load(),
              static_cast<unsigned long long>(main_id));
  return rc;
}
