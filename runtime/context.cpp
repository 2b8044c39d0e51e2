// runtime/context.cpp — see api/include/rt/context.hpp.
//
// Shape (after Go's context package):
// - Every derived context is a ctx_node with an intrusive reference count. Handles (context,
//   cancel_func) and children hold strong references to a node; a node holds a strong reference
//   to its parent (values and deadlines are looked up through it).
// - A cancelable node (with_cancel/deadline/timeout/stop_token) has a cancel_part: its err, its
//   done channel, its stop_source, its timer, and the intrusive list of the cancelable nodes
//   below it whose nearest cancelable ancestor it is ("children"). The list holds RAW pointers:
//   a child that nobody holds any more is destroyed, and its destroy() first unlinks it under
//   the parent's lock — so an abandoned child leaves nothing behind.
// - Locks: each cancel_part has a std::mutex; the lock order is parent before child (cancel
//   marks the whole subtree top-down while holding the locks on the path). Nothing under these
//   locks can switch fibers: marking sets err, closes the done channel through chan_core::close
//   (the channel core, which has no chaos points), disarms timers and links/unlinks nodes. So a
//   std::mutex is safe here (a fiber never parks holding one) and the lock-held phase is short.
// - A second cancel waits on the lock for the first one's marking phase, so when any cancel
//   returns the whole subtree reports done. Stop callbacks (user code) run after every lock is
//   released, on nodes pinned by a reference taken during marking.
// - A node whose count reached zero may still be reached through its parent's list until its
//   destroy() has unlinked it: marking it is harmless (its members are alive: destroy waits for
//   the parent's lock before freeing anything), and try_ref() refuses to revive it.
//
// Timers (deadline). The timer is embedded in the node and holds NO reference (an abandoned
// with_timeout context must be freed at once, not at its deadline). Its fire runs on a worker's
// scheduler stack, where nothing may park, and cancel_timer() (called by destroy() and by
// marking) spins until a running fire has called finish(). So the fire only:
//   1. try_ref()s the node; failing means destroy() is running or about to run and waits in
//      cancel_timer for us: finish() and touch nothing more;
//   2. finish()es the timer — from here on cancel_timer never waits for us, so if the reference
//      we hold turns out to be the last one, the node's destroy() cannot wait on its own fire;
//   3. spawns a fiber that owns that reference, cancels with deadline_exceeded and drops it. The
//      cancel (stop callbacks are user code, the last unref may run user destructors of values)
//      thus never runs on the scheduler stack.
// Arming needs a worker thread (add_timer uses the calling worker's heap). From a fiber we arm
// directly. From a plain thread inside rt::run we spawn a tiny fiber that arms it (as rt::after
// does): it holds a reference only until it has run, under the node's lock it arms only if the
// node is not done yet, and marking disarms only what is armed (the `armed` flag is read and
// written under the node's lock), so arming races neither cancel nor destroy. Shutdown drops
// still-armed timers: drop() resets the timer to idle so that a context outliving rt::run never
// touches the freed worker's heap.
#include <atomic>
#include <mutex>
#include <vector>

