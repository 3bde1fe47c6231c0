// Transactions: read-committed readers see a transaction's records only once
// it commits, never when it aborts, and a crash aborts an open transaction
// and completes a committing one.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/reader.h"
#include "millrace/log/topic.h"
#include "millrace/log/transaction_state.h"

namespace millrace::log {
namespace {

using testing::Record;
using testing::TempDir;

std::vector<testing::ReadRecord> ReadCommitted(const std::string& topic, uint32_t p,
                                               uint64_t from = 0) {
  std::vector<testing::ReadRecord> out;
  auto reader = PartitionReader::Open(topic, p, from, Isolation::kReadCommitted);
  EXPECT_TRUE(reader.ok());
  if (!reader.ok()) return out;
  std::string_view rec;
  uint64_t off = 0;
  while (true) {
    auto more = (*reader)->Next(&rec, &off);
    EXPECT_TRUE(more.ok()) << more.status().message();
    if (!more.ok() || !*more) break;
    out.push_back({off, std::string(rec), 0});
  }
  return out;
}

std::vector<std::string> Data(const std::vector<testing::ReadRecord>& recs) {
  std::vector<std::string> out;
  for (const auto& r : recs) out.push_back(r.data);
  return out;
}

void Put(Topic& topic, uint32_t p, std::vector<std::string> records) {
  std::vector<std::string_view> views(records.begin(), records.end());
  ASSERT_TRUE(topic.Append(p, views, 0).ok());
}

TEST(LogTransaction, CommittedReadersSeeRecordsOnlyAfterCommit) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.partitions = 2});
  ASSERT_TRUE(topic.ok());
  Put(**topic, 0, {"before"});
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  EXPECT_FALSE((*topic)->BeginTransaction().ok());  // one at a time
  Put(**topic, 0, {"t1", "t2"});
  Put(**topic, 1, {"t3"});
  EXPECT_EQ(Data(ReadCommitted(path, 0)), std::vector<std::string>{"before"});
  EXPECT_TRUE(ReadCommitted(path, 1).empty());
  // Plain readers see everything as written.
  EXPECT_EQ(testing::ReadAll(path, 0).size(), 3u);
  // A follower parked on the undecided transaction gets it at commit.
  auto follower = PartitionReader::Open(path, 0, 0, Isolation::kReadCommitted);
  ASSERT_TRUE(follower.ok());
  std::string_view rec;
  uint64_t off = 0;
  ASSERT_TRUE(*(*follower)->Next(&rec, &off));
  EXPECT_EQ(rec, "before");
  EXPECT_FALSE(*(*follower)->Next(&rec, &off));
  EXPECT_EQ((*follower)->position(), 1u);  // resume at the undecided transaction
  ASSERT_TRUE((*topic)->CommitTransaction().ok());
  EXPECT_FALSE((*topic)->in_transaction());
  ASSERT_TRUE(*(*follower)->Next(&rec, &off));
  EXPECT_EQ(rec, "t1");
  EXPECT_EQ(off, 1u);
  ASSERT_TRUE(*(*follower)->Next(&rec, &off));
  EXPECT_EQ(rec, "t2");
  EXPECT_FALSE(*(*follower)->Next(&rec, &off));
  EXPECT_EQ((*follower)->position(), 4u);  // past the commit marker at offset 3
  EXPECT_EQ(Data(ReadCommitted(path, 0)), (std::vector<std::string>{"before", "t1", "t2"}));
  EXPECT_EQ(Data(ReadCommitted(path, 1)), std::vector<std::string>{"t3"});
  // Markers take offsets but are never returned, in either mode.
  EXPECT_EQ((*topic)->end_offset(0), 4u);
  EXPECT_EQ(Data(testing::ReadAll(path, 0)), (std::vector<std::string>{"before", "t1", "t2"}));
  EXPECT_FALSE(std::filesystem::exists(path + "/txn.state"));
}

