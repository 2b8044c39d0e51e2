// examples/toolbox/go_style.hpp — two helpers the toolbox ports share so that they read like the
// Go programs in examples/go/: defer, and printing an error as Go's %v does.
#pragma once

#include <string>
#include <system_error>

namespace go_style {

// Go's defer: runs f when the scope ends (destructors run in reverse order, as defers do).
//   defer d{[&] { wg.done(); }};
template <class F>
struct defer {
  F f;
  ~defer() { f(); }
};
template <class F>
defer(F) -> defer<F>;

// Go's %v of an error: "<nil>" for none.
inline std::string str(std::error_code err) {
  return err ? err.message() : "<nil>";
}

// The same for an error carried as a message (a caught exception's what()): "<nil>" when empty.
inline std::string str(const std::string& err) {
  return err.empty() ? "<nil>" : err;
}

}  // namespace go_style
