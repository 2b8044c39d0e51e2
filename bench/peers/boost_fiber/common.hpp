// Shared pieces of the Boost.Fiber peer benchmark (see main.cpp for the
// overview): the fiber runtime set-up, spawn helpers, a wait-group and a
// one-shot event built on fiber-aware mutex/condition_variable, and the
// workload entry points.
#pragma once

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <boost/fiber/all.hpp>

namespace peer {

// ---------------------------------------------------------------------------
// Stacks
//
// 64 KiB per fiber, the same default as librt-csp. fixedsize_stack on Linux is
// a plain std::malloc/std::free of that size (Boost.Context only mmaps stacks
// on OpenBSD), so 1,000,000 fibers do NOT need 1,000,000 memory mappings and
// vm.max_map_count (65530 here) is not a limit. protected_fixedsize_stack is
// deliberately not used: it mmaps every stack plus a guard page, i.e. >= 1
// mapping per fiber, which hits max_map_count long before 1e6 fibers.
// pooled_fixedsize_stack is not used either: its boost::pool is not
// thread-safe, and with work_stealing a fiber allocated on one thread is
// routinely freed on another.
inline constexpr std::size_t kStackSize = 64 * 1024;
using StackAlloc = boost::fibers::fixedsize_stack;

[[noreturn]] void die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Spawn a detached fiber (Go's `go f()`).
template <class Fn>
void go(Fn&& fn) {
  try {
    boost::fibers::fiber(std::allocator_arg, StackAlloc{kStackSize}, std::forward<Fn>(fn)).detach();
  } catch (std::bad_alloc const&) {
    die("boost_fiber: out of memory allocating a %zu KiB fiber stack", kStackSize / 1024);
  } catch (std::system_error const& e) {
    die("boost_fiber: cannot create fiber: %s", e.what());
  }
}

// Spawn a joinable fiber.
template <class Fn>
boost::fibers::fiber spawn_joinable(Fn&& fn) {
  try {
    return boost::fibers::fiber(std::allocator_arg, StackAlloc{kStackSize}, std::forward<Fn>(fn));
  } catch (std::bad_alloc const&) {
    die("boost_fiber: out of memory allocating a %zu KiB fiber stack", kStackSize / 1024);
  } catch (std::system_error const& e) {
    die("boost_fiber: cannot create fiber: %s", e.what());
  }
}

// Go's sync.WaitGroup: an atomic counter; whoever brings it to zero takes the
// fiber mutex and notifies. wait() re-checks the counter under the mutex, so a
// wake-up cannot be lost.
class WaitGroup {
 public:
  explicit WaitGroup(std::uint64_t n = 0) : count_(n) {}
  WaitGroup(WaitGroup const&) = delete;
  WaitGroup& operator=(WaitGroup const&) = delete;

  void add(std::uint64_t k) { count_.fetch_add(k, std::memory_order_relaxed); }

  void done() {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<boost::fibers::mutex> lk(mtx_);
      cv_.notify_all();
    }
  }

  void wait() {
    std::unique_lock<boost::fibers::mutex> lk(mtx_);
    cv_.wait(lk, [this] { return count_.load(std::memory_order_acquire) == 0; });
  }

 private:
  std::atomic<std::uint64_t> count_;
  boost::fibers::mutex mtx_;
  boost::fibers::condition_variable cv_;
};

// One-shot release event: fiber mutex + condition_variable + flag.
class Event {
 public:
  void set() {
    {
      std::lock_guard<boost::fibers::mutex> lk(mtx_);
      set_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<boost::fibers::mutex> lk(mtx_);
    cv_.wait(lk, [this] { return set_; });
  }

 private:
  boost::fibers::mutex mtx_;
  boost::fibers::condition_variable cv_;
  bool set_ = false;
};

// ---------------------------------------------------------------------------
// Runtime: `workers` OS threads (the main thread is one of them), each running
// boost::fibers::algo::work_stealing. Helper threads park their main fiber on a
// fiber condition_variable, so their dispatchers keep running (and stealing)
// fibers until shutdown.
class Runtime {
 public:
  explicit Runtime(unsigned workers);
  ~Runtime();
  Runtime(Runtime const&) = delete;
  Runtime& operator=(Runtime const&) = delete;

  unsigned workers() const { return workers_; }
  unsigned helper_threads() const { return static_cast<unsigned>(threads_.size()); }
  // true when the scheduler is work_stealing (workers >= 2); see runtime.cpp.
  bool work_stealing() const { return workers_ >= 2; }
  // work_stealing's `suspend` argument (false, Boost's default, unless
  // PEER_BOOST_FIBER_SUSPEND=1).
  bool suspend() const { return suspend_; }

  // Create `fn` as a detached fiber on helper thread `idx` (0-based). It starts
  // in that thread's ready queue; work stealing may still migrate it later.
  void launch_on_helper(unsigned idx, std::function<void()> fn);

  void shutdown();

 private:
  void helper_main(unsigned idx);

  unsigned workers_;
  bool suspend_;
  std::barrier<> ready_;
  std::vector<std::thread> threads_;
  boost::fibers::mutex mtx_;
  boost::fibers::condition_variable cv_;
  bool shutdown_ = false;
  std::vector<std::vector<std::function<void()>>> jobs_;
};

// ---------------------------------------------------------------------------
// Workloads

struct Extra {
  const char* key;
  std::int64_t value;
};

struct Result {
  std::uint64_t wall_ns = 0;
  double ns_per_op = 0.0;
  std::uint64_t checksum = 0;
  std::uint64_t expected = 0;  // what checksum must equal
  std::vector<Extra> extra;    // additional JSON integer fields
};

struct Params {
  std::uint64_t n = 0;
  Runtime* rt = nullptr;
};

Result spawn_run(Params const& p);
Result spawn_park(Params const& p);
Result spawn_tutorial(Params const& p);
Result skynet(Params const& p);
Result pingpong(Params const& p);
Result yield_many(Params const& p);
Result chan_mpmc(Params const& p);
Result fib_forkjoin(Params const& p);
Result chained_spawn(Params const& p);
Result wake_latency(Params const& p);
Result timers(Params const& p);

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace peer
