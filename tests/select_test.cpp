// select_test — rt::select, case by case, against Go's `select` statement:
//   - a ready case runs; with none ready, `otherwise` (Go's default) runs; select returns the
//     index of the argument that ran, otherwise's position included;
//   - cases on nil channels never fire; a receive case on a closed channel fires with nullopt;
//     a send case on a closed channel throws channel_closed (even with an `otherwise`, as Go
//     panics even with a default);
//   - without `otherwise`, select parks until a case can proceed, and does not poll meanwhile;
//   - among several ready cases, each is chosen with equal probability;
//   - rt::after as a timeout; send and receive cases on the same channel;
//   - Go's TestSelectStress, with exactly-once accounting of every value, at 1, 2, 4, 8 workers;
//   - close racing with parked and polling selects, over many rounds;
//   - a plain std::thread selecting against fibers.
// Ordering comes from channels and wait_groups; sleeps only create timer scenarios.
#include <rt/csp.hpp>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

}  // namespace

// ---- which case runs, and the index returned ------------------------------------------------

TEST(Select, RunsTheReadyCase) {
  rt::run([] {
    auto a = rt::make_chan<int>(1);
    auto b = rt::make_chan<int>(1);
    b.send(7);
    int got = 0;
    EXPECT_EQ(rt::select(rt::recv(a, [](std::optional<int>) { ADD_FAILURE() << "a was empty"; }),
                         rt::recv(b, [&](std::optional<int> v) { got = *v; })),
              1u);
    EXPECT_EQ(got, 7);
    EXPECT_EQ(b.len(), 0u);

    // Send cases: only the one with room is ready.
    auto full = rt::make_chan<int>(1);
    full.send(0);
    auto room = rt::make_chan<int>(1);
    bool ran = false;
    EXPECT_EQ(rt::select(rt::send(full, 1, [] { ADD_FAILURE() << "full was full"; }),
                         rt::send(room, 2, [&] { ran = true; })),
              1u);
    EXPECT_TRUE(ran);
    EXPECT_EQ(room.recv(), 2);
    EXPECT_EQ(full.len(), 1u);

    // A receive and a send case, only the send ready.
    EXPECT_EQ(rt::select(rt::recv(a), rt::send(room, 3)), 1u);
    EXPECT_EQ(room.recv(), 3);
  });
}

TEST(Select, OtherwiseRunsWhenNothingIsReadyAndReturnsItsPosition) {
  rt::run([] {
    auto empty = rt::make_chan<int>(1);
    auto full = rt::make_chan<int>(1);
    full.send(1);
    auto unbuffered = rt::make_chan<int>();
    int ran = 0;
    EXPECT_EQ(rt::select(rt::otherwise([&] { ++ran; }), rt::recv(empty)), 0u);
    EXPECT_EQ(rt::select(rt::recv(empty), rt::otherwise([&] { ++ran; })), 1u);
    EXPECT_EQ(rt::select(rt::recv(empty), rt::send(full, 2), rt::otherwise([&] { ++ran; })), 2u);
    EXPECT_EQ(rt::select(rt::recv(unbuffered), rt::send(unbuffered, 5),
                         rt::otherwise([&] { ++ran; }), rt::recv(empty)),
              2u);
    EXPECT_EQ(rt::select(rt::otherwise([&] { ++ran; })), 0u);
    EXPECT_EQ(ran, 5);
    // Nothing was consumed or sent by the selects that fell through to otherwise.
    EXPECT_EQ(full.len(), 1u);
    EXPECT_EQ(empty.len(), 0u);
  });
}

TEST(Select, OtherwiseNeverRunsWhileACaseIsReady) {
  rt::run([] {
    auto a = rt::make_chan<int>(1);
    for (int i = 0; i < 1000; ++i) {
      a.send(i);
      int got = -1;
      const std::size_t k = rt::select(rt::otherwise([] { ADD_FAILURE() << "otherwise ran"; }),
                                       rt::recv(a, [&](std::optional<int> v) { got = *v; }));
      ASSERT_EQ(k, 1u);
      ASSERT_EQ(got, i);
    }
  });
}

// ---- nil channels -------------------------------------------------------------------------

