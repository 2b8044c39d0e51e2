// Tutorial 5 — "Bad output": printing the channel instead of receiving from it, then one receive.
// Go original: fmt.Println(ch) prints the channel's address (0x432080), not a value; then
// fmt.Println(<-ch) receives one line — and main returns while the other workers still wait to
// send, so only one line is printed. rt::chan prints as its address too.
#include <rt/csp.hpp>

#include <chrono>
#include <iostream>
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
    std::cout << "Starting...\n";
    rt::go(worker, "sort data", ch);
    rt::go(worker, "parse files", ch);
    rt::go(worker, "generate output", ch);
    std::cout << ch << "\n";  // Go: fmt.Println(ch) — the address
    std::cout << *ch.recv();  // Go: fmt.Println(<-ch) — one value
  });
}