TEST(LogTransaction, AbortedRecordsAreNeverSeenByCommittedReaders) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{});
  ASSERT_TRUE(topic.ok());
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  Put(**topic, 0, {"a1", "a2"});
  ASSERT_TRUE((*topic)->AbortTransaction().ok());
  Put(**topic, 0, {"plain"});
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  Put(**topic, 0, {"c1"});
  ASSERT_TRUE((*topic)->CommitTransaction().ok());
  EXPECT_EQ(Data(ReadCommitted(path, 0)), (std::vector<std::string>{"plain", "c1"}));
  EXPECT_FALSE((*topic)->CommitTransaction().ok());  // none open
  // Destroying the topic with a transaction open aborts it.
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  Put(**topic, 0, {"lost"});
  topic->reset();
  EXPECT_EQ(Data(ReadCommitted(path, 0)), (std::vector<std::string>{"plain", "c1"}));
  auto reopened = Topic::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->warnings().empty());
}

TEST(LogTransaction, TransactionsSpanSegmentsAndReadersMayStartInside) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 1024});
  ASSERT_TRUE(topic.ok());
  std::vector<std::string> expected;
  for (int t = 0; t < 6; ++t) {
    ASSERT_TRUE((*topic)->BeginTransaction().ok());
    std::vector<std::string> batch;
    for (int i = 0; i < 25; ++i) batch.push_back(Record(t, i));  // ~1 KB: crosses a segment
    Put(**topic, 0, batch);
    if (t % 3 == 1) {
      ASSERT_TRUE((*topic)->AbortTransaction().ok());
    } else {
      ASSERT_TRUE((*topic)->CommitTransaction().ok());
      expected.insert(expected.end(), batch.begin(), batch.end());
    }
  }
  ASSERT_GT(ListSegments(PartitionDir(path, 0))->size(), 4u);
  auto all = ReadCommitted(path, 0);
  ASSERT_EQ(Data(all), expected);
  // From every offset, a committed reader returns exactly the committed
  // records at or after it.
  const uint64_t end = (*topic)->end_offset(0);
  for (uint64_t from = 0; from <= end; ++from) {
    std::vector<std::string> want;
    for (const auto& r : all) {
      if (r.offset >= from) want.push_back(r.data);
    }
    ASSERT_EQ(Data(ReadCommitted(path, 0, from)), want) << from;
  }
}

// Runs `body` in a child process that then dies without cleanup, as a crash.
template <typename Fn>
void CrashAfter(Fn body) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(LogTransaction, CrashWithAnOpenTransactionDiscardsIt) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  {
    auto topic = Topic::Create(path, TopicOptions{.partitions = 3});
    ASSERT_TRUE(topic.ok());
    Put(**topic, 0, {"kept"});
  }
  CrashAfter([&] {
    auto topic = Topic::Open(path);
    if (!topic.ok() || !(*topic)->BeginTransaction().ok()) ::_exit(1);
    std::vector<std::string_view> batch = {"u1", "u2"};
    if (!(*topic)->Append(0, batch, 0).ok() || !(*topic)->Append(2, batch, 0).ok()) ::_exit(1);
    ::_exit(0);  // no commit, no destructor
  });
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  ASSERT_EQ((*topic)->warnings().size(), 1u);
  EXPECT_NE((*topic)->warnings()[0].find("aborted"), std::string::npos);
  Put(**topic, 0, {"after"});
  Put(**topic, 2, {"after"});
  EXPECT_EQ(Data(ReadCommitted(path, 0)), (std::vector<std::string>{"kept", "after"}));
  EXPECT_EQ(Data(ReadCommitted(path, 2)), (std::vector<std::string>{"after"}));
  // Offsets are not reused: the discarded records keep theirs.
  EXPECT_EQ(ReadCommitted(path, 0).back().offset, 4u);
}

TEST(LogTransaction, CrashAfterTheCommitPointCompletesTheCommit) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  ASSERT_TRUE(Topic::Create(path, TopicOptions{.partitions = 2}).ok());
  CrashAfter([&] {
    auto topic = Topic::Open(path);
    if (!topic.ok() || !(*topic)->BeginTransaction().ok()) ::_exit(1);
    std::vector<std::string_view> batch = {"c1", "c2"};
    if (!(*topic)->Append(1, batch, 0).ok() || !(*topic)->Sync().ok()) ::_exit(1);
    // What CommitTransaction does first: record the decision. Then die
    // before any commit marker is written.
    if (!WriteTransactionState(path, TransactionState{7, true, false, {1}}).ok()) ::_exit(1);
    ::_exit(0);
  });
  EXPECT_TRUE(ReadCommitted(path, 1).empty());
  auto topic = Topic::Open(path);
  ASSERT_TRUE(topic.ok());
  ASSERT_EQ((*topic)->warnings().size(), 1u);
  EXPECT_NE((*topic)->warnings()[0].find("commit completed"), std::string::npos);
  EXPECT_EQ(Data(ReadCommitted(path, 1)), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_FALSE(std::filesystem::exists(path + "/txn.state"));
}

