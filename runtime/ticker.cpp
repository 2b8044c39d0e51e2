// runtime/ticker.cpp — rt::timer, rt::after_func, rt::ticker and rt::tick (rt/timer.hpp,
// rt/ticker.hpp), on top of the per-worker timer heaps of timer.hpp.
//
// One state type serves all four: a detail::timer (the heap entry) plus what its fire does —
// send on a channel (timer, ticker), send on a weakly held channel (tick), or spawn a fiber
// (after_func) — and, for tickers, a period after which the fire re-arms it.
//
// The protocol (`mu` is the state's spinlock; a "stopper" is stop, reset, or a ticker's
// destructor):
// - A stopper takes mu and sets `stopping`, then, if the timer is armed, cancel_timer(): that
//   either removes it from its heap or waits for a fire already under way to finish. It then
//   drains c() (a value sent and not received would be stale: Go 1.23), clears `stopping`, and
//   for reset arms it again — all before letting go of mu. Arming happens only under mu, so
//   `home` (which cancel_timer reads without the heap's lock) is stable while mu is held.
// - A fire takes mu with try_lock, spinning while another fire holds it (a ticker re-armed by a
//   fire can fire again on another worker before the first lets go: a few instructions). If a
//   stopper holds it (`stopping`), the fire gives up at once and does nothing: the stopper is in,
//   or on its way into, cancel_timer for this very fire and would discard its value anyway. It
//   must not wait for mu: the stopper waits for it inside cancel_timer (a deadlock), and a fire
//   runs on a worker's scheduler stack, where nothing may park. So an armed timer whose
//   cancel_timer returns false was still kept from delivering: stop() is then true.
// - A fire that holds mu sends with try_send (capacity 1: never blocks; a ticker's tick that
//   finds the channel full is dropped), then a one-shot marks itself fired and calls finish()
//   before letting go of mu (a finish() after it could overwrite the `pending` of a reset that
//   re-armed it meanwhile); a ticker re-arms itself instead (its state stays pending, nobody
//   waits on finish()).
// - While armed, the state holds itself (`self`): dropping every handle does not stop a timer,
//   and the heap's raw pointer stays valid. Disarming moves `self` out under mu and releases it
//   after mu is let go of (releasing it may free the state, mu included).
// - Shutdown drops armed timers through `drop`, which releases `self`: no leak, no fire after
//   rt::run returns (the workers are joined first), and a handle kept past rt::run finds the
//   timer disarmed (stop() then touches no heap).
//
// Plain threads inside rt::run have no timer heap: they arm into one of the runtime's workers'
// heaps under its timer_lock (add_timer_on; why that is sound is in timer.hpp), inside a
// plain_thread_scope, which keeps rt::run from tearing the workers down meanwhile. The helper
// fiber rt::after uses instead would not do here: a stopper holds mu while arming, and a fiber
// spinning on mu could then occupy the one worker that helper needs (one worker: a deadlock).
#include <immintrin.h>

#include <atomic>
#include <memory>

#include "rt/errors.hpp"
#include "rt/runtime.hpp"
#include "rt/ticker.hpp"
#include "rt/timer.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt::detail {
namespace {

using time_point = std::chrono::steady_clock::time_point;

// relaxed: a statistic for tests, read once every state it counts is at rest (no ordering with
// anything else is promised).
std::atomic<long> g_states_alive{0};

}  // namespace

long timer_states_alive() noexcept {
  return g_states_alive.load(std::memory_order_relaxed);
}

struct timer_state final : timer, std::enable_shared_from_this<timer_state> {
  timer_state() noexcept { g_states_alive.fetch_add(1, std::memory_order_relaxed); }
  ~timer_state() { g_states_alive.fetch_sub(1, std::memory_order_relaxed); }
  timer_state(const timer_state&) = delete;
  timer_state& operator=(const timer_state&) = delete;

  std::int64_t period = 0;                        // ticker's interval; 0: one-shot
  chan<time_point> ch;                            // timer, ticker (nil: after_func, tick)
  std::weak_ptr<chan_state<time_point>> weak_ch;  // tick: held weakly
  std::unique_ptr<timer_func> fn;                 // after_func
  spinlock mu;                                    // see the protocol above
  std::atomic<bool> stopping{false};              // a stopper holds mu (seq_cst)
  bool armed = false;                             // under mu: in a heap, or firing
  std::shared_ptr<timer_state> self;              // under mu: kept alive while armed
};

