// bench/micro/micro_bench.cpp — Google Benchmark micro-benchmarks of librt-csp's primitives.
//
//   build/bench/micro_bench [--benchmark_filter=REGEX] [--benchmark_min_time=0.2] ...
//
// Every benchmark body runs inside the runtime: each call of a BM_ function starts one rt::run
// and runs Google Benchmark's `for (auto _ : state)` loop in the main fiber; helper fibers
// (the partner of a ping-pong, the contenders of a mutex) are spawned before the loop and
// stopped and joined after it. The main fiber may move between worker threads, so every
// benchmark measures wall-clock time (UseRealTime): the per-thread CPU clock would be wrong.
//
// The argument of each benchmark, shown as /N in its name, is the number of worker threads.
// With one worker, nothing runs in parallel and the numbers are the pure cost of the code path;
// with two, the partner fibers run on another core and the numbers include cache-line transfers
// and wake-ups of idle workers.
//
//   BM_switch            two fibers yielding to each other on one worker; time per yield
//                        (counter per_yield; one iteration is two yields)
//   BM_spawn_join        rt::go of an empty fiber and a wait on a wait_group until it finished
//   BM_chan_uncontended  send then recv of one int on a buffered channel, on one fiber
//   BM_chan_pingpong     unbuffered round trip to a partner fiber (two channel operations)
//   BM_select2/8         select over 2 or 8 receive cases of which exactly one is ready (a closed
//                        channel, always ready); the others are empty channels
//   BM_mutex_uncontended lock and unlock of an rt::mutex nobody else wants
//   BM_mutex_contended   lock and unlock while other fibers (three per worker) hammer the same
//                        mutex (two workers)
#include <benchmark/benchmark.h>

#include <rt/csp.hpp>

#include <atomic>
#include <cstdint>
#include <vector>

namespace {

rt::options with_workers(const benchmark::State& state) {
  rt::options opts;
  opts.workers = static_cast<unsigned>(state.range(0));
  return opts;
}

void BM_switch(benchmark::State& state) {
  rt::run(
      [&] {
        std::atomic<bool> stop{false};
        rt::wait_group wg;
        wg.add(1);
        rt::go([&] {
          while (!stop.load(std::memory_order_relaxed)) rt::yield();
          wg.done();
        });
        rt::yield();  // let the partner start
        for (auto _ : state) rt::yield();
        stop.store(true, std::memory_order_relaxed);
        wg.wait();
      },
      with_workers(state));
  // Seconds per yield (printed with an SI prefix, e.g. "31.2n" = 31.2 ns).
  state.counters["per_yield"] =
      benchmark::Counter(2.0 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_spawn_join(benchmark::State& state) {
  rt::run(
      [&] {
        for (auto _ : state) {
          rt::wait_group wg;
          wg.add(1);
          rt::go([&wg] { wg.done(); });
          wg.wait();
        }
      },
      with_workers(state));
}

void BM_chan_uncontended(benchmark::State& state) {
  rt::run(
      [&] {
        auto c = rt::make_chan<std::uint64_t>(1);
        std::uint64_t i = 0, sum = 0;
        for (auto _ : state) {
          c.send(i++);
          sum += *c.recv();
        }
        benchmark::DoNotOptimize(sum);
      },
      with_workers(state));
}

void BM_chan_pingpong(benchmark::State& state) {
  rt::run(
      [&] {
        auto ping = rt::make_chan<std::uint64_t>();
        auto pong = rt::make_chan<std::uint64_t>();
        rt::wait_group wg;
        wg.add(1);
        rt::go([ping, pong, &wg]() mutable {
          while (auto v = ping.recv()) pong.send(*v);
          wg.done();
        });
        std::uint64_t i = 0, sum = 0;
        for (auto _ : state) {
          ping.send(i++);
          sum += *pong.recv();
        }
        ping.close();
        wg.wait();
        benchmark::DoNotOptimize(sum);
      },
      with_workers(state));
}

template <std::size_t Cases>
void BM_select(benchmark::State& state) {
  static_assert(Cases == 2 || Cases == 8);
  rt::run(
      [&] {
        auto ready = rt::make_chan<int>();
        ready.close();  // a receive on a closed channel is always ready
        std::vector<rt::chan<int>> idle;
        for (std::size_t i = 0; i + 1 < Cases; ++i) idle.push_back(rt::make_chan<int>(1));
        std::uint64_t fired = 0;
        for (auto _ : state) {
          if constexpr (Cases == 2) {
            fired += rt::select(rt::recv(idle[0]), rt::recv(ready));
          } else {
            fired += rt::select(rt::recv(idle[0]), rt::recv(idle[1]), rt::recv(idle[2]),
                                rt::recv(idle[3]), rt::recv(ready), rt::recv(idle[4]),
                                rt::recv(idle[5]), rt::recv(idle[6]));
          }
        }
        benchmark::DoNotOptimize(fired);
        if (fired != static_cast<std::uint64_t>(state.iterations()) * (Cases == 2 ? 1 : 4)) {
          state.SkipWithError("select chose a case that was not ready");
        }
      },
      with_workers(state));
}

void BM_mutex_uncontended(benchmark::State& state) {
  rt::run(
      [&] {
        rt::mutex mu;
        std::uint64_t x = 0;
        for (auto _ : state) {
          mu.lock();
          ++x;
          mu.unlock();
        }
        benchmark::DoNotOptimize(x);
      },
      with_workers(state));
}

void BM_mutex_contended(benchmark::State& state) {
  rt::run(
      [&] {
        rt::mutex mu;
        std::uint64_t x = 0;
        std::atomic<bool> stop{false};
        rt::wait_group wg;
        const int contenders = 3 * static_cast<int>(rt::worker_count());
        wg.add(contenders);
        for (int i = 0; i < contenders; ++i) {
          rt::go([&] {
            while (!stop.load(std::memory_order_relaxed)) {
              mu.lock();
              ++x;
              mu.unlock();
            }
            wg.done();
          });
        }
        rt::yield();
        for (auto _ : state) {
          mu.lock();
          ++x;
          mu.unlock();
        }
        stop.store(true, std::memory_order_relaxed);
        wg.wait();
        benchmark::DoNotOptimize(x);
      },
      with_workers(state));
}

// Arg = worker threads. Everything measures wall-clock time (see the top of the file).
// Single-fiber operations run on one worker only (a second worker would just sit idle); those
// that involve a partner also run on two, where the partner may run in parallel. The contended
// mutex runs on two only: on one worker the main fiber never switches while holding the lock,
// so nobody would ever wait for it.
BENCHMARK(BM_switch)->Arg(1)->UseRealTime();
BENCHMARK(BM_spawn_join)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(BM_chan_uncontended)->Arg(1)->UseRealTime();
BENCHMARK(BM_chan_pingpong)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK_TEMPLATE(BM_select, 2)->Name("BM_select2")->Arg(1)->UseRealTime();
BENCHMARK_TEMPLATE(BM_select, 8)->Name("BM_select8")->Arg(1)->UseRealTime();
BENCHMARK(BM_mutex_uncontended)->Arg(1)->UseRealTime();
BENCHMARK(BM_mutex_contended)->Arg(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
