// Tutorial 3 — waiting by sleeping.
// Go original: workers sleep a random time before each step, main sleeps long enough (15 s) for
// them all to finish. It works, but it is not "production ready": the sleep is a guess. Time is
// scaled from seconds to milliseconds here so the example runs quickly; a sleeping fiber
// occupies no worker thread.
#include <rt/csp.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

using namespace std::chrono_literals;

static void worker(const std::string& task) {
  std::mt19937 rng{std::random_device{}()};  // per fiber: a fiber may resume on another thread
  for (int i = 0; i < 3; ++i) {
    rt::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng)));
    std::printf("%s %d complete\n", task.c_str(), i);
  }
}

int main() {
  return rt::run([] {
    std::printf("Starting...\n");
    rt::go(worker, "sort data");
    rt::go(worker, "parse files");
    rt::go(worker, "generate output");
    rt::sleep_for(1500ms);  // Go: time.Sleep(time.Second * 15), scaled; far longer than needed
  });
}
