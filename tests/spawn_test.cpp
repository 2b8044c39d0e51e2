// tests/spawn_test.cpp — rt::go: every spawned fiber runs exactly once (1, 1k and 1M of them,
// and fibers spawning fibers), and rt::go passes its callable and arguments as std::thread does:
// decay-copied once, move-only types accepted, std::ref for references, large and over-aligned
// callables intact, and a callable whose move throws leaves no fiber behind.
#include <gtest/gtest.h>
#include <rt/csp.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::lifetime_counter;
using rt_test::tracked;
using rt_test::with_workers;

// Spawns n fibers, each marking its own slot, and checks every slot was marked exactly once.
void spawn_n_and_check(long n, unsigned workers) {
  std::vector<std::atomic<unsigned char>> runs(static_cast<std::size_t>(n));
  std::atomic<long> total{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(static_cast<int>(n));
        for (long i = 0; i < n; ++i) {
          rt::go([&runs, &total, &wg, i] {
            runs[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed);
            total.fetch_add(1, std::memory_order_relaxed);
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(workers));
  EXPECT_EQ(total.load(), n);
  long wrong = 0;
  for (auto& r : runs) wrong += r.load() != 1;
  EXPECT_EQ(wrong, 0) << "fibers that ran other than exactly once";
}

TEST(Spawn, OneFiber) {
  int ran = 0;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(1);
    rt::go([&] {
      ++ran;
      wg.done();
    });
    wg.wait();
  });
  EXPECT_EQ(ran, 1);
}

TEST(Spawn, ThousandFibersOneWorker) {
  spawn_n_and_check(1000, 1);
}
TEST(Spawn, ThousandFibersFourWorkers) {
  spawn_n_and_check(1000, 4);
}

TEST(SpawnHeavy, MillionFibers) {
  spawn_n_and_check(rt_test::scaled(1'000'000, 20'000), 0);
}

// A fiber that returns before anyone waits on it still counts: the spawner may move on at once.
TEST(Spawn, SpawnerDoesNotWaitForChildToStart) {
  std::atomic<int> ran{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(100);
        for (int i = 0; i < 100; ++i) {
          rt::go([&] {
            ran.fetch_add(1);
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(2));
  EXPECT_EQ(ran.load(), 100);
}

// Every node of a binary tree of fibers spawns its two children: 2^(depth+1) - 1 fibers.
void spawn_tree(int depth, std::atomic<long>& nodes, rt::wait_group& wg) {
  nodes.fetch_add(1, std::memory_order_relaxed);
  if (depth > 0) {
    wg.add(2);
    rt::go(spawn_tree, depth - 1, std::ref(nodes), std::ref(wg));
    rt::go(spawn_tree, depth - 1, std::ref(nodes), std::ref(wg));
  }
  wg.done();
}

TEST(Spawn, FibersSpawningFibers) {
  const int kDepth = static_cast<int>(rt_test::scaled(11, 8));
  for (unsigned workers : {1u, 3u}) {
    std::atomic<long> nodes{0};
    rt::run(
        [&] {
          rt::wait_group wg;
          wg.add(1);
          rt::go(spawn_tree, kDepth, std::ref(nodes), std::ref(wg));
          wg.wait();
        },
        with_workers(workers));
    EXPECT_EQ(nodes.load(), (2L << kDepth) - 1) << workers << " workers";
  }
}

// A chain: each fiber spawns the next one and exits before it runs.
TEST(Spawn, ChainOfFibersOutlivingTheirSpawner) {
  const int kLength = static_cast<int>(rt_test::scaled(5000, 500));
  std::atomic<int> reached{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(1);
        struct link {
          static void run(int left, std::atomic<int>* reached, rt::wait_group* wg) {
            reached->fetch_add(1);
            if (left == 0) {
              wg->done();
              return;
            }
            rt::go(run, left - 1, reached, wg);
          }
        };
        rt::go(link::run, kLength - 1, &reached, &wg);
        wg.wait();
      },
      with_workers(2));
  EXPECT_EQ(reached.load(), kLength);
}

TEST(SpawnArgs, MoveOnlyCallable) {
  int seen = 0;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(1);
    auto p = std::make_unique<int>(42);
    rt::go([p = std::move(p), &seen, &wg] {
      seen = *p;
      wg.done();
    });
    wg.wait();
  });
  EXPECT_EQ(seen, 42);
}

TEST(SpawnArgs, MoveOnlyArguments) {
  int seen = 0;
  std::string text;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(1);
    rt::go(
        [&](std::unique_ptr<int> a, std::unique_ptr<std::string> b) {
          seen = *a;
          text = *b;
          wg.done();
        },
        std::make_unique<int>(7), std::make_unique<std::string>("moved"));
    wg.wait();
  });
  EXPECT_EQ(seen, 7);
  EXPECT_EQ(text, "moved");
}

// A callable whose call operator is rvalue-qualified: rt::go invokes it as an rvalue, once.
TEST(SpawnArgs, RvalueCallable) {
  struct once {
    int* out;
    rt::wait_group* wg;
    void operator()() && {
      *out = 1;
      wg->done();
    }
  };
  int out = 0;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(1);
    rt::go(once{&out, &wg});
    wg.wait();
  });
  EXPECT_EQ(out, 1);
}

