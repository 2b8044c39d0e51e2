// tests/context_test.cpp — rt::context (Go's context package): cancellation reaches every
// descendant and never a parent, cancel is idempotent, err() kinds, deadline = min(parent, own),
// values through layers and shadowing, stop tokens both ways, done() in select, races of cancel
// against deadline, parent cancel against child creation, abandoned contexts leaking nothing,
// after_func, plain threads inside rt::run, and contexts outliving rt::run.
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using rt_test::kSlow;
using rt_test::with_workers;

// Done as a channel sees it: closed (try_recv reports closed, without blocking).
bool chan_closed(const rt::context& c) {
  bool closed = false;
  auto ch = c.done();
  if (!ch) return false;
  auto u = ch.underlying();
  (void)u.try_recv(&closed);
  return closed;
}

// Marked done: err() set and done() closed. A racing second cancel returns once this holds for
// the whole subtree; the stop requests are then still being made by the cancel that won.
bool is_marked(const rt::context& c) {
  return c.err() && chan_closed(c);
}
// Done, stop requested too: what a cancel() that marked the tree itself returns after.
bool is_done(const rt::context& c) {
  return c.err() && chan_closed(c) && c.stop_token().stop_requested();
}

const rt::context_key<int> k_int;
const rt::context_key<std::string> k_str;
const rt::context_key<int> k_other;

TEST(Context, BackgroundIsNeverDone) {
  rt::context bg = rt::background();
  EXPECT_FALSE(bg.err());
  EXPECT_FALSE(bg.done());  // nil channel
  EXPECT_FALSE(bg.deadline());
  EXPECT_FALSE(bg.stop_token().stop_possible());
  EXPECT_EQ(bg.value(k_int), nullptr);
  EXPECT_NO_THROW(bg.throw_if_done());
  EXPECT_FALSE(rt::todo().err());
}

TEST(Context, CancelReachesDescendantsNotParents) {
  auto [root, cancel_root] = rt::with_cancel(rt::background());
  auto [child, cancel_child] = rt::with_cancel(root);
  auto [sibling, cancel_sibling] = rt::with_cancel(root);
  rt::context valued = rt::with_value(child, k_int, 7);
  auto [grand, cancel_grand] = rt::with_cancel(valued);
  auto [great, cancel_great] = rt::with_cancel(grand);
  cancel_child();
  // On return, every descendant reports done; ancestors and siblings are untouched.
  EXPECT_TRUE(is_done(child));
  EXPECT_TRUE(is_done(valued));
  EXPECT_TRUE(is_done(grand));
  EXPECT_TRUE(is_done(great));
  EXPECT_EQ(great.err(), rt::context_errc::canceled);
  EXPECT_FALSE(root.err());
  EXPECT_FALSE(chan_closed(root));
  EXPECT_FALSE(sibling.err());
  cancel_great();  // cancelling a descendant of a done context: nothing changes
  cancel_root();
  EXPECT_TRUE(is_done(root));
  EXPECT_TRUE(is_done(sibling));
}

TEST(Context, CancelIsIdempotentAndErrKinds) {
  auto [c, cancel] = rt::with_cancel(rt::background());
  EXPECT_FALSE(c.err());
  cancel();
  cancel();
  auto copy = cancel;
  copy();
  EXPECT_EQ(c.err(), rt::context_errc::canceled);
  EXPECT_EQ(c.err().message(), "context canceled");
  EXPECT_EQ(&c.err().category(), &rt::context_category());
  EXPECT_STREQ(c.err().category().name(), "rt::context");
  try {
    c.throw_if_done();
    ADD_FAILURE() << "throw_if_done did not throw";
  } catch (const rt::context_error& e) {
    EXPECT_EQ(e.code(), rt::context_errc::canceled);
    EXPECT_STREQ(e.what(), "context canceled");
  }
  rt::run([] {
    auto [d, cancel_d] = rt::with_timeout(rt::background(), -1s);  // already past: born done
    EXPECT_EQ(d.err(), rt::context_errc::deadline_exceeded);
    EXPECT_EQ(d.err().message(), "context deadline exceeded");
    cancel_d();  // does not change err
    EXPECT_EQ(d.err(), rt::context_errc::deadline_exceeded);
    auto [e, cancel_e] = rt::with_cancel(d);  // inherits the parent's err
    EXPECT_EQ(e.err(), rt::context_errc::deadline_exceeded);
    auto [t, cancel_t] = rt::with_timeout(rt::background(), 1ms);
    auto [tc, cancel_tc] = rt::with_cancel(t);
    (void)tc.done().recv();  // the timer fires: no sleep, the channel says so
    EXPECT_EQ(t.err(), rt::context_errc::deadline_exceeded);
    EXPECT_EQ(tc.err(), rt::context_errc::deadline_exceeded);
    cancel_t();
    EXPECT_EQ(t.err(), rt::context_errc::deadline_exceeded);
  });
}