TEST(Select, NilChannelCasesNeverFire) {
  rt::run(
      [] {
        rt::chan<int> nil;
        for (int i = 0; i < 100; ++i) {
          EXPECT_EQ(rt::select(rt::recv(nil, [](auto) { ADD_FAILURE(); }),
                               rt::send(nil, 1, [] { ADD_FAILURE(); }), rt::otherwise()),
                    2u);
        }
        // Parked with a nil case and a real one: only the real one can complete it.
        auto real = rt::make_chan<int>();
        rt::go([real]() mutable {
          for (int i = 0; i < 100; ++i) real.send(i);
        });
        for (int i = 0; i < 100; ++i) {
          int got = -1;
          EXPECT_EQ(rt::select(rt::recv(nil, [](auto) { ADD_FAILURE(); }),
                               rt::send(nil, 1, [] { ADD_FAILURE(); }),
                               rt::recv(real, [&](std::optional<int> v) { got = *v; })),
                    2u);
          EXPECT_EQ(got, i);
        }
      },
      with_workers(2));
}

// ---- closed channels --------------------------------------------------------------------------

TEST(Select, RecvCaseOnClosedChannelFiresWithNullopt) {
  rt::run([] {
    auto never = rt::make_chan<int>();
    auto ch = rt::make_chan<int>(2);
    ch.send(1);
    ch.close();
    std::vector<std::optional<int>> got;
    auto take = [&](std::optional<int> v) { got.push_back(v); };
    EXPECT_EQ(rt::select(rt::recv(never), rt::recv(ch, take)), 1u);  // the buffered value first
    EXPECT_EQ(rt::select(rt::recv(never), rt::recv(ch, take)), 1u);
    EXPECT_EQ(rt::select(rt::recv(ch, take), rt::otherwise()), 0u);  // closed beats otherwise
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], 1);
    EXPECT_EQ(got[1], std::nullopt);
    EXPECT_EQ(got[2], std::nullopt);
  });
}

TEST(Select, SendCaseOnClosedChannelThrows) {
  rt::run([] {
    auto never = rt::make_chan<int>();
    auto ch = rt::make_chan<int>(1);
    ch.close();
    bool ran = false;
    try {
      rt::select(rt::recv(never), rt::send(ch, 1, [&] { ran = true; }));
      ADD_FAILURE() << "select returned";
    } catch (const rt::channel_closed& e) {
      EXPECT_STREQ(e.what(), "send on closed channel");
    }
    // Go panics even when the select has a default case.
    EXPECT_THROW(rt::select(rt::send(ch, 2, [&] { ran = true; }), rt::otherwise()),
                 rt::channel_closed);
    EXPECT_FALSE(ran);
    EXPECT_EQ(ch.recv(), std::nullopt);  // nothing was delivered
  });
}

// A select parked on a send case throws once the channel is closed under it, and one parked on
// a receive case gets nullopt. One worker: each helper announces itself and runs on into its
// select and parks before main resumes.
TEST(Select, ParkedSelectIsWokenByClose) {
  rt::run(
      [] {
        auto never = rt::make_chan<int>();
        auto s = rt::make_chan<int>();
        auto r = rt::make_chan<int>();
        auto started = rt::make_chan<int>();
        rt::wait_group wg;
        std::atomic<int> threw{0}, nullopt{0};
        wg.add(2);
        rt::go([&, never, s, started]() mutable {
          started.send(0);
          try {
            rt::select(rt::recv(never), rt::send(s, 1, [] { ADD_FAILURE(); }));
          } catch (const rt::channel_closed& e) {
            EXPECT_STREQ(e.what(), "send on closed channel");
            threw.fetch_add(1);
          }
          wg.done();
        });
        started.recv();
        rt::go([&, never, r, started]() mutable {
          started.send(0);
          EXPECT_EQ(rt::select(rt::recv(never), rt::recv(r,
                                                         [&](std::optional<int> v) {
                                                           if (!v) nullopt.fetch_add(1);
                                                         })),
                    1u);
          wg.done();
        });
        started.recv();
        s.close();
        r.close();
        wg.wait();
        EXPECT_EQ(threw.load(), 1);
        EXPECT_EQ(nullopt.load(), 1);
      },
      with_workers(1));
}

// ---- parking ------------------------------------------------------------------------------

