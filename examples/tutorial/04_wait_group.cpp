// Tutorial 4 — waiting with a WaitGroup.
// Go original: wg.Add(1) before each `go worker(task, &wg)`, wg.Done() at the end of worker,
// wg.Wait() in main. rt::wait_group is sync.WaitGroup. Sleeps are scaled from seconds to ms.
#include <rt/csp.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

static void worker(const std::string& task, rt::wait_group& wg) {
  std::mt19937 rng{std::random_device{}()};  // per fiber: a fiber may resume on another thread
  for (int i = 0; i < 3; ++i) {
    rt::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 3)(rng)));
    std::printf("%s %d complete\n", task.c_str(), i);
  }
  wg.done();
}

int main() {
  return rt::run([] {
    rt::wait_group wg;
    std::printf("Starting...\n");
    wg.add(1);
    rt::go(worker, "sort data", std::ref(wg));
    wg.add(1);
    rt::go(worker, "parse files", std::ref(wg));
    wg.add(1);
    rt::go(worker, "generate output", std::ref(wg));
    wg.wait();
  });
}
