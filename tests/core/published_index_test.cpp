// PublishedIndex and EpochReclaimer: readers search the index and read the
// objects they find while one writer inserts, removes and retires objects and
// rebuilds the index. An object is poisoned when it is freed, so a reader that
// reads an object after its memory was given back sees the poison (and the
// sanitizer build reports the use after free). Also: find() after insert and
// erase on one thread, and collect() freeing only once readers have left.
#include "millrace/core/published_index.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace millrace {
namespace {

struct Object {
  uint64_t hash;
  std::atomic<uint64_t> id;  // read by readers while the writer may poison it
  uint64_t payload[6];
};
constexpr uint64_t kPoison = 0xdeadbeefdeadbeef;

void poison_and_delete(void* freed, void* object) {
  auto* o = static_cast<Object*>(object);
  o->id.store(kPoison, std::memory_order_relaxed);
  static_cast<std::atomic<int>*>(freed)->fetch_add(1);
  delete o;
}

TEST(PublishedIndex, FindsWhatIsInsertedAndNotWhatIsErased) {
  EpochReclaimer r;
  PublishedIndex<Object> index(&r);
  std::vector<Object*> objects;
  std::atomic<int> freed{0};
  for (uint64_t i = 0; i < 1000; ++i) {
    auto* o = new Object{i % 97, {i}, {}};  // many share a hash
    objects.push_back(o);
    index.insert(o->hash, o);
  }
  auto find = [&](uint64_t id) {
    EpochReclaimer::ReadGuard g(r);
    return index.find(id % 97, [&](const Object* o) { return o->id.load() == id; });
  };
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(find(i), objects[i]);
  for (uint64_t i = 0; i < 1000; i += 2) {
    index.erase(objects[i]->hash, objects[i]);
    r.retire(objects[i], &poison_and_delete, &freed);
  }
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(find(i), i % 2 ? objects[i] : nullptr) << i;
  EXPECT_EQ(index.size(), 500u);
  {
    // A reader inside a guard holds back freeing.
    EpochReclaimer::ReadGuard g(r);
    for (int i = 0; i < 5; ++i) r.collect();
    EXPECT_EQ(freed.load(), 0);
  }
  r.collect();
  r.collect();
  EXPECT_EQ(freed.load(), 500);
  for (uint64_t i = 1; i < 1000; i += 2) delete objects[i];
}

TEST(PublishedIndex, ReadersNeverReadFreedObjects) {
  EpochReclaimer r;
  PublishedIndex<Object> index(&r);
  constexpr uint64_t kKeys = 256;
  std::atomic<bool> done{false};
  std::atomic<int> freed{0};
  std::atomic<int64_t> bad{0};
  std::atomic<int64_t> found[2] = {0, 0};  // per reader
  auto reader = [&](int seed) {
    std::mt19937_64 rng(seed);
    while (!done.load(std::memory_order_relaxed)) {
      const uint64_t key = rng() % kKeys;
      EpochReclaimer::ReadGuard g(r);
      const Object* o =
          index.find(key, [&](const Object* p) { return p->id.load() % kKeys == key; });
      if (o == nullptr) continue;
      // Inside the guard the object stays valid, however long this takes.
      for (int spin = 0; spin < 50; ++spin) {
        const uint64_t id = o->id.load(std::memory_order_relaxed);
        if (id == kPoison || id % kKeys != key || o->hash != key) ++bad;
      }
      ++found[seed - 1];
    }
  };
  std::thread r1(reader, 1), r2(reader, 2);
  // The writer: replaces keys' objects, removes some, lets the index grow and
  // rebuild, and collects as it goes.
  std::mt19937_64 rng(3);
  std::vector<Object*> live(kKeys, nullptr);
  // At least 200 k rounds, and on until both readers have read objects while
  // the writer works (on a loaded machine a reader can start late).
  auto readers_ran = [&] { return found[0].load() >= 1000 && found[1].load() >= 1000; };
  for (uint64_t round = 0; round < 200'000 || !readers_ran(); ++round) {
    const uint64_t key = rng() % kKeys;
    if (Object* old = live[key]) {
      index.erase(key, old);
      r.retire(old, &poison_and_delete, &freed);
      live[key] = nullptr;
    }
    if (rng() % 4 != 0) {
      live[key] = new Object{key, {round * kKeys + key}, {}};
      index.insert(key, live[key]);
    }
    if (round % 16 == 0) r.collect();
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(found[0].load(), 1000);
  EXPECT_GE(found[1].load(), 1000);
  EXPECT_GT(freed.load(), 1000);
  for (Object* o : live) delete o;
}

}  // namespace
}  // namespace millrace