// Two-phase commit: a prepared transaction survives a crash undecided, and
// the next writer commits or aborts it.
TEST(LogTransaction, PreparedTransactionSurvivesACrashUndecided) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  ASSERT_TRUE(Topic::Create(path, TopicOptions{.partitions = 2}).ok());
  for (bool commit : {true, false}) {
    CrashAfter([&] {
      auto topic = Topic::Open(path);
      if (!topic.ok() || !(*topic)->BeginTransaction().ok()) ::_exit(1);
      std::vector<std::string_view> batch = {commit ? "c1" : "a1", commit ? "c2" : "a2"};
      if (!(*topic)->Append(1, batch, 0).ok()) ::_exit(1);
      auto id = (*topic)->PrepareTransaction();
      if (!id.ok() || *id != (*topic)->prepared_transaction()) ::_exit(1);
      ::_exit(0);  // crash: no decision
    });
    auto topic = Topic::Open(path);
    ASSERT_TRUE(topic.ok()) << topic.status().message();
    const uint64_t id = (*topic)->prepared_transaction();
    ASSERT_NE(id, 0u);
    EXPECT_NE((*topic)->warnings().back().find("prepared"), std::string::npos);
    // Undecided: hidden from committed readers; no appends, no new transaction.
    EXPECT_EQ(ReadCommitted(path, 1).size(), commit ? 0u : 2u);
    std::vector<std::string_view> batch = {"x"};
    EXPECT_FALSE((*topic)->Append(0, batch, 0).ok());
    EXPECT_FALSE((*topic)->BeginTransaction().ok());
    ASSERT_TRUE((commit ? (*topic)->CommitTransaction() : (*topic)->AbortTransaction()).ok());
    EXPECT_EQ((*topic)->prepared_transaction(), 0u);
    EXPECT_FALSE(std::filesystem::exists(path + "/txn.state"));
  }
  EXPECT_EQ(Data(ReadCommitted(path, 1)), (std::vector<std::string>{"c1", "c2"}));
}

TEST(LogTransaction, CommittedFollowerSeesExactlyTheCommittedRecords) {
  TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{.segment_bytes = 2048});
  ASSERT_TRUE(topic.ok());
  constexpr int kTransactions = 150;
  std::vector<std::string> expected;  // written by the writer, read after join
  std::atomic<bool> writer_ok{true};
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    for (int t = 0; t < kTransactions; ++t) {
      if (!(*topic)->BeginTransaction().ok()) writer_ok = false;
      for (int b = 0; b < 1 + t % 4; ++b) {
        std::vector<std::string> batch;
        for (int i = 0; i < 1 + (t * 7 + b) % 9; ++i) batch.push_back(Record(t, b * 100 + i));
        std::vector<std::string_view> views(batch.begin(), batch.end());
        if (!(*topic)->Append(0, views, 0).ok()) writer_ok = false;
        if (t % 5 != 3) expected.insert(expected.end(), batch.begin(), batch.end());
      }
      Status s = t % 5 == 3 ? (*topic)->AbortTransaction() : (*topic)->CommitTransaction();
      if (!s.ok()) writer_ok = false;
    }
    writer_done = true;
  });
  auto reader = PartitionReader::Open(path, 0, 0, Isolation::kReadCommitted);
  ASSERT_TRUE(reader.ok());
  std::vector<std::string> seen;
  while (true) {
    const bool finished = writer_done;  // read before Next: then Next saw everything
    std::string_view rec;
    uint64_t off = 0;
    auto more = (*reader)->Next(&rec, &off);
    ASSERT_TRUE(more.ok()) << more.status().message();
    if (*more) {
      seen.emplace_back(rec);
      continue;
    }
    if (finished) break;
    std::this_thread::yield();
  }
  if (writer.joinable()) writer.join();
  EXPECT_TRUE(writer_ok);
  EXPECT_EQ(seen, expected);
}

}  // namespace
}  // namespace millrace::log
