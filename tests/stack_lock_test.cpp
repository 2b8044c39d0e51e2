// tests/stack_lock_test.cpp — no system call for a fiber stack while a channel's spinlock is held
// (issue 9, item 17).
//
// A fiber that parks on a channel holds the channel's spinlock until it is off its stack; when
// it switches straight to the next local fiber (the direct switch), that fiber — if it has never
// run — needs a stack first. With the worker's stack cache empty, taking one locks the pool and
// mmaps (and madvises) a new slab: system calls, with every other party of that channel spinning
// on its lock meanwhile. The runtime leaves such a switch to the scheduler context instead.
//
// How it is observed: this executable interposes mmap (the stack pool maps each slab through
// it) and, on every call, asks whether the watched channel's spinlock is held (try_lock). On one
// worker, with no other thread using the channel, a held lock can only be the calling thread's
// own: an mmap under the channel's lock. Not under sanitizers, whose runtimes intercept mmap
// themselves.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <rt/csp.hpp>

#include <atomic>

#include "test_support.hpp"

namespace {

std::atomic<rt::detail::spinlock*> g_watched{nullptr};
std::atomic<long> g_mmaps{0};
std::atomic<long> g_mmaps_under_lock{0};

}  // namespace

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
extern "C" void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (rt::detail::spinlock* lk = g_watched.load()) {
    g_mmaps.fetch_add(1);
    if (lk->try_lock()) {
      lk->unlock();
    } else {
      g_mmaps_under_lock.fetch_add(1);
    }
  }
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}
#endif

TEST(StackLock, NoMmapWhileAChannelLockIsHeld) {
  if (rt_test::kSanitized) GTEST_SKIP() << "sanitizer runtimes intercept mmap themselves";
  // Each child parks holding a fresh stack, so the worker's cache runs dry every batch and the
  // pool maps a new slab every few hundred stacks; each child is switched to straight from the
  // main fiber parking in ch.recv() (holding ch's lock) when the direct switch is allowed.
  const int n = 2000;
  g_mmaps = 0;
  g_mmaps_under_lock = 0;
  rt::run(
      [&] {
        auto ch = rt::make_chan<int>();
        auto hold = rt::make_chan<int>();
        g_watched.store(&ch.state()->lock);
        for (int i = 0; i < n; ++i) {
          rt::go([ch, hold, i]() mutable {
            ch.send(i);
            hold.recv();  // keep the stack until the end
          });
          EXPECT_EQ(ch.recv(), i);
        }
        g_watched.store(nullptr);
        hold.close();
      },
      rt_test::with_workers(1));
  EXPECT_GT(g_mmaps.load(), 0) << "the interposed mmap was never called: the test saw nothing";
  EXPECT_EQ(g_mmaps_under_lock.load(), 0);
}
