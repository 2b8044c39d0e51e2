// tests/model/model_fuzz.cpp — libFuzzer entry: the input bytes choose the program seed, the
// worker count and the chaos seed; the history is checked as in model_test.cpp. Build with
//   cmake -DCMAKE_CXX_COMPILER=clang++ -DRT_BUILD_FUZZ=ON ... && ./model_fuzz -max_total_time=30
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint64_t seed = 0, chaos = 0;
  std::memcpy(&seed, data, size < 8 ? size : 8);
  if (size > 8) std::memcpy(&chaos, data + 8, size - 8 < 8 ? size - 8 : 8);
  const unsigned workers = 1u + static_cast<unsigned>((size > 16 ? data[16] : seed >> 56) % 4);
  if (chaos == 0) chaos = seed * 8 + workers + 1;
  if (chaos == 0) chaos = 1;
  const model::program p = model::generate(seed);
  const model::result r = model::execute(p, workers, chaos);
  const std::string e = model::check(p, r);
  if (!e.empty()) {
    std::fprintf(stderr, "model_fuzz: seed %llu workers %u chaos_seed %llu\n%s%s",
                 static_cast<unsigned long long>(seed), workers,
                 static_cast<unsigned long long>(chaos), e.c_str(), p.describe().c_str());
    std::abort();
  }
  return 0;
}
