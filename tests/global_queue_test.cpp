// tests/global_queue_test.cpp — runtime/global_queue.hpp, the runtime's global run queue, on
// plain threads: FIFO order across segment boundaries, growth past one segment and reuse of the
// used-up ones, and — its guarantee — that every pushed element is taken exactly once when
// producers (single and bulk pushes) and consumers (bulk takes) race. Stressed with 2, 4 and 8
// threads.
#include "global_queue.hpp"

#include <gtest/gtest.h>

#include "queue_race_support.hpp"

#include <atomic>
#include <cstddef>
#include <random>
#include <thread>
#include <vector>

namespace {

using queue = rt::detail::global_queue<int>;
constexpr std::size_t kSeg = queue::segment_size;

TEST(GlobalQueue, EmptyQueueGivesNothing) {
  queue q;
  int* out[4];
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.take_bulk(out, 4), 0u);
}

TEST(GlobalQueue, OldestFirstAcrossSegments) {
  queue q;
  const std::size_t n = 3 * kSeg + 17;  // four segments, the last partly used
  std::vector<int> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<int>(i);
  // Pushed in batches of odd sizes, so that batches straddle segment boundaries.
  for (std::size_t i = 0; i < n;) {
    const std::size_t k = std::min<std::size_t>(37, n - i);
    std::vector<int*> batch;
    for (std::size_t j = 0; j < k; ++j) batch.push_back(&v[i + j]);
    q.push_bulk(batch.data(), k);
    i += k;
  }
  EXPECT_EQ(q.size(), n);
  std::vector<int*> out(n);
  std::size_t got = 0;
  while (got < n) {
    const std::size_t k = q.take_bulk(out.data() + got, 29);
    ASSERT_GT(k, 0u) << "elements missing after " << got;
    got += k;
  }
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], &v[i]) << i;
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.take_bulk(out.data(), 1), 0u);
}

TEST(GlobalQueue, TakesAtMostMaxAndAtMostWhatIsThere) {
  queue q;
  int a = 1, b = 2, c = 3;
  q.push(&a);
  q.push(&b);
  q.push(&c);
  int* out[8];
  ASSERT_EQ(q.take_bulk(out, 2), 2u);
  EXPECT_EQ(out[0], &a);
  EXPECT_EQ(out[1], &b);
  ASSERT_EQ(q.take_bulk(out, 8), 1u);
  EXPECT_EQ(out[0], &c);
  EXPECT_EQ(q.take_bulk(out, 0), 0u);
}

// Filling and draining many times over: the used-up segments are reused (a leak or a lost link
// shows as a wrong element under ASan, or a crash).
TEST(GlobalQueue, RepeatedBurstsReuseSegments) {
  queue q;
  std::vector<int> v(5 * kSeg);
  std::vector<int*> out(v.size());
  for (int round = 0; round < 20; ++round) {
    const std::size_t n = (round % 5 + 1) * kSeg - static_cast<std::size_t>(round);
    for (std::size_t i = 0; i < n; ++i) q.push(&v[i]);
    ASSERT_EQ(q.take_bulk(out.data(), v.size()), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], &v[i]) << round << " " << i;
  }
}

// `producers` threads push their share of n distinct elements, singly and in batches, while
// `consumers` threads take batches until every element is out. Every element must be taken
// exactly once, and each producer's elements in the order it pushed them.
void exactly_once(unsigned producers, unsigned consumers, int n) {
  queue q;
  rt_test::take_tally tally(n);
  std::atomic<int> taken{0};
  std::atomic<bool> order_ok{true};
  std::vector<std::thread> ts;
  for (unsigned c = 0; c < consumers; ++c) {
    ts.emplace_back([&, c] {
      std::vector<int> last_seen(producers, -1);  // per producer: FIFO means increasing
      int* out[32];
      const std::size_t max = c % 2 == 0 ? 32 : 3;
      while (taken.load(std::memory_order_relaxed) < n) {
        const std::size_t k = q.take_bulk(out, max);
        for (std::size_t j = 0; j < k; ++j) {
          const int v = *out[j];
          int& seen = last_seen[static_cast<std::size_t>(v) % producers];
          if (v <= seen) order_ok.store(false);
          seen = v;
          tally.take(out[j]);
        }
        taken.fetch_add(static_cast<int>(k), std::memory_order_relaxed);
      }
    });
  }
  for (unsigned p = 0; p < producers; ++p) {
    ts.emplace_back([&, p] {
      std::mt19937 rng(p + 1);
      std::vector<int*> batch;
      // Producer p pushes the elements i with i % producers == p, in increasing order.
      for (int i = static_cast<int>(p); i < n; i += static_cast<int>(producers)) {
        batch.push_back(tally.item(i));
        if (batch.size() >= 1 + rng() % 40) {
          if (batch.size() == 1) {
            q.push(batch[0]);
          } else {
            q.push_bulk(batch.data(), batch.size());
          }
          batch.clear();
        }
      }
      q.push_bulk(batch.data(), batch.size());
    });
  }
  for (auto& t : ts) t.join();
  tally.expect_each_exactly_once();
  EXPECT_TRUE(order_ok.load()) << "a producer's elements came out of order";
  EXPECT_EQ(q.size(), 0u);
}

class GlobalQueueRace : public ::testing::TestWithParam<unsigned> {};

TEST_P(GlobalQueueRace, EveryElementTakenExactlyOnceInProducerOrder) {
  const unsigned threads = GetParam();
  exactly_once(threads / 2, threads - threads / 2, rt_test::kRaceItems);
  exactly_once(1, threads - 1, rt_test::kRaceItems / 4);
}

INSTANTIATE_TEST_SUITE_P(Threads, GlobalQueueRace, ::testing::Values(2u, 4u, 8u),
                         [](const auto& info) { return std::to_string(info.param) + "Threads"; });

}  // namespace
