#include "millrace/log/reader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/topic.h"

namespace millrace::log {
namespace {

using testing::ReadAll;
using testing::Record;
using testing::TempDir;

TEST(LogReader, FollowsAWriterInAnotherThread) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.partitions = 2, .segment_bytes = 4096});
  ASSERT_TRUE(topic.ok());
  constexpr uint64_t kRecords = 20000;
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    uint64_t i = 0;
    while (i < kRecords) {
      // Batches of varying size, so frames and segment rolls land anywhere.
      std::vector<std::string> owned;
      for (uint64_t j = 0; j < 1 + i % 37 && i < kRecords; ++j, ++i) {
        owned.push_back(Record(0, i) + std::string(i % 50, 'z'));
      }
      std::vector<std::string_view> views(owned.begin(), owned.end());
      if (!(*topic)->Append(0, views, static_cast<int64_t>(i)).ok()) writer_failed = true;
      if (i % 1000 < 37) std::this_thread::yield();
    }
  });
  auto reader = PartitionReader::Open(path, 0, 0);
  ASSERT_TRUE(reader.ok());
  uint64_t expected = 0;
  uint64_t empty_polls = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (expected < kRecords && std::chrono::steady_clock::now() < deadline) {
    std::string_view rec;
    uint64_t off = 0;
    auto more = (*reader)->Next(&rec, &off);
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (!*more) {
      ++empty_polls;
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(off, expected);
    ASSERT_EQ(rec, Record(0, expected) + std::string(expected % 50, 'z'));
    ++expected;
  }
  writer.join();
  EXPECT_FALSE(writer_failed);
  EXPECT_EQ(expected, kRecords);
  EXPECT_GT(ListSegments(PartitionDir(path, 0))->size(), 100u);
  std::string_view rec;
  uint64_t off = 0;
  EXPECT_FALSE(*(*reader)->Next(&rec, &off));  // at the end, nothing more
}

TEST(LogReader, ReaderWaitingAtTheEndSeesLaterAppends) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024});
  ASSERT_TRUE(topic.ok());
  auto reader = PartitionReader::Open(path, 0, 0);
  ASSERT_TRUE(reader.ok());
  std::string_view rec;
  uint64_t off = 0;
  EXPECT_FALSE(*(*reader)->Next(&rec, &off));
  std::string big(400, 'b');
  for (int round = 0; round < 5; ++round) {
    std::vector<std::string_view> batch(3, big);  // rolls a segment every round
    ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
    for (int k = 0; k < 3; ++k) {
      auto more = (*reader)->Next(&rec, &off);
      ASSERT_TRUE(more.ok() && *more) << round;
      EXPECT_EQ(off, static_cast<uint64_t>(round * 3 + k));
    }
    EXPECT_FALSE(*(*reader)->Next(&rec, &off));
  }
}

TEST(LogReader, OpenBeyondTheEndWaitsForTheWriter) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{});
  ASSERT_TRUE(topic.ok());
  auto reader = PartitionReader::Open(path, 0, 5);
  ASSERT_TRUE(reader.ok());
  std::string_view rec;
  uint64_t off = 0;
  std::vector<std::string_view> batch = {"0", "1", "2", "3", "4", "5", "6"};
  EXPECT_FALSE(*(*reader)->Next(&rec, &off));
  ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
  ASSERT_TRUE(*(*reader)->Next(&rec, &off));
  EXPECT_EQ(off, 5u);
  EXPECT_EQ(rec, "5");
  EXPECT_FALSE(PartitionReader::Open(path, 1, 0).ok());  // no such partition
}

TEST(LogReader, ReaderOvertakenByRetentionSkipsToTheOldestKept) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024, .retention_bytes = 3000});
  ASSERT_TRUE(topic.ok());
  std::string r(100, 'r');
  std::vector<std::string_view> batch(4, r);
  ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
  auto reader = PartitionReader::Open(path, 0, 0);
  ASSERT_TRUE(reader.ok());
  std::string_view rec;
  uint64_t off = 0;
  ASSERT_TRUE(*(*reader)->Next(&rec, &off));
  EXPECT_EQ(off, 0u);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
  ASSERT_GT((*topic)->start_offset(0), 10u);
  // The reader still holds the deleted first segment open and reads it to its
  // end, then jumps to the oldest segment kept.
  std::vector<uint64_t> offsets;
  while (true) {
    auto more = (*reader)->Next(&rec, &off);
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (!*more) break;
    offsets.push_back(off);
  }
  ASSERT_FALSE(offsets.empty());
  EXPECT_EQ(offsets.back(), (*topic)->end_offset(0) - 1);
  for (size_t i = 1; i < offsets.size(); ++i) ASSERT_GT(offsets[i], offsets[i - 1]);
  // And a reader opened below the start begins at the start.
  auto fresh = ReadAll(path, 0, 0);
  ASSERT_FALSE(fresh.empty());
  EXPECT_EQ(fresh.front().offset, (*topic)->start_offset(0));
}

}  // namespace
}  // namespace millrace::log
