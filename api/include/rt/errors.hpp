// rt/errors.hpp — the exceptions librt-csp throws.
//
//   try { rt::go([] {}); }                                 // outside rt::run
//   catch (const rt::runtime_error& e) { std::cerr << e.what(); }
#pragma once

#include <stdexcept>
#include <string>

namespace rt {

// Misuse of the runtime: calling it where it cannot work (no rt::run running, rt::run inside a
// fiber, bad options, ...). what() says what was wrong and what to do instead.
class runtime_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A channel used after close: what() is Go's message, "send on closed channel" or
// "close of closed channel".
class channel_closed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace rt
