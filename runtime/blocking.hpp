// runtime/blocking.hpp — the blocking pool behind rt::blocking (rt/blocking.hpp).
//
// One per runtime (runtime::blocking). Plain std::threads, started lazily (none until the first
// call) up to options::max_blocking_threads; jobs beyond that wait in a FIFO queue. A thread
// that has had no job for blocking_keep_alive exits (as Tokio's blocking pool does), so a burst
// of calls does not leave dozens of threads behind. The argument (parking, waking, the deadlock
// check, shutdown) is in blocking.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "rt/options.hpp"

namespace rt::detail {

class runtime;
struct fiber;
class spinlock;

// How long a pool thread waits for a job before it exits.
inline constexpr std::chrono::seconds blocking_keep_alive{10};
// options::max_blocking_threads when neither it nor RT_BLOCKING_THREADS says otherwise.
inline constexpr unsigned default_blocking_threads = 64;
// The most pool threads options::max_blocking_threads / RT_BLOCKING_THREADS may ask for.
inline constexpr unsigned max_blocking_threads_limit = 10'000;

// One rt::blocking call, on the calling fiber's stack.
struct blocking_job {
  void (*call)(void*) noexcept = nullptr;
  void* ctx = nullptr;
  fiber* owner = nullptr;       // the parked caller, woken when call has returned
  spinlock* park_lk = nullptr;  // held by the caller until it is parked (see blocking.cpp)
  blocking_job* next = nullptr;
};

struct blocking_pool {
  blocking_pool() = default;
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;
  ~blocking_pool() { stop(); }

  // Queues job (starting a thread if none is idle and the bound allows); false once the pool
  // is stopping (the caller then parks for good: it will be abandoned). Throws
  // rt::runtime_error if no thread could be started and none exists.
  bool submit(runtime& rt, blocking_job& job);
  // Shutdown: no job starts from here on (queued ones are dropped), no finished job wakes its
  // fiber, and every thread is joined (after the job it runs has returned).
  void stop() noexcept;

  // The fiber of a call, resumed: the call is no longer in flight.
  void call_resumed() noexcept { in_flight_.fetch_sub(1); }
  // For check_deadlock: calls submitted whose fiber has not yet been resumed, and live pool
  // threads.
  std::size_t in_flight() const noexcept { return in_flight_.load(); }
  unsigned live_threads() const noexcept { return threads_.load(); }
  // For rt::stats().
  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }

 private:
  void thread_main(runtime& rt, std::size_t slot);

  std::mutex mu_;
  std::condition_variable work_cv_;  // idle threads wait here for a job (or for stop)
  blocking_job* head_ = nullptr;     // the FIFO of jobs no thread has taken (mu_)
  blocking_job* tail_ = nullptr;
  unsigned idle_ = 0;      // threads waiting on work_cv_ (mu_)
  bool stopping_ = false;  // (mu_)
  // Every thread started and not yet joined (mu_); a thread that exits on its keep-alive moves
  // its handle to `exited_`, joined by the next submit that starts a thread, or by stop().
  std::vector<std::thread> slots_;
  std::vector<std::thread> exited_;
  // seq_cst: check_deadlock reads in_flight_ before it looks at the run queues (blocking.cpp).
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<unsigned> threads_{0};    // live threads, for the deadlock check's thread count
  std::atomic<std::size_t> queued_{0};  // length of the FIFO (relaxed: statistics only)
};

// Resolves options::max_blocking_threads (0: RT_BLOCKING_THREADS, else 64) and checks it; a
// bad value throws rt::runtime_error naming its source.
void resolve_blocking_options(options& o);

}  // namespace rt::detail
