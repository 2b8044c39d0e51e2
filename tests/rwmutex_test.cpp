// rwmutex_test — rt::rwmutex (Go's sync.RWMutex; rt::shared_mutex is the same type):
//   - readers share it, writers hold it alone (atomic in-use counters, on 1, 2, 4 and 8
//     workers), from fibers and plain threads together;
//   - Go's rule, pinned down without timing: a waiting writer blocks later readers, so a stream
//     of readers cannot starve it; FIFO hand-off to a writer or to the batch of readers at the
//     head;
//   - std::shared_lock, std::unique_lock, std::scoped_lock and the try_ variants;
//   - misuse (unlocking what is not locked) is a fatal error.
// "Parked" is observed through rt::stats().parked_by.rwmutex (polled with rt::yield), never
// through sleeps.
#include <rt/csp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using rt_test::kSlow;
using rt_test::with_workers;

static_assert(std::is_same_v<rt::shared_mutex, rt::rwmutex>);

// Yields until `n` fibers are parked on an rwmutex.
void until_parked(std::uint64_t n) {
  while (rt::stats().parked_by.rwmutex != n) rt::yield();
}

class RWMutexExclusion : public ::testing::TestWithParam<unsigned> {};

// 48 fibers, every 4th a writer: a writer must see no reader and no other writer; a reader must
// see no writer. Yields inside the critical sections make others queue.
TEST_P(RWMutexExclusion, ReadersShareWritersExclusive) {
  constexpr int fibers = 48;
  const int per = 2000 / kSlow;
  std::atomic<int> readers{0}, writers{0}, bad{0}, max_readers{0};
  long written = 0;  // plain: written by writers, read by readers (TSan watches it)
  rt::run(
      [&] {
        rt::rwmutex mu;
        rt::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f) {
          rt::go([&, f] {
            for (int i = 0; i < per; ++i) {
              if (f % 4 == 0) {
                std::unique_lock lk(mu);
                if (writers.fetch_add(1) != 0 || readers.load() != 0) bad.fetch_add(1);
                ++written;
                if (i % 8 == 0) rt::yield();
                writers.fetch_sub(1);
              } else {
                std::shared_lock lk(mu);
                const int r = readers.fetch_add(1) + 1;
                int m = max_readers.load();
                while (r > m && !max_readers.compare_exchange_weak(m, r)) {
                }
                if (writers.load() != 0) bad.fetch_add(1);
                volatile long seen = written;
                (void)seen;
                if (i % 8 == 0) rt::yield();
                readers.fetch_sub(1);
              }
            }
            wg.done();
          });
        }
        wg.wait();
      },
      with_workers(GetParam()));
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(written, static_cast<long>(fibers / 4) * per);
  EXPECT_GT(max_readers.load(), 1);  // readers did share (a yield inside guarantees overlap)
}

INSTANTIATE_TEST_SUITE_P(Workers, RWMutexExclusion, ::testing::Values(1u, 2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "workers"; });

// Readers share: three fibers each take a shared hold and then wait until all three are inside.
// Were holds exclusive, the second would never get in and this would deadlock.
TEST(RWMutex, ReadersHoldItTogether) {
  rt::run(
      [] {
        rt::rwmutex mu;
        rt::wait_group inside, done;
        inside.add(3);
        done.add(3);
        for (int i = 0; i < 3; ++i) {
          rt::go([&] {
            mu.lock_shared();
            inside.done();
            inside.wait();
            mu.unlock_shared();
            done.done();
          });
        }
        done.wait();
        EXPECT_TRUE(mu.try_lock());
        mu.unlock();
      },
      with_workers(2));
}

// A reader holds it; a writer queues; then no new reader gets in (try_lock_shared fails, and a
// reader fiber parks), however many come. Releasing the first reader hands it to the writer, and
// only the writer's unlock lets the later reader in.
TEST(RWMutex, WaitingWriterBlocksNewReaders) {
  rt::run(
      [] {
        rt::rwmutex mu;
        auto order = rt::make_chan<std::string>(8);
        // The fibers use this frame's locals: they must have left before it ends.
        rt::wait_group finished;
        finished.add(5);
        mu.lock_shared();  // main is the first reader
        rt::go([&] {
          mu.lock();
          order.send("writer");
          mu.unlock();
          finished.done();
        });
        until_parked(1);
        EXPECT_FALSE(mu.try_lock_shared());  // the queued writer blocks newcomers
        EXPECT_FALSE(mu.try_lock());
        for (int i = 0; i < 4; ++i) {
          rt::go([&] {
            mu.lock_shared();
            order.send("reader");
            mu.unlock_shared();
            finished.done();
          });
        }
        until_parked(5);
        mu.unlock_shared();
        EXPECT_EQ(order.recv(), "writer");
        for (int i = 0; i < 4; ++i) EXPECT_EQ(order.recv(), "reader");
        finished.wait();
      },
      with_workers(2));
}