namespace {

void fire_timer(timer* t) noexcept;

void drop_timer(timer* t) noexcept {
  // Shutdown, with the workers joined: nobody else touches the state now.
  auto* s = static_cast<timer_state*>(t);
  s->armed = false;
  s->state.store(timer::idle, std::memory_order_relaxed);  // no heap of a dead runtime
  std::shared_ptr<timer_state> keep = std::move(s->self);  // may free s (and its channel)
}

// Arms s (mu held) to fire at `when` on w's heap.
void arm_locked(timer_state* s, std::int64_t when, worker& w) {
  s->when = when;
  s->armed = true;
  if (!s->self) s->self = s->shared_from_this();
  add_timer_on(w, s);
}

// Disarms s (mu held): true if an armed timer was kept from delivering, or a delivered value was
// drained unreceived. `keep` takes the state's hold on itself, to be released after mu.
bool disarm_locked(timer_state* s, std::shared_ptr<timer_state>& keep) noexcept {
  s->stopping.store(true);  // seq_cst: see fire_timer's loop
  bool stopped = false;
  if (s->armed) {
    // Removed unfired, or a fire under way gave up for us (it cannot hold mu: we do).
    cancel_timer(s);
    s->armed = false;
    keep = std::move(s->self);
    stopped = true;
  }
  if (s->ch && s->ch.try_recv()) stopped = true;  // sent, not received: stale from now on
  // Before any re-arm: a fire of the new arming must not take this stopper for its own.
  s->stopping.store(false);
  return stopped;
}

void fire_timer(timer* t) noexcept {
  auto* s = static_cast<timer_state*>(t);
  while (!s->mu.try_lock()) {
    if (s->stopping.load()) {
      s->finish();  // a stopper waits for this in cancel_timer and discards what we would send
      return;
    }
    _mm_pause();  // another fire of this ticker is letting go of it
  }
  const std::int64_t now = now_ns();
  auto tp = time_point(std::chrono::nanoseconds(now));
  if (s->fn) {
    // after_func: fn runs in a fiber of its own; a fire must not run user code or park.
    s->armed = false;
    std::shared_ptr<timer_state> keep = std::move(s->self);
    s->finish();
    s->mu.unlock();
    rt::go([keep = std::move(keep)] { keep->fn->run(); });
    return;
  }
  chan<time_point> ch = s->ch;
  if (!ch) ch = chan<time_point>::from_shared_state(s->weak_ch.lock());
  if (ch) ch.try_send(tp);  // capacity 1: never blocks; full (a slow receiver): tick dropped
  if (s->period > 0 && ch) {
    // Next tick: the first multiple of the period after now (a ticker that fell behind skips
    // the ticks it missed), saturated to never.
    std::int64_t next;
    const std::int64_t behind = now - s->when;
    const std::int64_t steps = behind / s->period + 1;
    if (__builtin_mul_overflow(steps, s->period, &next) ||
        __builtin_add_overflow(s->when, next, &next)) {
      next = no_deadline;
    }
    s->when = next;
    add_timer(s);  // on this worker: its state goes from firing to pending; nobody waits on it
    s->mu.unlock();
    return;
  }
  // One-shot, or a tick whose channel nobody holds any more: done.
  s->armed = false;
  std::shared_ptr<timer_state> keep = std::move(s->self);
  s->finish();
  s->mu.unlock();
  // `keep` (and `ch`) released here: may free the state, and the channel, on this scheduler
  // stack (their destructors neither park nor block).
}

// The worker to arm on: the calling one, or, for a plain thread inside rt::run (which must hold
// a plain_thread_scope), one of the runtime's in turn; nullptr outside rt::run.
worker* arming_worker() noexcept {
  if (worker* w = current_worker()) return w;
  runtime* rt = g_current_runtime.load();
  if (!rt) return nullptr;
  note_plain_thread_use();
  // relaxed: only spreads plain threads' timers over the workers.
  static std::atomic<unsigned> turn{0};
  return rt->workers[turn.fetch_add(1, std::memory_order_relaxed) % rt->workers.size()].get();
}

[[noreturn]] void no_runtime(const char* who) {
  throw rt::runtime_error(std::string(who) +
                          " called with no runtime running: its timer runs on the runtime's "
                          "workers; call it from inside rt::run(...), or from another thread "
                          "while rt::run is running");
}

// Makes a state and arms it d from now; `who` names the entry point for errors.
std::shared_ptr<timer_state> start(std::int64_t when, const char* who,
                                   void (*setup)(timer_state&, void*), void* arg) {
  plain_thread_scope scope;
  worker* w = arming_worker();
  if (!w) no_runtime(who);
  auto s = std::make_shared<timer_state>();
  s->fire = fire_timer;  // set once: a fire of an earlier arming may read them at any time
  s->drop = drop_timer;
  setup(*s, arg);
  std::lock_guard lk(s->mu);
  arm_locked(s.get(), when, *w);
  return s;
}

std::int64_t when_after(std::chrono::nanoseconds d) noexcept {
  return deadline_ns(deadline_after(d));  // saturated: a d too long never fires
}

bool stop_state(timer_state* s) noexcept {
  plain_thread_scope scope;  // a plain thread: rt::run does not tear the heaps down meanwhile
  std::shared_ptr<timer_state> keep;
  bool stopped;
  {
    std::lock_guard lk(s->mu);
    stopped = disarm_locked(s, keep);
  }
  return stopped;
}

// Stops s and arms it again at `when`: the stop's result.
bool reset_state(timer_state* s, std::chrono::nanoseconds d, std::int64_t period, const char* who) {
  plain_thread_scope scope;
  worker* w = arming_worker();
  if (!w) no_runtime(who);
  std::shared_ptr<timer_state> keep;
  bool stopped;
  {
    std::lock_guard lk(s->mu);
    stopped = disarm_locked(s, keep);
    if (period > 0) s->period = period;
    arm_locked(s, when_after(d), *w);
  }
  return stopped;
}

}  // namespace

