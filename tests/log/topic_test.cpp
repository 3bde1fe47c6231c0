#include "millrace/log/topic.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/layout.h"

namespace millrace::log {
namespace {

using testing::ReadAll;
using testing::Record;
using testing::TempDir;

// Appends n records to partition p in batches of `batch`; returns them.
std::vector<std::string> AppendN(Topic& topic, uint32_t p, uint64_t n, size_t batch,
                                 int64_t ts = 1000) {
  std::vector<std::string> all;
  uint64_t first = topic.end_offset(p);
  for (uint64_t i = 0; i < n; i += batch) {
    std::vector<std::string> owned;
    for (uint64_t j = i; j < std::min<uint64_t>(n, i + batch); ++j) {
      owned.push_back(Record(p, first + j));
    }
    std::vector<std::string_view> views(owned.begin(), owned.end());
    auto off = topic.Append(p, views, ts);
    EXPECT_TRUE(off.ok()) << off.status().message();
    EXPECT_EQ(*off, first + i);
    all.insert(all.end(), owned.begin(), owned.end());
  }
  return all;
}

TEST(LogTopic, AppendReturnsOffsetsAndReadsBack) {
  TempDir tmp;
  const std::string path = tmp.path() + "/data/tx";
  auto topic = Topic::Create(path, TopicOptions{.partitions = 2});
  ASSERT_TRUE(topic.ok()) << topic.status().message();
  std::vector<std::string_view> a = {"one", "two", "three"};
  auto off = (*topic)->Append(0, a, 5);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, 0u);
  std::vector<std::string_view> b = {"four"};
  EXPECT_EQ(*(*topic)->Append(0, b, 6), 3u);
  EXPECT_EQ(*(*topic)->Append(1, b, 7), 0u);
  EXPECT_EQ((*topic)->end_offset(0), 4u);
  EXPECT_EQ((*topic)->end_offset(1), 1u);
  EXPECT_EQ((*topic)->start_offset(0), 0u);
  auto recs = ReadAll(path, 0);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].data, "one");
  EXPECT_EQ(recs[2].data, "three");
  EXPECT_EQ(recs[3].data, "four");
  EXPECT_EQ(recs[3].offset, 3u);
  EXPECT_EQ(recs[0].timestamp_ms, 5);
  EXPECT_EQ(recs[3].timestamp_ms, 6);
  EXPECT_EQ(ReadAll(path, 1).size(), 1u);
  EXPECT_FALSE((*topic)->Append(2, b, 0).ok());  // no partition 2
}

TEST(LogTopic, CreateRefusesExistingAndOpenRefusesNonTopic) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  ASSERT_TRUE(Topic::Create(path, TopicOptions{}).ok());
  auto again = Topic::Create(path, TopicOptions{});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos);
  EXPECT_FALSE(Topic::Open(tmp.path() + "/missing").ok());
  EXPECT_FALSE(Topic::Create(tmp.path() + "/zero", TopicOptions{.partitions = 0}).ok());
}

TEST(LogTopic, OneWriterAtATime) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto first = Topic::Create(path, TopicOptions{});
  ASSERT_TRUE(first.ok());
  auto second = Topic::Open(path);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("already open"), std::string::npos);
  first->reset();
  EXPECT_TRUE(Topic::Open(path).ok());
}

TEST(LogTopic, OffsetsSurviveRestart) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  TopicOptions opts{.partitions = 3, .segment_bytes = 4096};
  std::vector<std::vector<std::string>> written(3);
  {
    auto topic = Topic::Create(path, opts);
    ASSERT_TRUE(topic.ok());
    for (uint32_t p = 0; p < 3; ++p) written[p] = AppendN(**topic, p, 100 * (p + 1), 7);
    ASSERT_TRUE((*topic)->Sync().ok());
  }
  {
    auto topic = Topic::Open(path);
    ASSERT_TRUE(topic.ok()) << topic.status().message();
    EXPECT_TRUE((*topic)->warnings().empty());
    EXPECT_EQ((*topic)->options().segment_bytes, 4096u);
    for (uint32_t p = 0; p < 3; ++p) {
      EXPECT_EQ((*topic)->end_offset(p), 100 * (p + 1));
      auto more = AppendN(**topic, p, 10, 3);  // continues at the old end
      written[p].insert(written[p].end(), more.begin(), more.end());
    }
  }
  auto topic = Topic::OpenOrCreate(path, TopicOptions{.partitions = 9});
  ASSERT_TRUE(topic.ok());
  EXPECT_EQ((*topic)->partitions(), 3u);  // the stored options win
  for (uint32_t p = 0; p < 3; ++p) {
    auto recs = ReadAll(path, p);
    ASSERT_EQ(recs.size(), written[p].size());
    for (size_t i = 0; i < recs.size(); ++i) {
      EXPECT_EQ(recs[i].offset, i);
      EXPECT_EQ(recs[i].data, written[p][i]);
    }
  }
}

