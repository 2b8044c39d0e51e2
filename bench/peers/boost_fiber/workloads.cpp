// The eleven workloads of the Boost.Fiber peer. Each one times only the
// workload itself (steady_clock), then computes the value its checksum must
// equal; main.cpp compares the two and prints the JSON line.
//
// Lifetime rule used throughout: anything a fiber touches lives in the
// workload function's frame, and the function does not return before every
// fiber that touches it is known to be finished (wait-group reached zero, or
// the fiber was joined). Channel closers are joined, not detached, because a
// consumer can observe "closed" while close() is still running.

#include <algorithm>
#include <string>

#include "common.hpp"

namespace peer {
namespace {

using boost::fibers::buffered_channel;
using boost::fibers::channel_op_status;
using boost::fibers::unbuffered_channel;

double per_op(std::uint64_t wall_ns, std::uint64_t ops) {
  return static_cast<double>(wall_ns) / static_cast<double>(ops == 0 ? 1 : ops);
}

// Nearest-rank percentile of a sorted sample: the ceil(pct/100 * N)-th value.
std::int64_t percentile(std::vector<std::int64_t> const& sorted, unsigned pct) {
  if (sorted.empty()) return 0;
  std::size_t rank = (sorted.size() * pct + 99) / 100;  // ceil
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

std::uint64_t spawn_value(std::uint64_t i) { return (i * 2654435761ULL) % 1000003ULL; }

}  // namespace

// 1. spawn_million run: n detached fibers, each adds a value to a shared
//    atomic sum and counts down a wait-group; main waits.
Result spawn_run(Params const& p) {
  const std::uint64_t n = p.n;
  std::atomic<std::uint64_t> sum{0};
  WaitGroup wg(n);

  const std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    go([&sum, &wg, i] {
      sum.fetch_add(spawn_value(i), std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n);
  r.checksum = sum.load();
  for (std::uint64_t i = 0; i < n; ++i) r.expected += spawn_value(i);
  return r;
}

// 2. spawn_million park: n fibers signal "started" then block on one shared
//    release event (fiber mutex + condition_variable + flag); main waits for
//    all to start, releases them, waits for all to finish.
Result spawn_park(Params const& p) {
  const std::uint64_t n = p.n;
  WaitGroup started(n);
  WaitGroup finished(n);
  Event release;
  std::atomic<std::uint64_t> count{0};

  const std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    go([&] {
      started.done();
      release.wait();
      count.fetch_add(1, std::memory_order_relaxed);
      finished.done();
    });
  }
  started.wait();
  release.set();
  finished.wait();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n);
  r.checksum = count.load();
  r.expected = n;
  return r;
}

// 3. spawn_million tutorial: n workers each push three strings
//    "worker <k> <i> complete\n" into one unbuffered channel; a closer fiber
//    waits on a wait-group and closes the channel; main pops until closed,
//    counting lines.
Result spawn_tutorial(Params const& p) {
  const std::uint64_t n = p.n;
  unbuffered_channel<std::string> ch;
  WaitGroup wg(n);

  const std::uint64_t t0 = now_ns();
  for (std::uint64_t k = 0; k < n; ++k) {
    go([&ch, &wg, k] {
      for (int i = 0; i < 3; ++i) {
        ch.push("worker " + std::to_string(k) + " " + std::to_string(i) + " complete\n");
      }
      wg.done();
    });
  }
  boost::fibers::fiber closer = spawn_joinable([&ch, &wg] {
    wg.wait();
    ch.close();
  });
  std::uint64_t lines = 0;
  std::string msg;
  while (ch.pop(msg) == channel_op_status::success) {
    lines += static_cast<std::uint64_t>(std::count(msg.begin(), msg.end(), '\n'));
  }
  closer.join();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n);
  r.checksum = lines;
  r.expected = 3 * n;
  return r;
}

// 4. skynet: 10-ary tree of fibers over n leaves; a leaf sends its number to
//    its parent over the parent's buffered_channel (capacity 16, so the ten
//    sends never block); inner nodes sum their ten children and send the sum
//    up. Root sum is n(n-1)/2. n must be a power of 10.
namespace {
void skynet_node(std::uint64_t num, std::uint64_t size, buffered_channel<std::uint64_t>* out) {
  if (size == 1) {
    out->push(num);
    return;
  }
  buffered_channel<std::uint64_t> children(16);
  const std::uint64_t child_size = size / 10;
  for (std::uint64_t i = 0; i < 10; ++i) {
    go([&children, num, child_size, i] { skynet_node(num + i * child_size, child_size, &children); });
  }
  std::uint64_t sum = 0;
  for (int i = 0; i < 10; ++i) sum += children.value_pop();
  out->push(sum);
}
}  // namespace

Result skynet(Params const& p) {
  const std::uint64_t n = p.n;
  std::uint64_t nodes = 0;  // n + n/10 + ... + 1
  for (std::uint64_t s = n; s >= 1; s /= 10) nodes += s;

  buffered_channel<std::uint64_t> root(16);
  const std::uint64_t t0 = now_ns();
  go([&root, n] { skynet_node(0, n, &root); });
  const std::uint64_t total = root.value_pop();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, nodes);  // 1111111 fibers for n = 1e6
  r.checksum = total;
  r.expected = n * (n - 1) / 2;
  return r;
}

