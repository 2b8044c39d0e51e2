// examples/profiling/deadlock — a program that deadlocks, for docs/profiling.md.
//
// A pipeline of three stages whose last stage waits for a "done" signal that the first stage
// only sends after the last stage has answered: every fiber ends up parked. The runtime prints
// Go's deadlock report with each fiber's stack and exits with status 2; under RT_TRACE=flight it
// also writes the flight recording of the schedule that led there.
//
//   RT_TRACE=flight ./deadlock
#include <rt/csp.hpp>

#include <cstdio>

namespace {

void producer(rt::chan<int> out, rt::chan<int> done) {
  rt::this_fiber::set_name("producer");
  for (int i = 0; i < 3; ++i) out.send(i);
  done.recv();  // waits for the consumer's answer, which never comes
  out.close();
}

void doubler(rt::chan<int> in, rt::chan<int> out) {
  rt::this_fiber::set_name("doubler");
  for (int v : in) out.send(2 * v);
  out.close();
}

void consumer(rt::chan<int> in, rt::chan<int> done) {
  rt::this_fiber::set_name("consumer");
  int sum = 0;
  for (int v : in) sum += v;  // ends only when `in` is closed, which needs `done` first
  done.send(sum);
}

}  // namespace

int main() {
  return rt::run([] {
    auto a = rt::make_chan<int>(), b = rt::make_chan<int>(), done = rt::make_chan<int>();
    rt::go(producer, a, done);
    rt::go(doubler, a, b);
    rt::go(consumer, b, done);
    auto finished = rt::make_chan<int>();
    finished.recv();  // main waits for a signal nobody sends
  });
}
