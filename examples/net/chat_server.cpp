// examples/net/chat_server.cpp — a line-based chat server: every line a client sends goes to
// every client, through channels, with no lock.
//
//   build/examples/net/net_chat_server [PORT]        # then: nc 127.0.0.1 PORT (several of them)
//   build/examples/net/net_chat_server --self-test   # clients chat with each other, exits 0
//
// One fiber, the hub, owns the set of clients; the others talk to it over channels (Go's "share
// memory by communicating"). Each connection has a reader fiber (lines -> the hub's messages
// channel) and a writer fiber (its own outbox channel -> the socket). A client too slow to keep
// up loses messages (its outbox is full) instead of stalling everybody.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "rt/csp.hpp"
#include "rt/net.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t kOutbox = 256;  // lines queued per client before it starts losing them

struct client {
  std::uint64_t id;
  std::string name;
  rt::chan<std::string> outbox;
};

struct hub_chans {
  rt::chan<client> joins = rt::make_chan<client>();
  rt::chan<std::uint64_t> leaves = rt::make_chan<std::uint64_t>();
  rt::chan<std::string> messages = rt::make_chan<std::string>();
  rt::chan<int> hub_done = rt::make_chan<int>();  // closed when the hub returns
  // The reader and writer fibers alive, so that the self-test can wait for them all before
  // returning (a fiber still parked when rt::run returns is abandoned with what its frame
  // holds); shared with the fibers, which may outlive main's frame.
  std::shared_ptr<rt::wait_group> active = std::make_shared<rt::wait_group>();
};

// The hub: the only fiber that touches `clients`. It stops when `joins` is closed.
void hub(hub_chans h) {
  std::map<std::uint64_t, client> clients;
  auto broadcast = [&](const std::string& line) {
    for (auto& [id, c] : clients) {
      std::string copy = line;
      c.outbox.try_send(copy);  // full: this client is too slow, it misses the line
    }
  };
  for (bool open = true; open;) {
    rt::select(rt::recv(h.joins,
                        [&](std::optional<client> c) {
                          if (!c) {
                            open = false;
                            return;
                          }
                          broadcast("* " + c->name + " joined\n");
                          std::string hello = "welcome " + c->name + "\n";
                          c->outbox.try_send(hello);
                          clients.emplace(c->id, std::move(*c));
                        }),
               rt::recv(h.leaves,
                        [&](std::optional<std::uint64_t> id) {
                          auto it = clients.find(*id);
                          if (it == clients.end()) return;
                          std::string name = it->second.name;
                          it->second.outbox.close();  // its writer drains the outbox and stops
                          clients.erase(it);
                          broadcast("* " + name + " left\n");
                        }),
               rt::recv(h.messages, [&](std::optional<std::string> m) { broadcast(*m); }));
  }
  for (auto& [id, c] : clients) c.outbox.close();
  h.hub_done.close();
}

// Reads '\n'-terminated lines from a connection (a trailing '\r' is dropped).
class line_reader {
 public:
  std::optional<std::string> next(rt::net::conn& c) {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buf_.size() > 64 * 1024) return std::nullopt;  // no line that long: drop the client
      char tmp[2048];
      std::error_code ec;
      std::size_t n = c.read(tmp, sizeof tmp, ec);
      if (ec || n == 0) return std::nullopt;
      buf_.append(tmp, n);
    }
  }

 private:
  std::string buf_;
};

// One connection: this fiber reads, a second one writes; the conn is shared by the two and
// closes when both are done.
void handle(rt::net::conn accepted, std::uint64_t id, hub_chans h) {
  auto c = std::make_shared<rt::net::conn>(std::move(accepted));
  auto outbox = rt::make_chan<std::string>(kOutbox);
  std::string name = "user" + std::to_string(id);
  h.active->add(1);
  rt::go([c, outbox, active = h.active]() mutable {
    for (std::string& line : outbox) {
      std::error_code ec;
      c->write_all(line.data(), line.size(), ec);
      if (ec) {
        c->close();  // wakes the reader with net_errc::closed: it leaves
        break;
      }
    }
    active->done();
  });
  h.joins.send(client{id, name, outbox});
  line_reader r;
  while (auto line = r.next(*c)) h.messages.send(name + ": " + *line + "\n");
  h.leaves.send(id);
  h.active->done();
}