// A select without `otherwise` returns once per completed case, no more: the selecting fiber
// loops on a select over two channels and reports every return, synchronously, on an unbuffered
// channel; main sends five values, spaced by sleeps (a timer scenario, not synchronisation: the
// selector is parked meanwhile), and after each one receives exactly one report, carrying that
// value. A spurious return would put a report out of step. Finally a close makes the select
// return once more, with nullopt.
// (That a parked select is really parked, not polling, is also proven by deadlock_test: a select
// nobody can complete is reported as "fiber 1 [select]", which a polling select never would be.)
TEST(Select, ParksUntilACaseIsReadyAndReturnsOncePerCompletion) {
  rt::run(
      [] {
        auto a = rt::make_chan<int>();
        auto b = rt::make_chan<int>();
        auto returned = rt::make_chan<int>();
        rt::go([a, b, returned]() mutable {
          for (;;) {
            std::optional<int> got;
            rt::select(rt::recv(a, [&](std::optional<int> v) { got = v; }),
                       rt::recv(b, [&](std::optional<int> v) { got = v; }));
            returned.send(got.value_or(-1));
            if (!got) return;
          }
        });
        for (int i = 0; i < 5; ++i) {
          rt::sleep_for(2ms);
          (i % 2 ? a : b).send(i);
          EXPECT_EQ(returned.recv(), i);
        }
        rt::sleep_for(2ms);
        a.close();
        EXPECT_EQ(returned.recv(), -1);
      },
      with_workers(2));
}

// A parked select costs no CPU. While one fiber is parked in a select and main sleeps 200 ms,
// the process must not burn the CPU time that polling would (a polling select on one worker
// burns all 200 ms). This is an upper bound on CPU *consumed*, at half the interval, not a bound
// on how long anything takes: it cannot fail through a slow or loaded machine, only through
// something spinning.
TEST(Select, ParkedSelectBurnsNoCpu) {
  rt::run(
      [] {
        auto a = rt::make_chan<int>();
        auto b = rt::make_chan<int>();
        auto started = rt::make_chan<int>();
        auto done = rt::make_chan<int>(1);
        rt::go([a, b, started, done]() mutable {
          started.send(0);
          rt::select(rt::recv(a), rt::recv(b));
          done.send(0);
        });
        started.recv();
        rt::sleep_for(10ms);  // let the workers settle into their idle sleep
        const auto cpu0 = rt_test::process_cpu_time();
        const auto t0 = std::chrono::steady_clock::now();
        rt::sleep_for(200ms);
        const auto cpu = rt_test::process_cpu_time() - cpu0;
        const auto wall = std::chrono::steady_clock::now() - t0;
        EXPECT_LT(cpu, std::chrono::duration_cast<std::chrono::microseconds>(wall) / 2)
            << "CPU time " << cpu.count() << " us during a " << wall / 1us << " us idle wait";
        a.send(1);
        done.recv();
      },
      with_workers(1));
}

// ---- fairness ---------------------------------------------------------------------------------

// Two receive cases always ready: over 20000 selects each must be chosen 40-60% of the time (a
// fair coin lands outside that with probability below 1e-150: this bound cannot flake).
TEST(Select, ChoosesUniformlyAmongReadyReceiveCases) {
  rt::run([] {
    auto a = rt::make_chan<int>(1);
    auto b = rt::make_chan<int>(1);
    rt::chan<int> nil;
    a.send(0);
    b.send(1);
    int count[4] = {0, 0, 0, 0};
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) {
      const std::size_t k =
          rt::select(rt::recv(nil), rt::recv(a, [&](std::optional<int> v) { a.send(*v); }),
                     rt::recv(b, [&](std::optional<int> v) { b.send(*v); }), rt::otherwise());
      ++count[k];
    }
    EXPECT_EQ(count[0], 0);
    EXPECT_EQ(count[3], 0);
    EXPECT_GE(count[1], n * 40 / 100) << count[1] << " vs " << count[2];
    EXPECT_LE(count[1], n * 60 / 100) << count[1] << " vs " << count[2];
    EXPECT_GE(count[2], n * 40 / 100);
    EXPECT_LE(count[2], n * 60 / 100);
  });
}