#include "fiber.hpp"
#include "rt/chan.hpp"
#include "rt/context.hpp"
#include "rt/select.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt {
namespace detail {

struct ctx_timer : timer {
  ctx_node* owner = nullptr;
};

struct cancel_part {
  std::mutex mu;
  // relaxed loads are fine for err(): the value is set once, under mu, before done is closed;
  // a reader that sees it non-zero needs nothing else published. acquire/release anyway, so a
  // fiber that saw err() set also sees the effects the canceller published before cancelling.
  std::atomic<int> err{0};
  chan<std::monostate> done = make_chan<std::monostate>();
  std::stop_source ss;
  ctx_node* head = nullptr;  // children whose nearest cancelable ancestor this is (under mu)
  ctx_timer t;
  bool armed = false;  // t is in a heap (under mu)
  // For this node as a child: links in its canceller's list (under the canceller's mu).
  ctx_node* prev = nullptr;
  ctx_node* next = nullptr;
  bool linked = false;
  struct stop_cb {
    ctx_node* n;
    void operator()() const noexcept;
  };
  std::optional<std::stop_callback<stop_cb>> on_stop;  // with_stop_token's hook
};

struct ctx_node {
  // acq_rel on decrement: the last unref must see every other holder's writes before destroy.
  std::atomic<long> refs{1};
  ctx_node* parent = nullptr;     // strong; null under background
  ctx_node* canceller = nullptr;  // nearest cancelable ancestor-or-self (kept alive via parent)
  std::int64_t deadline = no_deadline;
  const void* key = nullptr;
  std::unique_ptr<ctx_value_base> value;
  std::optional<cancel_part> c;
};

namespace {

// A reference taken only if the node is still alive (count > 0): a node whose count reached
// zero is being destroyed and must not be revived.
bool try_ref(ctx_node* n) noexcept {
  long r = n->refs.load(std::memory_order_relaxed);
  while (r > 0) {
    // relaxed: the caller reads nothing published by the other holders through this count; the
    // node's state it then reads is under the node's lock or atomic itself.
    if (n->refs.compare_exchange_weak(r, r + 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

// Owns one reference.
struct node_ref {
  ctx_node* n;
  explicit node_ref(ctx_node* p) noexcept : n(p) {}
  node_ref(node_ref&& o) noexcept : n(std::exchange(o.n, nullptr)) {}
  node_ref(const node_ref&) = delete;
  ~node_ref() {
    if (n) ctx_unref(n);
  }
};

void unlink_locked(cancel_part& pc, ctx_node* n) noexcept {
  cancel_part& c = *n->c;
  if (!c.linked) return;
  (c.prev ? c.prev->c->next : pc.head) = c.next;
  if (c.next) c.next->c->prev = c.prev;
  c.prev = c.next = nullptr;
  c.linked = false;
}

void disarm_locked(cancel_part& c) noexcept {
  if (!c.armed) return;
  c.armed = false;
  // Already fired and finished (or dropped by shutdown: idle): nothing to disarm, and its home
  // worker may be gone (a context outliving rt::run), so do not go back to its heap. acquire:
  // pairs with finish()'s release, as in cancel_timer.
  const auto st = c.t.state.load(std::memory_order_acquire);
  if (st == timer::done || st == timer::idle) return;
  cancel_timer(&c.t);
}

// Marks n and its subtree done with e. n's lock is held, n is live. Takes a reference to each
// node it can (for the stop callbacks, run later without locks).
void mark_locked(ctx_node* n, int e, std::vector<ctx_node*>& pinned) {
  cancel_part& c = *n->c;
  c.err.store(e, std::memory_order_release);
  c.done.state()->close();  // never closed before: err was 0 under this lock
  if (try_ref(n)) pinned.push_back(n);
  disarm_locked(c);
  while (ctx_node* ch = c.head) {
    cancel_part& cc = *ch->c;
    std::lock_guard lk(cc.mu);
    unlink_locked(c, ch);
    if (cc.err.load(std::memory_order_relaxed) == 0) mark_locked(ch, e, pinned);
  }
}

void cancel(ctx_node* n, int e, bool remove_from_parent) noexcept {
  std::vector<ctx_node*> pinned;
  {
    cancel_part& c = *n->c;
    std::lock_guard lk(c.mu);
    // Already done: whoever did it held this lock through its whole marking phase, so the
    // subtree is done now too.
    if (c.err.load(std::memory_order_relaxed) != 0) return;
    try {
      mark_locked(n, e, pinned);
    } catch (...) {
      // bad_alloc growing `pinned`: the marking itself is complete below the failure point only;
      // there is no way to report it from a noexcept cancel.
      std::terminate();
    }
  }
  if (remove_from_parent && n->parent && n->parent->canceller) {
    cancel_part& pc = *n->parent->canceller->c;
    std::lock_guard lk(pc.mu);
    unlink_locked(pc, n);
  }
  for (ctx_node* p : pinned) {
    p->c->ss.request_stop();
    ctx_unref(p);
  }
}

void destroy(ctx_node* n) noexcept {
  if (n->c) {
    cancel_part& c = *n->c;
    // Waits for a stop callback running on another thread (it may be cancelling n).
    c.on_stop.reset();
    if (n->parent && n->parent->canceller) {
      cancel_part& pc = *n->parent->canceller->c;
      std::lock_guard lk(pc.mu);
      unlink_locked(pc, n);
    }
    // Nobody can reach n now (no reference, not linked): the lock only orders us after the
    // last marking of n. cancel_timer waits for a running fire, which never destroys (see top).
    std::lock_guard lk(c.mu);
    disarm_locked(c);
  }
  ctx_node* parent = n->parent;
  delete n;
  if (parent) ctx_unref(parent);
}

void fire_deadline(timer* t) {
  ctx_node* n = static_cast<ctx_timer*>(t)->owner;
  if (!try_ref(n)) {
    t->finish();  // destroy() waits in cancel_timer for this; n is not ours to touch any more
    return;
  }
  t->finish();
  node_ref ref(n);
  try {
    spawn([r = std::move(ref)]() mutable {
      cancel(r.n, static_cast<int>(context_errc::deadline_exceeded), true);
    });
  } catch (...) {
    // No fiber could be made (out of memory): the reference is dropped here; the deadline is
    // lost, as a failed allocation elsewhere would lose it. Never seen in practice.
  }
}

void arm_locked(ctx_node* n) noexcept {
  cancel_part& c = *n->c;
  if (c.armed || c.err.load(std::memory_order_relaxed) != 0) return;
  c.t.when = n->deadline;
  add_timer(&c.t);
  c.armed = true;
}

// A new cancelable node under parent, registered with the parent's canceller (born done if
// that one is done).
ctx_node* new_cancel_node(const context& parent, ctx_node* pn) {
  auto* n = new ctx_node;
  n->c.emplace();
  n->c->t.owner = n;
  n->c->t.fire = fire_deadline;
  // Shutdown frees the workers' heaps: leave the timer idle so that cancel_timer never goes
  // back to them (a context may outlive rt::run).
  n->c->t.drop = [](timer* t) { t->state.store(timer::idle, std::memory_order_relaxed); };
  if (pn) {
    ctx_ref(pn);
    n->parent = pn;
    n->deadline = pn->deadline;
  }
  n->canceller = n;
  (void)parent;
  if (pn && pn->canceller) {
    cancel_part& pc = *pn->canceller->c;
    std::lock_guard lk(pc.mu);
    const int e = pc.err.load(std::memory_order_relaxed);
    if (e != 0) {
      // Born done: nobody else can see n yet, so no stop callback can be registered.
      n->c->err.store(e, std::memory_order_release);
      n->c->done.state()->close();
      n->c->ss.request_stop();
    } else {
      cancel_part& c = *n->c;
      c.next = pc.head;
      if (pc.head) pc.head->c->prev = n;
      pc.head = n;
      c.linked = true;
    }
  }
  return n;
}

[[noreturn]] void no_runtime(const char* who) {
  throw rt::runtime_error(std::string(who) +
                          " called with no runtime running: its timer runs on the runtime's "
                          "workers; call it from inside rt::run(...), or from another thread "
                          "while rt::run is running");
}

}  // namespace

void cancel_part::stop_cb::operator()() const noexcept {
  cancel(n, static_cast<int>(context_errc::canceled), true);
}

void ctx_ref(ctx_node* n) noexcept {
  // relaxed: a new reference is made from an existing one, which keeps the node alive.
  n->refs.fetch_add(1, std::memory_order_relaxed);
}

void ctx_unref(ctx_node* n) noexcept {
  // acq_rel: release publishes this holder's writes; the acquire half lets the last one see
  // them all before destroying.
  if (n->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(n);
}

context adopt_context(ctx_node* n) noexcept {
  context c;
  c.n_ = n;
  return c;
}

cancel_func adopt_cancel(ctx_node* n) noexcept {
  cancel_func f;
  f.n_ = n;
  return f;
}

const void* ctx_lookup(const ctx_node* n, const void* key) noexcept {
  for (; n; n = n->parent) {
    if (n->key == key && n->value) return n->value->get();
  }
  return nullptr;
}

context make_value_context(const context& parent, const void* key,
                           std::unique_ptr<ctx_value_base> v) {
  auto* n = new ctx_node;
  if (ctx_node* pn = parent.n_) {
    ctx_ref(pn);
    n->parent = pn;
    n->deadline = pn->deadline;
    n->canceller = pn->canceller;
  }
  n->key = key;
  n->value = std::move(v);
  return adopt_context(n);
}

std::size_t context_child_count(const context& ctx) noexcept {
  if (!ctx.n_ || !ctx.n_->canceller) return 0;
  cancel_part& c = *ctx.n_->canceller->c;
  std::lock_guard lk(c.mu);
  std::size_t k = 0;
  for (ctx_node* p = c.head; p; p = p->c->next) ++k;
  return k;
}

struct after_state {
  std::atomic<int> st{0};  // 0 pending, 1 started, 2 stopped
  chan<std::monostate> stop = make_chan<std::monostate>();
};

stop_func context_after_func(const context& ctx, void (*invoke)(void*), std::shared_ptr<void> fn) {
  auto s = std::make_shared<after_state>();
  auto done = ctx.done();
  if (!done) return stop_func(s);  // can never be done: fn never runs; stop() reports true
  try {
    rt::go([s, done, ctx, invoke, fn = std::move(fn)] {
      std::size_t i = rt::select(rt::recv(done), rt::recv(s->stop));
      int expected = 0;
      // acq_rel: exactly one of start and stop wins; the winner's caller sees the other side.
      if (i == 0 && s->st.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        invoke(fn.get());
      }
    });
  } catch (const rt::runtime_error&) {
    throw rt::runtime_error(
        "rt::after_func(context) called with no runtime running: fn runs in a fiber; call it "
        "from inside rt::run(...), or from another thread while rt::run is running");
  }
  return stop_func(s);
}

}  // namespace detail

namespace {

class context_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "rt::context"; }
  std::string message(int ev) const override {
    switch (static_cast<context_errc>(ev)) {
      case context_errc::canceled:
        return "context canceled";
      case context_errc::deadline_exceeded:
        return "context deadline exceeded";
    }
    return "unknown context error";
  }
};

}  // namespace

const std::error_category& context_category() noexcept {
  static const context_category_impl cat;
  return cat;
}

recv_chan<std::monostate> context::done() const {
  if (!n_ || !n_->canceller) return {};
  return n_->canceller->c->done;
}

std::error_code context::err() const noexcept {
  if (!n_ || !n_->canceller) return {};
  // acquire: pairs with the release store in marking (see cancel_part::err).
  const int e = n_->canceller->c->err.load(std::memory_order_acquire);
  if (e == 0) return {};
  return make_error_code(static_cast<context_errc>(e));
}

std::optional<std::chrono::steady_clock::time_point> context::deadline() const noexcept {
  if (!n_ || n_->deadline == detail::no_deadline) return std::nullopt;
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(n_->deadline));
}

std::stop_token context::stop_token() const noexcept {
  if (!n_ || !n_->canceller) return {};
  return n_->canceller->c->ss.get_token();
}

void context::throw_if_done() const {
  if (std::error_code e = err()) throw context_error(e);
}

void cancel_func::operator()() const noexcept {
  if (n_) detail::cancel(n_, static_cast<int>(context_errc::canceled), true);
}

bool stop_func::operator()() const noexcept {
  if (!s_) return false;
  int expected = 0;
  // acq_rel: see context_after_func.
  if (!s_->st.compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) return false;
  if (s_->stop) s_->stop.state()->close();  // lets the waiting fiber go
  return true;
}

std::pair<context, cancel_func> with_cancel(const context& parent) {
  detail::ctx_node* n = detail::new_cancel_node(parent, parent.n_);
  detail::ctx_ref(n);
  return {detail::adopt_context(n), detail::adopt_cancel(n)};
}

std::pair<context, cancel_func> with_deadline(const context& parent,
                                              std::chrono::steady_clock::time_point t) {
  const std::int64_t when = detail::deadline_ns(t);
  const std::int64_t parent_deadline = parent.n_ ? parent.n_->deadline : detail::no_deadline;
  // The parent's deadline comes first (or neither has one): its cancellation reaches the child
  // anyway, no timer of our own (as Go does).
  if (parent_deadline <= when) return with_cancel(parent);
  if (detail::current_runtime() == nullptr && when > detail::now_ns()) {
    detail::no_runtime("rt::with_deadline/rt::with_timeout");
  }
  auto [ctx, cancel] = with_cancel(parent);
  detail::ctx_node* n = ctx.n_;
  n->deadline = when;  // before anyone else can see n (its children copy it)
  if (when <= detail::now_ns()) {
    detail::cancel(n, static_cast<int>(context_errc::deadline_exceeded), true);
    return {std::move(ctx), std::move(cancel)};
  }
  if (detail::current_worker() != nullptr) {
    std::lock_guard lk(n->c->mu);
    detail::arm_locked(n);
  } else {
    // A plain thread has no timer heap: a fiber arms the timer on its worker (see the top).
    detail::ctx_ref(n);
    detail::node_ref ref(n);
    try {
      detail::spawn([r = std::move(ref)]() mutable {
        std::lock_guard lk(r.n->c->mu);
        detail::arm_locked(r.n);
      });
    } catch (const rt::runtime_error&) {
      detail::no_runtime("rt::with_deadline/rt::with_timeout");  // the runtime ended meanwhile
    }
  }
  return {std::move(ctx), std::move(cancel)};
}

std::pair<context, cancel_func> with_timeout(const context& parent, std::chrono::nanoseconds d) {
  return with_deadline(parent, detail::deadline_after(d));
}

context with_stop_token(const context& parent, std::stop_token st) {
  detail::ctx_node* n = detail::new_cancel_node(parent, parent.n_);
  context ctx = detail::adopt_context(n);
  if (st.stop_possible()) {
    // Last: it may run at once (st already stopped) and cancel n, which must be complete.
    n->c->on_stop.emplace(std::move(st), detail::cancel_part::stop_cb{n});
  }
  return ctx;
}

}  // namespace rt
