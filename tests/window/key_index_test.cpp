// KeyIndex against a std::map on random inserts and erases, with hashes drawn
// from a small range so that probe chains are long, wrap around the table and
// hold equal hashes of different keys; the table grows and shrinks.
#include "millrace/window/window_key.h"

#include <map>
#include <random>

#include <gtest/gtest.h>

namespace millrace {
namespace {

TEST(KeyIndex, MatchesAMapUnderInsertsAndErases) {
  for (uint32_t hash_range : {7u, 1000u, 0xffffffffu}) {
    std::mt19937_64 rng(hash_range);
    KeyIndex index;
    // key -> (hash, head); a key's "node" is its own number, so same(head) is head == key.
    std::map<uint32_t, uint32_t> hash_of;
    size_t peak = 0;
    for (int step = 0; step < 60000; ++step) {
      // Grow for the first half, shrink to nothing in the second.
      const bool grow = step < 30000 ? rng() % 4 != 0 : rng() % 4 == 0;
      const uint32_t key = static_cast<uint32_t>(rng() % 5000);
      auto it = hash_of.find(key);
      const uint32_t hash =
          it != hash_of.end() ? it->second : static_cast<uint32_t>(rng() % hash_range);
      KeyIndex::Slot* s = index.find(hash, [&](uint32_t head) { return head == key; });
      ASSERT_EQ(s != nullptr, it != hash_of.end()) << "step " << step;
      if (grow && !s) {
        index.insert(hash, key);
        hash_of[key] = hash;
      } else if (!grow && s) {
        index.erase(s);
        hash_of.erase(key);
      }
      ASSERT_EQ(index.size(), hash_of.size());
      peak = std::max(peak, index.size());
      if (step % 5000 == 0) {
        size_t n = 0;
        index.for_each([&](uint32_t head) {
          ++n;
          ASSERT_TRUE(hash_of.count(head));
        });
        ASSERT_EQ(n, hash_of.size());
        for (auto [k, h] : hash_of)
          ASSERT_NE(index.find(h, [&](uint32_t head) { return head == k; }), nullptr);
      }
    }
    for (auto [k, h] : hash_of) {
      KeyIndex::Slot* s = index.find(h, [&](uint32_t head) { return head == k; });
      ASSERT_NE(s, nullptr);
      index.erase(s);
    }
    EXPECT_EQ(index.size(), 0u);
    EXPECT_GT(peak, 2000u);
    EXPECT_LE(index.memory_bytes(), 1024u);  // shrunk back
  }
}

}  // namespace
}  // namespace millrace
