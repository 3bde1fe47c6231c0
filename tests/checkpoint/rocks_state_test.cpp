// RocksKeyedState: TTL cleanup by compaction, incremental checkpoints by hard
// links, restore from a checkpoint.
#include <sys/stat.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "millrace/state/rocks_state.h"
#include "tests/support/temp_dir.h"

namespace millrace::testing {
namespace {

namespace fs = std::filesystem;

std::set<std::pair<std::string, ino_t>> sst_inodes(const std::string& dir) {
  std::set<std::pair<std::string, ino_t>> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".sst") continue;
    struct stat st;
    ::stat(e.path().c_str(), &st);
    out.emplace(e.path().filename().string(), st.st_ino);
  }
  return out;
}

TEST(RocksKeyedState, CompactionDropsExpiredKeys) {
  TempDir dir;
  auto st = RocksKeyedState::Open(dir.file("work"), "");
  ASSERT_TRUE(st.ok()) << st.status().message();
  RocksKeyedState& s = *st.value();
  for (int i = 0; i < 1000; ++i) {
    s.put(fmt::format("old{}", i), 100, std::string(100, 'x'));
    s.put(fmt::format("new{}", i), 1000, std::string(100, 'y'));
  }
  std::string v;
  EXPECT_FALSE(s.get("old1", 100, &v));  // expired for a reader at once
  EXPECT_TRUE(s.get("old1", 99, &v));
  EXPECT_EQ(v, std::string(100, 'x'));
  s.set_watermark(500);
  s.compact();
  // Gone from disk: not even a reader at an old watermark finds them.
  for (int i = 0; i < 1000; i += 97) {
    EXPECT_FALSE(s.get(fmt::format("old{}", i), kMinTime, &v)) << i;
    EXPECT_TRUE(s.get(fmt::format("new{}", i), 500, &v)) << i;
  }
  EXPECT_TRUE(s.status().ok());
}

TEST(RocksKeyedState, CheckpointsShareSstFilesAndRestore) {
  TempDir dir;
  auto st = RocksKeyedState::Open(dir.file("work"), "");
  ASSERT_TRUE(st.ok());
  for (int i = 0; i < 5000; ++i) st.value()->put(fmt::format("a{}", i), kMaxTime, "first");
  ASSERT_TRUE(st.value()->checkpoint(dir.file("c1")).ok());
  for (int i = 0; i < 100; ++i) st.value()->put(fmt::format("b{}", i), kMaxTime, "second");
  ASSERT_TRUE(st.value()->checkpoint(dir.file("c2")).ok());
  auto c1 = sst_inodes(dir.file("c1")), c2 = sst_inodes(dir.file("c2"));
  ASSERT_FALSE(c1.empty());
  // Incremental: every SST of the first checkpoint is the same file in the second.
  for (const auto& f : c1) EXPECT_TRUE(c2.count(f)) << f.first;
  EXPECT_GT(c2.size(), c1.size());
  st = RocksKeyedState::Open(dir.file("work2"), dir.file("c1"));
  ASSERT_TRUE(st.ok()) << st.status().message();
  std::string v;
  EXPECT_TRUE(st.value()->get("a4999", 0, &v));
  EXPECT_EQ(v, "first");
  EXPECT_FALSE(st.value()->get("b0", 0, &v));  // written after the first checkpoint
  // Writing to the restored database leaves the checkpoint as it was.
  for (int i = 0; i < 5000; ++i) st.value()->put(fmt::format("c{}", i), kMaxTime, "third");
  ASSERT_TRUE(st.value()->checkpoint(dir.file("c3")).ok());
  EXPECT_EQ(sst_inodes(dir.file("c1")), c1);
}

}  // namespace
}  // namespace millrace::testing