TEST(LogTopic, SegmentsRollAndReadsStartAtAnyOffset) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 2048});
  ASSERT_TRUE(topic.ok());
  auto written = AppendN(**topic, 0, 500, 13);
  auto segments = ListSegments(PartitionDir(path, 0));
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 8u);
  for (size_t i = 0; i < segments->size(); ++i) {
    auto size = testing::FileSize(SegmentPath(PartitionDir(path, 0), (*segments)[i]));
    EXPECT_LE(size, 2048u) << "segment " << i;
  }
  // Every start offset, in particular segment bases and the records just
  // before and after them, reads exactly the suffix from there.
  for (uint64_t from = 0; from <= 500; ++from) {
    auto recs = ReadAll(path, 0, from);
    ASSERT_EQ(recs.size(), 500 - from) << from;
    if (!recs.empty()) {
      EXPECT_EQ(recs.front().offset, from);
      EXPECT_EQ(recs.front().data, written[from]);
      EXPECT_EQ(recs.back().data, written[499]);
    }
  }
}

TEST(LogTopic, BatchLargerThanASegmentIsSplitAcrossSegments) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024});
  ASSERT_TRUE(topic.ok());
  std::string big(300, 'x');
  std::vector<std::string_view> batch(10, big);
  ASSERT_EQ(*(*topic)->Append(0, batch, 1), 0u);
  EXPECT_EQ((*topic)->end_offset(0), 10u);
  EXPECT_GE(ListSegments(PartitionDir(path, 0))->size(), 4u);
  EXPECT_EQ(ReadAll(path, 0).size(), 10u);
  // A record bigger than a segment still gets a segment of its own.
  std::string huge(5000, 'y');
  std::vector<std::string_view> one = {huge};
  ASSERT_EQ(*(*topic)->Append(0, one, 2), 10u);
  auto recs = ReadAll(path, 0, 10);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].data, huge);
}

TEST(LogTopic, ManyPartitions) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  constexpr uint32_t kParts = 128;
  {
    auto topic = Topic::Create(path, TopicOptions{.partitions = kParts, .segment_bytes = 1024});
    ASSERT_TRUE(topic.ok());
    for (int round = 0; round < 5; ++round) {
      for (uint32_t p = 0; p < kParts; ++p) AppendN(**topic, p, p % 7 + 1, 4);
    }
  }
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  for (uint32_t p = 0; p < kParts; ++p) {
    ASSERT_EQ((*topic)->end_offset(p), 5 * (p % 7 + 1)) << p;
    auto recs = ReadAll(path, p);
    ASSERT_EQ(recs.size(), 5 * (p % 7 + 1));
    EXPECT_EQ(recs.back().data, Record(p, recs.size() - 1));
  }
}

TEST(LogTopic, WriteBufferHoldsRecordsUntilFlush) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{});
  ASSERT_TRUE(topic.ok());
  (*topic)->set_write_buffer_bytes(1 << 20);
  AppendN(**topic, 0, 100, 10);
  EXPECT_EQ((*topic)->end_offset(0), 100u);
  EXPECT_EQ(ReadAll(path, 0).size(), 0u);  // still in memory
  ASSERT_TRUE((*topic)->Flush().ok());
  EXPECT_EQ(ReadAll(path, 0).size(), 100u);
  // The destructor flushes too.
  AppendN(**topic, 0, 5, 5);
  topic->reset();
  EXPECT_EQ(ReadAll(path, 0).size(), 105u);
}

TEST(LogTopic, BytesCountsSegmentFiles) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024});
  ASSERT_TRUE(topic.ok());
  AppendN(**topic, 0, 200, 9);
  uint64_t on_disk = 0;
  auto bases = ListSegments(PartitionDir(path, 0));
  ASSERT_TRUE(bases.ok());
  for (uint64_t base : *bases) {
    on_disk += testing::FileSize(SegmentPath(PartitionDir(path, 0), base));
  }
  EXPECT_EQ((*topic)->bytes(0), on_disk);
  auto info = DescribeTopic(path);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->partitions[0].bytes, on_disk);
  EXPECT_EQ(info->partitions[0].end_offset, 200u);
  EXPECT_EQ(info->partitions[0].start_offset, 0u);
  EXPECT_TRUE(info->partitions[0].problem.empty());
}

// A process killed inside Topic::Create leaves a directory without
// topic.meta; the next OpenOrCreate (a restarted run's output) creates the
// topic again instead of failing with "already exists", but never removes a
// directory that holds anything else.
TEST(LogTopic, OpenOrCreateFinishesACreateThatDidNotFinish) {
  TempDir dir;
  const std::string path = dir.path() + "/out";
  {
    auto topic = Topic::Create(path, TopicOptions{.partitions = 2});
    ASSERT_TRUE(topic.ok()) << topic.status().message();
  }
  std::filesystem::remove(MetaPath(path));  // as if killed before the last step
  auto again = Topic::OpenOrCreate(path, TopicOptions{.partitions = 3});
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ((*again)->partitions(), 3u);
  EXPECT_EQ((*again)->end_offset(0), 0u);

  const std::string other = dir.path() + "/other";
  std::filesystem::create_directories(other + "/partition-0");
  std::ofstream(other + "/partition-0/notes.txt") << std::string(200, 'x');
  auto refused = Topic::OpenOrCreate(other, TopicOptions{.partitions = 1});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("holds other files"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(other + "/partition-0/notes.txt"));
}

}  // namespace
}  // namespace millrace::log
