// Fault tests: the log is damaged the way crashes and bad disks damage it,
// then reopened. Nothing damaged may come back as data, and everything
// before the damage must.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/format.h"
#include "millrace/log/segment.h"
#include "millrace/log/topic.h"

namespace millrace::log {
namespace {

namespace fs = std::filesystem;
using testing::ReadAll;
using testing::Record;
using testing::TempDir;

// Writes n records (one per batch) to partition 0 and returns the byte
// position where each frame starts in the single segment, plus its end.
std::vector<uint64_t> WriteRecords(const std::string& path, uint64_t n) {
  std::vector<uint64_t> starts;
  auto topic = Topic::Create(path, TopicOptions{});
  EXPECT_TRUE(topic.ok());
  for (uint64_t i = 0; i < n; ++i) {
    starts.push_back((*topic)->bytes(0));
    std::string r = Record(0, i);
    std::vector<std::string_view> batch = {r};
    EXPECT_TRUE((*topic)->Append(0, batch, static_cast<int64_t>(i)).ok());
  }
  starts.push_back((*topic)->bytes(0));
  EXPECT_TRUE((*topic)->Sync().ok());
  return starts;
}

std::string Segment0(const std::string& path) {
  return SegmentPath(PartitionDir(path, 0), 0);
}

void ExpectIntactPrefix(const std::string& path, uint64_t n) {
  auto recs = ReadAll(path, 0);
  ASSERT_EQ(recs.size(), n);
  for (uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(recs[i].offset, i);
    EXPECT_EQ(recs[i].data, Record(0, i));
  }
}

TEST(LogRecovery, TornWriteAtEveryByteIsCut) {
  TempDir tmp;
  const std::string pristine = tmp.path() + "/pristine";
  auto starts = WriteRecords(pristine, 12);
  // Cut the file at every byte inside the last three frames, as a crash
  // during their write would.
  for (uint64_t cut = starts[9] + 1; cut < starts[12]; ++cut) {
    const std::string path = tmp.path() + "/cut";
    fs::remove_all(path);
    fs::copy(pristine, path, fs::copy_options::recursive);
    testing::Truncate(Segment0(path), cut);
    const uint64_t whole = cut >= starts[11] ? 11 : cut >= starts[10] ? 10 : 9;
    // A reader before repair sees the intact records, then "not yet there".
    ExpectIntactPrefix(path, whole);
    auto topic = Topic::Open(path);
    ASSERT_TRUE(topic.ok()) << topic.status().message();
    EXPECT_EQ((*topic)->end_offset(0), whole) << "cut at " << cut;
    bool at_boundary = cut == starts[10] || cut == starts[11];
    if (at_boundary) {
      EXPECT_TRUE((*topic)->warnings().empty());
    } else {
      ASSERT_EQ((*topic)->warnings().size(), 1u) << "cut at " << cut;
      EXPECT_NE((*topic)->warnings()[0].find("incomplete record"), std::string::npos);
    }
    EXPECT_EQ(testing::FileSize(Segment0(path)), starts[whole]);
    // Appending after the repair continues the offsets with no gap.
    std::string r = Record(0, whole);
    std::vector<std::string_view> batch = {r};
    ASSERT_EQ(*(*topic)->Append(0, batch, 0), whole);
    topic->reset();
    ExpectIntactPrefix(path, whole + 1);
  }
}

TEST(LogRecovery, FlippedByteCutsFromTheDamagedRecord) {
  TempDir tmp;
  const std::string pristine = tmp.path() + "/pristine";
  auto starts = WriteRecords(pristine, 20);
  // Flip a byte in the length, crc, offset, timestamp, flags and payload of
  // record 17, and once in the last record.
  std::vector<std::pair<uint64_t, uint64_t>> cases;  // byte to flip, records kept
  for (uint64_t at : {0, 2, 5, 9, 17, 24, 25, 30}) cases.push_back({starts[17] + at, 17});
  cases.push_back({starts[20] - 1, 19});
  for (auto [at, kept] : cases) {
    const std::string path = tmp.path() + "/flip";
    fs::remove_all(path);
    fs::copy(pristine, path, fs::copy_options::recursive);
    testing::FlipByte(Segment0(path), at);
    // Before repair a reader returns the records before the damage, then
    // either stops or reports the damage; never a damaged record.
    {
      auto reader = PartitionReader::Open(path, 0, 0);
      ASSERT_TRUE(reader.ok());
      std::string_view rec;
      uint64_t off = 0;
      uint64_t n = 0;
      while (true) {
        auto more = (*reader)->Next(&rec, &off);
        if (!more.ok() || !*more) break;
        ASSERT_EQ(rec, Record(0, n)) << "flip at " << at;
        ++n;
      }
      EXPECT_EQ(n, kept) << "flip at " << at;
    }
    auto topic = Topic::Open(path);
    ASSERT_TRUE(topic.ok());
    EXPECT_EQ((*topic)->end_offset(0), kept) << "flip at " << at;
    ASSERT_EQ((*topic)->warnings().size(), 1u);
    EXPECT_NE((*topic)->warnings()[0].find("partition 0: cut"), std::string::npos);
    topic->reset();
    ExpectIntactPrefix(path, kept);
  }
}

TEST(LogRecovery, ZeroFilledTailIsCut) {
  // After a power loss a file system may show a file extended with zeros.
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto starts = WriteRecords(path, 5);
  testing::AppendBytes(Segment0(path), std::string(4096, '\0'));
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  EXPECT_EQ((*topic)->end_offset(0), 5u);
  ASSERT_EQ((*topic)->warnings().size(), 1u);
  EXPECT_NE((*topic)->warnings()[0].find("4096 bytes"), std::string::npos);
  EXPECT_EQ(testing::FileSize(Segment0(path)), starts[5]);
}

TEST(LogRecovery, OnlyTheDamagedPartitionIsTouched) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  {
    auto topic = Topic::Create(path, TopicOptions{.partitions = 4});
    ASSERT_TRUE(topic.ok());
    for (uint32_t p = 0; p < 4; ++p) {
      for (uint64_t i = 0; i < 10; ++i) {
        std::string r = Record(p, i);
        std::vector<std::string_view> batch = {r};
        ASSERT_TRUE((*topic)->Append(p, batch, 0).ok());
      }
    }
  }
  const std::string seg2 = SegmentPath(PartitionDir(path, 2), 0);
  testing::Truncate(seg2, testing::FileSize(seg2) - 3);
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  ASSERT_EQ((*topic)->warnings().size(), 1u);
  EXPECT_EQ((*topic)->warnings()[0].rfind("partition 2:", 0), 0u);
  for (uint32_t p = 0; p < 4; ++p) EXPECT_EQ((*topic)->end_offset(p), p == 2 ? 9u : 10u);
}

TEST(LogRecovery, DamagedHeaderOfLastSegmentIsRewritten) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  WriteRecords(path, 3);
  testing::FlipByte(Segment0(path), 2);  // in the magic
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok()) << topic.status().message();
  EXPECT_EQ((*topic)->end_offset(0), 0u);
  EXPECT_EQ((*topic)->warnings().size(), 1u);
  std::string r = "after";
  std::vector<std::string_view> batch = {r};
  ASSERT_EQ(*(*topic)->Append(0, batch, 0), 0u);
  auto recs = ReadAll(path, 0);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].data, "after");
}