// FIFO hand-off: with a writer holding it and the queue R1 R2 W2 R3, the writer's unlock admits
// R1 and R2 together (both are inside at once), W2 only after both leave, R3 only after W2.
TEST(RWMutex, HandsOffToTheReaderBatchAtTheHeadThenTheNextWriter) {
  rt::run(
      [] {
        rt::rwmutex mu;
        auto inside = rt::make_chan<std::string>(8);
        auto leave = rt::make_chan<int>(8);
        std::atomic<int> holders{0};
        // The fibers use this frame's locals: they must have left before it ends.
        rt::wait_group finished;
        finished.add(4);
        auto reader = [&](std::string name) {
          mu.lock_shared();
          holders.fetch_add(1);
          inside.send(name);
          leave.recv();
          holders.fetch_sub(1);
          mu.unlock_shared();
          finished.done();
        };
        mu.lock();
        rt::go(reader, std::string("R1"));
        until_parked(1);
        rt::go(reader, std::string("R2"));
        until_parked(2);
        rt::go([&] {
          mu.lock();
          EXPECT_EQ(holders.load(), 0);
          inside.send("W2");
          leave.recv();
          mu.unlock();
          finished.done();
        });
        until_parked(3);
        rt::go(reader, std::string("R3"));
        until_parked(4);
        mu.unlock();
        std::string a = *inside.recv(), b = *inside.recv();  // both readers inside together
        EXPECT_TRUE((a == "R1" && b == "R2") || (a == "R2" && b == "R1")) << a << " " << b;
        EXPECT_EQ(holders.load(), 2);
        until_parked(2);  // W2 and R3 still wait
        leave.send(1);
        leave.send(1);
        EXPECT_EQ(inside.recv(), "W2");
        leave.send(1);
        EXPECT_EQ(inside.recv(), "R3");
        leave.send(1);
        finished.wait();
      },
      with_workers(2));
}

TEST(RWMutex, StandardLockTypesAndTryVariants) {
  rt::run([] {
    rt::shared_mutex mu;
    {
      std::shared_lock a(mu);
      std::shared_lock b(mu);  // two shared holds at once
      EXPECT_TRUE(a.owns_lock() && b.owns_lock());
      EXPECT_FALSE(mu.try_lock());
      std::unique_lock c(mu, std::try_to_lock);
      EXPECT_FALSE(c.owns_lock());
    }
    {
      std::unique_lock lk(mu);
      EXPECT_FALSE(mu.try_lock_shared());
      EXPECT_FALSE(mu.try_lock());
      std::shared_lock s(mu, std::try_to_lock);
      EXPECT_FALSE(s.owns_lock());
    }
    { std::lock_guard g(mu); }
    rt::mutex other;
    { std::scoped_lock both(mu, other); }
    EXPECT_TRUE(mu.try_lock_shared());
    mu.unlock_shared();
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

// Plain threads and fibers share one rwmutex: exclusion holds across both kinds of waiter.
TEST(RWMutex, PlainThreadsAndFibersMix) {
  constexpr int threads = 2, fibers = 6;
  const int per = 3000 / kSlow;
  std::atomic<int> readers{0}, writers{0}, bad{0};
  long written = 0;
  rt::run(
      [&] {
        rt::rwmutex mu;
        auto body = [&](int who) {
          for (int i = 0; i < per; ++i) {
            if ((i + who) % 3 == 0) {
              std::unique_lock lk(mu);
              if (writers.fetch_add(1) != 0 || readers.load() != 0) bad.fetch_add(1);
              ++written;
              writers.fetch_sub(1);
            } else {
              std::shared_lock lk(mu);
              readers.fetch_add(1);
              if (writers.load() != 0) bad.fetch_add(1);
              if (i % 32 == 0) rt::yield();
              readers.fetch_sub(1);
            }
          }
        };
        rt::wait_group wg;
        wg.add(fibers);
        for (int f = 0; f < fibers; ++f)
          rt::go([&, f] {
            body(f);
            wg.done();
          });
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t) ts.emplace_back(body, 100 + t);
        wg.wait();
        for (auto& t : ts) t.join();
      },
      with_workers(2));
  EXPECT_EQ(bad.load(), 0);
  long writes = 0;
  for (int who : {0, 1, 2, 3, 4, 5, 100, 101}) {
    for (int i = 0; i < per; ++i) writes += (i + who) % 3 == 0;
  }
  EXPECT_EQ(written, writes);
}

// A fiber left parked on an rwmutex when main returns is abandoned; a global rwmutex then still
// works for plain threads and for the next rt::run (its queue holds no dead waiter).
TEST(RWMutex, AbandonedWaiterLeavesItUsable) {
  static rt::rwmutex mu;
  rt::run([] {
    mu.lock();
    rt::go([] { mu.lock_shared(); });
    until_parked(1);
    rt::go([] { mu.lock(); });
    until_parked(2);
    mu.unlock();  // hands it to the reader, which never runs again: held by an abandoned fiber
    until_parked(1);
  });
  // The reader's hold is kept (documented); the writer's waiter was unlinked at shutdown.
  EXPECT_FALSE(mu.try_lock());
  EXPECT_TRUE(mu.try_lock_shared());  // no dead writer left in the queue to block readers
  mu.unlock_shared();
  mu.unlock_shared();  // release the abandoned reader's hold ourselves (no owner, as in Go)
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

using RWMutexDeathTest = ::testing::Test;

TEST(RWMutexDeathTest, UnlockOfUnlockedIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(rt::run([] {
                 rt::rwmutex mu;
                 mu.unlock();
               }),
               "sync: Unlock of unlocked RWMutex \\(rt::rwmutex::unlock\\)");
  EXPECT_DEATH(rt::run([] {
                 rt::rwmutex mu;
                 mu.lock();
                 mu.unlock_shared();
               }),
               "sync: RUnlock of unlocked RWMutex \\(rt::rwmutex::unlock_shared\\)");
}

}  // namespace
