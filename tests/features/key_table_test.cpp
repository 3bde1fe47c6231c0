#include "millrace/features/key_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

namespace millrace {
namespace {

struct Item {
  uint64_t hash;
  int id;
};

// Random inserts and erases against a std::map, with hashes drawn from a
// small set of low bits (long probe runs that wrap around the end of the
// table) and shared full hashes (told apart by the caller's predicate).
TEST(KeyTable, MatchesAMapUnderChurnWithCollisions) {
  std::mt19937_64 rng(7);
  KeyTable<Item> table;
  std::map<int, std::unique_ptr<Item>> ref;
  int next_id = 0;
  auto find = [&](const Item& it) {
    return table.find(it.hash, [&](const Item* x) { return x->id == it.id; });
  };
  for (int step = 0; step < 40000; ++step) {
    const bool add = ref.empty() || rng() % 100 < (step < 20000 ? 60 : 40);
    if (add) {
      auto item = std::make_unique<Item>();
      // Few distinct low bits, and sometimes a hash already used.
      item->hash = (rng() % 4 == 0 && !ref.empty())
                       ? ref.begin()->second->hash
                       : (rng() << 12) | (rng() % 4 == 0 ? 4095 : rng() % 4096);
      item->id = next_id++;
      ASSERT_EQ(find(*item), nullptr);
      table.insert(item->hash, item.get());
      ref.emplace(item->id, std::move(item));
    } else {
      auto it = ref.begin();
      std::advance(it, rng() % ref.size());
      ASSERT_TRUE(table.erase(it->second->hash, it->second.get()));
      ASSERT_FALSE(table.erase(it->second->hash, it->second.get()));
      ASSERT_EQ(find(*it->second), nullptr);
      ref.erase(it);
    }
    ASSERT_EQ(table.size(), ref.size());
    ASSERT_LE(table.size() * 2, table.capacity());
    if (step % 4999 == 0) {
      for (const auto& [id, item] : ref) ASSERT_EQ(find(*item), item.get()) << id;
      size_t seen = 0;
      table.for_each([&](uint64_t hash, Item* item) {
        ASSERT_EQ(hash, item->hash);
        ASSERT_TRUE(ref.count(item->id));
        ++seen;
      });
      ASSERT_EQ(seen, ref.size());
    }
  }
  table.clear();
  EXPECT_EQ(table.size(), 0u);
  for (const auto& [id, item] : ref) EXPECT_EQ(find(*item), nullptr);
}

}  // namespace
}  // namespace millrace
