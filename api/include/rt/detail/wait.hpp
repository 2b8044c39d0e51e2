// rt/detail/wait.hpp — the one blocking mechanism every sync object and channel is built on.
// Not part of the public API; names may change.
//
// A sync object keeps its blocked parties in a waiter_queue guarded by a spinlock. To block, a
// party puts a `waiter` (on its own stack) in the queue and calls block() with the lock held;
// block() releases the lock only once the party can be woken (for a fiber: after it has switched
// off its stack), so a wake() that comes right after the unlock always finds it parked. To wake,
// another party pops the waiter under the lock and calls wake() — the only call that may touch
// the waiter after that is wake() itself, since the woken party's stack frame may then vanish.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace rt::detail {

struct fiber;
struct select_state;
struct worker;

// The worker the calling thread is, or nullptr on a plain thread (runtime/scheduler.hpp). Whether
// a thread is a worker does not change when a fiber moves between workers, but which worker it
// is does, so it is never cached across a switch (see Migration in scheduler.hpp). Inline code
// asks worker_thread_here() below. initial-exec: one load, no __tls_get_addr call; constinit: no
// TLS wrapper call. (The asm name lets worker_thread_here() name it.)
[[gnu::tls_model("initial-exec")]] extern constinit thread_local worker* tls_worker __asm__(
    "rt_detail_tls_worker");

// True on a worker thread while chaos scheduling is off: then a channel operation has no chaos
// point to run and no plain_thread_scope to open, and takes a version without them (one test
// instead of four). Set by each worker thread as it starts, from the run's chaos setting, which
// is fixed before any worker starts and for the whole run; false on every other thread. A fiber
// that tested it before a switch may rely on the answer after it, on whichever worker it then
// runs: every worker of the run holds the same value (see Migration in scheduler.hpp). Read it
// with fast_ops_here(). (The asm name lets fast_ops_here() name it.)
[[gnu::tls_model("initial-exec")]] extern constinit thread_local bool tls_fast_ops __asm__(
    "rt_detail_tls_fast_ops");

// This thread's tls_fast_ops, read where the call is. A plain read is not enough in a loop that
// switches: a build that computes a thread-local's address from the thread pointer
// (ThreadSanitizer's, to pass the address to its check) lets the compiler compute it once per
// function, so a fiber that moved to another worker went on reading the first worker's flag — and
// once that worker thread had ended, its freed thread-local block. On x86-64 the read is one
// %fs-relative compare in inline asm, which the compiler cannot hoist or merge (volatile), and
// which is this thread's by construction; elsewhere a call that is never inlined.
#if defined(__x86_64__) && defined(__ELF__)
// The read itself, shared with worker_thread_here(): whether the `Bytes`-wide thread-local at
// `offset` in this thread's block is nonzero.
template <unsigned Bytes>
[[gnu::always_inline]] inline bool thread_local_set_at(long offset) noexcept {
  bool on;
  if constexpr (Bytes == 1) {
    __asm__ volatile("cmpb $0, %%fs:(%1)" : "=@ccne"(on) : "r"(offset) : "memory");
  } else {
    static_assert(Bytes == 8);
    __asm__ volatile("cmpq $0, %%fs:(%1)" : "=@ccne"(on) : "r"(offset) : "memory");
  }
  return on;
}

[[gnu::always_inline]] inline bool fast_ops_here() noexcept {
  long offset;  // the variable's place in the thread's block: fixed for the process
  __asm__("movq rt_detail_tls_fast_ops@gottpoff(%%rip), %0" : "=r"(offset));
  return thread_local_set_at<sizeof(bool)>(offset);
}
#else
[[gnu::noinline]] bool fast_ops_here() noexcept;
#endif

