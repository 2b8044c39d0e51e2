// select_order_test — the select and channel gaps of issue 12:
//   - the braced form rt::select({...}) evaluates its cases left to right, runs callbacks, and
//     returns the index in the list (beyond 8 cases too); `switch` on it reads like Go;
//   - out-parameter receive cases rt::recv(ch, &v) and rt::recv(ch, &v, &ok), for chan<T> and
//     recv_chan<T>, with Go's `v, ok := <-ch` results on a value and on close;
//   - rt::select_list, a select over a list built at run time: fan-in over N = 1, 3, 8, 50
//     channels, every ready case chosen, close handling, parking then wake, reuse, misuse, no
//     allocation up to 8 cases, and an exactly-once stress at 1, 2, 4, 8 workers;
//   - make_chan's capacity check: negative or impossible capacities throw rt::runtime_error
//     ("size out of range"); signed capacities are accepted.
// Ordering comes from channels and wait_groups; no sleeps, no timing thresholds.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "test_support.hpp"

// Counts the allocations of the test's own thread while `counting` (the no-allocation tests).
namespace {
thread_local bool counting = false;
thread_local long allocations = 0;
}  // namespace

// Out of line (noinline): inlined into a caller, GCC would pair this new's malloc with a
// delete's free and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

// ---- the braced form --------------------------------------------------------------------------

// The cases' channel and value expressions, with side effects, run in the order written (the
// variadic form gives no such promise: GCC evaluates its arguments right to left). Within one
// case, rt::send(ch_expr, value_expr) is a function call: its two arguments are unordered.
TEST(SelectBraced, EvaluatesCasesLeftToRight) {
  rt::run([] {
    std::vector<int> log;
    auto a = rt::make_chan<int>(1);
    auto b = rt::make_chan<int>(1);
    auto c = rt::make_chan<int>(1);
    auto d = rt::make_chan<int>();
    auto chan_at = [&](int step, rt::chan<int> ch) {
      log.push_back(step);
      return ch;
    };
    auto value_at = [&](int step, int v) {
      log.push_back(step);
      return v;
    };
    int v = 0;
    const std::size_t i =
        rt::select({rt::recv(chan_at(0, a), &v), rt::send(b, value_at(1, 7)),
                    rt::recv(chan_at(2, c), [](std::optional<int>) {}), rt::send(d, value_at(3, 8)),
                    rt::recv(chan_at(4, c), &v), rt::otherwise()});
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(i, 1u);  // the only ready case: b has room
    EXPECT_EQ(b.recv(), 7);
  });
}

// The index is the position in the list; the fired case's callback runs, no other; `switch`
// reads like Go's select.
TEST(SelectBraced, RunsTheFiredCallbackAndReturnsItsIndex) {
  rt::run([] {
    auto in = rt::make_chan<int>(1);
    auto out = rt::make_chan<int>();  // nobody receives: never ready
    auto done = rt::make_chan<std::monostate>();
    in.send(5);
    int v = 0;
    bool ok = false;
    int fired_callback = -1;
    switch (rt::select({rt::send(out, 1, [&] { fired_callback = 0; }), rt::recv(in, &v, &ok),
                        rt::recv(done, [&](auto) { fired_callback = 2; })})) {
      case 1:
        EXPECT_TRUE(ok);
        EXPECT_EQ(v, 5);
        break;
      default:
        ADD_FAILURE() << "wrong case";
    }
    EXPECT_EQ(fired_callback, -1);
    done.close();
    EXPECT_EQ(rt::select({rt::send(out, 1, [&] { fired_callback = 0; }),
                          rt::recv(done, [&](auto) { fired_callback = 2; })}),
              1u);
    EXPECT_EQ(fired_callback, 2);
    EXPECT_EQ(rt::select({rt::send(out, 1), rt::otherwise([&] { fired_callback = 3; })}), 1u);
    EXPECT_EQ(fired_callback, 3);
  });
}