// The same with send cases, and with three cases (each 28-38%; 15 standard deviations).
TEST(Select, ChoosesUniformlyAmongReadySendCasesAndAmongThree) {
  rt::run([] {
    auto a = rt::make_chan<int>(1);
    auto b = rt::make_chan<int>(1);
    int count[2] = {0, 0};
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) {
      const std::size_t k = rt::select(rt::send(a, 0), rt::send(b, 1));
      ++count[k];
      (k == 0 ? a : b).recv();
    }
    EXPECT_GE(count[0], n * 40 / 100) << count[0] << " vs " << count[1];
    EXPECT_LE(count[0], n * 60 / 100) << count[0] << " vs " << count[1];

    auto c = rt::make_chan<int>(1);
    a.send(0);
    b.send(0);
    c.send(0);
    int three[3] = {0, 0, 0};
    for (int i = 0; i < n; ++i) {
      const std::size_t k =
          rt::select(rt::recv(a, [&](auto) { a.send(0); }), rt::recv(b, [&](auto) { b.send(0); }),
                     rt::recv(c, [&](auto) { c.send(0); }));
      ++three[k];
    }
    for (int k = 0; k < 3; ++k) {
      EXPECT_GE(three[k], n * 28 / 100) << "case " << k << ": " << three[k];
      EXPECT_LE(three[k], n * 38 / 100) << "case " << k << ": " << three[k];
    }
  });
}

// ---- timeouts -----------------------------------------------------------------------------

TEST(Select, AfterAsTimeout) {
  rt::run(
      [] {
        auto never = rt::make_chan<int>();
        const auto start = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point fired{};
        EXPECT_EQ(rt::select(rt::recv(never, [](auto) { ADD_FAILURE(); }),
                             rt::recv(rt::after(30ms),
                                      [&](std::optional<std::chrono::steady_clock::time_point> t) {
                                        ASSERT_TRUE(t);
                                        fired = *t;
                                      })),
                  1u);
        EXPECT_GE(fired - start, 30ms);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
        // A ready case wins over a timeout that has not expired.
        auto ready = rt::make_chan<int>(1);
        ready.send(1);
        EXPECT_EQ(rt::select(rt::recv(rt::after(1h)), rt::recv(ready)), 1u);
        // A timeout in a loop: a value that is there before it, and then nothing.
        auto slow = rt::make_chan<int>(1);
        slow.send(5);
        int got = 0, timeouts = 0;
        for (int i = 0; i < 2; ++i) {
          rt::select(rt::recv(slow, [&](std::optional<int> v) { got = *v; }),
                     rt::recv(rt::after(20ms), [&](auto) { ++timeouts; }));
        }
        EXPECT_EQ(got, 5);
        EXPECT_EQ(timeouts, 1);
      },
      with_workers(2));
}

// ---- send and receive on one channel ----------------------------------------------------------

// Go's TestSelfSelect: two fibers each select between sending to and receiving from the same
// channel. Neither may deadlock, and on an unbuffered channel a fiber never receives its own
// value (a select cannot pair with itself).
TEST(Select, SendAndRecvCasesOnTheSameChannel) {
  for (unsigned n : {1u, 2u}) {
    for (std::size_t cap : {0u, 10u}) {
      std::atomic<int> self_receives{0};
      rt::run(
          [&] {
            auto c = rt::make_chan<int>(cap);
            rt::wait_group wg;
            wg.add(2);
            for (int p = 0; p < 2; ++p) {
              rt::go([&, p, c]() mutable {
                auto check = [&](std::optional<int> v) {
                  if (cap == 0 && *v == p) self_receives.fetch_add(1);
                };
                for (int i = 0; i < 1000; ++i) {
                  if (p == 0 || i % 2 == 0) {
                    rt::select(rt::send(c, p), rt::recv(c, check));
                  } else {
                    rt::select(rt::recv(c, check), rt::send(c, p));
                  }
                }
                wg.done();
              });
            }
            wg.wait();
          },
          with_workers(n));
      EXPECT_EQ(self_receives.load(), 0) << n << " workers, cap " << cap;
    }
  }
  // One fiber alone on a buffered channel: exactly one of the two cases is ready each time.
  rt::run([] {
    auto c = rt::make_chan<int>(1);
    for (int i = 0; i < 100; ++i) {
      int got = -1;
      EXPECT_EQ(rt::select(rt::send(c, i), rt::recv(c, [&](std::optional<int> v) { got = *v; })),
                0u);
      EXPECT_EQ(rt::select(rt::send(c, -1), rt::recv(c, [&](std::optional<int> v) { got = *v; })),
                1u);
      EXPECT_EQ(got, i);
    }
  });
}