TEST(LogRecovery, DamageInAClosedSegmentIsAnErrorForReaders) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  {
    auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024});
    ASSERT_TRUE(topic.ok());
    for (uint64_t i = 0; i < 100; ++i) {
      std::string r = Record(0, i);
      std::vector<std::string_view> batch = {r};
      ASSERT_TRUE((*topic)->Append(0, batch, 0).ok());
    }
  }
  auto bases = ListSegments(PartitionDir(path, 0));
  ASSERT_GE(bases->size(), 3u);
  const std::string first = SegmentPath(PartitionDir(path, 0), 0);
  testing::FlipByte(first, 300);
  auto reader = PartitionReader::Open(path, 0, 0);
  ASSERT_TRUE(reader.ok());
  std::string_view rec;
  uint64_t off = 0;
  Result<bool> more = true;
  uint64_t n = 0;
  while ((more = (*reader)->Next(&rec, &off)).ok() && *more) {
    ASSERT_EQ(rec, Record(0, n));
    ++n;
  }
  ASSERT_FALSE(more.ok());
  EXPECT_NE(more.status().message().find("CRC32C mismatch"), std::string::npos);
  EXPECT_NE(more.status().message().find(first), std::string::npos);
  // A reader starting past the damage reads on; the damage is not in the tail.
  auto later = ReadAll(path, 0, (*bases)[1]);
  EXPECT_EQ(later.size(), 100 - (*bases)[1]);
  // A truncated closed segment is an error too, not a silent gap.
  testing::FlipByte(first, 300);  // undo the flip: only the truncation is left
  ASSERT_EQ(ReadAll(path, 0).size(), 100u);
  testing::Truncate(first, testing::FileSize(first) - 10);
  auto reader2 = PartitionReader::Open(path, 0, (*bases)[1] - 1);
  ASSERT_TRUE(reader2.ok());
  auto r2 = (*reader2)->Next(&rec, &off);
  EXPECT_FALSE(r2.ok());
}

