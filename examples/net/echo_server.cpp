// examples/net/echo_server.cpp — a TCP echo server: one fiber per connection, plain sequential
// code (read, write back, until the client closes), as in Go.
//
//   build/examples/net/net_echo_server [PORT]          # default 0: any free port; prints it
//   build/examples/net/net_echo_server --self-test     # runs clients against itself, exits 0
//   build/examples/net/net_echo_server 7000 --max-seconds 60   # stops by itself after 60 s
//
// Every read and write parks only its fiber: 10,000 connections are 10,000 fibers on a couple
// of worker threads. bench/echo drives this server (bench/compare.py --only echo).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "rt/csp.hpp"
#include "rt/net.hpp"

using namespace std::chrono_literals;

namespace {

// One connection: echo everything until the client closes (read gives 0) or goes away.
void serve(rt::net::conn c) {
  char buf[4096];
  std::error_code ec;
  for (;;) {
    std::size_t n = c.read(buf, sizeof buf, ec);
    if (ec || n == 0) return;  // end of stream, reset, closed: the conn closes as it leaves
    c.write_all(buf, n, ec);
    if (ec) return;  // EPIPE / ECONNRESET: the client is gone (never a SIGPIPE)
  }
}

// The connections being served, counted so that the self-test can wait for every handler to
// finish before returning (a fiber still parked when rt::run returns is abandoned with whatever
// its frame holds). Shared with the handlers, which may outlive main's frame.
using active_set = std::shared_ptr<rt::wait_group>;

// Accepts until the listener is closed. Running out of descriptors (EMFILE/ENFILE) is logged and
// retried after a pause that doubles up to 1 s (as Go's net/http does): the connections already
// open keep being served, and the pending one is accepted once a descriptor frees up.
void accept_loop(rt::net::listener& ln, std::atomic<int>* emfile_seen, active_set active) {
  auto backoff = 5ms;
  for (;;) {
    std::error_code ec;
    rt::net::conn c = ln.accept(ec);
    if (ec == rt::net::net_errc::closed) return;
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) {
      std::fprintf(stderr, "echo_server: accept: %s (still serving; retrying in %lld ms)\n",
                   ec.message().c_str(), static_cast<long long>(backoff.count()));
      if (emfile_seen) emfile_seen->fetch_add(1);
      rt::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
      continue;
    }
    if (ec) {  // e.g. ECONNABORTED: that client gave up; the listener is fine
      std::fprintf(stderr, "echo_server: accept: %s\n", ec.message().c_str());
      continue;
    }
    backoff = 5ms;
    active->add(1);
    rt::go(
        [active](rt::net::conn c) {
          serve(std::move(c));
          active->done();
        },
        std::move(c));
  }
}

