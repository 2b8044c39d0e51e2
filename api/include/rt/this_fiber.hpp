// rt/this_fiber.hpp — questions a fiber asks about itself.
//
//   rt::go([] { std::printf("I am fiber %llu\n", (unsigned long long)rt::this_fiber::id()); });
//   rt::go([] { rt::this_fiber::set_name("producer"); /* shown in fiber dumps */ });
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rt::this_fiber {

// The calling fiber's id: stable for its life and unique among the fibers of its rt::run; the
// main fiber is 1. Each rt::run numbers its fibers afresh, so ids repeat across runs (key data
// by id within one run only). 0 on a plain thread (one that is not running a fiber).
std::uint64_t id() noexcept;

// Names the calling fiber for fiber dumps and deadlock reports (rt/debug.hpp); at most 31 bytes
// are kept, the rest is cut off. No allocation. Does nothing on a plain thread.
void set_name(std::string_view name) noexcept;

// The calling fiber's name as set_name left it; empty if none, or on a plain thread.
std::string name();

}  // namespace rt::this_fiber
