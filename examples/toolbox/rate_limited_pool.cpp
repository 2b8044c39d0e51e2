// examples/toolbox/rate_limited_pool.cpp — a rate-limited worker pool: jobs start at most once
// per tick of an rt::ticker, at most `workers` run at once (an rt::group with a limit), and the
// first failing job cancels the rest.
//
// A line-for-line port of examples/go/rate_limited_pool/main.go: same names, same structure,
// same output (tools/compare_go_example.sh diffs the two). What changes in translation:
//   the Go program's hand-written group      rt::group (errgroup.Group: with_context, set_limit,
//     (errgroup with SetLimit)                 go, wait)
//   a job returns an error                   a job throws; wait() rethrows the first exception
//   ticker := time.NewTicker(d)              rt::ticker ticker(d);  (its destructor is Go's
//   defer ticker.Stop()                        deferred ticker.Stop())
//   <-ticker.C                               rt::recv(ticker.c())
#include <rt/csp.hpp>

#include "go_style.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

using go_style::defer;
using go_style::str;

constexpr int workers = 3;
constexpr auto interval = 2ms;
constexpr auto workTime = 5ms;

std::atomic<std::int64_t> running{0}, maxRunning{0};

// job squares i after workTime; job `bad` fails. A job started after the group was
// cancelled does nothing.
int job(const rt::context& ctx, int i, int bad) {
  std::int64_t n = running.fetch_add(1) + 1;
  defer d{[] { running.fetch_add(-1); }};
  for (std::int64_t m = maxRunning.load(); n > m && !maxRunning.compare_exchange_weak(m, n);) {
  }
  switch (rt::select({rt::recv(rt::after(workTime)), rt::recv(ctx.done())})) {
    case 0:  // <-time.After(workTime)
      break;
    case 1:  // <-ctx.Done(): Go returns ctx.Err()
      ctx.throw_if_done();
  }
  if (i == bad) throw std::runtime_error("job " + std::to_string(i) + ": bad input");
  return i * i;
}

// runPool runs jobs 1..n, one per tick, and returns the sum of their results.
std::tuple<int, int, std::string> runPool(int n, int bad) {
  auto [g, ctx] = rt::group::with_context(rt::background());
  g.set_limit(workers);
  rt::ticker ticker(interval);  // stopped by its destructor: Go's defer ticker.Stop()
  std::vector<int> results(n + 1);
  int submitted = 0;
  for (int i = 1; i <= n; i++) {
    if (rt::select({rt::recv(ticker.c()), rt::recv(ctx.done())}) == 1) break;  // break loop
    submitted++;
    g.go([ctx, i, bad, &results] { results[i] = job(ctx, i, bad); });
  }
  std::string err;
  try {
    g.wait();
  } catch (const std::exception& e) {
    err = e.what();
  }
  int sum = 0;
  for (int r : results) sum += r;
  return {sum, submitted, err};
}

}  // namespace

int main() {
  return rt::run([] {
    auto start = std::chrono::steady_clock::now();
    auto [sum, submitted, err] = runPool(12, 0);
    auto elapsed = std::chrono::steady_clock::now() - start;
    std::printf("12 jobs: submitted %d, sum %d, err %s\n", submitted, sum, str(err).c_str());
    std::printf("rate limited (>= 12 ticks): %s\n", elapsed >= 12 * interval ? "true" : "false");
    std::printf("at most %d at once: %s\n", workers,
                maxRunning.load() <= workers ? "true" : "false");
    std::tie(std::ignore, std::ignore, err) = runPool(12, 5);
    std::printf("with a failing job: err %s\n", str(err).c_str());
    std::printf("jobs still running: %lld\n", static_cast<long long>(running.load()));
    std::printf("rate_limited_pool: ok\n");
  });
}
