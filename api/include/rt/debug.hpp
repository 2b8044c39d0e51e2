// rt/debug.hpp — fiber dumps: every fiber with its state and stack, as Go prints goroutines.
//
//   rt::go([] { rt::this_fiber::set_name("producer"); ch.send(1); });
//   rt::dump_fibers(std::cerr);  // from a fiber, or from any thread while rt::run runs
//
// Format (also printed on SIGQUIT and in deadlock and panic reports; docs/profiling.md):
//
//   fiber 7 "producer" [chan send, 12 ms]:
//   produce(rt::chan<int>)
//           /src/main.cpp:41
//   main::{lambda()#1}::operator()() const
//           /src/main.cpp:30
//   created by main::{lambda()#1}::operator()() const
//           /src/main.cpp:29
//
// One block per fiber, in id order, separated by blank lines. The header has the id, the name in
// quotes when set (rt::this_fiber::set_name), and the state: a wait reason with how long it has
// waited ("12 ms", "3 s", "5 minutes"), `runnable`, `not started`, or `running`. Each frame is
// two lines, the function and then a tab and file:line (object+0xoffset without debug
// information); inlined calls are frames of their own. The runtime's own frames are hidden, so a
// blocked fiber's stack starts at its call into librt-csp (e.g. rt::chan<int>::send). A fiber
// running on another worker cannot be stopped to read its stack: it shows
// "fiber running on other thread; stack unavailable". Build with -g for file:line.
#pragma once

#include <iosfwd>

namespace rt {

// Writes every fiber of the running rt::run to `out` in the format above (from a fiber or any
// thread); outside rt::run, writes one line saying that no runtime is running.
void dump_fibers(std::ostream& out);

}  // namespace rt
