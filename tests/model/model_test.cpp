// tests/model/model_test.cpp — runs generated channel/select programs (model.hpp) on the runtime
// with 1, 2 and 4 workers under chaos scheduling and checks every history against Go's semantics.
//
//   RT_MODEL_SEEDS=N    programs to run (default 1000); RT_MODEL_FIRST=S: first seed (default 1)
//   RT_MODEL_SEED=S     run only seed S (replay a failure; add RT_MODEL_VERBOSE=1 to print it)
//   RT_MODEL_VERBOSE=1  print each seed before running it (a deadlock report then names it)
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "../test_support.hpp"  // the death tests' deadline
#include "model.hpp"

namespace {

std::uint64_t env_u64(const char* name, std::uint64_t def) {
  const char* s = std::getenv(name);
  return s && *s ? std::strtoull(s, nullptr, 10) : def;
}

// The chaos seed for (program seed, workers): never 0, which would mean "off".
std::uint64_t chaos_for(std::uint64_t seed, unsigned w) {
  return seed * 8 + w + 1;
}

TEST(Model, RandomProgramsMatchGoSemantics) {
  std::uint64_t first = env_u64("RT_MODEL_FIRST", 1), count = env_u64("RT_MODEL_SEEDS", 1000);
  if (const char* one = std::getenv("RT_MODEL_SEED"); one && *one) {
    first = std::strtoull(one, nullptr, 10);
    count = 1;
  }
  const bool verbose = env_u64("RT_MODEL_VERBOSE", 0) != 0;
  const auto t0 = std::chrono::steady_clock::now();
  model::check_stats stats;
  std::size_t runs = 0, failures = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    const model::program p = model::generate(seed);
    if (verbose) std::printf("%s", p.describe().c_str()), std::fflush(stdout);
    for (unsigned w : {1u, 2u, 4u}) {
      if (verbose)
        std::printf("seed %llu workers %u\n", static_cast<unsigned long long>(seed), w),
            std::fflush(stdout);
      const model::result r = model::execute(p, w, chaos_for(seed, w));
      const std::string e = model::check(p, r, &stats);
      ++runs;
      if (!e.empty()) {
        ++failures;
        ADD_FAILURE() << "seed " << seed << " workers " << w << " chaos_seed " << chaos_for(seed, w)
                      << " (replay: RT_MODEL_SEED=" << seed << " RT_MODEL_VERBOSE=1)\n"
                      << e << p.describe();
        if (failures >= 5) return;
      }
      // With one worker and no timers, a chaos seed must replay exactly.
      if (w == 1 && !p.has_sleep && seed % 4 == 0) {
        const model::result again = model::execute(p, 1, chaos_for(seed, 1));
        EXPECT_EQ(model::fingerprint(r), model::fingerprint(again))
            << "seed " << seed << ": one worker, same chaos seed, different history\n"
            << p.describe();
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "model: %llu programs x workers {1,2,4} = %zu runs, %zu ops checked (%zu selects, %zu "
      "otherwise taken, %zu nullopt receives, %zu channel_closed throws), %zu failures, %.1f s\n",
      static_cast<unsigned long long>(count), runs, stats.ops, stats.selects, stats.otherwise,
      stats.nullopt, stats.threw, failures, secs);
}

// Deadlock vs. model: the same programs with one fiber stuck for good (model verdict: deadlock
// under every schedule) must end in Go's deadlock report naming the wait, with exit status 2.
// Each case runs in a child process (a death test). RT_MODEL_DEADLOCK_SEEDS=N (default 12).
class ModelDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(ModelDeathTest, StuckProgramsReportDeadlock) {
  const std::uint64_t count = env_u64("RT_MODEL_DEADLOCK_SEEDS", 12);
  for (std::uint64_t seed = 1; seed <= count; ++seed) {
    const model::program p = model::with_stuck_op(model::generate(seed));
    for (unsigned w : {1u, 4u}) {
      const std::string re =
          std::string("fatal error: all goroutines are asleep - deadlock!(.|\n)*\\[") +
          model::stuck_reason(p.stuck_kind) + "(, [0-9]+ [a-z]+)?\\]";  // wait time (issue 10)
      EXPECT_EXIT(model::execute(p, w, chaos_for(seed, w)), ::testing::ExitedWithCode(2), re)
          << "seed " << seed << " workers " << w << "\n"
          << p.describe();
    }
  }
}

// The checker must have teeth: corrupt a real history in each way it is meant to catch.
model::result sample(std::uint64_t& seed_out, model::program& p) {
  for (std::uint64_t seed = 1;; ++seed) {
    p = model::generate(seed);
    model::result r = model::execute(p, 1, chaos_for(seed, 1));
    std::size_t recvs = 0;
    for (auto& h : r.hist)
      for (auto& x : h)
        if (x.kind == model::op_kind::recv && x.res == model::outcome::ok) ++recvs;
    if (recvs >= 3) {
      seed_out = seed;
      return r;
    }
  }
}

model::rec* first_recv(model::result& r) {
  for (auto& h : r.hist)
    for (auto& x : h)
      if (x.kind == model::op_kind::recv && x.res == model::outcome::ok) return &x;
  return nullptr;
}

TEST(Model, CheckerCatchesCorruptedHistories) {
  std::uint64_t seed = 0;
  model::program p;
  const model::result good = sample(seed, p);
  ASSERT_EQ(model::check(p, good), "") << "seed " << seed;
  {  // a value received twice
    model::result r = good;
    model::rec* x = first_recv(r);
    r.hist.back().push_back(*x);
    EXPECT_NE(model::check(p, r).find("received twice"), std::string::npos);
  }
  {  // a value lost
    model::result r = good;
    model::rec* x = first_recv(r);
    x->value = 0xdead00000001ull;
    const std::string e = model::check(p, r);
    EXPECT_NE(e.find("never received"), std::string::npos) << e;
    EXPECT_NE(e.find("never offered"), std::string::npos) << e;
  }
  {  // a close that did not happen
    model::result r = good;
    for (auto& h : r.hist)
      for (auto it = h.begin(); it != h.end(); ++it)
        if (it->is_close && it->res == model::outcome::ok) {
          h.erase(it);
          goto erased;
        }
  erased:
    EXPECT_NE(model::check(p, r), "");
  }
  {  // a sender's two values received in the wrong order by one receiver
    model::result r = good;
    bool swapped = false;
    for (auto& h : r.hist) {
      for (std::size_t i = 0; i < h.size() && !swapped; ++i)
        for (std::size_t j = i + 1; j < h.size() && !swapped; ++j)
          if (h[i].res == model::outcome::ok && h[j].res == model::outcome::ok &&
              !h[i].case_is_send && !h[j].case_is_send && h[i].kind != model::op_kind::send &&
              h[j].kind != model::op_kind::send && !h[i].is_close && !h[j].is_close &&
              h[i].ch == h[j].ch && (h[i].value >> 32) == (h[j].value >> 32)) {
            std::swap(h[i].value, h[j].value);
            swapped = true;
          }
    }
    if (swapped) {
      EXPECT_NE(model::check(p, r).find("out of order"), std::string::npos);
    }
  }
}

}  // namespace