rt::timer make_after_func(std::chrono::nanoseconds d, std::unique_ptr<timer_func> fn) {
  return rt::timer(start(
      when_after(d), "rt::after_func",
      [](timer_state& s, void* f) {
        s.fn = std::move(*static_cast<std::unique_ptr<timer_func>*>(f));
      },
      &fn));
}

}  // namespace rt::detail

namespace rt {

using detail::timer_state;

timer::timer(std::chrono::nanoseconds d)
    : s_(detail::start(
          detail::when_after(d), "rt::timer",
          [](timer_state& s, void*) { s.ch = make_chan<time_point>(1); }, nullptr)) {}

recv_chan<timer::time_point> timer::c() const {
  if (!s_) return {};
  return s_->ch;
}

bool timer::stop() const {
  if (!s_) return false;
  return detail::stop_state(s_.get());
}

bool timer::reset(std::chrono::nanoseconds d) const {
  if (!s_) {
    throw rt::runtime_error(
        "rt::timer::reset called on a timer with no state (default-constructed): make it with "
        "rt::timer(d) or rt::after_func");
  }
  return detail::reset_state(s_.get(), d, 0, "rt::timer::reset");
}

namespace {

std::int64_t interval(std::chrono::nanoseconds d, const char* what) {
  if (d.count() <= 0) throw rt::runtime_error(what);
  return d.count();
}

}  // namespace

ticker::ticker(std::chrono::nanoseconds d) {
  const std::int64_t p = interval(d, "rt::ticker: non-positive interval");
  s_ = detail::start(
      detail::when_after(d), "rt::ticker",
      [](timer_state& s, void* p) {
        s.ch = make_chan<time_point>(1);
        s.period = *static_cast<const std::int64_t*>(p);
      },
      const_cast<std::int64_t*>(&p));
}

ticker& ticker::operator=(ticker&& o) noexcept {
  if (this != &o) {
    stop();
    s_ = std::move(o.s_);
  }
  return *this;
}

ticker::~ticker() {
  stop();
}

recv_chan<ticker::time_point> ticker::c() const {
  if (!s_) return {};
  return s_->ch;
}

void ticker::stop() {
  if (s_) detail::stop_state(s_.get());
}

void ticker::reset(std::chrono::nanoseconds d) {
  const std::int64_t p = interval(d, "rt::ticker::reset: non-positive interval");
  if (!s_) throw rt::runtime_error("rt::ticker::reset called on an empty (moved-from) ticker");
  detail::reset_state(s_.get(), d, p, "rt::ticker::reset");
}

recv_chan<std::chrono::steady_clock::time_point> tick(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return {};
  auto ch = make_chan<std::chrono::steady_clock::time_point>(1);
  struct arg {
    chan<std::chrono::steady_clock::time_point>* ch;
    std::int64_t period;
  } a{&ch, d.count()};
  detail::start(
      detail::when_after(d), "rt::tick",
      [](timer_state& s, void* p) {
        auto* x = static_cast<arg*>(p);
        s.weak_ch = x->ch->shared_state();
        s.period = x->period;
      },
      &a);
  return ch;  // the only strong handle: once it and its copies are gone, the next tick frees all
}

}  // namespace rt
