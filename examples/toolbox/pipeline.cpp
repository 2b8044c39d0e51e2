// examples/toolbox/pipeline.cpp — a cancellable pipeline: a producer, N workers, a collector.
// The collector stops early and cancels; every stage then returns (nothing leaked), which the
// program checks.
//
// A line-for-line port of examples/go/pipeline/main.go: same names, same structure, same
// output (tools/compare_go_example.sh diffs the two). What changes in translation:
//   ctx, cancel := context.WithCancel(...)   auto [ctx, cancel] = rt::with_cancel(...)
//   select { case v, ok = <-in: ... }        switch (rt::select({rt::recv(in, &v, &ok), ...}))
//   defer f()                                defer d{[&] { f(); }};  (go_style.hpp)
#include <rt/csp.hpp>

#include "go_style.hpp"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <system_error>
#include <tuple>

namespace {

using go_style::defer;
using go_style::str;

// live counts the running stages: it must be 0 once the pipeline has returned.
std::atomic<std::int64_t> live{0};

// producer sends 1..n on the channel it returns, until done or cancelled; then closes it.
rt::recv_chan<int> producer(rt::context ctx, int n) {
  auto out = rt::make_chan<int>();
  live.fetch_add(1);
  rt::go([ctx, n, out]() mutable {
    defer d1{[&] { out.close(); }};  // runs last: whoever drains out sees live already lowered
    defer d2{[] { live.fetch_add(-1); }};
    for (int i = 1; i <= n; ++i) {
      switch (rt::select({rt::send(out, i), rt::recv(ctx.done())})) {
        case 0:  // out <- i
          break;
        case 1:  // <-ctx.Done()
          return;
      }
    }
  });
  return out;
}

// square sends the square of each value of in on out, until in is closed or ctx cancelled.
void square(rt::context ctx, rt::recv_chan<int> in, rt::send_chan<int> out, rt::wait_group& wg) {
  defer d1{[&] { wg.done(); }};
  defer d2{[] { live.fetch_add(-1); }};
  for (;;) {
    int v = 0;
    bool ok = false;
    switch (rt::select({rt::recv(in, &v, &ok), rt::recv(ctx.done())})) {
      case 0:  // v, ok = <-in
        if (!ok) return;
        break;
      case 1:  // <-ctx.Done()
        return;
    }
    switch (rt::select({rt::send(out, v * v), rt::recv(ctx.done())})) {
      case 0:  // out <- v * v
        break;
      case 1:  // <-ctx.Done()
        return;
    }
  }
}

// pipeline squares 1..n with `workers` workers; the collector sums the results and, once it
// has `limit` of them (0: no limit), cancels the others.
std::tuple<int, int, std::error_code> pipeline(int n, int workers, int limit) {
  int count = 0, sum = 0;
  auto [ctx, cancel] = rt::with_cancel(rt::background());
  defer d{cancel};
  rt::recv_chan<int> in = producer(ctx, n);
  auto results = rt::make_chan<int>();
  rt::wait_group wg;
  for (int i = 0; i < workers; ++i) {
    wg.add(1);
    live.fetch_add(1);
    rt::go(square, ctx, in, results, std::ref(wg));
  }
  rt::go([&wg, results]() mutable {
    wg.wait();
    results.close();
  });
  for (int r : results) {
    count++;
    sum += r;
    if (count == limit) {
      cancel();
      break;
    }
  }
  for ([[maybe_unused]] int r : results) {  // drain: returns once every worker has returned
  }
  for ([[maybe_unused]] int v : in) {  // and the producer
  }
  return {count, sum, ctx.err()};
}

}  // namespace

int main() {
  return rt::run([] {
    auto [count, sum, err] = pipeline(100, 4, 0);
    std::printf("full run: %d results, sum %d, err %s\n", count, sum, str(err).c_str());
    std::tie(count, std::ignore, err) = pipeline(1000000, 4, 10);
    std::printf("cancelled run: %d results, err %s\n", count, str(err).c_str());
    std::printf("stages still running: %lld\n", static_cast<long long>(live.load()));
    std::printf("pipeline: ok\n");
  });
}
