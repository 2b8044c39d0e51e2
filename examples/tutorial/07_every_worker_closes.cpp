// Tutorial 7 — every worker closes the channel when it finishes.
// Go original: close(ch) at the end of worker. The first worker to finish closes the channel for
// everyone: the range in main ends early (lines are missing), and the next worker to send or
// close panics — "send on closed channel" or "close of closed channel". In librt-csp the
// same mistake throws rt::channel_closed with Go's message; escaping the fiber, it is a panic:
// "panic: close of closed channel" (or send ...), exit status 2.
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
  ch.close();
}

int main() {
  return rt::run([] {
    auto ch = rt::make_chan<std::string>();
    std::printf("Starting...\n");
    rt::go(worker, "sort data", ch);
    rt::go(worker, "parse files", ch);
    rt::go(worker, "generate output", ch);
    for (const std::string& line : ch) std::printf("%s", line.c_str());
    // Main returning here would end the program before the other workers panic (as in Go,
    // where this program may also exit cleanly). Give them the moment they need to fail.
    rt::sleep_for(std::chrono::milliseconds(100));
  });
}
