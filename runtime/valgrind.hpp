// runtime/valgrind.hpp — tells Valgrind where the fiber stacks are.
//
// Without this, Memcheck takes a switch between two fiber stacks of one slab (closer than its
// --max-stackframe, 2 MB) for a huge frame being pushed or popped, marks the memory in between
// undefined or inaccessible, and reports the next fiber's reads as errors. A registered stack
// makes the switch a switch. The stack pool registers every stack once, when it carves it from
// a slab, and deregisters it before the slab is unmapped.
//
// Compiled in when <valgrind/valgrind.h> is there (Debian package valgrind); each request is a
// few instructions that do nothing when the program does not run under Valgrind.
#pragma once

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define RT_HAVE_VALGRIND 1
#endif
#endif

namespace rt::detail {

// True when the process runs under Valgrind.
inline bool running_on_valgrind() noexcept {
#if RT_HAVE_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

// Registers [lo, hi) as a stack; returns Valgrind's id for it (0 when not under Valgrind).
inline unsigned valgrind_stack_register([[maybe_unused]] const void* lo,
                                        [[maybe_unused]] const void* hi) noexcept {
#if RT_HAVE_VALGRIND
  return VALGRIND_STACK_REGISTER(lo, hi);
#else
  return 0;
#endif
}

inline void valgrind_stack_deregister([[maybe_unused]] unsigned id) noexcept {
#if RT_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(id);
#endif
}

}  // namespace rt::detail
