// tests/block_arena_test.cpp — runtime/block_arena.hpp: where chunks of control blocks live.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "block_arena.hpp"
#include "sanitizer.hpp"

namespace {

using rt::detail::block_arena;

constexpr std::size_t chunk_bytes = 256 * 288;  // a chunk of today's control blocks

// Every chunk is aligned, writable, and overlaps no other.
TEST(BlockArena, ChunksAreAlignedWritableAndDisjoint) {
  block_arena arena;
  std::vector<unsigned char*> got;
  for (int i = 0; i < 100; ++i) {  // past the heap chunks and across several slabs
    auto* p = static_cast<unsigned char*>(arena.take(chunk_bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % block_arena::alignment, 0u);
    std::memset(p, i, chunk_bytes);
    got.push_back(p);
  }
  for (int i = 0; i < 100; ++i) {  // nothing written later reached an earlier chunk
    EXPECT_EQ(got[i][0], static_cast<unsigned char>(i));
    EXPECT_EQ(got[i][chunk_bytes - 1], static_cast<unsigned char>(i));
  }
  std::set<unsigned char*> sorted(got.begin(), got.end());
  ASSERT_EQ(sorted.size(), got.size());
  unsigned char* prev_end = nullptr;
  for (unsigned char* p : sorted) {
    EXPECT_TRUE(prev_end == nullptr || p >= prev_end);
    prev_end = p + chunk_bytes;
  }
}

// The first heap_chunks chunks come from malloc (a small program maps no slab); after them,
// slabs of slab_bytes, each aligned to its size so that one huge page can back it. Sanitizer
// builds never map slabs.
TEST(BlockArena, SlabsOnlyPastTheHeapChunksAndAlignedToTheirSize) {
  block_arena arena;
  for (std::size_t i = 0; i < block_arena::heap_chunks; ++i) arena.take(chunk_bytes);
  EXPECT_EQ(arena.slab_bytes_mapped(), 0u);
  const auto* p = static_cast<const unsigned char*>(arena.take(chunk_bytes));
  if (rt::detail::built_with_sanitizer) {
    EXPECT_EQ(arena.slab_bytes_mapped(), 0u);
    return;
  }
  EXPECT_EQ(arena.slab_bytes_mapped(), block_arena::slab_bytes);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % block_arena::slab_bytes, 0u);
  // A slab holds slab_bytes / chunk_bytes chunks; the next one starts a new slab.
  const std::size_t per_slab = block_arena::slab_bytes / chunk_bytes;
  for (std::size_t i = 1; i < per_slab; ++i) arena.take(chunk_bytes);
  EXPECT_EQ(arena.slab_bytes_mapped(), block_arena::slab_bytes);
  arena.take(chunk_bytes);
  EXPECT_EQ(arena.slab_bytes_mapped(), 2 * block_arena::slab_bytes);
}

}  // namespace
