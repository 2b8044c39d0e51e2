// tests/chain_queue_test.cpp — runtime/chain_queue.hpp, the global run queue of fiber chains, on
// plain threads: its order (FIFO per producer, a split chain's rest at the tail), its count (never
// below what is queued), and — the claim its argument makes — that every element pushed comes
// out exactly once however producers' chains and takers' splits race. Stressed at 2, 4 and 8
// threads (1, 2 and 4 producers, as many takers).
#include "chain_queue.hpp"

#include <gtest/gtest.h>

#include "queue_race_support.hpp"

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {

struct node {
  int id = 0;
  node* next = nullptr;
};
using queue = rt::detail::chain_queue<node>;

std::vector<int> ids_of(node* chain) {
  std::vector<int> ids;
  for (; chain; chain = chain->next) ids.push_back(chain->id);
  return ids;
}

TEST(ChainQueue, TakesOldestFirstAndSplitsAChainAtWhatIsWanted) {
  queue q;
  std::vector<node> v(8);
  for (int i = 0; i < 8; ++i) v[static_cast<std::size_t>(i)].id = i;
  std::size_t got = 99;
  EXPECT_EQ(q.take(4, got), nullptr);
  EXPECT_EQ(got, 0u);
  node* first3[] = {&v[0], &v[1], &v[2]};
  q.push_array(first3, 3);
  q.push(&v[3]);
  node* last4[] = {&v[4], &v[5], &v[6], &v[7]};
  q.push_array(last4, 4);
  EXPECT_EQ(q.size(), 8u);
  // Two whole chains and one of the third: its rest (5, 6, 7) goes back.
  EXPECT_EQ(ids_of(q.take(5, got)), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(got, 5u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(ids_of(q.take(1, got)), (std::vector<int>{5}));
  EXPECT_EQ(ids_of(q.take(100, got)), (std::vector<int>{6, 7}));
  EXPECT_EQ(got, 2u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.take(100, got), nullptr);
}

TEST(ChainQueue, ASplitChainsRestQueuesBehindChainsPushedBeforeTheSplit) {
  queue q;
  std::vector<node> v(4);
  for (int i = 0; i < 4; ++i) v[static_cast<std::size_t>(i)].id = i;
  node* abc[] = {&v[0], &v[1], &v[2]};
  q.push_array(abc, 3);
  q.push(&v[3]);
  std::size_t got = 0;
  EXPECT_EQ(ids_of(q.take(1, got)), (std::vector<int>{0}));
  EXPECT_EQ(ids_of(q.take(1, got)), (std::vector<int>{3}));
  EXPECT_EQ(ids_of(q.take(5, got)), (std::vector<int>{1, 2}));
}

// `producers` threads push every element once, in chains of 1..128; `producers` takers take
// batches of 1..130 (splitting chains) until all are out. Every element exactly once, and the
// count is back to 0.
void exactly_once(unsigned producers, int n, std::uint32_t seed) {
  queue q;
  rt_test::take_tally tally(n);
  std::vector<node> nodes(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) nodes[static_cast<std::size_t>(i)].id = i;
  std::atomic<int> taken{0};
  std::vector<std::thread> ts;
  for (unsigned p = 0; p < producers; ++p) {
    ts.emplace_back([&, p] {
      std::mt19937 rng(seed * 31 + p);
      node* batch[128];
      // Producer p pushes the elements i with i % producers == p.
      std::size_t k = 0;
      std::size_t len = 1 + rng() % 128;
      for (int i = static_cast<int>(p); i < n; i += static_cast<int>(producers)) {
        batch[k++] = &nodes[static_cast<std::size_t>(i)];
        if (k == len) {
          if (k == 1) {
            q.push(batch[0]);
          } else {
            q.push_array(batch, k);
          }
          k = 0;
          len = 1 + rng() % 128;
        }
      }
      if (k != 0) q.push_array(batch, k);
    });
    ts.emplace_back([&, p] {
      std::mt19937 rng(seed * 17 + p);
      while (taken.load(std::memory_order_relaxed) < n) {
        std::size_t got = 0;
        node* chain = q.take(1 + rng() % 130, got);
        std::size_t walked = 0;
        for (; chain; chain = chain->next, ++walked) tally.take(tally.item(chain->id));
        EXPECT_EQ(walked, got);
        taken.fetch_add(static_cast<int>(got), std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : ts) t.join();
  tally.expect_each_exactly_once();
  EXPECT_EQ(q.size(), 0u);
}

class ChainQueueRace : public ::testing::TestWithParam<unsigned> {};

TEST_P(ChainQueueRace, EveryElementTakenExactlyOnce) {
  for (std::uint32_t seed = 1; seed <= 3; ++seed)
    exactly_once(GetParam(), rt_test::kRaceItems, seed);
}

INSTANTIATE_TEST_SUITE_P(Producers, ChainQueueRace, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return std::to_string(info.param) + "Producers"; });

}  // namespace
