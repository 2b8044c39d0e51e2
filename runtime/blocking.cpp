// runtime/blocking.cpp — the blocking pool behind rt::blocking (rt/blocking.hpp).
// SKELETON: runs the call on the calling thread; the pool replaces this.
#include "rt/blocking.hpp"

namespace rt::detail {

void run_blocking(void (*call)(void*) noexcept, void* ctx) {
  call(ctx);
}

}  // namespace rt::detail