// The same channel in two receive cases: either may fire, the value is delivered once.
TEST(Select, SameChannelInTwoCases) {
  rt::run(
      [] {
        auto c = rt::make_chan<int>();
        rt::go([c]() mutable {
          for (int i = 0; i < 200; ++i) c.send(i);
        });
        for (int i = 0; i < 200; ++i) {
          int got = -1, fired = 0;
          rt::select(rt::recv(c,
                              [&](std::optional<int> v) {
                                got = *v;
                                ++fired;
                              }),
                     rt::recv(c, [&](std::optional<int> v) {
                       got = *v;
                       ++fired;
                     }));
          ASSERT_EQ(fired, 1);
          ASSERT_EQ(got, i);
        }
      },
      with_workers(2));
}

// ---- stress -------------------------------------------------------------------------------

// Go's TestSelectStress, with accounting: four channels (two unbuffered, capacities 2 and 3);
// on each, one plain sender and one plain receiver move N values; one fiber sends N values on
// each channel through a single select (dropping a channel from it, by making its case nil,
// once N went through it), and one fiber receives N from each the same way. Every value is
// unique; each must be received exactly once, on the channel it was sent on.
class SelectStress : public ::testing::TestWithParam<unsigned> {};

TEST_P(SelectStress, EveryValueExactlyOnce) {
  constexpr int N = 100000 / kSlow;  // Go uses 1e5
  // Value layout: channel k's plain sender sends k*N + i; the select sender sends 4N + k*N + i.
  std::vector<std::atomic<int>> seen(8 * N);
  std::atomic<int> wrong_channel{0};
  auto channel_of = [&](int v) { return (v % (4 * N)) / N; };
  rt::run(
      [&] {
        rt::chan<int> c[4] = {rt::make_chan<int>(), rt::make_chan<int>(), rt::make_chan<int>(2),
                              rt::make_chan<int>(3)};
        rt::wait_group wg;
        wg.add(10);
        for (int k = 0; k < 4; ++k) {
          rt::go([&, k, ch = c[k]]() mutable {
            for (int i = 0; i < N; ++i) ch.send(k * N + i);
            wg.done();
          });
          rt::go([&, k, ch = c[k]]() mutable {
            for (int i = 0; i < N; ++i) {
              const int v = *ch.recv();
              if (channel_of(v) != k) wrong_channel.fetch_add(1);
              seen[v].fetch_add(1);
            }
            wg.done();
          });
        }
        rt::go([&, c1 = std::to_array(c)]() mutable {
          int n[4] = {0, 0, 0, 0};
          auto sent = [&](int k) {
            return [&, k] {
              if (++n[k] == N) c1[k] = rt::chan<int>();
            };
          };
          for (int i = 0; i < 4 * N; ++i) {
            rt::select(rt::send(c1[3], 4 * N + 3 * N + n[3], sent(3)),
                       rt::send(c1[2], 4 * N + 2 * N + n[2], sent(2)),
                       rt::send(c1[0], 4 * N + 0 * N + n[0], sent(0)),
                       rt::send(c1[1], 4 * N + 1 * N + n[1], sent(1)));
          }
          wg.done();
        });
        rt::go([&, c1 = std::to_array(c)]() mutable {
          int n[4] = {0, 0, 0, 0};
          auto got = [&](int k) {
            return [&, k](std::optional<int> v) {
              if (channel_of(*v) != k) wrong_channel.fetch_add(1);
              seen[*v].fetch_add(1);
              if (++n[k] == N) c1[k] = rt::chan<int>();
            };
          };
          for (int i = 0; i < 4 * N; ++i) {
            rt::select(rt::recv(c1[1], got(1)), rt::recv(c1[2], got(2)), rt::recv(c1[3], got(3)),
                       rt::recv(c1[0], got(0)));
          }
          wg.done();
        });
        wg.wait();
      },
      with_workers(GetParam()));
  EXPECT_EQ(wrong_channel.load(), 0);
  int bad = 0;
  for (std::size_t v = 0; v < seen.size(); ++v) {
    if (seen[v].load() != 1 && bad++ < 10) ADD_FAILURE() << "value " << v << " seen " << seen[v];
  }
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Workers, SelectStress, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// ---- close racing with selects ----------------------------------------------------------------

// Each round: selecting receivers and senders (and one plain receiver and sender) work one
// channel while a closer closes it at a random point (after a random number of values went
// through). Every value whose send returned must be received exactly once; every sender ends
// with channel_closed and every receiver with nullopt; no value of a send that threw appears.
TEST(Select, CloseRacingWithSelects) {
  const int rounds = 300 / kSlow;
  std::mt19937 rng(12345);
  for (int round = 0; round < rounds; ++round) {
    const std::size_t cap = round % 3 == 0 ? 0 : round % 3 == 1 ? 1 : 4;
    const int close_after = static_cast<int>(rng() % 40);
    constexpr int senders = 4, receivers = 4;  // of each, the last is a plain one
    constexpr int stride = 1 << 20;
    std::vector<std::vector<int>> sent(senders);
    std::vector<std::vector<int>> got(receivers);
    std::vector<int> thrown(senders, -1);
    std::atomic<int> ended_with_nullopt{0};
    rt::run(
        [&] {
          auto ch = rt::make_chan<int>(cap);
          auto never = rt::make_chan<int>();
          auto progress = rt::make_chan<int>(receivers);
          std::atomic<int> received{0};
          rt::wait_group wg;
          wg.add(senders + receivers);
          for (int s = 0; s < senders; ++s) {
            rt::go([&, s, ch, never]() mutable {
              for (int i = 0;; ++i) {
                const int v = s * stride + i;
                try {
                  if (s == senders - 1) {
                    ch.send(v);
                  } else {
                    rt::select(rt::send(ch, v), rt::recv(never));
                  }
                } catch (const rt::channel_closed&) {
                  thrown[s] = v;
                  break;
                }
                sent[s].push_back(v);
              }
              wg.done();
            });
          }
          for (int r = 0; r < receivers; ++r) {
            rt::go([&, r, ch, never, progress]() mutable {
              for (;;) {
                std::optional<int> v;
                if (r == receivers - 1) {
                  v = ch.recv();
                } else {
                  rt::select(rt::recv(ch, [&](std::optional<int> x) { v = x; }), rt::recv(never));
                }
                if (!v) break;
                got[r].push_back(*v);
                if (received.fetch_add(1) + 1 == close_after) progress.send(0);
              }
              ended_with_nullopt.fetch_add(1);
              wg.done();
            });
          }
          if (close_after > 0) progress.recv();
          ch.close();
          wg.wait();
        },
        with_workers(4));
    std::multiset<int> delivered, received;
    for (auto& v : sent) delivered.insert(v.begin(), v.end());
    for (auto& v : got) received.insert(v.begin(), v.end());
    ASSERT_EQ(delivered, received) << "round " << round << ", cap " << cap;
    ASSERT_EQ(ended_with_nullopt.load(), receivers) << "round " << round;
    for (int s = 0; s < senders; ++s) {
      ASSERT_GE(thrown[s], 0) << "sender " << s << " did not end with channel_closed";
      ASSERT_EQ(received.count(thrown[s]), 0u) << "the value of a send that threw arrived";
    }
  }
}

// ---- plain threads ------------------------------------------------------------------------

// A std::thread parks in select (on a futex, not a worker) until a fiber completes one of its
// cases; then a fiber parks in select until the thread completes one of its cases.
TEST(Select, PlainThreadSelectsAgainstFibers) {
  rt::run(
      [] {
        auto a = rt::make_chan<int>();
        auto b = rt::make_chan<int>();
        auto back = rt::make_chan<int>();
        std::vector<std::pair<std::size_t, int>> thread_got;
        std::thread t([&] {
          for (int i = 0; i < 500; ++i) {
            int v = -1;
            const std::size_t k = rt::select(rt::recv(a, [&](std::optional<int> x) { v = *x; }),
                                             rt::recv(b, [&](std::optional<int> x) { v = *x; }));
            thread_got.emplace_back(k, v);
            rt::select(rt::send(back, v + 1), rt::recv(rt::chan<int>()));
          }
        });
        for (int i = 0; i < 500; ++i) {
          (i % 2 ? b : a).send(i);
          int v = -1;
          rt::select(rt::recv(back, [&](std::optional<int> x) { v = *x; }),
                     rt::recv(rt::chan<int>()));
          ASSERT_EQ(v, i + 1);
        }
        // Joined inside rt::run: the thread's last send may still be finishing its wake of this
        // fiber (see chan_test's CloseFromThreadWhileRunReturns).
        t.join();
        ASSERT_EQ(thread_got.size(), 500u);
        for (int i = 0; i < 500; ++i) {
          EXPECT_EQ(thread_got[i].first, static_cast<std::size_t>(i % 2));
          EXPECT_EQ(thread_got[i].second, i);
        }
      },
      with_workers(2));
}
