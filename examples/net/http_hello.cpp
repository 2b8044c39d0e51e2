// examples/net/http_hello.cpp — a minimal HTTP/1.1 server answering "hello" to every request,
// with keep-alive and pipelining: enough for a standard load tool (wrk).
//
//   build/examples/net/net_http_hello [PORT]         # then: curl http://127.0.0.1:PORT/
//   wrk -t 2 -c 100 -d 5s http://127.0.0.1:PORT/     # (bench/compare.py --only http)
//   build/examples/net/net_http_hello --self-test    # keep-alive, pipelined and closing clients
//
// One fiber per connection, plain sequential code: read what has arrived, answer every complete
// request in it with one write, repeat. Only what the example needs of HTTP: request bodies are
// skipped by Content-Length (no chunked uploads); "Connection: close" and HTTP/1.0 without
// keep-alive close after the answer. A connection idle for 60 s is closed (a read deadline).
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "rt/csp.hpp"
#include "rt/net.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
constexpr std::string_view kHelloClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close"
    "\r\n\r\nhello";
constexpr std::string_view kHello10 =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive"
    "\r\n\r\nhello";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::size_t kMaxHeader = 64 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The value of header `name` in a request head (request line + headers), or "" when absent.
std::string_view header(std::string_view head, std::string_view name) {
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    std::size_t start = pos + 2;
    std::size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) break;
    std::string_view line = head.substr(start, end - start);
    std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    }
    pos = end;
  }
  return {};
}

// One connection: answers every complete request that has arrived with a single write.
void serve(rt::net::conn c) {
  std::string in, out;
  char buf[4096];
  for (;;) {
    std::size_t pos = 0;
    bool close_after = false;
    for (;;) {
      std::size_t end = in.find("\r\n\r\n", pos);
      if (end == std::string::npos) break;
      std::string_view head(in.data() + pos, end + 4 - pos);
      std::string_view line = head.substr(0, head.find("\r\n"));
      bool http10 = line.size() >= 8 && line.substr(line.size() - 8) == "HTTP/1.0";
      if (line.find(' ') == std::string_view::npos ||
          (!http10 && (line.size() < 8 || line.substr(line.size() - 8) != "HTTP/1.1"))) {
        out += kBadRequest;
        close_after = true;
        break;
      }
      std::size_t body =
          std::strtoull(std::string(header(head, "content-length")).c_str(), nullptr, 10);
      if (in.size() < end + 4 + body) break;  // the body has not all arrived
      std::string_view conn_hdr = header(head, "connection");
      if (iequals(conn_hdr, "close") || (http10 && !iequals(conn_hdr, "keep-alive"))) {
        out += kHelloClose;
        close_after = true;
        break;
      }
      out += http10 ? kHello10 : kHello;
      pos = end + 4 + body;
    }
    in.erase(0, pos);
    if (!out.empty()) {
      std::error_code ec;
      c.write_all(out.data(), out.size(), ec);
      out.clear();
      if (ec) return;
    }
    if (close_after || in.size() > kMaxHeader) return;  // the conn closes as it leaves
    c.set_read_deadline(std::chrono::steady_clock::now() + 60s);
    std::error_code ec;
    std::size_t n = c.read(buf, sizeof buf, ec);
    if (ec || n == 0) return;  // the client closed, went away, or sat idle for 60 s
    in.append(buf, n);
  }
}

// The connections being served, counted so that the self-test can wait for every handler to
// finish before returning (a fiber still parked when rt::run returns is abandoned with whatever
// its frame holds). Shared with the handlers, which may outlive main's frame.
using active_set = std::shared_ptr<rt::wait_group>;

void accept_loop(rt::net::listener& ln, active_set active) {
  auto backoff = 5ms;
  for (;;) {
    std::error_code ec;
    rt::net::conn c = ln.accept(ec);
    if (ec == rt::net::net_errc::closed) return;
    if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) {
      std::fprintf(stderr, "http_hello: accept: %s (still serving)\n", ec.message().c_str());
      rt::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 1s);
      continue;
    }
    if (ec) continue;  // ECONNABORTED and the like: that client gave up
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

// Reads one response (head + Content-Length body) from `c`; returns the body, or "" after
// setting `closed` when the server closed first.
std::string read_response(rt::net::conn& c, std::string& in, bool* conn_close) {
  char buf[4096];
  for (;;) {
    std::size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string_view head(in.data(), end + 4);
      std::size_t len =
          std::strtoull(std::string(header(head, "content-length")).c_str(), nullptr, 10);
      if (in.size() >= end + 4 + len) {
        if (head.substr(0, 12) != "HTTP/1.1 200") throw std::runtime_error("not a 200 response");
        *conn_close = iequals(header(head, "connection"), "close");
        std::string body = in.substr(end + 4, len);
        in.erase(0, end + 4 + len);
        return body;
      }
    }
    std::size_t n = c.read(buf, sizeof buf);
    if (n == 0) throw std::runtime_error("server closed before answering");
    in.append(buf, n);
  }
}