// 5. pingpong: two fibers, two unbuffered channels; n round trips
//    (ping i, echo i back). checksum counts correct echoes.
Result pingpong(Params const& p) {
  const std::uint64_t n = p.n;
  unbuffered_channel<std::uint64_t> ping;
  unbuffered_channel<std::uint64_t> pong;
  std::uint64_t ok = 0;

  const std::uint64_t t0 = now_ns();
  boost::fibers::fiber echo = spawn_joinable([&ping, &pong] {
    std::uint64_t v = 0;
    while (ping.pop(v) == channel_op_status::success) pong.push(v);
  });
  boost::fibers::fiber driver = spawn_joinable([&ping, &pong, &ok, n] {
    for (std::uint64_t i = 0; i < n; ++i) {
      ping.push(i);
      if (pong.value_pop() == i) ++ok;
    }
    ping.close();
  });
  driver.join();
  echo.join();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n);
  r.checksum = ok;
  r.expected = n;
  return r;
}

// 6. yield_many: n fibers, each calls boost::this_fiber::yield() 10000 times.
//    ns_per_op is per yield.
Result yield_many(Params const& p) {
  constexpr std::uint64_t kYields = 10000;
  const std::uint64_t n = p.n;
  WaitGroup wg(n);
  std::atomic<std::uint64_t> total{0};

  const std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    go([&wg, &total] {
      std::uint64_t done = 0;
      for (std::uint64_t j = 0; j < kYields; ++j) {
        boost::this_fiber::yield();
        ++done;
      }
      total.fetch_add(done, std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n * kYields);
  r.checksum = total.load();
  r.expected = n * kYields;
  return r;
}

// 7. chan_mpmc: 4 producers send 1..n (split into 4 contiguous ranges) into a
//    buffered_channel<uint64_t> of capacity 1024; 4 consumers pop until the
//    channel is closed (by a closer fiber once all producers are done) and sum.
Result chan_mpmc(Params const& p) {
  constexpr std::uint64_t kProducers = 4;
  constexpr std::uint64_t kConsumers = 4;
  const std::uint64_t n = p.n;
  buffered_channel<std::uint64_t> ch(1024);
  WaitGroup producers(kProducers);
  WaitGroup consumers(kConsumers);
  std::atomic<std::uint64_t> sum{0};

  const std::uint64_t t0 = now_ns();
  for (std::uint64_t k = 0; k < kProducers; ++k) {
    const std::uint64_t lo = n * k / kProducers + 1;
    const std::uint64_t hi = n * (k + 1) / kProducers;
    go([&ch, &producers, lo, hi] {
      for (std::uint64_t v = lo; v <= hi; ++v) ch.push(v);
      producers.done();
    });
  }
  boost::fibers::fiber closer = spawn_joinable([&ch, &producers] {
    producers.wait();
    ch.close();
  });
  for (std::uint64_t k = 0; k < kConsumers; ++k) {
    go([&ch, &consumers, &sum] {
      std::uint64_t local = 0;
      std::uint64_t v = 0;
      while (ch.pop(v) == channel_op_status::success) local += v;
      sum.fetch_add(local, std::memory_order_relaxed);
      consumers.done();
    });
  }
  consumers.wait();
  closer.join();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n);
  r.checksum = sum.load();
  r.expected = n * (n + 1) / 2;
  return r;
}

// 8. fib_forkjoin: fib(n) with cutoff 16. A call with n >= cutoff spawns a
//    fiber for fib(n-1), computes fib(n-2) inline and joins the fiber
//    (boost::fibers::fiber::join); below the cutoff it recurses serially.
//    ns_per_op is per spawned fiber.
namespace {
constexpr std::uint64_t kFibCutoff = 16;

std::uint64_t fib_serial(std::uint64_t n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

std::uint64_t fib_par(std::uint64_t n) {
  if (n < kFibCutoff) return fib_serial(n);
  std::uint64_t a = 0;
  boost::fibers::fiber child = spawn_joinable([&a, n] { a = fib_par(n - 1); });
  const std::uint64_t b = fib_par(n - 2);
  child.join();
  return a + b;
}

// Number of fibers fib_par(n) spawns.
std::uint64_t fib_spawns(std::uint64_t n) {
  if (n < kFibCutoff) return 0;
  return 1 + fib_spawns(n - 1) + fib_spawns(n - 2);
}

std::uint64_t fib_iter(std::uint64_t n) {
  std::uint64_t a = 0, b = 1;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t c = a + b;
    a = b;
    b = c;
  }
  return a;
}
}  // namespace

Result fib_forkjoin(Params const& p) {
  const std::uint64_t n = p.n;
  const std::uint64_t t0 = now_ns();
  const std::uint64_t value = fib_par(n);
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, fib_spawns(n));  // 4180 fibers for n = 32
  r.checksum = value;
  r.expected = fib_iter(n);
  return r;
}