// More than 8 cases (the scratch moves to the heap): still the right index, and a parked braced
// select is woken by a send on its last case.
TEST(SelectBraced, ManyCasesAndParking) {
  rt::run(
      [] {
        std::vector<rt::chan<int>> c;
        for (int i = 0; i < 10; ++i) c.push_back(rt::make_chan<int>());
        int v = 0;
        rt::go([ch = c[9]]() mutable { ch.send(42); });
        const std::size_t i = rt::select(
            {rt::recv(c[0], &v), rt::recv(c[1], &v), rt::recv(c[2], &v), rt::recv(c[3], &v),
             rt::recv(c[4], &v), rt::recv(c[5], &v), rt::recv(c[6], &v), rt::recv(c[7], &v),
             rt::recv(c[8], &v), rt::recv(c[9], &v)});
        EXPECT_EQ(i, 9u);
        EXPECT_EQ(v, 42);
      },
      with_workers(1));
}

// ---- out-parameter receive cases -------------------------------------------------------------

TEST(SelectRecvInto, ValueThenClosed) {
  rt::run([] {
    auto ch = rt::make_chan<std::string>(1);
    ch.send("hi");
    std::string v = "old";
    bool ok = false;
    EXPECT_EQ(rt::select({rt::recv(ch, &v, &ok)}), 0u);
    EXPECT_TRUE(ok);
    EXPECT_EQ(v, "hi");
    ch.close();
    v = "old";
    EXPECT_EQ(rt::select({rt::recv(ch, &v, &ok)}), 0u);
    EXPECT_FALSE(ok);
    EXPECT_EQ(v, "");  // T{} on close, as Go's zero value
    // Without ok, a closed channel leaves v as it was.
    v = "kept";
    EXPECT_EQ(rt::select({rt::recv(ch, &v)}), 0u);
    EXPECT_EQ(v, "kept");
  });
}

TEST(SelectRecvInto, RecvChanAndVariadicForm) {
  rt::run([] {
    auto ch = rt::make_chan<int>(2);
    rt::recv_chan<int> r = ch;
    ch.send(1);
    ch.send(2);
    int v = 0;
    bool ok = false;
    EXPECT_EQ(rt::select({rt::recv(r, &v, &ok)}), 0u);
    EXPECT_EQ(v, 1);
    EXPECT_TRUE(ok);
    EXPECT_EQ(rt::select(rt::recv(r, &v), rt::otherwise()), 0u);
    EXPECT_EQ(v, 2);
    EXPECT_EQ(rt::select(rt::recv(r, &v, &ok), rt::otherwise()), 1u);  // empty, open
    ch.close();
    v = 9;
    EXPECT_EQ(rt::select({rt::recv(r, &v, &ok), rt::otherwise()}), 0u);
    EXPECT_FALSE(ok);
    EXPECT_EQ(v, 0);
  });
}

// A T that is not default constructible is left as it was on close.
struct no_default {
  explicit no_default(int x) : v(x) {}
  int v;
};

TEST(SelectRecvInto, NotDefaultConstructibleLeftOnClose) {
  rt::run([] {
    auto ch = rt::make_chan<no_default>(1);
    ch.send(no_default(3));
    no_default v(0);
    bool ok = false;
    rt::select({rt::recv(ch, &v, &ok)});
    EXPECT_TRUE(ok);
    EXPECT_EQ(v.v, 3);
    ch.close();
    rt::select({rt::recv(ch, &v, &ok)});
    EXPECT_FALSE(ok);
    EXPECT_EQ(v.v, 3);
  });
}

// The value arrives through the pointers after the select parked (written by the sender's
// hand-off, read once woken).
TEST(SelectRecvInto, ParkedThenWoken) {
  for (unsigned w : {1u, 4u}) {
    rt::run(
        [] {
          auto a = rt::make_chan<int>();
          auto b = rt::make_chan<int>();
          for (int round = 0; round < 200; ++round) {
            rt::go([b, round]() mutable { b.send(round); });
            int v = -1;
            bool ok = false;
            ASSERT_EQ(rt::select({rt::recv(a, &v, &ok), rt::recv(b, &v, &ok)}), 1u);
            ASSERT_TRUE(ok);
            ASSERT_EQ(v, round);
          }
          rt::go([b]() mutable { b.close(); });
          int v = -1;
          bool ok = true;
          EXPECT_EQ(rt::select({rt::recv(a, &v, &ok), rt::recv(b, &v, &ok)}), 1u);
          EXPECT_FALSE(ok);
        },
        with_workers(w));
  }
}

