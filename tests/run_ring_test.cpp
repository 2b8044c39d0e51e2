// tests/run_ring_test.cpp — runtime/run_ring.hpp, a worker's local run queue (Go's runq), on
// plain threads: its order (FIFO for everyone), its bound, and — the claim its memory-ordering
// argument makes — that every pushed element comes out exactly once however the owner's pushes
// (single and bulk), pops and take_oldest_half and thieves' steal_half race. Stressed with 1, 3
// and 7 thieves (2, 4 and 8 threads).
#include "run_ring.hpp"

#include <gtest/gtest.h>

#include "queue_race_support.hpp"

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {

constexpr std::uint32_t kCap = 64;
using ring = rt::detail::run_ring<int, kCap>;

TEST(RunRing, OwnerAndThievesTakeOldestFirst) {
  ring r;
  int v[6] = {0, 1, 2, 3, 4, 5};
  int* out[kCap];
  EXPECT_EQ(r.pop(), nullptr);
  EXPECT_EQ(r.steal_half(out, kCap), 0u);
  for (int& x : v) ASSERT_TRUE(r.push(&x));
  EXPECT_EQ(r.size(), 6u);
  EXPECT_EQ(r.pop(), &v[0]);
  // Half of five, rounded up: the three oldest.
  ASSERT_EQ(r.steal_half(out, kCap), 3u);
  EXPECT_EQ(out[0], &v[1]);
  EXPECT_EQ(out[1], &v[2]);
  EXPECT_EQ(out[2], &v[3]);
  // At most `max`.
  ASSERT_EQ(r.steal_half(out, 0), 0u);
  ASSERT_EQ(r.steal_half(out, 1), 1u);
  EXPECT_EQ(out[0], &v[4]);
  EXPECT_EQ(r.pop(), &v[5]);
  EXPECT_EQ(r.pop(), nullptr);
  EXPECT_EQ(r.size(), 0u);
}

TEST(RunRing, PushRefusesWhenFullAndTakeOldestHalfMakesRoom) {
  ring r;
  std::vector<int> v(kCap + 1);
  for (std::uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(r.push(&v[i]));
  EXPECT_FALSE(r.push(&v[kCap])) << "a full ring must refuse, not overwrite";
  EXPECT_EQ(r.size(), kCap);
  int* out[kCap / 2];
  ASSERT_EQ(r.take_oldest_half(out), kCap / 2);
  for (std::uint32_t i = 0; i < kCap / 2; ++i) EXPECT_EQ(out[i], &v[i]) << i;
  EXPECT_TRUE(r.push(&v[kCap]));
  for (std::uint32_t i = kCap / 2; i <= kCap; ++i) EXPECT_EQ(r.pop(), &v[i]) << i;
  EXPECT_EQ(r.pop(), nullptr);
}

TEST(RunRing, PushBulkAddsInOrderAsFarAsThereIsRoom) {
  ring r;
  std::vector<int> v(kCap + 8);
  std::vector<int*> p;
  for (int& x : v) p.push_back(&x);
  int a = -1;
  ASSERT_TRUE(r.push(&a));
  EXPECT_EQ(r.push_bulk(p.data(), 0), 0u);
  // Room for kCap - 1: the rest is refused, nothing overwritten.
  ASSERT_EQ(r.push_bulk(p.data(), kCap + 8), kCap - 1);
  EXPECT_EQ(r.size(), kCap);
  EXPECT_EQ(r.pop(), &a);
  for (std::uint32_t i = 0; i < kCap - 1; ++i) EXPECT_EQ(r.pop(), p[i]) << i;
  EXPECT_EQ(r.pop(), nullptr);
  // Across the ring's end.
  for (std::uint32_t i = 0; i < kCap / 2; ++i) ASSERT_TRUE(r.push(&a));
  for (std::uint32_t i = 0; i < kCap / 2; ++i) ASSERT_EQ(r.pop(), &a);
  ASSERT_EQ(r.push_bulk(p.data(), kCap), kCap);
  for (std::uint32_t i = 0; i < kCap; ++i) EXPECT_EQ(r.pop(), p[i]) << i;
}

TEST(RunRing, IndicesWrapAroundTheRing) {
  ring r;
  int a = 1, b = 2;
  int* out[kCap];
  for (int i = 0; i < 10 * static_cast<int>(kCap); ++i) {
    ASSERT_TRUE(r.push(&a));
    ASSERT_TRUE(r.push(&b));
    ASSERT_EQ(r.steal_half(out, kCap), 1u);
    ASSERT_EQ(out[0], &a);
    ASSERT_EQ(r.pop(), &b);
  }
  EXPECT_EQ(r.size(), 0u);
}

// The owner pushes `n` distinct elements, popping now and then (sometimes down to empty, racing
// thieves over the last ones) and moving its oldest half out when full; `thieves` threads steal
// batches all along. Every element must be taken exactly once.
void exactly_once(unsigned thieves, int n, std::uint32_t seed) {
  ring r;
  rt_test::take_tally tally(n);
  std::atomic<bool> done{false};
  auto take = [&](int* p) { tally.take(p); };
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < thieves; ++t) {
    ts.emplace_back([&, t] {
      int* out[kCap];
      const std::uint32_t max = t % 2 == 0 ? kCap : 3;  // whole halves, and small batches
      while (!done.load(std::memory_order_acquire) || r.size() != 0) {
        const std::uint32_t k = r.steal_half(out, max);
        for (std::uint32_t j = 0; j < k; ++j) take(out[j]);
      }
    });
  }
  std::mt19937 rng(seed);
  int* spill[kCap / 2];
  for (int i = 0; i < n; ++i) {
    int* p = tally.item(i);
    if (i + 8 < n && rng() % 8 == 0) {  // now and then a batch, as take_global and steals push
      int* batch[8];
      for (int j = 0; j < 8; ++j) batch[j] = tally.item(i + j);
      const std::uint32_t pushed = r.push_bulk(batch, 8);
      for (std::uint32_t j = pushed; j < 8; ++j) take(batch[j]);  // refused: counted here
      i += 7;
      continue;
    }
    if (!r.push(p)) {
      const std::uint32_t k = r.take_oldest_half(spill);
      for (std::uint32_t j = 0; j < k; ++j) take(spill[j]);
      if (!r.push(p)) take(p);  // cannot happen (only the owner pushes), but count it
    }
    switch (rng() % 4) {
      case 0:
        if (int* q = r.pop()) take(q);
        break;
      case 1:  // drain to empty: races with thieves over the last elements
        while (int* q = r.pop()) take(q);
        break;
      default:
        break;
    }
  }
  while (int* q = r.pop()) take(q);
  done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  tally.expect_each_exactly_once();
}

class RunRingRace : public ::testing::TestWithParam<unsigned> {};

TEST_P(RunRingRace, EveryElementTakenExactlyOnce) {
  for (std::uint32_t seed = 1; seed <= 3; ++seed)
    exactly_once(GetParam(), rt_test::kRaceItems, seed);
}

INSTANTIATE_TEST_SUITE_P(Thieves, RunRingRace, ::testing::Values(1u, 3u, 7u),
                         [](const auto& info) { return std::to_string(info.param) + "Thieves"; });

}  // namespace
