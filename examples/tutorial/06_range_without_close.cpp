// Tutorial 6 — ranging over a channel that nobody closes: deadlock.
// Go original: `for i := range ch { fmt.Print(i) }` prints all nine lines, then the workers are
// done but the range waits forever: "fatal error: all goroutines are asleep - deadlock!" with
// goroutine 1 [chan receive]. librt-csp detects the same situation and prints the same report
// (fiber 1 [chan receive, ...] with its stack and where it was started), exit status 2.
#include <rt/csp.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

static void worker(const std::string& task, rt::chan<std::string> ch) {
  std::mt19937 rng{std::random_device{}()};  // per fiber: a fiber may resume on another thread
  for (int i = 0; i < 3; ++i) {
    rt::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng)));
    ch.send(task + " " + std::to_string(i) + " complete\n");
  }
}

int main() {
  return rt::run([] {
    auto ch = rt::make_chan<std::string>();
    std::printf("Starting...\n");
    rt::go(worker, "sort data", ch);
    rt::go(worker, "parse files", ch);
    rt::go(worker, "generate output", ch);
    for (const std::string& line : ch) std::printf("%s", line.c_str());
  });
}