// Whether the calling thread is a worker (tls_worker is set), read where the call is, for the
// reason given at fast_ops_here(): plain_thread_scope runs inline in the caller's loop of
// selects or try-operations, between which the fiber may move to another worker.
#if defined(__x86_64__) && defined(__ELF__)
[[gnu::always_inline]] inline bool worker_thread_here() noexcept {
  long offset;  // as in fast_ops_here()
  __asm__("movq rt_detail_tls_worker@gottpoff(%%rip), %0" : "=r"(offset));
  return thread_local_set_at<sizeof(worker*)>(offset);
}
#else
[[gnu::noinline]] bool worker_thread_here() noexcept;
#endif

// A test-and-test-and-set lock for critical sections of a few dozen instructions.
class spinlock {
 public:
  // Acquires the lock, spinning (then yielding the OS thread) while it is held.
  void lock() noexcept {
    // acquire: pairs with unlock()'s release, so the protected state written by the previous
    // holder is visible.
    if (!held_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  // Acquires the lock if it is free; never spins.
  bool try_lock() noexcept {
    // acquire: as in lock().
    return !held_.load(std::memory_order_relaxed) &&
           !held_.exchange(true, std::memory_order_acquire);
  }
  // Releases the lock.
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> held_{false};
};

// Why a fiber is parked; printed in deadlock reports, as Go prints `[chan receive]`.
enum class wait_reason : std::uint8_t {
  none,
  chan_receive,
  chan_send,
  chan_receive_nil,
  chan_send_nil,
  select,
  select_no_cases,
  wait_group,
  mutex,
  cond_var,
  sleep,
  io_read,        // rt::net / rt::wait_readable: waiting for a descriptor (netpoll.hpp)
  io_write,       // rt::net / rt::wait_writable
  blocking,       // rt::blocking: waiting for a call on the blocking pool
  once,           // rt::once: another caller is running the function
  semaphore,      // rt::semaphore::acquire
  rwmutex_read,   // rt::rwmutex::lock_shared
  rwmutex_write,  // rt::rwmutex::lock
};

// The words Go prints for a reason, e.g. "chan receive".
const char* wait_reason_text(wait_reason r) noexcept;

class waiter_queue;

// One blocked party — a fiber, or a plain OS thread — in a sync object's queue.
struct waiter {
  fiber* owner;                             // the parked fiber; null for a plain thread
  std::atomic<std::uint32_t> thread_woken;  // plain thread: becomes 1 when woken (a futex word)
  waiter* prev;                             // queue links (owned by the queue's lock)
  waiter* next;
  bool queued;  // true while in a queue (owned by the queue's lock)
  // Where push_back() put it, so that shutdown can unlink the waiter of an abandoned fiber
  // without running its code. Written only by the waiting party itself, before it parks;
  // meaningful only while `queued` (an object destroyed with waiters clears their `queued`).
  waiter_queue* queue;
  spinlock* queue_lock;
  bool success;              // set by the waker: the operation completed
                             // (false: woken by close, or by a timeout)
  void* slot;                // per-object payload, e.g. a channel's element
  select_state* sel;         // the select this waiter is one case of, if any
  std::uint32_t case_index;  // which case of that select

  // Every field empty.
  waiter() noexcept
      : owner(nullptr),
        thread_woken(0),
        prev(nullptr),
        next(nullptr),
        queued(false),
        queue(nullptr),
        queue_lock(nullptr),
        success(false),
        slot(nullptr),
        sel(nullptr),
        case_index(0) {}
  // For a channel's waiter, which waiter_queue::push_back() queues before anything reads it and
  // whose party then parks (block() or park_fiber() sets `owner`): the fields others fill in
  // are left to them instead of being zeroed first (a channel park is a hot path) — the links to
  // push_back, `thread_woken` to block_with (a plain thread's park, before it unlocks),
  // `success` to whoever pops the waiter (the channel's hand-off sets it true, close() false;
  // nothing else pops a channel's waiter), `case_index` to nobody (read only with `sel`). Not
  // for select cases.
  struct queued_at_once_t {};
  static constexpr queued_at_once_t queued_at_once{};
  waiter(queued_at_once_t, void* payload) noexcept : slot(payload), sel(nullptr) {}
};

// A select parked on several queues at once: one waiter per case, all pointing here. The first
// party to claim() one of them wins the select; the others find it taken and skip it.
struct select_state {
  std::atomic<std::uint32_t> done{0};  // 0 until claimed
  std::uint32_t fired = 0;             // the winning case, written by the claimer
  waiter* target = nullptr;            // who to wake: carries the fiber or the thread's futex
};

// Takes w for the caller, who will complete its operation and wake it. Always true for a plain
// waiter; for a select case, true only for the first claimer of its select. Call with the lock
// of the queue w was popped from held.
inline bool claim(waiter* w) noexcept {
  if (!w->sel) return true;
  std::uint32_t expected = 0;
  // acq_rel: the claimer's later writes (the fired index, the element it hands over) are
  // published to the selecting party by wake(); the acquire half orders a losing claimer after
  // the winner.
  if (!w->sel->done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return false;
  w->sel->fired = w->case_index;
  return true;
}

// An intrusive FIFO of waiters. Not synchronised: guard it with the owning object's lock.
class waiter_queue {
 public:
  // True when nobody waits.
  bool empty() const noexcept { return head_ == nullptr; }
  // Appends w (FIFO: waiters are served in arrival order); `lk` is the lock guarding this
  // queue, recorded in w for shutdown (see waiter::queue).
  void push_back(waiter* w, spinlock& lk) noexcept {
    w->queue = this;
    w->queue_lock = &lk;
    w->next = nullptr;
    w->prev = tail_;
    (tail_ ? tail_->next : head_) = w;
    tail_ = w;
    w->queued = true;
  }
  // Removes and returns the oldest waiter, or nullptr.
  waiter* pop_front() noexcept {
    waiter* w = head_;
    if (!w) return nullptr;
    pop_front(w);
    return w;
  }
  // Removes w, the oldest waiter, which front() just returned (a hand-off: no second look).
  void pop_front(waiter* w) noexcept {
    head_ = w->next;
    (head_ ? head_->prev : tail_) = nullptr;
    w->queued = false;
  }
  // Removes and returns the oldest waiter that claim() grants, dropping the select cases that
  // another party already won; nullptr when none is left.
  waiter* pop_claimed() noexcept {
    while (waiter* w = pop_front()) {
      if (claim(w)) return w;
    }
    return nullptr;
  }
  // Removes w if it is still queued (a waiter giving up: a timeout, a select's other cases).
  void remove(waiter* w) noexcept;
  // For the destructor of the queue's object (lock held): whoever still waits is abandoned —
  // only a leftover fiber of a finished rt::run can legitimately be here — and must not be
  // reached through this queue again: each waiter's `queued` is cleared, so that shutdown does
  // not unlink it from freed memory.
  void detach_all() noexcept;
  // Empties the queue and returns its waiters as a list linked by `next`, oldest first. The
  // caller owns them now and clears each one's `queued` before waking it (one pass, not two).
  waiter* take_all() noexcept;
  // The oldest waiter without removing it, or nullptr.
  waiter* front() const noexcept { return head_; }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

// While a plain (non-fiber) thread is inside an operation that may wake fibers, rt::run must not
// tear the runtime down: the thread may have taken a fiber's waiter off a queue and not yet woken
// it, and shutdown, which unlinks the waiters of leftover fibers and releases their mutexes, must
// see every queue at rest. Such operations open a plain_thread_scope first. On a fiber it costs
// one load and does nothing; on a plain thread it registers the thread (waiting, if rt::run is
// tearing down, until it is done). Never open one while holding a sync object's spinlock:
// shutdown takes those locks, so a thread waiting for it with one held would hang rt::run.
// block() lets go of the scope while the thread sleeps.
bool enter_plain_thread_scope() noexcept;  // false on a worker thread (nothing to leave)
void leave_plain_thread_scope() noexcept;
// As enter_plain_thread_scope(), but never waits: refuses while rt::run is tearing down. For a
// party that the teardown itself may be waiting for (a stop callback, which shutdown
// unregisters): it must give up instead. Returns 0: refused (nothing entered); 1: entered, leave
// with leave_plain_thread_scope(); 2: a worker thread, nothing to leave.
int try_enter_plain_thread_scope() noexcept;
class try_plain_thread_scope {
 public:
  try_plain_thread_scope() noexcept : state_(try_enter_plain_thread_scope()) {}
  ~try_plain_thread_scope() {
    if (state_ == 1) leave_plain_thread_scope();
  }
  // False: rt::run is tearing down; touch nothing of the runtime.
  explicit operator bool() const noexcept { return state_ != 0; }
  try_plain_thread_scope(const try_plain_thread_scope&) = delete;
  try_plain_thread_scope& operator=(const try_plain_thread_scope&) = delete;

 private:
  int state_;
};
class plain_thread_scope {
 public:
  // On a worker thread: one load, no call. (A channel's send and recv on a worker open none
  // unless chaos is on: see tls_fast_ops.)
  plain_thread_scope() noexcept : held_(!worker_thread_here() && enter_plain_thread_scope()) {}
  ~plain_thread_scope() {
    if (held_) leave_plain_thread_scope();
  }
  plain_thread_scope(const plain_thread_scope&) = delete;
  plain_thread_scope& operator=(const plain_thread_scope&) = delete;

 private:
  bool held_;
};

// plain_thread_scope where an operation may run on a plain thread (General), nothing where it
// runs on a worker thread only (the tls_fast_ops version).
struct no_plain_thread_scope {};
template <bool General>
using plain_thread_scope_if =
    std::conditional_t<General, plain_thread_scope, no_plain_thread_scope>;

// Blocks the caller (fiber or plain thread) until wake(w). Precondition: `lk` is held and `w` is
// queued; block() releases `lk`. It never throws: a fiber still blocked when rt::run shuts down
// is abandoned, not resumed (see runtime/shutdown.cpp).
void block(waiter& w, spinlock& lk, wait_reason why);
// As block(), for a party holding several locks (select): `unlock(arg)` releases them all once
// the party can be woken. `queued`/`n_queued`: the waiters the party has in queues (a select's
// cases), recorded for shutdown; by default w itself.
void block_with(waiter& w, void (*unlock)(void*) noexcept, void* arg, wait_reason why,
                waiter* queued = nullptr, std::size_t n_queued = 0);
// Blocks the caller forever (a nil channel, an empty select): parked fibers show in deadlock
// reports; a plain thread sleeps until the process ends.
[[noreturn]] void block_forever(wait_reason why);
// Chaos scheduling (rt::options::chaos_seed): while on, operations call a chaos point before and
// after they run, which sometimes yields. Off, a chaos point costs one relaxed load.
// Neither kind throws; chaos_point_nothrow() is the noexcept one, for operations used in
// destructors (unlock, wait_group::done, close).
extern std::atomic<bool> chaos_enabled;
void chaos_yield();
void chaos_yield_nothrow() noexcept;
inline void chaos_point() {
  if (chaos_enabled.load(std::memory_order_relaxed)) chaos_yield();
}
inline void chaos_point_nothrow() noexcept {
  if (chaos_enabled.load(std::memory_order_relaxed)) chaos_yield_nothrow();
}

// A fast pseudo-random number (per worker; per thread elsewhere), for select's fair choice.
std::uint64_t fast_random() noexcept;
// Wakes w's party: readies the fiber (it runs next on this worker) or wakes the thread.
void wake(waiter& w) noexcept;
// The same, called on a worker thread only (fast_ops_here() was true): one test fewer.
void wake_on_worker(waiter& w) noexcept;
// Wakes every waiter of a list that take_all() returned (after the lock is released), reading
// each `next` before the wake, since a woken party's frame may vanish at once.
void wake_all(waiter* list) noexcept;
// The calling fiber's control block, or nullptr on a plain thread.
fiber* current_fiber() noexcept;

}  // namespace rt::detail
