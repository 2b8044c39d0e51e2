// Tutorial 1 — serial execution of a non-concurrent design.
// Go original: main calls worker() three times; each prints its three steps in order. No fibers
// yet: this is the baseline the rest of the tutorial makes concurrent.
#include <cstdio>
#include <string>

static void worker(const std::string& task) {
  for (int i = 0; i < 3; ++i) std::printf("%s %d complete\n", task.c_str(), i);
}

int main() {
  std::printf("Starting...\n");
  worker("sort data");
  worker("parse files");
  worker("generate output");
}