// 9. chained_spawn: fiber d spawns (detached) fiber d+1 and exits, until
//    depth n; the last one signals main.
namespace {
struct Chain {
  std::uint64_t n = 0;
  std::uint64_t reached = 0;
  WaitGroup done{1};
};

void chain_step(Chain* c, std::uint64_t depth) {
  if (depth >= c->n) {
    c->reached = depth;
    c->done.done();
    return;
  }
  go([c, depth] { chain_step(c, depth + 1); });
}
}  // namespace

Result chained_spawn(Params const& p) {
  Chain c;
  c.n = p.n;
  const std::uint64_t t0 = now_ns();
  go([&c] { chain_step(&c, 1); });
  c.done.wait();
  const std::uint64_t t1 = now_ns();

  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, p.n);
  r.checksum = c.reached;
  r.expected = p.n;
  return r;
}

// 10. wake_latency: a receiver fiber blocks on an unbuffered channel; a sender
//     fiber (created on a helper thread when there is one) sleeps ~50us, reads
//     steady_clock and pushes the timestamp; the receiver records
//     now - timestamp. n samples; p50/p99 reported, ns_per_op = p50.
//     Work stealing gives no placement guarantee: after each wake-up either
//     fiber may run on whichever thread dequeues (or steals) it first.
Result wake_latency(Params const& p) {
  const std::uint64_t n = p.n;
  unbuffered_channel<std::int64_t> ch;
  std::vector<std::int64_t> lat(n);
  std::uint64_t received = 0;
  WaitGroup wg(2);

  auto sender = [&ch, &wg, n] {
    for (std::uint64_t i = 0; i < n; ++i) {
      boost::this_fiber::sleep_for(std::chrono::microseconds(50));
      ch.push(static_cast<std::int64_t>(now_ns()));
    }
    ch.close();
    wg.done();
  };

  const std::uint64_t t0 = now_ns();
  go([&ch, &wg, &lat, &received] {
    std::int64_t sent = 0;
    while (ch.pop(sent) == channel_op_status::success) {
      const std::int64_t got = static_cast<std::int64_t>(now_ns());
      if (received < lat.size()) lat[received] = got - sent;
      ++received;
    }
    wg.done();
  });
  if (p.rt != nullptr && p.rt->helper_threads() > 0) {
    p.rt->launch_on_helper(0, sender);
  } else {
    go(sender);
  }
  wg.wait();
  const std::uint64_t t1 = now_ns();

  std::sort(lat.begin(), lat.end());
  Result r;
  r.wall_ns = t1 - t0;
  const std::int64_t p50 = percentile(lat, 50);
  const std::int64_t p99 = percentile(lat, 99);
  r.ns_per_op = static_cast<double>(p50);
  r.checksum = received;
  r.expected = n;
  r.extra = {{"p50_ns", p50}, {"p99_ns", p99}};
  return r;
}

// 11. timers: n fibers each sleep_for a pseudo-random duration in [0, 100ms)
//     (one LCG step on the fiber index); lateness = wake time - intended
//     deadline. p50/p99 lateness reported; checksum counts wake-ups.
//     Note: Boost.Fiber moves expired sleepers back to the ready queue from
//     its dispatcher fiber, which gets its turn only once per pass through the
//     thread's ready queue. While hundreds of thousands of freshly spawned
//     fibers are queued, a pass takes a long time, and the lateness tail
//     (p99) measures that rather than timer precision.
namespace {
std::chrono::nanoseconds timer_duration(std::uint64_t i) {
  const std::uint64_t x = i * 6364136223846793005ULL + 1442695040888963407ULL;
  return std::chrono::nanoseconds((x >> 16) % 100'000'000ULL);
}
}  // namespace

Result timers(Params const& p) {
  const std::uint64_t n = p.n;
  std::vector<std::int64_t> lateness(n);
  std::atomic<std::uint64_t> woke{0};
  WaitGroup wg(n);

  const std::uint64_t t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    go([&lateness, &woke, &wg, i] {
      const auto d = timer_duration(i);
      const auto deadline = std::chrono::steady_clock::now() + d;
      boost::this_fiber::sleep_for(d);
      const auto late = std::chrono::steady_clock::now() - deadline;
      lateness[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(late).count();
      woke.fetch_add(1, std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  const std::uint64_t t1 = now_ns();

  std::sort(lateness.begin(), lateness.end());
  Result r;
  r.wall_ns = t1 - t0;
  r.ns_per_op = per_op(r.wall_ns, n);
  r.checksum = woke.load();
  r.expected = n;
  r.extra = {{"lateness_p50_ns", percentile(lateness, 50)}, {"lateness_p99_ns", percentile(lateness, 99)}};
  return r;
}

}  // namespace peer
