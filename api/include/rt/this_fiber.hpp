// rt/this_fiber.hpp — questions a fiber asks about itself.
//
//   rt::go([] { std::printf("I am fiber %llu\n", (unsigned long long)rt::this_fiber::id()); });
#pragma once

#include <cstdint>

namespace rt::this_fiber {

// The calling fiber's id: stable for its life and unique among the fibers of its rt::run; the
// main fiber is 1. Each rt::run numbers its fibers afresh, so ids repeat across runs (key data
// by id within one run only). 0 on a plain thread (one that is not running a fiber).
std::uint64_t id() noexcept;

}  // namespace rt::this_fiber
