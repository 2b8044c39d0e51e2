// Tutorial 8 — the fixed program: all nine lines, then a clean exit.
// The seed's redesign: workers only send; a WaitGroup counts them; one extra fiber waits for the
// WaitGroup and closes the channel exactly once; main ranges over the channel until it is closed.
#include <rt/csp.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

static void worker(const std::string& task, rt::chan<std::string> ch, rt::wait_group& wg) {
  std::mt19937 rng{std::random_device{}()};  // per fiber: a fiber may resume on another thread
  for (int i = 0; i < 3; ++i) {
    rt::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng)));
    ch.send(task + " " + std::to_string(i) + " complete\n");
  }
  wg.done();
}

int main() {
  return rt::run([] {
    auto ch = rt::make_chan<std::string>();
    rt::wait_group wg;
    std::printf("Starting...\n");
    for (const char* task : {"sort data", "parse files", "generate output"}) {
      wg.add(1);
      rt::go(worker, task, ch, std::ref(wg));
    }
    rt::go([&wg, ch]() mutable {  // the one closer
      wg.wait();
      ch.close();
    });
    for (const std::string& line : ch) std::printf("%s", line.c_str());
  });
}