TEST(LogRecovery, LeftoverTempSegmentIsRemoved) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  WriteRecords(path, 3);
  // A crash between creating a segment and renaming it into place.
  const std::string tmp_seg = SegmentPath(PartitionDir(path, 0), 3) + ".tmp";
  testing::AppendBytes(tmp_seg, "MLRSEG");
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  EXPECT_FALSE(fs::exists(tmp_seg));
  EXPECT_EQ((*topic)->end_offset(0), 3u);
}

}  // namespace
}  // namespace millrace::log

namespace millrace::log {
namespace {

TEST(LogRecovery, KillDashNineWhileAppendingLeavesAGaplessPrefix) {
  // A child process appends large batches as fast as it can and is killed
  // with SIGKILL at some point, possibly inside a write(). Reopening must
  // yield a gapless prefix of exactly what was appended, then accept more.
  testing::TempDir tmp;
  const std::string path = tmp.path() + "/t";
  ASSERT_TRUE(Topic::Create(path, TopicOptions{.partitions = 2, .segment_bytes = 1 << 20}).ok());
  for (int round = 0; round < 3; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto topic = Topic::Open(path);
      if (!topic.ok()) ::_exit(1);
      std::vector<std::string> owned(2000);
      std::vector<std::string_view> views(2000);
      for (uint64_t batch = 0;; ++batch) {
        const uint32_t p = batch % 2;
        const uint64_t first = (*topic)->end_offset(p);
        for (size_t i = 0; i < owned.size(); ++i) {
          owned[i] = Record(p, first + i);
          owned[i].resize(100, '.');
          views[i] = owned[i];
        }
        if (!(*topic)->Append(p, views, 0).ok()) ::_exit(1);
      }
    }
    ::usleep(150'000 + round * 70'000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child failed before it was killed";
    auto topic = Topic::Open(path);
    ASSERT_TRUE(topic.ok()) << topic.status().message();
    for (const auto& w : (*topic)->warnings()) std::printf("repaired: %s\n", w.c_str());
    for (uint32_t p = 0; p < 2; ++p) {
      auto recs = ReadAll(path, p);
      ASSERT_EQ(recs.size(), (*topic)->end_offset(p));
      ASSERT_GT(recs.size(), 0u);
      for (size_t i = 0; i < recs.size(); ++i) {
        std::string want = Record(p, i);
        want.resize(100, '.');
        ASSERT_EQ(recs[i].offset, i);
        ASSERT_EQ(recs[i].data, want) << "partition " << p << " offset " << i;
      }
    }
  }
}

}  // namespace
}  // namespace millrace::log
