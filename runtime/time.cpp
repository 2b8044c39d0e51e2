// runtime/time.cpp — rt::sleep_for, rt::sleep_until, rt::after.
#include <thread>

#include "fiber.hpp"
#include "rt/detail/deadline.hpp"
#include "rt/errors.hpp"
#include "rt/runtime.hpp"
#include "rt/time.hpp"
#include "scheduler.hpp"
#include "timer.hpp"

namespace rt {
namespace {

struct sleep_timer : detail::timer {
  detail::fiber* sleeper;
};

void wake_sleeper(detail::timer* t) {
  detail::fiber* f = static_cast<sleep_timer*>(t)->sleeper;
  t->finish();
  detail::make_runnable_from_anywhere(f);
}

void arm_timer(void* t) noexcept {
  detail::add_timer(static_cast<detail::timer*>(t));
}

// A time.After timer: owns its channel handle, sends once, then deletes itself.
struct after_timer : detail::timer {
  chan<std::chrono::steady_clock::time_point> ch;
};

void send_time(detail::timer* t) {
  auto* at = static_cast<after_timer*>(t);
  auto now = std::chrono::steady_clock::now();
  at->ch.try_send(now);  // capacity 1 and sent once: never blocks, never fails
  delete at;             // never cancelled, so nobody waits on finish()
}

}  // namespace

void sleep_until(std::chrono::steady_clock::time_point t) {
  detail::fiber* f = detail::current_fiber();
  if (!f) {
    std::this_thread::sleep_until(t);
    return;
  }
  sleep_timer timer;
  timer.when = detail::deadline_ns(t);  // time_point::max() is no_deadline: it never fires
  timer.fire = wake_sleeper;
  timer.sleeper = f;
  if (timer.when <= detail::now_ns()) {
    yield();  // Go's Sleep(0) yields nothing; a zero sleep still lets others run
    return;
  }
  f->park_unlock = arm_timer;  // armed after the switch: the timer cannot fire before we park
  f->park_arg = &timer;
  f->reason.store(detail::wait_reason::sleep, std::memory_order_relaxed);
  detail::suspend(f, detail::after_switch::park);  // at shutdown the timer is dropped unfired
}

void sleep_for(std::chrono::nanoseconds d) {
  if (detail::current_fiber() == nullptr) {
    std::this_thread::sleep_for(d);
    return;
  }
  sleep_until(detail::deadline_after(d));  // saturated: now + nanoseconds::max() is forever
}

namespace {

[[noreturn]] void after_without_runtime() {
  throw rt::runtime_error(
      "rt::after called with no runtime running: its timer runs on the runtime's workers; call "
      "it from inside rt::run(...), or from another thread while rt::run is running");
}

}  // namespace

recv_chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d) {
  if (detail::current_runtime() == nullptr) after_without_runtime();
  auto ch = make_chan<std::chrono::steady_clock::time_point>(1);
  const auto when = detail::deadline_after(d);  // saturated: a d too long never fires
  if (detail::current_worker() == nullptr) {
    // A plain thread has no timer heap: a fiber sleeps for it.
    try {
      go([ch, when]() mutable {
        sleep_until(when);
        auto now = std::chrono::steady_clock::now();
        ch.try_send(now);
      });
    } catch (const rt::runtime_error&) {
      after_without_runtime();  // the runtime ended since we looked: name ourselves, not rt::go
    }
    return ch;
  }
  auto* t = new after_timer;
  t->when = detail::deadline_ns(when);
  t->fire = send_time;
  t->drop = [](detail::timer* self) { delete static_cast<after_timer*>(self); };
  t->ch = ch;
  detail::add_timer(t);
  return ch;
}

}  // namespace rt