// ---- select_list ------------------------------------------------------------------------------

// Receives from every channel of `open` with one select_list (reused; rebuilt without a channel
// once it is closed) until all are closed, passing each value to on_value.
template <class Chan, class OnValue>
void receive_until_all_closed(std::vector<Chan> open, OnValue on_value) {
  int v = 0;
  bool ok = false;
  rt::select_list sel;
  auto rebuild = [&] {
    sel.clear();
    for (auto& ch : open) sel.add(rt::recv(ch, &v, &ok));
  };
  rebuild();
  while (!open.empty()) {
    const std::size_t i = rt::select(sel);
    ASSERT_LT(i, open.size());
    if (ok) {
      on_value(v);
    } else {
      open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      rebuild();
    }
  }
}

// Fan-in over n channels known at run time: each producer sends `per` values and closes; the
// consumer selects over the open ones (one list, reused; rebuilt without a channel once it is
// closed) and must see every value exactly once.
void fan_in(std::size_t n, unsigned workers) {
  const int per = static_cast<int>(2000 / kSlow / (n > 8 ? 8 : 1));
  rt::run(
      [&] {
        std::vector<rt::chan<int>> in;
        for (std::size_t k = 0; k < n; ++k) in.push_back(rt::make_chan<int>(k % 3));
        for (std::size_t k = 0; k < n; ++k) {
          rt::go([ch = in[k], k, per]() mutable {
            for (int i = 0; i < per; ++i) ch.send(static_cast<int>(k) * per + i);
            ch.close();
          });
        }
        std::vector<int> seen(n * static_cast<std::size_t>(per));
        receive_until_all_closed(std::vector<rt::recv_chan<int>>(in.begin(), in.end()), [&](int v) {
          ASSERT_GE(v, 0);
          ASSERT_LT(static_cast<std::size_t>(v), seen.size());
          // the value came from one of the n channels
          ASSERT_EQ(static_cast<std::size_t>(v / per) < n, true);
          // at most once: a stale result (a receive case not re-armed) would repeat a value
          ASSERT_EQ(++seen[static_cast<std::size_t>(v)], 1) << "value " << v;
        });
        for (std::size_t x = 0; x < seen.size(); ++x) {
          ASSERT_EQ(seen[x], 1) << "value " << x;
        }
      },
      with_workers(workers));
}

TEST(SelectList, FanIn1) {
  fan_in(1, 2);
}
TEST(SelectList, FanIn3) {
  fan_in(3, 2);
}
TEST(SelectList, FanIn8) {
  fan_in(8, 4);
}
TEST(SelectList, FanIn50) {
  fan_in(50, 4);
}

// Every ready case gets chosen: all channels stay ready (each refilled after it fired), and
// over many rounds each case must have fired at least once — a select that always took the
// first (or last) ready case fails. For 3, 8 (inline) and 20 (heap) cases. The chance that a
// fair select misses a case: 20 * (19/20)^4000 < 1e-80.
TEST(SelectList, EveryReadyCaseIsChosen) {
  rt::run([] {
    for (std::size_t n : {3u, 8u, 20u}) {
      std::vector<rt::chan<int>> c;
      for (std::size_t k = 0; k < n; ++k) {
        c.push_back(rt::make_chan<int>(1));
        c.back().send(1);
      }
      rt::select_list sel;
      for (auto& ch : c) sel.add(rt::recv(ch));
      std::vector<int> chosen(n);
      for (int round = 0; round < 4000; ++round) {
        const std::size_t i = rt::select(sel);
        ++chosen[i];
        c[i].send(1);  // ready again
      }
      for (std::size_t k = 0; k < n; ++k) EXPECT_GT(chosen[k], 0) << "case " << k << " of " << n;
    }
  });
}