TEST(Context, DeadlineIsMinOfParentAndOwn) {
  rt::run([] {
    const auto now = std::chrono::steady_clock::now();
    auto [p, cp] = rt::with_deadline(rt::background(), now + 1h);
    ASSERT_TRUE(p.deadline());
    EXPECT_EQ(*p.deadline(), now + 1h);
    auto [later, cl] = rt::with_deadline(p, now + 2h);  // the parent's comes first
    EXPECT_EQ(*later.deadline(), now + 1h);
    auto [sooner, cs] = rt::with_deadline(p, now + 30min);
    EXPECT_EQ(*sooner.deadline(), now + 30min);
    rt::context v = rt::with_value(sooner, k_int, 1);
    EXPECT_EQ(*v.deadline(), now + 30min);
    auto [c, cc] = rt::with_cancel(v);
    EXPECT_EQ(*c.deadline(), now + 30min);
    auto [forever, cf] = rt::with_timeout(rt::background(), std::chrono::nanoseconds::max());
    (void)forever;  // saturates to the clock's end: a deadline, never firing
    cp();
    EXPECT_EQ(later.err(), rt::context_errc::canceled);
    EXPECT_EQ(c.err(), rt::context_errc::canceled);
  });
}

TEST(Context, ValuesThroughLayersAndShadowing) {
  rt::context a = rt::with_value(rt::background(), k_int, 1);
  rt::context b = rt::with_value(a, k_str, std::string("hello"));
  auto [c, cancel] = rt::with_cancel(b);
  rt::context d = rt::with_value(c, k_int, 2);  // shadows a's
  ASSERT_NE(d.value(k_int), nullptr);
  EXPECT_EQ(*d.value(k_int), 2);
  EXPECT_EQ(*c.value(k_int), 1);
  EXPECT_EQ(*d.value(k_str), "hello");
  EXPECT_EQ(d.value(k_other), nullptr);  // same type, different key
  EXPECT_EQ(a.value(k_str), nullptr);    // never upwards
  cancel();
  EXPECT_EQ(*d.value(k_int), 2);  // values outlive cancellation
  EXPECT_TRUE(d.err());
}

TEST(Context, StopTokenBothWays) {
  // context -> stop_token
  auto [c, cancel] = rt::with_cancel(rt::background());
  std::stop_token st = c.stop_token();
  EXPECT_TRUE(st.stop_possible());
  EXPECT_FALSE(st.stop_requested());
  int called = 0;
  {
    std::stop_callback cb(st, [&] { ++called; });
    cancel();
    EXPECT_EQ(called, 1);  // ran before cancel returned
  }
  EXPECT_TRUE(st.stop_requested());
  // stop_token -> context
  std::stop_source src;
  auto [p, cancel_p] = rt::with_cancel(rt::background());
  rt::context s = rt::with_stop_token(p, src.get_token());
  auto [child, cancel_child] = rt::with_cancel(s);
  EXPECT_FALSE(s.err());
  src.request_stop();
  EXPECT_EQ(s.err(), rt::context_errc::canceled);
  EXPECT_TRUE(is_done(child));
  EXPECT_FALSE(p.err());  // never upwards
  // parent -> with_stop_token child
  std::stop_source src2;
  rt::context s2 = rt::with_stop_token(p, src2.get_token());
  cancel_p();
  EXPECT_TRUE(is_done(s2));
  // already stopped: born done
  rt::context s3 = rt::with_stop_token(rt::background(), src.get_token());
  EXPECT_TRUE(is_done(s3));
  // a token that can never stop: a context that is done only through its parent
  rt::context s4 = rt::with_stop_token(rt::background(), std::stop_token{});
  EXPECT_FALSE(s4.err());
}

TEST(Context, DoneInSelectWithAChannel) {
  rt::run(
      [] {
        auto values = rt::make_chan<int>();
        auto [c, cancel] = rt::with_cancel(rt::background());
        rt::go([cancel = cancel] { cancel(); });
        std::size_t i = rt::select(rt::recv(values), rt::recv(c.done()));
        EXPECT_EQ(i, 1u);
        EXPECT_EQ(c.err(), rt::context_errc::canceled);
        // A value ready and the context live: the value case.
        auto [c2, cancel2] = rt::with_cancel(rt::background());
        auto buffered = rt::make_chan<int>(1);
        buffered.send(5);
        int got = 0;
        i = rt::select(rt::recv(buffered, [&](std::optional<int> v) { got = *v; }),
                       rt::recv(c2.done()));
        EXPECT_EQ(i, 0u);
        EXPECT_EQ(got, 5);
      },
      with_workers(2));
}

