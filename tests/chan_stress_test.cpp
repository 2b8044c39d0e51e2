// chan_stress_test — channels under contention, where lost, duplicated or invented values and
// missed wakeups show up. Every test accounts for each value individually (values are unique
// ids; each must be seen exactly once), so a failure names the value, not just a wrong total:
//   - N producers x M consumers, capacities 0, 1 and 64, at 1, 2, 4 and 8 workers, also checking
//     that each consumer sees each producer's values in the order they were sent (FIFO);
//   - close racing with senders (a send either delivers its value exactly once or throws
//     channel_closed and delivers nothing), with receivers (each ends with nullopt after the
//     drain), and with selects on both sides (using Go's idiom of disabling a closed channel's
//     case by setting it to nil);
//   - pipelines: a chain of stages (order preserved end to end), a fan-out/fan-in stage, Go's
//     concurrent prime sieve, and chains of stage fibers (10 000 of them; a million in the heavy
//     PipelineHeavy variant).
// Ordering comes from channels and wait_groups only; there are no sleeps in this file.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

// Checks that every counter is exactly 1; reports the first few that are not.
void expect_each_exactly_once(const std::vector<std::atomic<int>>& seen, const std::string& what) {
  int bad = 0;
  for (std::size_t v = 0; v < seen.size(); ++v) {
    const int n = seen[v].load();
    if (n != 1 && bad++ < 10) ADD_FAILURE() << what << ": value " << v << " seen " << n << " times";
  }
  EXPECT_EQ(bad, 0) << what;
}

using config = std::tuple<std::size_t, unsigned>;  // capacity, workers

std::string config_name(const ::testing::TestParamInfo<config>& info) {
  return "cap" + std::to_string(std::get<0>(info.param)) + "_" +
         std::to_string(std::get<1>(info.param)) + "workers";
}

}  // namespace

// ---- producers x consumers ------------------------------------------------------------------

class ProducersConsumers : public ::testing::TestWithParam<config> {};