// A receive case that fired is re-armed: selecting the list again on a closed channel reports
// the close (ok false), not the previous value again.
TEST(SelectList, ReceiveCasesAreRearmed) {
  rt::run([] {
    auto a = rt::make_chan<int>(1);
    std::optional<int> got = 0;
    int v = 0;
    bool ok = false;
    rt::select_list sel;
    sel.add(rt::recv(a, &v, &ok));
    sel.add(rt::recv(a, [&](std::optional<int> x) { got = x; }));
    a.send(5);
    rt::select(sel);
    a.send(6);
    rt::select(sel);
    a.close();
    for (int i = 0; i < 20; ++i) {
      v = 9;
      ok = true;
      got = 9;
      const std::size_t k = rt::select(sel);
      if (k == 0) {
        EXPECT_FALSE(ok);
        EXPECT_EQ(v, 0);
      } else {
        EXPECT_EQ(got, std::nullopt);
      }
    }
  });
}

// Receive on a closed channel fires (ok false, before otherwise); a send case on a closed
// channel throws channel_closed; a parked list is woken by close; nil channel cases never fire.
TEST(SelectList, CloseHandling) {
  rt::run(
      [] {
        auto a = rt::make_chan<int>();
        auto b = rt::make_chan<int>();
        rt::chan<int> nil;
        int v = 7;
        bool ok = true;
        rt::select_list sel;
        sel.add(rt::recv(nil, &v, &ok));
        sel.add(rt::recv(a, &v, &ok));
        sel.add(rt::otherwise());
        EXPECT_EQ(rt::select(sel), 2u);
        a.close();
        EXPECT_EQ(rt::select(sel), 1u);
        EXPECT_FALSE(ok);
        EXPECT_EQ(v, 0);

        rt::select_list send;
        send.add(rt::send(a, 1));
        send.add(rt::otherwise());
        EXPECT_THROW(rt::select(send), rt::channel_closed);

        // Parked on b (and the nil channel), then woken by close from another fiber.
        rt::select_list parked;
        parked.add(rt::recv(nil, &v, &ok));
        parked.add(rt::recv(b, &v, &ok));
        ok = true;
        rt::go([b]() mutable { b.close(); });
        EXPECT_EQ(rt::select(parked), 1u);
        EXPECT_FALSE(ok);
      },
      with_workers(1));
}

// Parking: the list's select parks on every channel at once and is woken by whichever partner
// comes; the same list is selected on again (its receive cases re-armed) each round.
TEST(SelectList, ParksThenWakesOnAnyCase) {
  for (unsigned w : {1u, 2u, 4u}) {
    rt::run(
        [] {
          constexpr int kChans = 12;  // beyond the inline 8
          std::vector<rt::chan<int>> c;
          for (int k = 0; k < kChans; ++k) c.push_back(rt::make_chan<int>());
          std::vector<std::optional<int>> got(kChans);
          rt::select_list sel;
          for (int k = 0; k < kChans; ++k) {
            sel.add(rt::recv(c[static_cast<std::size_t>(k)], [&got, k](std::optional<int> x) {
              got[static_cast<std::size_t>(k)] = x;
            }));
          }
          for (int round = 0; round < 300; ++round) {
            const auto k = static_cast<std::size_t>((round * 7) % kChans);
            rt::go([ch = c[k], round]() mutable { ch.send(round); });
            got[k].reset();
            ASSERT_EQ(rt::select(sel), k);
            ASSERT_EQ(got[k], round);
          }
        },
        with_workers(w));
  }
}

