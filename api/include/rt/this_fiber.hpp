// rt/this_fiber.hpp — questions a fiber asks about itself.
//
//   rt::go([] { std::printf("I am fiber %llu\n", (unsigned long long)rt::this_fiber::id()); });
//   rt::go([] { rt::this_fiber::set_name("producer"); /* shown in fiber dumps */ });
//   rt::this_fiber::sleep_for(10ms);  // = rt::sleep_for, in std::this_thread's words
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rt/time.hpp"

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

// rt::sleep_for and rt::sleep_until (rt/time.hpp), under std::this_thread's names: the calling
// fiber sleeps, its worker runs others; on a plain thread, std::this_thread's.
using rt::sleep_for;
using rt::sleep_until;

}  // namespace rt::this_fiber
