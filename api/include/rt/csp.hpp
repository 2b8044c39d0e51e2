// rt/csp.hpp — everything librt-csp offers, in one include: Go's concurrency model for C++.
//
//   #include <rt/csp.hpp>
//   int main() {
//     return rt::run([] {
//       rt::wait_group wg;
//       wg.add(1);
//       rt::go([&] { std::puts("hello from a fiber"); wg.done(); });
//       wg.wait();
//     });
//   }
#pragma once

#include "rt/blocking.hpp"
#include "rt/chan.hpp"
#include "rt/chan_direction.hpp"
#include "rt/condition_variable.hpp"
#include "rt/context.hpp"
#include "rt/debug.hpp"
#include "rt/errors.hpp"
#include "rt/group.hpp"
#include "rt/io.hpp"
#include "rt/mutex.hpp"
#include "rt/net.hpp"
#include "rt/once.hpp"
#include "rt/options.hpp"
#include "rt/runtime.hpp"
#include "rt/rwmutex.hpp"
#include "rt/select.hpp"
#include "rt/semaphore.hpp"
#include "rt/stats.hpp"
#include "rt/this_fiber.hpp"
#include "rt/ticker.hpp"
#include "rt/time.hpp"
#include "rt/timer.hpp"
#include "rt/trace.hpp"
#include "rt/wait_group.hpp"