// --self-test: `clients` keep-alive clients make `requests` requests each, then one pipelined
// batch of three, then a "Connection: close" one (the server must then close); one HTTP/1.0
// client. Returns the number of failures.
int self_test(const std::string& addr, int clients, int requests) {
  std::atomic<int> failures{0};
  rt::wait_group wg;
  for (int i = 0; i < clients; ++i) {
    wg.add(1);
    rt::go([&, i] {
      try {
        rt::net::conn c = rt::net::dial(addr, 10s);
        c.set_deadline(std::chrono::steady_clock::now() + 60s);
        std::string in;
        bool closing = false;
        for (int k = 0; k < requests; ++k) {
          c.write_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
          if (read_response(c, in, &closing) != "hello" || closing)
            throw std::runtime_error("bad keep-alive answer");
        }
        c.write_all(
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4"
            "\r\n\r\nbodyGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
        for (int k = 0; k < 3; ++k)
          if (read_response(c, in, &closing) != "hello" || closing)
            throw std::runtime_error("bad pipelined answer");
        c.write_all("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if (read_response(c, in, &closing) != "hello" || !closing)
          throw std::runtime_error("no Connection: close in the answer");
        char b;
        if (c.read(&b, 1) != 0) throw std::runtime_error("server did not close");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "self-test: client %d: %s\n", i, e.what());
        failures.fetch_add(1);
      }
      wg.done();
    });
  }
  wg.wait();
  try {  // HTTP/1.0 without keep-alive: one answer, then the server closes
    rt::net::conn c = rt::net::dial(addr, 10s);
    c.set_deadline(std::chrono::steady_clock::now() + 60s);
    c.write_all("GET / HTTP/1.0\r\n\r\n");
    std::string in;
    bool closing = false;
    if (read_response(c, in, &closing) != "hello" || !closing)
      throw std::runtime_error("bad HTTP/1.0 answer");
    char b;
    if (c.read(&b, 1) != 0) throw std::runtime_error("server did not close");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "self-test: HTTP/1.0 client: %s\n", e.what());
    failures.fetch_add(1);
  }
  return failures.load();
}

}  // namespace

int main(int argc, char** argv) {
  std::string port = "0";
  bool test = false;
  int clients = 50, requests = 100;
  long max_seconds = 0;  // 0: serve until killed
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--self-test") {
      test = true;
    } else if (a == "--clients" && i + 1 < argc) {
      clients = std::atoi(argv[++i]);
    } else if (a == "--requests" && i + 1 < argc) {
      requests = std::atoi(argv[++i]);
    } else if (a == "--max-seconds" && i + 1 < argc) {
      max_seconds = std::atol(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      port = a;
    } else {
      std::fprintf(stderr,
                   "usage: %s [PORT] [--self-test [--clients N] [--requests R]] "
                   "[--max-seconds S]\n",
                   argv[0]);
      return 2;
    }
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  return rt::run([&]() -> int {
    rt::net::listener ln = rt::net::listen("127.0.0.1:" + port);
    std::printf("http_hello: listening on %s\n", ln.local_address().to_string().c_str());
    std::fflush(stdout);
    auto stopped = rt::make_chan<int>();
    auto active = std::make_shared<rt::wait_group>();
    rt::go([&] {
      accept_loop(ln, active);
      stopped.close();
    });
    if (!test) {
      rt::sleep_for(max_seconds > 0 ? std::chrono::nanoseconds(std::chrono::seconds(max_seconds))
                                    : std::chrono::nanoseconds::max());  // max: forever
      return 0;
    }
    rt::go([] {  // the self-test stops by itself whatever happens
      rt::sleep_for(90s);
      std::fprintf(stderr, "http_hello: self-test timed out\n");
      std::_Exit(1);
    });
    int failures = self_test(ln.local_address().to_string(), clients, requests);
    ln.close();
    stopped.recv();
    active->wait();  // every client has closed: every handler returns
    std::printf("http_hello: self-test %s (%d clients x %d requests, pipelined, close, 1.0)\n",
                failures ? "FAILED" : "ok", clients, requests);
    return failures ? 1 : 0;
  });
}
