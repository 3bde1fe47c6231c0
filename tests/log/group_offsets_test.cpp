#include "millrace/log/group_offsets.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/topic.h"

namespace millrace::log {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string OffsetsFile(const std::string& topic, const std::string& group) {
  return GroupsDir(topic) + "/" + group + ".offsets";
}

TEST(LogGroups, CommitMergesAndSurvivesRestart) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  {
    auto topic = Topic::Create(path, TopicOptions{.partitions = 3});
    ASSERT_TRUE(topic.ok());
    std::vector<std::string_view> batch(10, "r");
    for (uint32_t p = 0; p < 3; ++p) ASSERT_TRUE((*topic)->Append(p, batch, 0).ok());
    EXPECT_TRUE((*topic)->GroupOffsets("g1")->empty());
    EXPECT_TRUE((*topic)->Groups().empty());
    ASSERT_TRUE((*topic)->CommitGroupOffsets("g1", {{0, 4}, {1, 10}}).ok());
    ASSERT_TRUE((*topic)->CommitGroupOffsets("g1", {{0, 6}, {2, 1}}).ok());
    ASSERT_TRUE((*topic)->CommitGroupOffsets("other.group-2", {{2, 2}}).ok());
    // Past the end of a partition, or a partition that does not exist.
    EXPECT_FALSE((*topic)->CommitGroupOffsets("g1", {{0, 11}}).ok());
    EXPECT_FALSE((*topic)->CommitGroupOffsets("g1", {{3, 0}}).ok());
    EXPECT_FALSE((*topic)->CommitGroupOffsets("../evil", {{0, 0}}).ok());
  }
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  auto g1 = (*topic)->GroupOffsets("g1");
  ASSERT_TRUE(g1.ok());
  EXPECT_EQ(*g1, (std::map<uint32_t, uint64_t>{{0, 6}, {1, 10}, {2, 1}}));
  EXPECT_EQ((*topic)->Groups(), (std::vector<std::string>{"g1", "other.group-2"}));
  auto info = DescribeTopic(path);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->groups.at("other.group-2").at(2), 2u);
}

TEST(LogGroups, CommitIsAtomicReplace) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.partitions = 1});
  ASSERT_TRUE(topic.ok());
  std::vector<std::string_view> batch(100, "r");
  ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
  ASSERT_TRUE((*topic)->CommitGroupOffsets("g", {{0, 5}}).ok());
  // A crash while writing the temp file leaves the committed file as it was
  // and the temp file is ignored, then removed on the next open.
  const std::string temp = GroupsDir(path) + "/.g.offsets.tmp";
  {
    std::ofstream f(temp);
    f << "millrace-offsets 1\n0 9";  // torn
  }
  EXPECT_EQ((*topic)->GroupOffsets("g")->at(0), 5u);
  EXPECT_EQ((*topic)->Groups(), std::vector<std::string>{"g"});
  topic->reset();
  auto reopened = Topic::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE(fs::exists(temp));
  // No temp file is left behind by a commit, and no reader ever sees a torn
  // file: a reader thread checks every version it reads while commits run.
  std::atomic<bool> done{false};
  std::atomic<int> bad_reads{0};
  std::thread reader([&] {
    while (!done) {
      auto offsets = ReadGroupOffsets(path, "g");
      if (!offsets.ok() || offsets->size() != 1) ++bad_reads;
    }
  });
  for (uint64_t i = 0; i <= 100; ++i) {
    ASSERT_TRUE((*reopened)->CommitGroupOffsets("g", {{0, i}}).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad_reads, 0);
  EXPECT_EQ((*reopened)->GroupOffsets("g")->at(0), 100u);
  for (const auto& entry : fs::directory_iterator(GroupsDir(path))) {
    EXPECT_EQ(entry.path().extension(), ".offsets") << entry.path();
  }
}

TEST(LogGroups, DamagedOffsetsFileIsAnErrorNotAGuess) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.partitions = 2});
  ASSERT_TRUE(topic.ok());
  std::vector<std::string_view> batch(100, "r");
  ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
  ASSERT_TRUE((*topic)->CommitGroupOffsets("g", {{0, 42}}).ok());
  std::string text = *ReadWholeFile(OffsetsFile(path, "g"));
  size_t at = text.find("42");
  ASSERT_NE(at, std::string::npos);
  text[at] = '7';  // a plausible but wrong number
  {
    std::ofstream f(OffsetsFile(path, "g"), std::ios::trunc);
    f << text;
  }
  auto offsets = (*topic)->GroupOffsets("g");
  ASSERT_FALSE(offsets.ok());
  EXPECT_NE(offsets.status().message().find("crc mismatch"), std::string::npos);
  EXPECT_FALSE(DescribeTopic(path).ok());
}

TEST(LogGroups, ConcurrentCommitsOfOneGroupLoseNoPartition) {
  // Two consumers of one group, each committing its own partitions: the
  // lock around read-merge-replace keeps both sets.
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.partitions = 8});
  ASSERT_TRUE(topic.ok());
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 1; i <= 30; ++i) {
        std::map<uint32_t, uint64_t> mine;
        for (uint32_t p = t; p < 8; p += 2) mine[p] = i;
        EXPECT_TRUE(CommitGroupOffsets(path, "g", mine).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto offsets = ReadGroupOffsets(path, "g");
  ASSERT_TRUE(offsets.ok());
  ASSERT_EQ(offsets->size(), 8u);
  for (const auto& [p, off] : *offsets) EXPECT_EQ(off, 30u) << p;
}

}  // namespace
}  // namespace millrace::log
