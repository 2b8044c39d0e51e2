// runtime/flag_test.hpp — a hot path's test of an atomic flag as one compare with memory.
//
//   if (flag_is_set(g_slow_paths)) [[unlikely]] return general_path();
//
// GCC does not fold an atomic load into another instruction's memory operand: `flag.load() != 0`
// becomes a load, a test and a branch. A switch tests several such flags (the slow-paths word,
// a dump's claim on the fiber being resumed), so this reads each with one compare instead.
#pragma once

#include <atomic>
#include <type_traits>

namespace rt::detail {

// Whether `flag` is nonzero now. On x86-64 one `cmp $0, mem`: an aligned read of at most eight
// bytes is atomic there, and every load — relaxed or seq_cst — is a plain read (a seq_cst store
// carries the fence). volatile: read at every call, never merged with another or dropped. The
// compiler keeps it after a preceding atomic read-modify-write (which it treats as touching all
// memory), as the Dekker pair of publish_running() needs. Under ThreadSanitizer, and elsewhere,
// the atomic load, which TSan sees.
template <class T>
[[gnu::always_inline]] inline bool flag_is_set(const std::atomic<T>& flag) noexcept {
  static_assert(std::is_integral_v<T> && sizeof(T) <= 8 && std::atomic<T>::is_always_lock_free);
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
  bool set;
  // std::atomic<T> holds exactly a T (is_always_lock_free); the cast names its size for %z1.
  __asm__ volatile("cmp%z1 $0, %1" : "=@ccne"(set) : "m"(*reinterpret_cast<const T*>(&flag)));
  return set;
#else
  return flag.load() != T{};
#endif
}

}  // namespace rt::detail
