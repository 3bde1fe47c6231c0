#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/topic.h"

namespace millrace::log {
namespace {

using testing::ReadAll;
using testing::TempDir;

TEST(LogRetention, SizeLimitDeletesOldestSegments) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  TopicOptions opts{.partitions = 2, .segment_bytes = 2048, .retention_bytes = 8192};
  auto topic = Topic::Create(path, opts);
  ASSERT_TRUE(topic.ok());
  std::string r(100, 'x');  // 125 bytes per frame: 16 frames per segment
  std::vector<std::string_view> batch(10, r);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE((*topic)->Append(0, batch, i).ok());
  ASSERT_TRUE((*topic)->Append(1, batch, 0).ok());
  // Appends enforce the size limit as segments close.
  EXPECT_LE((*topic)->bytes(0), opts.retention_bytes);
  EXPECT_GT((*topic)->bytes(0), opts.retention_bytes - 2 * opts.segment_bytes);
  EXPECT_GT((*topic)->start_offset(0), 0u);
  EXPECT_EQ((*topic)->end_offset(0), 500u);
  EXPECT_EQ((*topic)->start_offset(1), 0u);  // the other partition is under the limit
  auto recs = ReadAll(path, 0);
  ASSERT_EQ(recs.size(), 500 - (*topic)->start_offset(0));
  EXPECT_EQ(recs.front().offset, (*topic)->start_offset(0));
  // The survivors reopen with the same start and end.
  const uint64_t start = (*topic)->start_offset(0);
  topic->reset();
  auto reopened = Topic::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->start_offset(0), start);
  EXPECT_EQ((*reopened)->end_offset(0), 500u);
}

TEST(LogRetention, AgeLimitDeletesSegmentsWhoseNewestRecordIsOld) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  TopicOptions opts{.segment_bytes = 1024, .retention_ms = 60'000};
  {
    auto topic = Topic::Create(path, opts);
    ASSERT_TRUE(topic.ok());
    std::string r(100, 'a');
    std::vector<std::string_view> batch(4, r);  // 500 bytes: two batches per segment
    for (int64_t minute = 0; minute < 10; ++minute) {
      ASSERT_TRUE((*topic)->Append(0, batch, minute * 60'000).ok());
    }
  }
  // Reopen, so segment timestamps have to be read back from disk.
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  EXPECT_EQ((*topic)->start_offset(0), 0u);
  // Two batches (minutes 2k and 2k+1, offsets 8k..8k+7) per segment. With
  // one minute of retention at minute 6.5, segments whose newest record is
  // older than minute 5.5 go: those of minutes 0-5.
  ASSERT_TRUE((*topic)->ApplyRetention(6 * 60'000 + 30'000).ok());
  EXPECT_EQ((*topic)->start_offset(0), 24u);
  auto recs = ReadAll(path, 0);
  ASSERT_EQ(recs.size(), 16u);
  EXPECT_EQ(recs.front().offset, 24u);
  EXPECT_EQ(recs.front().timestamp_ms, 6 * 60'000);
  // At minute 10 the segment of minutes 6-7 goes too; the one being written
  // (minutes 8-9) stays, and however late it gets, it is never deleted.
  ASSERT_TRUE((*topic)->ApplyRetention(10 * 60'000).ok());
  EXPECT_EQ((*topic)->start_offset(0), 32u);
  ASSERT_TRUE((*topic)->ApplyRetention(1000 * 60'000).ok());
  EXPECT_EQ(ListSegments(PartitionDir(path, 0))->size(), 1u);
  EXPECT_EQ((*topic)->start_offset(0), 32u);
  EXPECT_EQ((*topic)->end_offset(0), 40u);
  EXPECT_EQ(ReadAll(path, 0).size(), 8u);
}

TEST(LogRetention, ZeroMeansKeepEverything) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024});
  ASSERT_TRUE(topic.ok());
  std::string r(100, 'k');
  std::vector<std::string_view> batch(10, r);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
  ASSERT_TRUE((*topic)->ApplyRetention(INT64_MAX / 2).ok());
  EXPECT_EQ((*topic)->start_offset(0), 0u);
  EXPECT_EQ(ReadAll(path, 0).size(), 200u);
}

}  // namespace
}  // namespace millrace::log
