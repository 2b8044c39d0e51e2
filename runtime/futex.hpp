// runtime/futex.hpp — the two futex calls the runtime parks OS threads with.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

namespace rt::detail {

// Sleeps while *word == expected (or until woken, a signal, or the timeout). Spurious returns are
// possible: callers re-check their condition in a loop.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       const timespec* timeout = nullptr) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, timeout,
          nullptr, 0);
}

// Wakes up to `count` threads sleeping on word.
inline void futex_wake(std::atomic<std::uint32_t>* word, int count = 1) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

}  // namespace rt::detail
