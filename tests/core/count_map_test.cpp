#include "millrace/core/count_map.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

namespace millrace {
namespace {

// The map against std::map under random adds and removals: every count,
// the size, and the values for_each() visits agree after each step. Values
// come from a small pool (so runs of probes form and entries are shifted back
// on removal) that includes 0 and numbers' bits, which differ only in their
// high bits.
void check_against_reference(uint64_t seed, size_t pool_size, int steps) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> pool = {0, 1};
  for (double x : {0.5, 1.0, 2.0, 3.0, 100.0, -1.0}) {
    uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    pool.push_back(bits);
  }
  while (pool.size() < pool_size) pool.push_back(rng());
  CountMap map;
  std::map<uint64_t, uint32_t> ref;
  for (int step = 0; step < steps; ++step) {
    const uint64_t v = pool[rng() % pool.size()];
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      map.add(v);
      ++ref[v];
    } else if (op < 9) {
      if (ref.count(v) == 0) continue;
      map.remove_one(v);
      if (--ref[v] == 0) ref.erase(v);
    } else {
      const auto n = static_cast<uint32_t>(1 + rng() % 5);
      map.set(v, n);
      ref[v] = n;
    }
    ASSERT_EQ(map.size(), ref.size()) << "step " << step;
    ASSERT_LE(2 * map.size(), map.capacity());
    for (uint64_t p : pool) {
      auto it = ref.find(p);
      ASSERT_EQ(map.count(p), it == ref.end() ? 0u : it->second) << "step " << step;
    }
  }
  std::map<uint64_t, uint32_t> seen;
  map.for_each([&](uint64_t v, uint32_t n) { EXPECT_TRUE(seen.emplace(v, n).second); });
  EXPECT_EQ(seen, ref);
}

TEST(CountMap, MatchesAReferenceUnderRandomAddsAndRemovals) {
  check_against_reference(1, 12, 20000);   // a small table, nearly full runs
  check_against_reference(2, 300, 40000);  // growth past several doublings
}

TEST(CountMap, ActivationAndClear) {
  CountMap map;
  EXPECT_FALSE(map.active());
  EXPECT_EQ(map.count(7), 0u);
  map.activate();
  EXPECT_TRUE(map.active());
  EXPECT_EQ(map.size(), 0u);
  map.add(7, 3);
  map.add(0);
  EXPECT_EQ(map.count(7), 3u);
  EXPECT_EQ(map.count(0), 1u);
  map.remove_one(0);
  EXPECT_EQ(map.count(0), 0u);
  EXPECT_TRUE(map.active());  // empty, still holding its table
  CountMap other;
  other.swap(map);
  EXPECT_FALSE(map.active());
  EXPECT_EQ(other.count(7), 3u);
  other.clear();
  EXPECT_FALSE(other.active());
  EXPECT_EQ(other.size(), 0u);
  EXPECT_EQ(other.table_bytes(), 0u);
}

}  // namespace
}  // namespace millrace
