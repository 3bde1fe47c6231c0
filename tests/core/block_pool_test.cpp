#include "millrace/core/block_pool.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace millrace {
namespace {

// Two pools of different block sizes, each over several chunks: blocks never
// overlap and keep what was written to them, and a block freed by address
// alone goes back to its own pool (the next allocation of that pool reuses it).
TEST(BlockPool, BlocksAreDisjointAndReturnToTheirPool) {
  BlockPool small(100), large(3000);  // 128- and 3008-byte blocks
  EXPECT_EQ(small.block_bytes(), 128u);
  EXPECT_EQ(large.block_bytes(), 3008u);
  std::mt19937 rng(3);
  std::map<char*, std::pair<size_t, unsigned char>> live;  // block -> size, fill byte
  auto alloc = [&](BlockPool& p) {
    char* b = static_cast<char*>(p.allocate());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % BlockPool::kAlign, 0u);
    const unsigned char fill = static_cast<unsigned char>(rng());
    std::memset(b, fill, p.block_bytes());
    live[b] = {p.block_bytes(), fill};
    return b;
  };
  for (int i = 0; i < 40000; ++i) alloc(i % 4 == 0 ? large : small);
  EXPECT_GE(small.reserved_bytes(), 2 * BlockPool::kChunk);  // several chunks each
  EXPECT_GE(large.reserved_bytes(), 2 * BlockPool::kChunk);
  // Free every third block; the next allocations of each pool reuse them.
  std::vector<char*> freed_small, freed_large;
  int k = 0;
  for (auto it = live.begin(); it != live.end();) {
    if (k++ % 3 == 0) {
      (it->second.first == 128 ? freed_small : freed_large).push_back(it->first);
      BlockPool::deallocate(it->first);
      it = live.erase(it);
    } else {
      ++it;
    }
  }
  const size_t reserved = small.reserved_bytes() + large.reserved_bytes();
  for (size_t i = 0; i < freed_small.size(); ++i) {
    char* b = alloc(small);
    EXPECT_EQ(b, freed_small[freed_small.size() - 1 - i]);  // last freed, first reused
  }
  for (size_t i = 0; i < freed_large.size(); ++i) alloc(large);
  EXPECT_EQ(small.reserved_bytes() + large.reserved_bytes(), reserved);  // no new chunk
  // No two live blocks overlap, and each still holds its own bytes.
  char* end = nullptr;
  for (const auto& [b, info] : live) {
    ASSERT_GE(b, end);
    end = b + info.first;
    for (size_t j = 0; j < info.first; ++j)
      ASSERT_EQ(static_cast<unsigned char>(b[j]), info.second);
  }
}

// The VmFlags of the mapping holding `addr` (/proc/self/smaps), "" if none.
std::string vm_flags_of(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(addr);
  bool in = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 16) {
      in = lo <= a && a < hi;
    } else if (in && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

// Chunks past a pool's first are advised as huge pages ("hg" in their
// mapping's flags) unless the pool was told not to (a backfill's pools).
TEST(BlockPool, HugePagesAreAdvisedUnlessTurnedOff) {
  // A kernel without transparent huge pages rejects the advice: the pool
  // then has no flag to show either way but the absent one.
  const bool thp = std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
  for (bool huge : {true, false}) {
    if (huge && !thp) continue;
    BlockPool pool(4096);
    pool.set_huge_pages(huge);
    std::vector<char*> blocks;
    while (pool.reserved_bytes() < 3 * BlockPool::kChunk)
      blocks.push_back(static_cast<char*>(pool.allocate()));
    char* later = blocks.back();  // in the third chunk
    *later = 1;
    const std::string flags = vm_flags_of(later);
    ASSERT_FALSE(flags.empty());
    EXPECT_EQ(flags.find(" hg") != std::string::npos, huge) << flags;
    const std::string first = vm_flags_of(blocks.front());
    EXPECT_EQ(first.find(" hg"), std::string::npos) << first;  // the first chunk: never
  }
}

}  // namespace
}  // namespace millrace