// A send case's value is gone once it fired: selecting the same list again is misuse, reported
// by name; clear() and adding again works.
TEST(SelectList, SelectingAgainAfterASendFiredThrows) {
  rt::run([] {
    auto ch = rt::make_chan<std::string>(2);
    rt::select_list sel;
    EXPECT_EQ(sel.add(rt::send(ch, std::string("x"))), 0u);
    EXPECT_EQ(sel.size(), 1u);
    EXPECT_EQ(rt::select(sel), 0u);
    try {
      rt::select(sel);
      ADD_FAILURE() << "select returned";
    } catch (const rt::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("rt::select(select_list&)"), std::string::npos);
    }
    sel.clear();
    EXPECT_TRUE(sel.empty());
    sel.add(rt::send(ch, std::string("y")));
    EXPECT_EQ(rt::select(sel), 0u);
    EXPECT_EQ(ch.recv(), "x");
    EXPECT_EQ(ch.recv(), "y");
  });
}

// The list destroys its case objects on clear() and destruction (no leak, no double free; ASan
// checks the memory), including big cases placed in heap blocks.
TEST(SelectList, OwnsItsCases) {
  struct big {
    char bytes[300];
  };
  rt::run([] {
    auto ch = rt::make_chan<big>(1);
    auto s = rt::make_chan<std::string>(1);
    s.send(std::string(100, 'a'));
    rt::select_list sel;
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 10; ++k) sel.add(rt::recv(ch, [](std::optional<big>) {}));
      sel.add(rt::send(s, std::string(200, 'b')));
      sel.add(rt::recv(s, [](std::optional<std::string> x) {
        EXPECT_EQ(x.value_or(std::string()), std::string(100, 'a'));
      }));
      EXPECT_EQ(rt::select(sel), 11u);
      sel.clear();
      s.send(std::string(100, 'a'));
    }
    sel.add(rt::send(ch, big{}));
  });
}

// No allocation for up to 8 cases: neither the braced form nor a select_list (its construction,
// add() and select) allocate. Ready cases only, so that the scheduler does nothing meanwhile.
TEST(SelectList, NoAllocationUpTo8Cases) {
  if (rt_test::kSanitized) GTEST_SKIP() << "the sanitizers' allocators bypass operator new";
  rt::run(
      [] {
        std::vector<rt::chan<int>> c;
        for (int k = 0; k < 8; ++k) c.push_back(rt::make_chan<int>(1));
        c[3].send(3);
        int v = 0;
        bool ok = false;
        allocations = 0;
        counting = true;
        const std::size_t braced =
            rt::select({rt::recv(c[0], &v, &ok), rt::recv(c[1], &v, &ok), rt::recv(c[2], &v, &ok),
                        rt::recv(c[3], &v, &ok), rt::recv(c[4], &v, &ok), rt::recv(c[5], &v, &ok),
                        rt::recv(c[6], &v, &ok), rt::recv(c[7], &v, &ok)});
        counting = false;
        EXPECT_EQ(braced, 3u);
        EXPECT_EQ(allocations, 0);
        c[5].send(5);
        allocations = 0;
        counting = true;
        std::size_t listed;
        {
          rt::select_list sel;
          for (auto& ch : c) sel.add(rt::recv(ch, &v, &ok));
          listed = rt::select(sel);
        }
        counting = false;
        EXPECT_EQ(listed, 5u);
        EXPECT_EQ(v, 5);
        EXPECT_EQ(allocations, 0);
      },
      with_workers(1));  // the counter is per thread: the fiber must not migrate
}

// Go's TestSelectStress, over select_lists: 5 channels (capacities 0, 0, 1, 3, 8); 4 fibers send
// through a list of send cases on all channels (rebuilt each round: clear() and add), 2 plain
// senders send on channels 0 and 3; once all sent, the channels are closed; 3 fibers receive
// through one list each (reused; rebuilt without a channel once closed), one plain receiver
// drains channel 4. Every value must be received exactly once.
class SelectListStress : public ::testing::TestWithParam<unsigned> {};

