// runtime/sanitizer.hpp — the annotations that let AddressSanitizer and ThreadSanitizer follow
// a stack switch. Every switch between a worker's own stack and a fiber stack goes through
// these, so both sanitizers know which stack (and, for TSan, which logical thread) runs.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define RT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RT_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define RT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RT_TSAN 1
#endif
#endif

#if RT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if RT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace rt::detail {

// True when built with AddressSanitizer or ThreadSanitizer (they own SIGSEGV then).
inline constexpr bool built_with_sanitizer =
#if RT_ASAN || RT_TSAN
    true;
#else
    false;
#endif

// Per-context sanitizer state: one for each fiber and one for each worker's own stack.
struct sanitizer_context {
#if RT_ASAN
  void* fake_stack = nullptr;  // ASan's detect_stack_use_after_return frames of this context
#endif
#if RT_TSAN
  void* tsan_fiber = nullptr;  // TSan's logical thread for this context
#endif
  const void* stack_bottom = nullptr;  // lowest address of the context's stack
  std::size_t stack_size = 0;
};

// Call right before switching from `from` to `to`; `from_exiting` when `from` never runs again.
inline void sanitizer_before_switch(sanitizer_context& from, const sanitizer_context& to,
                                    bool from_exiting) noexcept {
#if RT_ASAN
  __sanitizer_start_switch_fiber(from_exiting ? nullptr : &from.fake_stack, to.stack_bottom,
                                 to.stack_size);
#endif
#if RT_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  (void)from;
  (void)to;
  (void)from_exiting;
}

// Call right after arriving in `self`.
inline void sanitizer_after_switch(sanitizer_context& self) noexcept {
#if RT_ASAN
  __sanitizer_finish_switch_fiber(self.fake_stack, nullptr, nullptr);
#endif
  (void)self;
}

// Sets up a fiber's context before its first run.
inline void create_context(sanitizer_context& c, const void* bottom, std::size_t size) noexcept {
  c.stack_bottom = bottom;
  c.stack_size = size;
#if RT_ASAN
  c.fake_stack = nullptr;
  // A reused stack may still carry poison from its previous fiber's frames.
  __asan_unpoison_memory_region(bottom, size);
#endif
#if RT_TSAN
  c.tsan_fiber = __tsan_create_fiber(0);
#endif
}

// Releases what create_context made; call after the fiber's last switch out.
inline void destroy_context(sanitizer_context& c) noexcept {
#if RT_TSAN
  if (c.tsan_fiber) __tsan_destroy_fiber(c.tsan_fiber);
  c.tsan_fiber = nullptr;
#endif
  (void)c;
}

// Describes the calling thread's own stack (a worker's scheduler context).
void init_thread_context(sanitizer_context& c) noexcept;

}  // namespace rt::detail
