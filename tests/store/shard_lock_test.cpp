// ShardLock: readers never see a half-done change, and neither side starves
// the other (a busy writer lets waiting readers in; back-to-back readers let
// the writer in).
#include "millrace/store/shard_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace millrace {
namespace {

using Clock = std::chrono::steady_clock;

// The writer keeps every cell equal to its count of changes; a reader that
// sees two different cells read during a change.
struct Guarded {
  ShardLock lock;
  std::vector<uint64_t> cells = std::vector<uint64_t>(64, 0);
};

TEST(ShardLock, ReadersSeeWholeChangesAndNeitherSideStarves) {
  Guarded g;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> torn{0}, reads{0}, writes{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {  // back to back, no gap
        g.lock.lock_shared();
        const uint64_t first = g.cells[0];
        for (uint64_t c : g.cells) torn.fetch_add(c != first, std::memory_order_relaxed);
        g.lock.unlock_shared();
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  std::thread writer([&] {
    while (!stop.load(std::memory_order_relaxed)) {  // also back to back
      g.lock.lock();
      for (uint64_t& c : g.cells) ++c;
      g.lock.unlock();
      writes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  // Both sides must get through many times while the other is as busy as it can be.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while ((reads.load() < 20000 || writes.load() < 20000) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GE(reads.load(), 20000u);
  EXPECT_GE(writes.load(), 20000u);
  EXPECT_EQ(g.cells[0], writes.load());
}

// Exclusive holders (the worker and a reader loading from RocksDB) exclude
// each other too.
TEST(ShardLock, ExclusiveHoldersExcludeEachOther) {
  ShardLock lock;
  uint64_t a = 0, b = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        lock.lock();
        ++a;
        b += 2;
        lock.unlock();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(a, 60000u);
  EXPECT_EQ(b, 120000u);
}

}  // namespace
}  // namespace millrace