TEST_P(SelectListStress, EveryValueExactlyOnce) {
  constexpr int kChans = 5;
  const int m = 20000 / kSlow;  // values per sender
  constexpr int kListSenders = 4;
  constexpr int kPlainSenders = 2;
  const int total = (kListSenders + kPlainSenders) * m;
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(total));
  rt::run(
      [&] {
        const std::size_t caps[kChans] = {0, 0, 1, 3, 8};
        std::vector<rt::chan<int>> c;
        for (std::size_t cap : caps) c.push_back(rt::make_chan<int>(cap));
        rt::wait_group senders;
        rt::wait_group receivers;
        senders.add(kListSenders + kPlainSenders);
        for (int s = 0; s < kListSenders; ++s) {
          rt::go([&, s] {
            rt::select_list sel;
            for (int i = 0; i < m; ++i) {
              sel.clear();
              for (auto& ch : c) sel.add(rt::send(ch, s * m + i));
              rt::select(sel);
            }
            senders.done();
          });
        }
        for (int s = 0; s < kPlainSenders; ++s) {
          rt::go([&, s, ch = c[s == 0 ? 0 : 3]]() mutable {
            for (int i = 0; i < m; ++i) ch.send((kListSenders + s) * m + i);
            senders.done();
          });
        }
        receivers.add(4);
        for (int r = 0; r < 3; ++r) {
          rt::go([&] {
            receive_until_all_closed(c, [&](int v) {
              seen[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
            });
            receivers.done();
          });
        }
        rt::go([&, ch = c[4]]() mutable {
          for (int v : ch)
            seen[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
          receivers.done();
        });
        senders.wait();
        for (auto& ch : c) ch.close();
        receivers.wait();
      },
      with_workers(GetParam()));
  int bad = 0;
  for (std::size_t x = 0; x < seen.size(); ++x) {
    if (seen[x].load() != 1 && bad++ < 10) ADD_FAILURE() << "value " << x << " seen " << seen[x];
  }
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(Workers, SelectListStress, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// ---- make_chan's capacity ---------------------------------------------------------------------

std::string make_chan_error(auto make) {
  try {
    make();
  } catch (const rt::runtime_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();
  }
  return "no exception";
}

TEST(MakeChan, NegativeCapacityThrowsSizeOutOfRange) {
  EXPECT_EQ(make_chan_error([] { rt::make_chan<int>(-1); }),
            "rt::make_chan: size out of range (capacity -1)");
  const long long minus = -5;
  EXPECT_EQ(make_chan_error([&] { rt::make_chan<std::string>(minus); }),
            "rt::make_chan: size out of range (capacity -5)");
  // A negative int already converted to std::size_t.
  EXPECT_EQ(make_chan_error([] { rt::make_chan<int>(static_cast<std::size_t>(-1)); }),
            "rt::make_chan: size out of range (capacity 18446744073709551615)");
}

TEST(MakeChan, ImpossibleBufferThrowsSizeOutOfRange) {
  constexpr auto big = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  EXPECT_NE(make_chan_error([] { rt::make_chan<char>(big); }).find("size out of range"),
            std::string::npos);
  EXPECT_NE(make_chan_error([] { rt::make_chan<int>(big / 4); }).find("size out of range"),
            std::string::npos);
  EXPECT_NE(make_chan_error([] {
              rt::make_chan<int>(std::numeric_limits<std::int64_t>::max());
            }).find("size out of range"),
            std::string::npos);
  // Go's limit: a buffer of 2^48 bytes or more (capacity + 1 places) cannot be allocated.
  EXPECT_EQ(make_chan_error([] { rt::make_chan<std::uint64_t>(std::size_t{1} << 45); }),
            "rt::make_chan: size out of range (capacity 35184372088832)");
}

// Signed capacities work, without -Wsign-conversion warnings (made errors here).
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wsign-conversion"
TEST(MakeChan, SignedCapacitiesAccepted) {
  int n = 3;
  short s = 2;
  std::int64_t z = 0;
  EXPECT_EQ(rt::make_chan<int>(n).cap(), 3u);
  EXPECT_EQ(rt::make_chan<int>(s).cap(), 2u);
  EXPECT_EQ(rt::make_chan<int>(z).cap(), 0u);
  EXPECT_EQ(rt::make_chan<int>(4u).cap(), 4u);
  EXPECT_EQ(rt::make_chan<int>().cap(), 0u);
}
#pragma GCC diagnostic pop

}  // namespace