// Arguments are copied when rt::go is called, not when the fiber runs.
TEST(SpawnArgs, ArgumentsAreDecayCopiedAtSpawn) {
  int seen = -1;
  std::string seen_text;
  const void* seen_addr = nullptr;
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(1);
        int x = 1;
        std::string s = "before";
        rt::go(
            [&](int v, const std::string& str) {
              seen = v;
              seen_text = str;
              seen_addr = &str;
              wg.done();
            },
            x, s);
        x = 2;  // the child has not run yet (it runs when the spawner blocks), and got a copy
                // anyway
        s = "after";
        wg.wait();
        EXPECT_NE(seen_addr, static_cast<const void*>(&s))
            << "a const& parameter bound the original";
      },
      with_workers(1));
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(seen_text, "before");
}

// As with std::thread: an lvalue argument is copied exactly once, an rvalue one never.
TEST(SpawnArgs, LvalueCopiedOnceRvalueNever) {
  struct counting {
    int* copies;
    explicit counting(int* c) : copies(c) {}
    counting(const counting& o) : copies(o.copies) { ++*copies; }
    counting(counting&& o) noexcept : copies(o.copies) {}
  };
  int lvalue_copies = 0, rvalue_copies = 0;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(2);
    counting a(&lvalue_copies);
    rt::go([&](counting) { wg.done(); }, a);
    rt::go([&](counting) { wg.done(); }, counting(&rvalue_copies));
    wg.wait();
  });
  EXPECT_EQ(lvalue_copies, 1);
  EXPECT_EQ(rvalue_copies, 0);
}

TEST(SpawnArgs, StdRefPassesAReference) {
  int x = 0;
  std::string s = "a";
  rt::run([&] {
    rt::wait_group wg;
    wg.add(1);
    rt::go(
        [&wg](int& r, std::string& str) {
          r = 5;
          str += "b";
          wg.done();
        },
        std::ref(x), std::ref(s));
    wg.wait();
  });
  EXPECT_EQ(x, 5);
  EXPECT_EQ(s, "ab");
}

namespace plain {
std::atomic<int> sum{0};
void add_to_sum(int a, int b, rt::wait_group* wg) {
  sum.fetch_add(a + b);
  wg->done();
}
struct adder {
  int base = 100;
  void add(int v, rt::wait_group* wg) {
    sum.fetch_add(base + v);
    wg->done();
  }
};
}  // namespace plain

TEST(SpawnArgs, FunctionPointersMemberFunctionsAndArrays) {
  plain::sum = 0;
  std::string seen;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(4);
    rt::go(plain::add_to_sum, 1, 2, &wg);
    rt::go(&plain::add_to_sum, 3, 4, &wg);
    plain::adder obj;
    rt::go(&plain::adder::add, &obj, 5, &wg);  // std::invoke rules, as std::thread
    rt::go(
        [&](const char* s) {  // a string literal decays to const char*
          seen = s;
          wg.done();
        },
        "literal");
    wg.wait();
  });
  EXPECT_EQ(plain::sum.load(), 1 + 2 + 3 + 4 + 100 + 5);
  EXPECT_EQ(seen, "literal");
}

