// tests/queue_race_support.hpp — what the exactly-once races of the scheduler's queues
// (spawn_deque_test, run_ring_test) share: a tally of how often each element was taken, checked
// at the end, and the race size.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace rt_test {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr int kRaceItems = 20'000;
#else
inline constexpr int kRaceItems = 400'000;
#endif

// Elements 0..n-1 (items[i] == i) and how often each was taken, from any thread.
class take_tally {
 public:
  explicit take_tally(int n)
      : items_(static_cast<std::size_t>(n)),
        taken_(std::make_unique<std::atomic<int>[]>(items_.size())) {
    for (int i = 0; i < n; ++i) items_[static_cast<std::size_t>(i)] = i;
  }
  // The element to push as number i.
  int* item(int i) noexcept { return &items_[static_cast<std::size_t>(i)]; }
  // Records that p came out of the queue.
  void take(int* p) noexcept {
    taken_[static_cast<std::size_t>(*p)].fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
  }
  // Fails the test unless every element was taken exactly once.
  void expect_each_exactly_once() const {
    const int n = static_cast<int>(items_.size());
    EXPECT_EQ(total_.load(), n);
    int wrong = 0;
    for (int i = 0; i < n; ++i) {
      const int k = taken_[static_cast<std::size_t>(i)].load();
      if (k != 1 && wrong++ < 5) ADD_FAILURE() << "element " << i << " taken " << k << " times";
    }
    EXPECT_EQ(wrong, 0);
  }

 private:
  std::vector<int> items_;
  std::unique_ptr<std::atomic<int>[]> taken_;
  std::atomic<int> total_{0};
};

}  // namespace rt_test