void accept_loop(rt::net::listener& ln, hub_chans h) {
  auto backoff = 5ms;
  for (std::uint64_t next_id = 1;;) {
    std::error_code ec;
    rt::net::conn c = ln.accept(ec);
    if (ec == rt::net::net_errc::closed) return;
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) {
      std::fprintf(stderr, "chat_server: accept: %s (still serving)\n", ec.message().c_str());
      rt::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
      continue;
    }
    if (ec) continue;  // ECONNABORTED and the like: that client gave up
    backoff = 5ms;
    h.active->add(1);  // handle() counts itself out
    rt::go(handle, std::move(c), next_id++, h);
  }
}

// --self-test: `n` clients join, wait for everybody's welcome, each says `m` numbered lines, and
// each must then hear all n * m lines, every sender's in order. Returns the number of failures.
int self_test(const std::string& addr, int n, int m) {
  std::atomic<int> failures{0};
  rt::wait_group joined, finished;
  auto start = rt::make_chan<int>();  // closed once everybody has joined
  for (int i = 0; i < n; ++i) {
    joined.add(1);
    finished.add(1);
    rt::go([&, i]() mutable {
      bool counted_join = false;
      try {
        rt::net::conn c = rt::net::dial(addr, 10s);
        c.set_deadline(std::chrono::steady_clock::now() + 60s);
        line_reader r;
        std::string me;
        while (auto line = r.next(c)) {
          if (line->rfind("welcome ", 0) == 0) {
            me = line->substr(8);
            break;
          }
        }
        joined.done();
        counted_join = true;
        start.recv();
        for (int k = 0; k < m; ++k) c.write_all("msg " + std::to_string(k) + "\n");
        std::map<std::string, int> next_seq;  // sender -> the sequence number expected next
        int heard = 0;
        while (heard < n * m) {
          auto line = r.next(c);
          if (!line) throw std::runtime_error("connection ended after " + std::to_string(heard));
          if (line->rfind("* ", 0) == 0) continue;  // joined / left notices
          auto colon = line->find(": msg ");
          if (colon == std::string::npos) throw std::runtime_error("bad line: " + *line);
          int seq = std::atoi(line->c_str() + colon + 6);
          int& want = next_seq[line->substr(0, colon)];
          if (seq != want) throw std::runtime_error("out of order: " + *line);
          ++want;
          ++heard;
        }
        if (next_seq.size() != static_cast<std::size_t>(n) || !next_seq.count(me))
          throw std::runtime_error("did not hear every client");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "self-test: client %d: %s\n", i, e.what());
        failures.fetch_add(1);
        if (!counted_join) joined.done();
      }
      finished.done();
    });
  }
  joined.wait();
  start.close();
  finished.wait();
  return failures.load();
}

}  // namespace

int main(int argc, char** argv) {
  std::string port = "0";
  bool test = false;
  int clients = 10, lines = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--self-test") {
      test = true;
    } else if (a == "--clients" && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else if (a == "--lines" && i + 1 < argc) {
      lines = std::atoi(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      port = a;
    } else {
      std::fprintf(stderr, "usage: %s [PORT] [--self-test [--clients N] [--lines M]]\n", argv[0]);
      return 2;
    }
  }
  if (test && static_cast<std::size_t>(clients) * (lines + 1) + clients >= kOutbox) {
    std::fprintf(stderr, "chat_server: --clients x --lines too large for an outbox of %zu\n",
                 kOutbox);
    return 2;
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  return rt::run([&]() -> int {
    rt::net::listener ln = rt::net::listen("127.0.0.1:" + port);
    std::printf("chat_server: listening on %s\n", ln.local_address().to_string().c_str());
    std::fflush(stdout);
    hub_chans h;
    rt::go(hub, h);
    auto stopped = rt::make_chan<int>();
    rt::go([&] {
      accept_loop(ln, h);
      stopped.close();
    });
    if (!test) {
      stopped.recv();  // serve until killed
      return 0;
    }
    rt::go([] {  // the self-test stops by itself whatever happens
      rt::sleep_for(90s);
      std::fprintf(stderr, "chat_server: self-test timed out\n");
      std::_Exit(1);
    });
    int failures = self_test(ln.local_address().to_string(), clients, lines);
    ln.close();
    stopped.recv();
    h.active->wait();  // every client left: its reader and writer returned
    h.joins.close();   // the hub stops
    h.hub_done.recv();
    std::printf("chat_server: self-test %s (%d clients x %d lines)\n", failures ? "FAILED" : "ok",
                clients, lines);
    return failures ? 1 : 0;
  });
}
