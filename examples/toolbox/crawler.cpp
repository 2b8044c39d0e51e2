// examples/toolbox/crawler.cpp — a bounded parallel crawler over an in-process fake "web": a
// server fiber answers fetch requests on a channel (after a short delay), one page never
// answers and one link leads nowhere. At most maxFetches fetches run at once; each has its own
// timeout; the whole crawl has a deadline.
//
// A line-for-line port of examples/go/crawler/main.go: same names, same structure, same output
// (tools/compare_go_example.sh diffs the two). What changes in translation:
//   sem := make(chan struct{}, 3)           rt::semaphore sem{3}
//   select { case sem <- struct{}{}:        if (!sem.acquire(ctx.stop_token())) return;
//            case <-ctx.Done(): return }
//   time.AfterFunc(d, f)                    rt::after_func(d, f)
//   an error value ("not found")            a std::string, empty for nil
#include <rt/csp.hpp>

#include "go_style.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

namespace {

using go_style::defer;
using go_style::str;

constexpr int maxFetches = 3;
constexpr auto fetchTimeout = 2s;  // generous (a normal fetch takes `latency`): sanitizer builds on
                                   // a loaded machine took over 500 ms for the first one
constexpr auto latency = 2ms;
const std::string hangURL = "slow.example/";

const std::string errNotFound = "not found";

// The fake web: each page and its links.
const std::map<std::string, std::vector<std::string>> pages = {
    {"home.example/", {"home.example/about", "home.example/blog", "news.example/"}},
    {"home.example/about", {"home.example/"}},
    {"home.example/blog", {"home.example/blog/1", "home.example/blog/2", "slow.example/"}},
    {"home.example/blog/1", {"home.example/blog", "news.example/today"}},
    {"home.example/blog/2", {"home.example/blog", "gone.example/"}},
    {"news.example/", {"news.example/today", "news.example/sport", "home.example/"}},
    {"news.example/today", {"news.example/"}},
    {"news.example/sport", {"news.example/", "news.example/today"}},
    {"slow.example/", {"home.example/"}},
};

struct response {
  std::vector<std::string> links;
  std::string err;  // empty: no error
};

struct request {
  std::string url;
  rt::send_chan<response> reply;  // buffered: the server never waits for the fetcher
};

// serve answers requests until ctx is cancelled: after `latency`, except for hangURL, which
// never gets an answer.
void serve(rt::context ctx, rt::recv_chan<request> reqs, rt::send_chan<std::monostate> stopped) {
  defer d{[&] { stopped.close(); }};
  for (;;) {
    request req;
    switch (rt::select({rt::recv(reqs, &req), rt::recv(ctx.done())})) {
      case 0: {  // req := <-reqs
        if (req.url == hangURL) continue;
        auto it = pages.find(req.url);
        bool found = it != pages.end();
        std::vector<std::string> links = found ? it->second : std::vector<std::string>{};
        rt::after_func(latency, [req, found, links]() mutable {
          if (!found) {
            req.reply.send({{}, errNotFound});
            return;
          }
          req.reply.send({links, ""});
        });
        break;
      }
      case 1:  // <-ctx.Done()
        return;
    }
  }
}

// fetch asks the server for url, giving up after fetchTimeout or when ctx is cancelled.
std::pair<std::vector<std::string>, std::string> fetch(const rt::context& parent,
                                                       rt::send_chan<request> server,
                                                       const std::string& url) {
  auto [ctx, cancel] = rt::with_timeout(parent, fetchTimeout);
  defer d{cancel};
  auto reply = rt::make_chan<response>(1);
  switch (rt::select({rt::send(server, request{url, reply}), rt::recv(ctx.done())})) {
    case 0:  // server <- request{url, reply}
      break;
    case 1:  // <-ctx.Done()
      return {{}, ctx.err().message()};
  }
  response r;
  switch (rt::select({rt::recv(reply, &r), rt::recv(ctx.done())})) {
    case 0:  // r := <-reply
      return {r.links, r.err};
    case 1:  // <-ctx.Done()
      return {{}, ctx.err().message()};
  }
  return {};  // not reached: the select returns 0 or 1
}

struct crawler {
  rt::context ctx;
  rt::send_chan<request> server;
  rt::semaphore sem{maxFetches};  // a counting semaphore: one unit per running fetch
  rt::wait_group wg{};
  rt::mutex mu{};
  std::set<std::string> seen;
  std::vector<std::string> results{};
  std::atomic<std::int64_t> inFlight{0};
  std::atomic<std::int64_t> maxSeen{0};

  void visit(std::string url);
};

// visit fetches url once, records the outcome and visits its links, each in its own fiber.
void crawler::visit(std::string url) {
  defer d{[&] { wg.done(); }};
  if (!sem.acquire(ctx.stop_token())) return;  // false: ctx was cancelled first
  std::int64_t n = inFlight.fetch_add(1) + 1;
  for (std::int64_t m = maxSeen.load(); n > m && !maxSeen.compare_exchange_weak(m, n);) {
  }
  auto [links, err] = fetch(ctx, server, url);
  inFlight.fetch_add(-1);
  sem.release();
  std::lock_guard lk(mu);
  if (!err.empty()) {
    results.push_back(url + " -> error: " + err);
    return;
  }
  results.push_back(url + " -> " + std::to_string(links.size()) + " links");
  for (const std::string& link : links) {
    if (!seen.contains(link)) {
      seen.insert(link);
      wg.add(1);
      rt::go(&crawler::visit, this, link);
    }
  }
}

}  // namespace

int main() {
  return rt::run([] {
    auto [ctx, cancel] = rt::with_timeout(rt::background(), 10s);
    defer d{cancel};
    auto server = rt::make_chan<request>();
    auto stopped = rt::make_chan<std::monostate>();
    rt::go(serve, ctx, server, stopped);

    crawler c{.ctx = ctx, .server = server, .seen = {"home.example/"}};
    c.wg.add(1);
    rt::go(&crawler::visit, &c, "home.example/");
    c.wg.wait();

    std::sort(c.results.begin(), c.results.end());
    std::printf("crawled %zu pages\n", c.results.size());
    for (const std::string& r : c.results) std::printf("%s\n", r.c_str());
    std::printf("at most %d fetches at once: %s\n", maxFetches,
                c.maxSeen.load() <= maxFetches ? "true" : "false");
    std::printf("crawl deadline: err %s\n", str(ctx.err()).c_str());
    cancel();
    stopped.recv();
    std::printf("crawler: ok\n");
  });
}