// Callables too large or too aligned for the control block's inline storage go to the heap;
// they must arrive intact and correctly aligned.
TEST(SpawnArgs, LargeAndOverAlignedCallables) {
  struct alignas(64) aligned64 {
    unsigned char bytes[64];
  };
  struct alignas(32) aligned32 {
    double d[4];
  };
  bool big_ok = false, a64_ok = false, a32_ok = false;
  rt::run([&] {
    rt::wait_group wg;
    wg.add(3);
    std::array<unsigned char, 4000> big{};
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<unsigned char>(i * 7);
    rt::go([big, &big_ok, &wg] {
      bool ok = true;
      for (std::size_t i = 0; i < big.size(); ++i)
        ok &= big[i] == static_cast<unsigned char>(i * 7);
      big_ok = ok;
      wg.done();
    });
    aligned64 a{};
    a.bytes[63] = 9;
    rt::go([a, &a64_ok, &wg] {
      a64_ok = reinterpret_cast<std::uintptr_t>(&a) % 64 == 0 && a.bytes[63] == 9;
      wg.done();
    });
    aligned32 b{{1, 2, 3, 4}};
    rt::go(
        [&](aligned32 v) {
          a32_ok = reinterpret_cast<std::uintptr_t>(&v) % 32 == 0 && v.d[3] == 4;
          wg.done();
        },
        b);
    wg.wait();
  });
  EXPECT_TRUE(big_ok);
  EXPECT_TRUE(a64_ok);
  EXPECT_TRUE(a32_ok);
}

// The callable and its arguments are destroyed exactly once, after the fiber ran, whatever their
// size (inline or heap storage).
TEST(SpawnArgs, CallableAndArgumentsDestroyedOnce) {
  lifetime_counter c;
  std::atomic<int> ran{0};
  rt::run(
      [&] {
        rt::wait_group wg;
        wg.add(3);
        rt::go([t = tracked(c), &ran, &wg] {
          ran.fetch_add(1);
          wg.done();
        });
        std::array<char, 512> pad{};
        rt::go([t = tracked(c), pad, &ran, &wg] {
          ran.fetch_add(1 + pad[0]);
          wg.done();
        });
        rt::go(
            [&](tracked, const tracked&) {
              ran.fetch_add(1);
              wg.done();
            },
            tracked(c), tracked(c));
        wg.wait();
      },
      with_workers(2));
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(c.live(), 0);
}

// A throwing copy of an argument propagates out of rt::go and spawns nothing; so does a callable
// whose move throws, either while rt::go decay-copies it (before any fiber exists) or while the
// runtime moves it into the new fiber's control block (the half-made fiber is given back).
struct throws_on_copy {
  throws_on_copy() = default;
  throws_on_copy(const throws_on_copy&) { throw std::runtime_error("copy failed"); }
};
// Throws from its fuse-th move (copies do not count).
struct move_bomb {
  int* moves;
  int fuse;
  move_bomb(int* m, int f) : moves(m), fuse(f) {}
  move_bomb(const move_bomb&) = default;
  move_bomb(move_bomb&& o) : moves(o.moves), fuse(o.fuse) {
    if (++*moves == fuse) throw std::runtime_error("move failed");
  }
};

TEST(SpawnArgs, ThrowingCopyOrMoveSpawnsNothing) {
  std::atomic<int> ran{0};
  std::vector<std::string> msgs;
  rt::run(
      [&] {
        auto attempt = [&](auto&& spawn) {
          try {
            spawn();
            msgs.push_back("no exception");
          } catch (const std::runtime_error& e) {
            msgs.push_back(e.what());
          }
        };
        throws_on_copy tc;
        attempt([&] { rt::go([&](const throws_on_copy&) { ran.fetch_add(1); }, tc); });
        // fuse 1: rt::go's decay-copy; fuse 2: the move into the control block.
        for (int fuse : {1, 2}) {
          int moves = 0;
          move_bomb b(&moves, fuse);
          attempt([&] { rt::go([&ran, b] { ran.fetch_add(1 + b.fuse); }); });
        }
        // The same from a plain thread, which must also give the runtime back (else run() would
        // wait for it forever at shutdown).
        std::thread t([&] {
          for (int fuse : {1, 2}) {
            int moves = 0;
            move_bomb b(&moves, fuse);
            attempt([&] { rt::go([&ran, b] { ran.fetch_add(1 + b.fuse); }); });
          }
        });
        t.join();
        // The runtime still works.
        rt::wait_group wg;
        wg.add(1);
        rt::go([&] {
          ran.fetch_add(100);
          wg.done();
        });
        wg.wait();
      },
      with_workers(2));
  ASSERT_EQ(msgs.size(), 5u);
  EXPECT_EQ(msgs[0], "copy failed");
  for (std::size_t i = 1; i < msgs.size(); ++i) EXPECT_EQ(msgs[i], "move failed") << i;
  EXPECT_EQ(ran.load(), 100);
}

}  // namespace

