// tests/spawn_deque_test.cpp — runtime/spawn_deque.hpp, the owner-LIFO / thief-FIFO deque of
// freshly spawned fibers, on plain threads: its order (newest first for the owner, oldest first
// for thieves and take_oldest), its bound, and — the claim its memory-ordering argument makes —
// that every pushed element comes out exactly once however pops, steals and take_oldest race,
// the last-element race above all. Stressed with 1, 3 and 7 thieves (2, 4 and 8 threads).
#include "spawn_deque.hpp"

#include <gtest/gtest.h>

#include "queue_race_support.hpp"

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kCap = 64;
using deque = rt::detail::spawn_deque<int, kCap>;

TEST(SpawnDeque, OwnerPopsNewestFirstThievesTakeOldest) {
  deque d;
  int v[5] = {0, 1, 2, 3, 4};
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  for (int& x : v) ASSERT_TRUE(d.push(&x));
  EXPECT_EQ(d.size(), 5u);
  EXPECT_EQ(d.pop(), &v[4]);
  EXPECT_EQ(d.steal(), &v[0]);
  EXPECT_EQ(d.steal(), &v[1]);
  EXPECT_EQ(d.pop(), &v[3]);
  EXPECT_EQ(d.pop(), &v[2]);
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  EXPECT_EQ(d.size(), 0u);
}

TEST(SpawnDeque, PushRefusesWhenFullAndTakeOldestMakesRoom) {
  deque d;
  std::vector<int> v(kCap + 1);
  for (std::size_t i = 0; i < kCap; ++i) ASSERT_TRUE(d.push(&v[i]));
  EXPECT_FALSE(d.push(&v[kCap])) << "a full deque must refuse, not overwrite";
  EXPECT_EQ(d.size(), kCap);
  int* out[kCap];
  ASSERT_EQ(d.take_oldest(out, kCap / 2), kCap / 2);
  for (std::size_t i = 0; i < kCap / 2; ++i) EXPECT_EQ(out[i], &v[i]) << i;
  EXPECT_TRUE(d.push(&v[kCap]));
  EXPECT_EQ(d.pop(), &v[kCap]);
  // take_oldest always leaves the newest element in place.
  EXPECT_EQ(d.take_oldest(out, kCap), kCap / 2 - 1);
  EXPECT_EQ(d.size(), 1u);
  EXPECT_EQ(d.take_oldest(out, kCap), 0u);
  EXPECT_EQ(d.pop(), &v[kCap - 1]);
}

TEST(SpawnDeque, IndicesWrapAroundTheRing) {
  deque d;
  int a = 1, b = 2;
  for (int i = 0; i < 10 * static_cast<int>(kCap); ++i) {
    ASSERT_TRUE(d.push(&a));
    ASSERT_TRUE(d.push(&b));
    ASSERT_EQ(d.steal(), &a);
    ASSERT_EQ(d.pop(), &b);
  }
  EXPECT_EQ(d.size(), 0u);
}

// The owner pushes `n` distinct elements, popping now and then (sometimes down to the last
// element, where pop and steal race on one CAS) and moving its oldest out with take_oldest when
// full; `thieves` threads steal all along. Every element must be taken exactly once.
void exactly_once(unsigned thieves, int n, std::uint32_t seed) {
  deque d;
  rt_test::take_tally tally(n);
  std::atomic<bool> done{false};
  auto take = [&](int* p) { tally.take(p); };
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < thieves; ++t) {
    ts.emplace_back([&] {
      while (!done.load(std::memory_order_acquire) || d.size() != 0) {
        if (int* p = d.steal()) take(p);
      }
    });
  }
  std::mt19937 rng(seed);
  int* spill[kCap];
  for (int i = 0; i < n; ++i) {
    int* p = tally.item(i);
    if (!d.push(p)) {
      const std::size_t k = d.take_oldest(spill, kCap / 2);
      for (std::size_t j = 0; j < k; ++j) take(spill[j]);
      if (!d.push(p)) take(p);  // thieves emptied it meanwhile: cannot happen, but count it
    }
    switch (rng() % 4) {
      case 0:
        if (int* q = d.pop()) take(q);
        break;
      case 1:  // drain to empty: many last-element races
        while (int* q = d.pop()) take(q);
        break;
      default:
        break;
    }
  }
  while (int* q = d.pop()) take(q);
  done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  tally.expect_each_exactly_once();
}

class SpawnDequeRace : public ::testing::TestWithParam<unsigned> {};

TEST_P(SpawnDequeRace, EveryElementTakenExactlyOnce) {
  for (std::uint32_t seed = 1; seed <= 3; ++seed)
    exactly_once(GetParam(), rt_test::kRaceItems, seed);
}

INSTANTIATE_TEST_SUITE_P(Thieves, SpawnDequeRace, ::testing::Values(1u, 3u, 7u),
                         [](const auto& info) { return std::to_string(info.param) + "Thieves"; });

}  // namespace