TEST(Context, ChildOfCancelledParentIsBornCancelled) {
  auto [p, cancel] = rt::with_cancel(rt::background());
  cancel();
  auto [c, cc] = rt::with_cancel(p);
  EXPECT_TRUE(is_done(c));
  rt::context s = rt::with_stop_token(p, std::stop_source().get_token());
  EXPECT_TRUE(is_done(s));
  EXPECT_EQ(rt::detail::context_child_count(p), 0u);
}

// Parent cancel races child creation: every child ends done, whichever came first, and none
// stays registered with the cancelled parent.
TEST(Context, ParentCancelRacesChildCreation) {
  for (unsigned w : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          for (int round = 0; round < 200 / kSlow; ++round) {
            auto [p, cancel] = rt::with_cancel(rt::background());
            constexpr int kMakers = 4;
            std::vector<rt::context> made[kMakers];
            rt::wait_group wg;
            wg.add(kMakers + 1);
            for (int m = 0; m < kMakers; ++m) {
              rt::go([&, m, p = p] {
                for (int i = 0; i < 8; ++i) {
                  made[m].push_back(rt::with_cancel(p).first);
                  made[m].push_back(rt::with_value(p, k_int, i));
                  rt::yield();
                }
                wg.done();
              });
            }
            rt::go([&, cancel = cancel] {
              rt::yield();
              cancel();
              wg.done();
            });
            wg.wait();
            for (auto& v : made) {
              for (auto& c : v) ASSERT_TRUE(is_done(c));
            }
            ASSERT_EQ(rt::detail::context_child_count(p), 0u);
          }
        },
        with_workers(w));
  }
}

// Two cancels of one context: whichever returns, the whole subtree is done by then.
TEST(Context, ConcurrentCancelsBothSeeTheSubtreeDone) {
  for (unsigned w : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          for (int round = 0; round < 300 / kSlow; ++round) {
            auto [p, cancel] = rt::with_cancel(rt::background());
            rt::context leaf = p;
            std::vector<rt::cancel_func> keep;
            for (int d = 0; d < 6; ++d) {
              auto [c, cf] = rt::with_cancel(d % 2 ? rt::with_value(leaf, k_int, d) : leaf);
              leaf = c;
              keep.push_back(cf);
            }
            std::atomic<int> bad{0};
            rt::wait_group wg;
            wg.add(2);
            for (int k = 0; k < 2; ++k) {
              rt::go([&, cancel = cancel] {
                cancel();
                if (!is_marked(leaf)) bad.fetch_add(1);
                wg.done();
              });
            }
            wg.wait();
            ASSERT_EQ(bad.load(), 0);
          }
        },
        with_workers(w));
  }
}

// cancel races the deadline, and the last handle is dropped while the timer may be firing: err
// is set once, to one of the two kinds, and every descendant agrees.
TEST(Context, CancelRacesDeadlineStress) {
  for (unsigned w : {1u, 2u, 4u, 8u}) {
    rt::run(
        [] {
          const int n = 2000 / kSlow;
          rt::wait_group wg;
          wg.add(n);
          std::atomic<int> bad{0};
          for (int i = 0; i < n; ++i) {
            rt::go([&, i] {
              auto [c, cancel] =
                  rt::with_timeout(rt::background(), std::chrono::microseconds(i % 50));
              auto [child, cc] = rt::with_cancel(rt::with_value(c, k_int, i));
              if (i % 3 == 0) {
                rt::yield();
                cancel();
              } else if (i % 3 == 1) {
                cancel();
              }
              if (i % 5 == 0) {
                // Abandon both while the timer may fire (or be about to): nothing waits on it.
                wg.done();
                return;
              }
              (void)child.done().recv();
              const auto e = c.err();
              if (e != rt::context_errc::canceled && e != rt::context_errc::deadline_exceeded)
                bad.fetch_add(1);
              if (child.err() != e || c.err() != e) bad.fetch_add(1);
              cancel();
              if (c.err() != e) bad.fetch_add(1);
              wg.done();
            });
          }
          wg.wait();
          EXPECT_EQ(bad.load(), 0);
        },
        with_workers(w));
  }
}