// ---- spawn order and stealing of spawned fibers ----------------------------------------------

namespace {

// A 10-ary tree of fibers: each inner node spawns ten children and waits for their sums on a
// channel (skynet). Records the most fibers that had started and not yet finished at once.
void sum_tree(rt::chan<long> out, long first, long size, std::atomic<long>& alive,
              std::atomic<long>& max_alive) {
  const long now = alive.fetch_add(1) + 1;
  long seen = max_alive.load();
  while (now > seen && !max_alive.compare_exchange_weak(seen, now)) {
  }
  long sum = first;
  if (size > 1) {
    auto rc = rt::make_chan<long>();
    const long child = size / 10;
    for (long i = 0; i < 10; ++i) {
      rt::go(sum_tree, rc, first + i * child, child, std::ref(alive), std::ref(max_alive));
    }
    sum = 0;
    for (int i = 0; i < 10; ++i) sum += *rc.recv();
  }
  alive.fetch_sub(1);
  out.send(sum);
}

// Runs sum_tree over `leaves` leaves on `workers` workers; returns the root's sum and, in
// max_alive, the most fibers alive at once.
long run_tree(long leaves, unsigned workers, long& max_alive) {
  std::atomic<long> alive{0}, most{0};
  long sum = 0;
  rt::run(
      [&] {
        auto root = rt::make_chan<long>();
        rt::go(sum_tree, root, 0L, leaves, std::ref(alive), std::ref(most));
        sum = *root.recv();
      },
      with_workers(workers));
  EXPECT_EQ(alive.load(), 0);
  max_alive = most.load();
  return sum;
}

}  // namespace

// On one worker a tree of spawns runs depth first: the owner takes its newest spawn first, so
// only the current path and its pending siblings are alive (about 10 per level), not a whole
// level of the tree (10,000 inner fibers here with FIFO order). Memory and cache locality of
// skynet-shaped programs rest on this.
TEST(SpawnOrder, TreeOfSpawnsRunsDepthFirstOnOneWorker) {
  RT_SKIP_UNDER_CHAOS();
  // Under sanitizers 10,000 leaves (FIFO order would still have about 1,100 fibers alive).
  const long leaves = rt_test::scaled(100'000, 10'000);
  long max_alive = 0;
  EXPECT_EQ(run_tree(leaves, 1, max_alive), leaves * (leaves - 1) / 2);
  EXPECT_LE(max_alive, 100) << "spawned fibers did not run newest first";
}

// The same tree on several workers still sums correctly (thieves take the oldest spawns).
TEST(SpawnOrder, TreeOfSpawnsOnSeveralWorkers) {
  for (unsigned w : {2u, 4u, 8u}) {
    constexpr long leaves = 10'000;
    long max_alive = 0;
    EXPECT_EQ(run_tree(leaves, w, max_alive), leaves * (leaves - 1) / 2) << w << " workers";
  }
}

// Fibers spawned while every worker is busy wait on their spawner's worker, but not for good:
// a worker that runs out of work takes them. Here two CPU-bound fibers spin (never yielding)
// until both have started, so the test can only end if the second worker takes one of them from
// the first — after being busy itself (with `hog`) while they were spawned.
TEST(SpawnStealing, FibersSpawnedWhileAllWorkersAreBusyAreTaken) {
  const long rounds = rt_test::scaled(200, 20);
  for (int round = 0; round < rounds; ++round) {
    rt::run(
        [] {
          std::atomic<bool> hog_running{false};
          std::atomic<bool> spawned{false};
          std::atomic<int> started{0};
          rt::wait_group wg;
          wg.add(3);
          rt::go([&] {  // the hog: keeps its worker busy until the spinners exist
            hog_running.store(true);
            while (!spawned.load()) {
            }
            wg.done();
          });
          while (!hog_running.load()) rt::yield();  // the hog runs on one worker, main on the other
          for (int i = 0; i < 2; ++i) {
            rt::go([&] {
              started.fetch_add(1);
              while (started.load() < 2) {
              }
              wg.done();
            });
          }
          spawned.store(true);
          wg.wait();
        },
        with_workers(2));
  }
}
