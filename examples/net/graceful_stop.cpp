// examples/net/graceful_stop.cpp — stopping a server loop on a cancel channel while it waits for
// connections: select and I/O together.
//
//   build/examples/net/net_graceful_stop [PORT] [--deadline]   # Ctrl-C (SIGINT) stops it
//   build/examples/net/net_graceful_stop --self-test           # both idioms, exits 0
//
// accept() parks its fiber in the netpoller, not on a channel, so it cannot be a case of
// rt::select. Two idioms bring the two together:
//
//  1. close (Go's idiom): a watcher fiber selects on the cancel channel, then closes the
//     listener; the fiber parked in accept() wakes at once with net_errc::closed.
//  2. deadline: accept() with a deadline, and between two accepts a select with `otherwise`
//     polls the cancel channel; the loop notices a cancel within one deadline period.
//
// Either way the server then stops accepting, gives the open connections a grace period to
// finish (select on "all done" against rt::after), and returns. Here the cancel channel is
// closed by SIGINT/SIGTERM, read from a signalfd with rt::wait_readable (any descriptor works).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include "rt/csp.hpp"
#include "rt/io.hpp"
#include "rt/net.hpp"

using namespace std::chrono_literals;

namespace {

// Echoes one connection until the client closes it.
void echo(rt::net::conn c) {
  char buf[4096];
  std::error_code ec;
  for (std::size_t n; (n = c.read(buf, sizeof buf, ec)) > 0 && !ec;) {
    c.write_all(buf, n, ec);
    if (ec) return;
  }
}

// The open connections, counted so that shutdown can wait for them. Shared: a handler that
// outlives the grace period still counts itself out after the server function returned.
using active_set = std::shared_ptr<rt::wait_group>;

// Spawns the handler of one connection, counted in `active`.
void spawn_handler(rt::net::conn c, const active_set& active) {
  active->add(1);
  rt::go(
      [active](rt::net::conn c) {
        echo(std::move(c));
        active->done();
      },
      std::move(c));
}

// After the accept loop stopped: waits up to `grace` for the open connections to finish.
// Returns false when some were still open (they are abandoned: rt::run unwinds them on return).
bool drain(const active_set& active, std::chrono::nanoseconds grace) {
  auto all_done = rt::make_chan<int>(1);
  rt::go([active, all_done]() mutable {
    active->wait();
    all_done.close();
  });
  bool clean = false;
  rt::select(rt::recv(all_done, [&](auto) { clean = true; }),
             rt::recv(rt::after(grace), [](auto) {}));
  return clean;
}

// Idiom 1: a watcher closes the listener when `cancel` is closed.
bool serve_until_cancel_close(rt::net::listener& ln, rt::chan<int> cancel,
                              std::chrono::nanoseconds grace) {
  auto loop_done = rt::make_chan<int>();
  auto watcher_done = rt::make_chan<int>();
  rt::go([&ln, cancel, loop_done, watcher_done]() mutable {
    rt::select(rt::recv(cancel, [&](auto) { ln.close(); }),  // wakes accept: net_errc::closed
               rt::recv(loop_done, [](auto) {}));            // the loop stopped by itself
    watcher_done.close();
  });
  auto active = std::make_shared<rt::wait_group>();
  for (;;) {
    std::error_code ec;
    rt::net::conn c = ln.accept(ec);
    if (ec == rt::net::net_errc::closed) break;  // cancelled
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) {
      std::fprintf(stderr, "graceful_stop: accept: %s (still serving)\n", ec.message().c_str());
      rt::sleep_for(10ms);
      continue;
    }
    if (ec) continue;
    spawn_handler(std::move(c), active);
  }
  loop_done.close();
  watcher_done.recv();  // the watcher no longer touches `ln`
  return drain(active, grace);
}

// Idiom 2: accept with a deadline, polling `cancel` between accepts.
bool serve_until_cancel_deadline(rt::net::listener& ln, rt::chan<int> cancel,
                                 std::chrono::nanoseconds grace) {
  auto active = std::make_shared<rt::wait_group>();
  for (bool cancelled = false; !cancelled;) {
    rt::select(rt::recv(cancel, [&](auto) { cancelled = true; }), rt::otherwise([] {}));
    if (cancelled) break;
    ln.set_deadline(std::chrono::steady_clock::now() + 100ms);
    std::error_code ec;
    rt::net::conn c = ln.accept(ec);
    if (ec == std::errc::timed_out) continue;  // no connection this period: check cancel again
    if (ec == rt::net::net_errc::closed) break;
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) {
      std::fprintf(stderr, "graceful_stop: accept: %s (still serving)\n", ec.message().c_str());
      rt::sleep_for(10ms);
      continue;
    }
    if (ec) continue;
    spawn_handler(std::move(c), active);
  }
  ln.close();
  return drain(active, grace);
}