// Abandoned children (handles dropped, never cancelled) leave nothing in their long-lived
// parent: its child set does not grow, and ASan's leak check sees no node (timers included:
// one freed while still in a heap would be a use-after-free on the heap's next use).
TEST(Context, AbandonedContextsLeakNothing) {
  rt::run(
      [] {
        auto [parent, cancel] = rt::with_cancel(rt::background());
        rt::context layered = rt::with_value(parent, k_int, 1);
        for (int i = 0; i < 20000 / kSlow; ++i) {
          auto [a, ca] = rt::with_timeout(layered, 1h);
          auto [b, cb] = rt::with_cancel(a);
          rt::context v = rt::with_value(b, k_str, std::string(40, 'x'));
          auto [c, cc] = rt::with_timeout(v, 2h);
          if (i % 2) (void)rt::with_stop_token(c, std::stop_source().get_token());
          ASSERT_EQ(rt::detail::context_child_count(parent), 1u);
        }
        EXPECT_EQ(rt::detail::context_child_count(parent), 0u);
        // Short timers, abandoned: some fire after the context is gone, some while it goes.
        for (int i = 0; i < 5000 / kSlow; ++i) {
          (void)rt::with_timeout(layered, std::chrono::microseconds(i % 20));
          if (i % 64 == 0) rt::yield();
        }
        // A timer that fired before its context was dropped hands a reference to the fiber that
        // cancels it; such a child is unregistered once that fiber has run (the fibers are
        // runnable: this loop ends; if one were lost, ctest's timeout would say so).
        while (rt::detail::context_child_count(parent) != 0) rt::yield();
        cancel();
      },
      with_workers(4));
}

TEST(Context, AfterFunc) {
  rt::run(
      [] {
        auto [c, cancel] = rt::with_cancel(rt::background());
        auto ran = rt::make_chan<int>(1);
        auto stop = rt::after_func(c, [ran]() mutable { ran.send(1); });
        auto [c2, cancel2] = rt::with_cancel(rt::background());
        std::atomic<bool> ran2{false};
        auto stop2 = rt::after_func(c2, [&] { ran2 = true; });
        EXPECT_TRUE(stop2());   // stopped before c2 was done
        EXPECT_FALSE(stop2());  // already stopped
        cancel2();
        cancel();
        EXPECT_EQ(*ran.recv(), 1);
        EXPECT_FALSE(stop());  // fn started
        EXPECT_FALSE(ran2.load());
        // Already done: runs at once (in a fiber).
        auto ran3 = rt::make_chan<int>(1);
        (void)rt::after_func(c, [ran3]() mutable { ran3.send(3); });
        EXPECT_EQ(*ran3.recv(), 3);
        // Background can never be done: fn never runs; stop reports that it stopped it.
        auto stop4 = rt::after_func(rt::background(), [] { ADD_FAILURE(); });
        EXPECT_TRUE(stop4());
      },
      with_workers(2));
}

TEST(Context, PlainThreadInsideRun) {
  rt::run(
      [] {
        auto [p, cancel] = rt::with_cancel(rt::background());
        std::thread t([p = p] {
          auto [c, cc] = rt::with_timeout(p, 1ms);  // armed through a helper fiber
          (void)c.done().recv();                    // blocks this thread
          EXPECT_EQ(c.err(), rt::context_errc::deadline_exceeded);
          auto [d, cd] = rt::with_timeout(p, 1h);
          auto [e, ce] = rt::with_cancel(d);
          cd();
          EXPECT_TRUE(is_done(e));
          auto [f, cf] = rt::with_timeout(p, 1h);  // abandoned from a plain thread
        });
        t.join();
        // The arming fiber of the abandoned one holds it until it has run (it is runnable).
        while (rt::detail::context_child_count(p) != 0) rt::yield();
        auto [g, cg] = rt::with_timeout(p, 1h);
        std::thread t2([cg = cg] { cg(); });  // cancel from a plain thread
        t2.join();
        EXPECT_EQ(g.err(), rt::context_errc::canceled);
      },
      with_workers(2));
}

TEST(Context, OutsideRun) {
  auto [c, cancel] = rt::with_cancel(rt::background());  // no timer: works anywhere
  cancel();
  EXPECT_TRUE(is_done(c));
  try {
    (void)rt::with_timeout(rt::background(), 1s);
    ADD_FAILURE() << "with_timeout outside rt::run did not throw";
  } catch (const rt::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rt::with_timeout"), std::string::npos) << e.what();
  }
  // Already past: no timer needed, born done.
  EXPECT_EQ(rt::with_timeout(rt::background(), -1s).first.err(),
            rt::context_errc::deadline_exceeded);
}

// A context may outlive the rt::run that armed its timer: cancelling or dropping it afterwards
// does not go back to the freed worker's heap (armed timers are dropped at shutdown).
TEST(Context, OutlivesRun) {
  rt::context armed, fired;
  rt::cancel_func cancel_armed, cancel_fired;
  rt::run([&] {
    std::tie(armed, cancel_armed) = rt::with_timeout(rt::background(), 1h);
    std::tie(fired, cancel_fired) = rt::with_timeout(rt::background(), 1ms);
    (void)fired.done().recv();
  });
  EXPECT_FALSE(armed.err());
  cancel_armed();
  cancel_fired();
  EXPECT_EQ(armed.err(), rt::context_errc::canceled);
  EXPECT_EQ(fired.err(), rt::context_errc::deadline_exceeded);
}

}  // namespace