// 10,000 connections need more descriptors than the usual soft limit of 1,024.
void raise_nofile() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// --self-test: `clients` concurrent clients each echo messages of several sizes (1 byte to
// 64 KiB, so reads come back in pieces), then one half-closes, then one connects while the
// server is out of descriptors. Returns the number of failures.
int self_test(const std::string& addr, int clients, std::atomic<int>& emfile_seen) {
  std::atomic<int> failures{0};
  rt::wait_group wg;
  for (int i = 0; i < clients; ++i) {
    wg.add(1);
    rt::go([&, i] {
      try {
        rt::net::conn c = rt::net::dial(addr, 10s);
        c.set_deadline(std::chrono::steady_clock::now() + 30s);
        for (std::size_t size : {1, 64, 1000, 4096, 5000, 65536}) {
          std::string out(size, '\0');
          for (std::size_t k = 0; k < size; ++k) out[k] = static_cast<char>('a' + (i + k) % 26);
          c.write_all(out);
          std::string in(size, '\0');
          c.read_full(in.data(), in.size());
          if (in != out) {
            std::fprintf(stderr, "self-test: client %d: %zu bytes echoed wrong\n", i, size);
            failures.fetch_add(1);
          }
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "self-test: client %d: %s\n", i, e.what());
        failures.fetch_add(1);
      }
      wg.done();
    });
  }
  wg.wait();

  // Half-close: the server sees end of stream after the data, echoes it and closes.
  try {
    rt::net::conn c = rt::net::dial(addr, 10s);
    c.set_deadline(std::chrono::steady_clock::now() + 30s);
    c.write_all("last words");
    c.shutdown_write();
    char buf[64];
    std::size_t got = 0, n;
    while ((n = c.read(buf + got, sizeof buf - got)) > 0) got += n;
    if (std::string(buf, got) != "last words") {
      std::fprintf(stderr, "self-test: half-close: got \"%.*s\"\n", static_cast<int>(got), buf);
      failures.fetch_add(1);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "self-test: half-close: %s\n", e.what());
    failures.fetch_add(1);
  }

  // Out of descriptors: lower the limit so that the client's socket takes the last descriptor
  // number and the server's accept gets EMFILE; the server logs it and keeps retrying, and once
  // the limit is back the connection is accepted and served.
  rlimit saved{};
  getrlimit(RLIMIT_NOFILE, &saved);
  int lowest = ::dup(0);  // the lowest free descriptor number
  if (lowest >= 0) {
    ::close(lowest);
    try {
      rlimit low = saved;
      low.rlim_cur = static_cast<rlim_t>(lowest) + 1;
      setrlimit(RLIMIT_NOFILE, &low);
      rt::net::conn c = rt::net::dial(addr, 10s);  // takes descriptor `lowest`
      c.set_deadline(std::chrono::steady_clock::now() + 30s);
      c.write_all("after EMFILE");
      for (int k = 0; k < 200 && emfile_seen.load() == 0; ++k) rt::sleep_for(5ms);
      setrlimit(RLIMIT_NOFILE, &saved);
      char buf[12];
      c.read_full(buf, sizeof buf);
      if (std::string(buf, sizeof buf) != "after EMFILE") failures.fetch_add(1);
      if (emfile_seen.load() == 0) {
        std::fprintf(stderr, "self-test: the server never saw EMFILE\n");
        failures.fetch_add(1);
      }
    } catch (const std::exception& e) {
      setrlimit(RLIMIT_NOFILE, &saved);
      std::fprintf(stderr, "self-test: EMFILE: %s\n", e.what());
      failures.fetch_add(1);
    }
  }
  return failures.load();
}

}  // namespace

int main(int argc, char** argv) {
  std::string port = "0";
  bool test = false;
  int clients = 100;
  long max_seconds = 0;  // 0: serve until killed
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--self-test") {
      test = true;
    } else if (a == "--clients" && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else if (a == "--max-seconds" && i + 1 < argc) {
      max_seconds = std::atol(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      port = a;
    } else {
      std::fprintf(stderr, "usage: %s [PORT] [--self-test [--clients N]] [--max-seconds S]\n",
                   argv[0]);
      return 2;
    }
  }
  raise_nofile();
  return rt::run([&]() -> int {
    rt::net::listener ln = rt::net::listen("127.0.0.1:" + port);
    std::printf("echo_server: listening on %s\n", ln.local_address().to_string().c_str());
    std::fflush(stdout);
    std::atomic<int> emfile_seen{0};
    auto active = std::make_shared<rt::wait_group>();
    auto stopped = rt::make_chan<int>();
    rt::go([&] {
      accept_loop(ln, &emfile_seen, active);
      stopped.close();
    });
    if (!test) {
      // Serve until killed, or for max_seconds.
      rt::sleep_for(max_seconds > 0 ? std::chrono::nanoseconds(std::chrono::seconds(max_seconds))
                                    : std::chrono::nanoseconds::max());  // max: forever
      return 0;
    }
    rt::go([] {  // the self-test stops by itself whatever happens
      rt::sleep_for(90s);
      std::fprintf(stderr, "echo_server: self-test timed out\n");
      std::_Exit(1);
    });
    int failures = self_test(ln.local_address().to_string(), clients, emfile_seen);
    ln.close();      // wakes the accept loop with net_errc::closed
    stopped.recv();  // and it returns
    active->wait();  // every client closed: every handler sees end of stream and returns
    std::printf("echo_server: self-test %s (%d clients, half-close, EMFILE)\n",
                failures ? "FAILED" : "ok", clients);
    return failures ? 1 : 0;
  });
}