// Closes `cancel` on SIGINT or SIGTERM (blocked in every thread by main, read from a signalfd).
void cancel_on_signal(rt::chan<int> cancel) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return;
  signalfd_siginfo si{};
  while (::read(fd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) rt::wait_readable(fd);
  std::printf("graceful_stop: %s: stopping\n", strsignal(static_cast<int>(si.ssi_signo)));
  std::fflush(stdout);
  ::close(fd);
  cancel.close();
}

// --self-test, for one idiom: two clients are served; a third stays connected across the cancel;
// the server must stop accepting promptly and return after the grace period.
int self_test(bool deadline_idiom) {
  const char* name = deadline_idiom ? "deadline" : "close";
  rt::net::listener ln = rt::net::listen("127.0.0.1:0");
  std::string addr = ln.local_address().to_string();
  auto cancel = rt::make_chan<int>();
  auto stopped = rt::make_chan<bool>(1);
  rt::go([&] {
    stopped.send(deadline_idiom ? serve_until_cancel_deadline(ln, cancel, 200ms)
                                : serve_until_cancel_close(ln, cancel, 200ms));
  });
  int failures = 0;
  try {
    for (int i = 0; i < 2; ++i) {
      rt::net::conn c = rt::net::dial(addr, 10s);
      c.set_deadline(std::chrono::steady_clock::now() + 10s);
      c.write_all("ping");
      char buf[4];
      c.read_full(buf, 4);
      if (std::memcmp(buf, "ping", 4) != 0) ++failures;
    }
    rt::net::conn lingering = rt::net::dial(addr, 10s);
    lingering.write_all("x");
    char b;
    lingering.read_full(&b, 1);  // it is being served
    auto t0 = std::chrono::steady_clock::now();
    cancel.close();
    bool clean = true, returned = false;
    rt::select(rt::recv(stopped, [&](std::optional<bool> v) { returned = true, clean = *v; }),
               rt::recv(rt::after(10s), [](auto) {}));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    if (!returned) {
      std::fprintf(stderr, "self-test (%s): the server did not stop within 10 s\n", name);
      ++failures;
    } else if (clean) {
      std::fprintf(stderr, "self-test (%s): the lingering connection was not reported\n", name);
      ++failures;
    } else {
      std::printf("graceful_stop: %s idiom stopped %lld ms after the cancel (grace 200 ms)\n", name,
                  static_cast<long long>(took.count()));
    }
    try {  // the listener is closed: nobody accepts any more
      rt::net::dial(addr, 1s);
      std::fprintf(stderr, "self-test (%s): a dial after the stop connected\n", name);
      ++failures;
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::connection_refused) throw;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "self-test (%s): %s\n", name, e.what());
    ++failures;
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port = "0";
  bool test = false, deadline_idiom = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--self-test") {
      test = true;
    } else if (a == "--deadline") {
      deadline_idiom = true;
    } else if (!a.empty() && a[0] != '-') {
      port = a;
    } else {
      std::fprintf(stderr, "usage: %s [PORT] [--deadline] | --self-test\n", argv[0]);
      return 2;
    }
  }
  if (test) {
    return rt::run([]() -> int {
      rt::go([] {  // the self-test stops by itself whatever happens
        rt::sleep_for(60s);
        std::fprintf(stderr, "graceful_stop: self-test timed out\n");
        std::_Exit(1);
      });
      int failures = self_test(false) + self_test(true);
      std::printf("graceful_stop: self-test %s\n", failures ? "FAILED" : "ok");
      return failures ? 1 : 0;
    });
  }
  // Block the signals before the runtime starts its threads (they inherit the mask), so that
  // only the signalfd sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return rt::run([&]() -> int {
    rt::net::listener ln = rt::net::listen("127.0.0.1:" + port);
    std::printf("graceful_stop: listening on %s (%s idiom); Ctrl-C stops it\n",
                ln.local_address().to_string().c_str(), deadline_idiom ? "deadline" : "close");
    std::fflush(stdout);
    auto cancel = rt::make_chan<int>();
    rt::go(cancel_on_signal, cancel);
    bool clean = deadline_idiom ? serve_until_cancel_deadline(ln, cancel, 5s)
                                : serve_until_cancel_close(ln, cancel, 5s);
    std::printf("graceful_stop: stopped (%s)\n",
                clean ? "every connection finished" : "connections still open after 5 s");
    return 0;
  });
}
