// Tutorial 9 — the select version the seed suggests (tour.golang.org/concurrency/5).
// Instead of closing the results channel, the closer signals on a separate `done` channel, and
// main selects between a result and `done`, with a timeout case as a safety net: whichever is
// ready runs. All nine lines, then a clean exit.
#include <rt/csp.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

using namespace std::chrono_literals;

static void worker(const std::string& task, rt::chan<std::string> results, rt::wait_group& wg) {
  std::mt19937 rng{std::random_device{}()};  // per fiber: a fiber may resume on another thread
  for (int i = 0; i < 3; ++i) {
    rt::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng)));
    results.send(task + " " + std::to_string(i) + " complete\n");
  }
  wg.done();
}

int main() {
  return rt::run([] {
    auto results = rt::make_chan<std::string>();
    auto done = rt::make_chan<bool>();
    rt::wait_group wg;
    std::printf("Starting...\n");
    for (const char* task : {"sort data", "parse files", "generate output"}) {
      wg.add(1);
      rt::go(worker, task, results, std::ref(wg));
    }
    rt::go([&wg, done]() mutable {
      wg.wait();
      done.send(true);
    });
    for (bool finished = false; !finished;) {
      rt::select(
          rt::recv(results,
                   [](std::optional<std::string> line) { std::printf("%s", line->c_str()); }),
          rt::recv(done, [&](auto) { finished = true; }), rt::recv(rt::after(10s), [&](auto) {
            std::printf("timed out\n");
            finished = true;
          }));
    }
  });
}
