// Tutorial 2 — `go` in front of each call, and nothing waits.
// Go original: `go worker(...)` three times, then main returns. "When the function main returns,
// the program exits. It does not wait for other (non-main) goroutines to complete." rt::run
// behaves the same: it returns as soon as main returns, so the workers (usually) never print.
#include <rt/csp.hpp>

#include <cstdio>
#include <string>

static void worker(const std::string& task) {
  for (int i = 0; i < 3; ++i) std::printf("%s %d complete\n", task.c_str(), i);
}

int main() {
  return rt::run([] {
    std::printf("Starting...\n");
    rt::go(worker, "sort data");
    rt::go(worker, "parse files");
    rt::go(worker, "generate output");
  });
}
