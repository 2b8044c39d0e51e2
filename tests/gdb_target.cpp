// gdb_target — the program tests/gdb_test.sh runs under gdb: fiber 2 ("gdbfiber") parks in
// gdb_parked_here; then main stops the process with SIGTRAP, and gdb's `info fibers` and
// `fiber bt 2` (tools/gdb/librt-csp-gdb.py) must show it.
#include <rt/csp.hpp>

#include <csignal>
#include <sstream>

namespace {
volatile int sink = 0;
}

[[gnu::noinline]] void gdb_parked_here(rt::chan<int> ch) {
  rt::this_fiber::set_name("gdbfiber");
  sink = sink + ch.recv().value_or(0);  // not a tail call
}

int main() {
  rt::options o;
  o.workers = 1;
  return rt::run(
      [] {
        auto ch = rt::make_chan<int>();
        rt::go([ch] { gdb_parked_here(ch); });
        // Until the dump shows it parked (polls what is observable; no sleep).
        for (;;) {
          rt::yield();
          std::ostringstream d;
          rt::dump_fibers(d);
          if (d.str().find("\"gdbfiber\" [chan receive") != std::string::npos) break;
        }
        std::raise(SIGTRAP);  // gdb stops here
        ch.send(1);
      },
      o);
}