TEST_P(ProducersConsumers, EveryValueExactlyOnceAndPerProducerFifo) {
  const auto [cap, n] = GetParam();
  constexpr int P = 4, M = 4;
  const int K = 100000 / kSlow;  // values per producer
  std::vector<std::atomic<int>> seen(P * K);
  std::atomic<int> out_of_order{0};
  rt::run(
      [&] {
        auto ch = rt::make_chan<int>(cap);
        rt::wait_group producers, consumers;
        producers.add(P);
        consumers.add(M);
        for (int p = 0; p < P; ++p) {
          rt::go([&, p, ch]() mutable {
            for (int i = 0; i < K; ++i) ch.send(p * K + i);
            producers.done();
          });
        }
        for (int m = 0; m < M; ++m) {
          rt::go([&, ch]() mutable {
            std::vector<int> last(P, -1);  // the last value this consumer saw from each producer
            for (int v : ch) {
              seen[v].fetch_add(1);
              if (v <= last[v / K]) out_of_order.fetch_add(1);
              last[v / K] = v;
            }
            consumers.done();
          });
        }
        rt::go([&, ch]() mutable {  // the one closer
          producers.wait();
          ch.close();
        });
        consumers.wait();
      },
      with_workers(n));
  expect_each_exactly_once(seen, "producers/consumers");
  EXPECT_EQ(out_of_order.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Configs, ProducersConsumers,
                         ::testing::Combine(::testing::Values(0u, 1u, 64u),
                                            ::testing::Values(1u, 2u, 4u, 8u)),
                         config_name);

// ---- close racing with senders and receivers ----------------------------------------------------

// Senders send unique values until their send throws channel_closed; the closer closes after a
// random number of values arrived. What the senders saw succeed must be exactly what the
// receivers got (receivers drain the buffer after the close); a value whose send threw must not
// arrive; every sender must end by throwing and every receiver by nullopt.
class CloseRacingWithSenders : public ::testing::TestWithParam<config> {};

TEST_P(CloseRacingWithSenders, DeliveredExactlyOnceOrThrown) {
  const auto [cap, n] = GetParam();
  const int rounds = 40 / (kSlow > 1 ? 4 : 1);
  std::mt19937 rng(static_cast<unsigned>(cap * 31 + n));
  for (int round = 0; round < rounds; ++round) {
    constexpr int S = 4, R = 3;
    constexpr int stride = 1 << 20;
    const int close_after = static_cast<int>(rng() % 200);
    std::vector<std::vector<int>> sent(S), got(R);
    std::vector<int> thrown(S, -1);
    std::atomic<int> receivers_ended{0};
    rt::run(
        [&] {
          auto ch = rt::make_chan<int>(cap);
          auto reached = rt::make_chan<int>(1);
          std::atomic<int> received{0};
          rt::wait_group wg;
          wg.add(S + R);
          for (int s = 0; s < S; ++s) {
            rt::go([&, s, ch]() mutable {
              for (int i = 0;; ++i) {
                try {
                  ch.send(s * stride + i);
                } catch (const rt::channel_closed& e) {
                  EXPECT_STREQ(e.what(), "send on closed channel");
                  thrown[s] = s * stride + i;
                  break;
                }
                sent[s].push_back(s * stride + i);
              }
              wg.done();
            });
          }
          for (int r = 0; r < R; ++r) {
            rt::go([&, r, ch, reached]() mutable {
              for (std::optional<int> v; (v = ch.recv());) {
                got[r].push_back(*v);
                if (received.fetch_add(1) + 1 == close_after) reached.send(0);
              }
              receivers_ended.fetch_add(1);
              wg.done();
            });
          }
          if (close_after > 0) reached.recv();
          ch.close();
          wg.wait();
        },
        with_workers(n));
    std::multiset<int> delivered, arrived;
    for (auto& v : sent) delivered.insert(v.begin(), v.end());
    for (auto& v : got) arrived.insert(v.begin(), v.end());
    ASSERT_EQ(delivered.size(), arrived.size()) << "round " << round;
    ASSERT_EQ(delivered, arrived) << "round " << round;
    ASSERT_GE(static_cast<int>(arrived.size()), close_after);
    ASSERT_EQ(receivers_ended.load(), R);
    for (int s = 0; s < S; ++s) {
      ASSERT_GE(thrown[s], 0) << "sender " << s << " never saw the close";
      ASSERT_EQ(arrived.count(thrown[s]), 0u) << "a value whose send threw arrived";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, CloseRacingWithSenders,
                         ::testing::Combine(::testing::Values(0u, 1u, 64u),
                                            ::testing::Values(1u, 2u, 4u, 8u)),
                         config_name);

// Many receivers, one sender that sends K values and closes: all K arrive exactly once, and every
// receiver — parked or on its way to park when the close comes — ends with nullopt.
TEST(ChanStress, CloseRacingWithReceivers) {
  const int rounds = 100 / kSlow;
  for (int round = 0; round < rounds; ++round) {
    const std::size_t cap = round % 3 == 0 ? 0 : round % 3 == 1 ? 1 : 64;
    const unsigned n = 1u << (round % 4);
    constexpr int R = 16, K = 500;
    std::vector<std::atomic<int>> seen(K);
    std::atomic<int> ended{0};
    rt::run(
        [&] {
          auto ch = rt::make_chan<int>(cap);
          rt::wait_group wg;
          wg.add(R);
          for (int r = 0; r < R; ++r) {
            rt::go([&, ch]() mutable {
              while (std::optional<int> v = ch.recv()) seen[*v].fetch_add(1);
              EXPECT_EQ(ch.recv(), std::nullopt);  // and it stays closed
              ended.fetch_add(1);
              wg.done();
            });
          }
          for (int i = 0; i < K; ++i) ch.send(i);
          ch.close();
          wg.wait();
        },
        with_workers(n));
    expect_each_exactly_once(seen, "round " + std::to_string(round));
    ASSERT_EQ(ended.load(), R);
    if (HasFailure()) break;
  }
}

// Selects on both sides of a channel that gets closed, next to one that stays open: senders
// select between sending on `closing` and on `open`, and stop when the select throws (closing was
// closed and its case chosen); receivers select on both, and when `closing` yields nullopt they
// set their handle to nil so that case never fires again (Go's idiom), draining `open` until it
// too is closed after every sender stopped. Each value must arrive exactly once, on the channel
// its select sent it on.
TEST(ChanStress, CloseRacingWithSelectsOnBothSides) {
  const int rounds = 100 / kSlow;
  std::mt19937 rng(777);
  for (int round = 0; round < rounds; ++round) {
    const std::size_t cap = round % 2 ? 0 : 4;
    const unsigned n = 1u << (round % 4);
    constexpr int S = 4, R = 4, stride = 1 << 20;
    const int close_after = static_cast<int>(rng() % 100);
    std::vector<std::vector<std::pair<int, int>>> sent(S), got(R);  // (channel, value)
    std::vector<int> thrown(S, -1);
    rt::run(
        [&] {
          auto closing = rt::make_chan<int>(cap);
          auto open = rt::make_chan<int>(cap);
          auto reached = rt::make_chan<int>(1);
          std::atomic<int> received{0};
          rt::wait_group senders, receivers;
          senders.add(S);
          receivers.add(R);
          for (int s = 0; s < S; ++s) {
            rt::go([&, s, closing, open]() mutable {
              for (int i = 0;; ++i) {
                const int v = s * stride + i;
                try {
                  const std::size_t k = rt::select(rt::send(closing, v), rt::send(open, v));
                  sent[s].emplace_back(static_cast<int>(k), v);
                } catch (const rt::channel_closed&) {
                  thrown[s] = v;
                  break;
                }
              }
              senders.done();
            });
          }
          for (int r = 0; r < R; ++r) {
            rt::go([&, r, closing, open, reached]() mutable {
              while (closing || open) {
                rt::select(rt::recv(closing,
                                    [&](std::optional<int> v) {
                                      if (!v) {
                                        closing = rt::chan<int>();
                                        return;
                                      }
                                      got[r].emplace_back(0, *v);
                                      if (received.fetch_add(1) + 1 == close_after) reached.send(0);
                                    }),
                           rt::recv(open, [&](std::optional<int> v) {
                             if (!v) {
                               open = rt::chan<int>();
                               return;
                             }
                             got[r].emplace_back(1, *v);
                             if (received.fetch_add(1) + 1 == close_after) reached.send(0);
                           }));
              }
              receivers.done();
            });
          }
          if (close_after > 0) reached.recv();
          closing.close();
          senders.wait();
          open.close();
          receivers.wait();
        },
        with_workers(n));
    std::multiset<std::pair<int, int>> delivered, arrived;
    for (auto& v : sent) delivered.insert(v.begin(), v.end());
    for (auto& v : got) arrived.insert(v.begin(), v.end());
    ASSERT_EQ(delivered, arrived) << "round " << round;
    for (int s = 0; s < S; ++s) {
      ASSERT_GE(thrown[s], 0);
      ASSERT_EQ(arrived.count({0, thrown[s]}) + arrived.count({1, thrown[s]}), 0u);
    }
  }
}

// ---- pipelines ----------------------------------------------------------------------------

// source -> 8 stages (each adds 1, with capacities 0, 1, 2, ...) -> sink: every value arrives,
// in order, transformed by every stage; each stage closes its output when its input is closed.
class Pipeline : public ::testing::TestWithParam<unsigned> {};

TEST_P(Pipeline, ChainOfStagesPreservesOrder) {
  constexpr int stages = 8;
  const int count = 100000 / kSlow;
  std::vector<int> out;
  rt::run(
      [&] {
        auto head = rt::make_chan<int>();
        rt::chan<int> in = head;
        for (int s = 0; s < stages; ++s) {
          auto next = rt::make_chan<int>(static_cast<std::size_t>(s % 3));
          rt::go([in, next]() mutable {
            for (int v : in) next.send(v + 1);
            next.close();
          });
          in = next;
        }
        rt::go([head, count]() mutable {
          for (int i = 0; i < count; ++i) head.send(i);
          head.close();
        });
        for (int v : in) out.push_back(v);
      },
      with_workers(GetParam()));
  ASSERT_EQ(out.size(), static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) ASSERT_EQ(out[i], i + stages);
}

// Fan-out/fan-in: 8 workers take jobs from one channel and put results on another; a closer
// closes the results once every worker is done. Every job's result arrives exactly once.
TEST_P(Pipeline, FanOutFanIn) {
  const int count = 100000 / kSlow;
  std::vector<std::atomic<int>> seen(count);
  rt::run(
      [&] {
        auto jobs = rt::make_chan<int>(16);
        auto results = rt::make_chan<int>();
        rt::wait_group wg;
        for (int w = 0; w < 8; ++w) {
          wg.add(1);
          rt::go([&, jobs, results]() mutable {
            for (int j : jobs) results.send(j * 2);
            wg.done();
          });
        }
        rt::go([&, results]() mutable {
          wg.wait();
          results.close();
        });
        rt::go([jobs, count]() mutable {
          for (int i = 0; i < count; ++i) jobs.send(i);
          jobs.close();
        });
        for (int r : results) {
          ASSERT_EQ(r % 2, 0);
          seen[r / 2].fetch_add(1);
        }
      },
      with_workers(GetParam()));
  expect_each_exactly_once(seen, "fan-out/fan-in");
}

// Go's concurrent prime sieve: a generator and a daisy chain of filter fibers, one per prime.
TEST_P(Pipeline, PrimeSieve) {
  constexpr int count = 300 / (kSlow > 1 ? 3 : 1);
  std::vector<int> primes;
  rt::run(
      [&] {
        auto gen = rt::make_chan<int>();
        rt::go([gen]() mutable {
          for (int i = 2;; ++i) gen.send(i);  // unwound when main returns
        });
        rt::chan<int> ch = gen;
        for (int i = 0; i < count; ++i) {
          const int prime = *ch.recv();
          primes.push_back(prime);
          auto next = rt::make_chan<int>();
          rt::go([prime, in = ch, next]() mutable {
            for (;;) {
              const int v = *in.recv();
              if (v % prime != 0) next.send(v);
            }
          });
          ch = next;
        }
      },
      with_workers(GetParam()));
  std::vector<int> expected;
  for (int v = 2; static_cast<int>(expected.size()) < count; ++v) {
    bool is_prime = true;
    for (int d = 2; d * d <= v; ++d) is_prime &= v % d != 0;
    if (is_prime) expected.push_back(v);
  }
  EXPECT_EQ(primes, expected);
}

// Chains of stage fibers: `fibers` stage fibers in all, in chains of 1000 (capacities 0, 1, 2,
// ... along each chain), at most 4 chains alive at a time. A source sends 8 unique values into
// each chain, every stage adds 1 and closes its output when its input is closed, and a sink per
// chain receives. Every value must come out of its own chain exactly once, in order, having
// passed every stage; every stage fiber must finish.
void chains_of_stages(long fibers, unsigned workers_n) {
  constexpr long stages = 1000, values = 8, wave = 4;
  const long chains = fibers / stages;
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(chains * values));
  std::atomic<long> stages_done{0}, foreign{0}, out_of_order{0};
  rt::run(
      [&] {
        for (long first = 0; first < chains; first += wave) {
          rt::wait_group sinks;
          for (long c = first; c < std::min(chains, first + wave); ++c) {
            auto head = rt::make_chan<long>();
            rt::chan<long> in = head;
            for (long s = 0; s < stages; ++s) {
              auto next = rt::make_chan<long>(static_cast<std::size_t>(s % 3));
              rt::go([&stages_done, in, next]() mutable {
                for (long v : in) next.send(v + 1);
                // Counted before close: once the sink has the last value, main may return and
                // leftover fibers are abandoned (as in Go), so nothing after close() is sure to
                // run.
                stages_done.fetch_add(1, std::memory_order_relaxed);
                next.close();
              });
              in = next;
            }
            rt::go([head, c]() mutable {
              for (long j = 0; j < values; ++j) head.send(c * values + j);
              head.close();
            });
            sinks.add(1);
            rt::go([&, in, c]() mutable {
              long prev = -1;
              for (long v : in) {
                const long id = v - stages;
                if (id < c * values || id >= (c + 1) * values) {
                  foreign.fetch_add(1);
                  continue;
                }
                if (id <= prev) out_of_order.fetch_add(1);
                prev = id;
                seen[static_cast<std::size_t>(id)].fetch_add(1);
              }
              sinks.done();
            });
          }
          sinks.wait();
        }
      },
      with_workers(workers_n));
  EXPECT_EQ(stages_done.load(), chains * stages);
  EXPECT_EQ(foreign.load(), 0) << "values that left the wrong chain or skipped a stage";
  EXPECT_EQ(out_of_order.load(), 0);
  expect_each_exactly_once(seen, "chains of stages");
}

// 10 000 stage fibers (1 000 under sanitizers).
TEST_P(Pipeline, ChainsOfStageFibersExactlyOnce) {
  chains_of_stages(10'000 / kSlow, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Workers, Pipeline, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// A million stage fibers (label heavy; 100 000 under sanitizers).
class PipelineHeavy : public ::testing::TestWithParam<unsigned> {};

TEST_P(PipelineHeavy, MillionStageFibersExactlyOnce) {
  chains_of_stages(1'000'000 / kSlow, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Workers, PipelineHeavy, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });
