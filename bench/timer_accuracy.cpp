// bench/timer_accuracy — how late timers fire on an idle runtime (issue 12's target: within 1 ms
// when idle). One fiber, nothing else running: for deadlines of 1-50 ms it measures, from the
// deadline to the moment the waiting fiber runs again, the lateness of
//   - rt::timer (receive on c()),
//   - rt::ticker (each tick against its ideal schedule start + k * period),
//   - rt::sleep_for,
//   - rt::with_timeout (receive on ctx.done(): the deadline's fire, then the fiber it spawns to
//     cancel the context),
// and prints the median, p99 and max in microseconds, one line each (--n: samples per kind,
// default 240, at least 200 is the target; --workers W).
#include <rt/csp.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench_common.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kPeriods[] = {1ms, 2ms, 5ms, 10ms, 20ms, 50ms};

double us(clock_type::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

void report(const char* what, std::vector<double>& late) {
  std::sort(late.begin(), late.end());
  const auto at = [&](double q) {
    return late[std::min(late.size() - 1, static_cast<std::size_t>(q * late.size()))];
  };
  std::printf("%-10s samples %4zu  lateness median %8.1f us  p99 %8.1f us  max %8.1f us\n", what,
              late.size(), at(0.5), at(0.99), late.back());
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a = bench::parse_args(argc, argv);
  const std::size_t n = a.n ? a.n : 240;
  rt::options opts;
  opts.workers = a.workers;
  std::vector<double> timer_late, ticker_late, sleep_late, context_late;
  unsigned workers = 0;
  rt::run(
      [&] {
        workers = rt::worker_count();
        for (std::size_t i = 0; i < n; ++i) {
          const auto d = kPeriods[i % std::size(kPeriods)];
          const auto deadline = clock_type::now() + d;
          rt::timer t(d);
          t.c().recv();
          timer_late.push_back(us(clock_type::now() - deadline));
        }
        const std::size_t per_period = (n + std::size(kPeriods) - 1) / std::size(kPeriods);
        for (auto d : kPeriods) {
          const auto start = clock_type::now();
          rt::ticker tk(d);
          for (std::size_t k = 1; k <= per_period; ++k) {
            tk.c().recv();
            // The tick due now is the last one at or before the receipt (a late receiver's
            // dropped ticks are skipped, not counted against it).
            const auto now = clock_type::now();
            const auto due = start + d * ((now - start) / d);
            ticker_late.push_back(us(now - due));
          }
        }
        for (std::size_t i = 0; i < n; ++i) {
          const auto d = kPeriods[i % std::size(kPeriods)];
          const auto deadline = clock_type::now() + d;
          rt::sleep_for(d);
          sleep_late.push_back(us(clock_type::now() - deadline));
        }
        for (std::size_t i = 0; i < n; ++i) {
          const auto d = kPeriods[i % std::size(kPeriods)];
          const auto deadline = clock_type::now() + d;  // with_timeout's own is a bit later
          auto [ctx, cancel] = rt::with_timeout(rt::background(), d);
          ctx.done().recv();
          context_late.push_back(us(clock_type::now() - deadline));
        }
      },
      opts);
  std::printf("timer_accuracy: idle runtime, %u workers, deadlines 1-50 ms\n", workers);
  report("rt::timer", timer_late);
  report("rt::ticker", ticker_late);
  report("sleep_for", sleep_late);
  report("context", context_late);
  return 0;
}
