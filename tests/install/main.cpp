// tests/install/main.cpp — spawns a few fibers against an installed librt-csp, which send to the
// main fiber over a channel, and prints a line that tests/install/run.sh checks: "install app: 8
// fibers, sum 36, main fiber 1".
#include <rt/csp.hpp>

#include <atomic>
#include <cstdio>

int main() {
  constexpr int kFibers = 8;
  std::atomic<int> sum{0};
  std::uint64_t main_id = 0;
  int rc = rt::run([&] {
    main_id = rt::this_fiber::id();
    // Through a channel: its inline code reads the library's thread-local flag
    // (rt::detail::fast_ops_here) from the application's binary.
    auto values = rt::make_chan<int>();
    for (int i = 1; i <= kFibers; ++i) {
      rt::go(
          [values](int k) mutable {
            rt::yield();
            values.send(k);
          },
          i);
    }
    for (int i = 0; i < kFibers; ++i) sum.fetch_add(*values.recv(), std::memory_order_relaxed);
  });
  std::printf("install app: %d fibers, sum %d, main fiber %llu\n", kFibers, sum.load(),
              static_cast<unsigned long long>(main_id));
  return rc;
}
