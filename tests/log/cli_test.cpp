// End-to-end tests of `millrace log ...`, running the built binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "log_test_util.h"
#include "millrace/log/layout.h"
#include "millrace/log/topic.h"

namespace millrace::log {
namespace {

using testing::TempDir;

struct RunResult {
  int exit_code;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `millrace <args>` through the shell with `input` on stdin.
RunResult RunCli(const TempDir& tmp, const std::string& args, const std::string& input = "") {
  const std::string in = tmp.path() + "/stdin", out = tmp.path() + "/stdout",
                    err = tmp.path() + "/stderr";
  {
    std::ofstream f(in);
    f << input;
  }
  const std::string cmd = std::string("cd ") + tmp.path() + " && " + MILLRACE_BINARY + " " + args +
                          " < " + in + " > " + out + " 2> " + err;
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(err)};
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string Transactions(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "{\"card\":\"c" + std::to_string(i % 7) + "\",\"i\":" + std::to_string(i) + "}\n";
  }
  return s;
}

TEST(LogCli, ProduceByKeyThenConsume) {
  TempDir tmp;
  ASSERT_EQ(RunCli(tmp, "log create data/tx --partitions 4").exit_code, 0);
  auto produced = RunCli(tmp, "log produce data/tx --key card", Transactions(100));
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  EXPECT_NE(produced.err.find("produced 100 records"), std::string::npos);
  // Every record of a card lands in one partition, in the order produced.
  std::map<std::string, std::set<int>> partitions_of_card;
  size_t total = 0;
  for (int p = 0; p < 4; ++p) {
    auto r = RunCli(tmp, "log consume data/tx --from-beginning --partition " + std::to_string(p));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int last_i = -1;
    for (const auto& line : Lines(r.out)) {
      const size_t at = line.find("\"card\":\"") + 8;
      std::string card = line.substr(at, line.find('"', at) - at);
      partitions_of_card[card].insert(p);
      int i = std::stoi(line.substr(line.find("\"i\":") + 4));
      EXPECT_GT(i, last_i);
      last_i = i;
      ++total;
    }
  }
  EXPECT_EQ(total, 100u);
  EXPECT_EQ(partitions_of_card.size(), 7u);
  for (const auto& [card, parts] : partitions_of_card) EXPECT_EQ(parts.size(), 1u) << card;
  // Without --from-beginning and without a group, consume starts at the end.
  auto latest = RunCli(tmp, "log consume data/tx");
  EXPECT_EQ(latest.exit_code, 0);
  EXPECT_EQ(latest.out, "");
}

TEST(LogCli, RoundRobinWithoutKey) {
  TempDir tmp;
  ASSERT_EQ(RunCli(tmp, "log create t --partitions 3").exit_code, 0);
  ASSERT_EQ(RunCli(tmp, "log produce t", Transactions(30)).exit_code, 0);
  auto d = RunCli(tmp, "log describe t --json");
  ASSERT_EQ(d.exit_code, 0);
  for (int p = 0; p < 3; ++p) {
    EXPECT_NE(d.out.find("\"end_offset\":10,\"partition\":" + std::to_string(p)), std::string::npos)
        << d.out;
  }
}

TEST(LogCli, GroupResumesWhereItLeftOffAndDescribeShowsLag) {
  TempDir tmp;
  ASSERT_EQ(RunCli(tmp, "log create t --partitions 2").exit_code, 0);
  ASSERT_EQ(RunCli(tmp, "log produce t --key card", Transactions(50)).exit_code, 0);
  auto first = RunCli(tmp, "log consume t --group audit --from-beginning --max-records 20");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(Lines(first.out).size(), 20u);
  auto d = RunCli(tmp, "log describe t");
  EXPECT_NE(d.out.find("group audit: lag 30"), std::string::npos) << d.out;
  auto rest = RunCli(tmp, "log consume t --group audit --from-beginning");
  ASSERT_EQ(rest.exit_code, 0);
  EXPECT_EQ(Lines(rest.out).size(), 30u);
  std::set<std::string> all;
  for (const auto& l : Lines(first.out)) all.insert(l);
  for (const auto& l : Lines(rest.out)) all.insert(l);
  EXPECT_EQ(all.size(), 50u);  // nothing twice, nothing missing
  EXPECT_EQ(RunCli(tmp, "log consume t --group audit").out, "");
  EXPECT_NE(RunCli(tmp, "log describe t").out.find("group audit: lag 0"), std::string::npos);
}

TEST(LogCli, InvalidLinesAreSkippedAndReported) {
  TempDir tmp;
  ASSERT_EQ(RunCli(tmp, "log create t").exit_code, 0);
  auto r =
      RunCli(tmp, "log produce t --key card", "{\"card\":\"a\"}\nnot json\n[1,2]\n\n{\"x\":1}");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("line 2 skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 3 skipped: not a JSON object"), std::string::npos) << r.err;
  auto c = RunCli(tmp, "log consume t --from-beginning");
  EXPECT_EQ(c.out, "{\"card\":\"a\"}\n{\"x\":1}\n");  // last line had no newline
}

TEST(LogCli, FollowPrintsRecordsProducedLater) {
  TempDir tmp;
  ASSERT_EQ(RunCli(tmp, "log create t --partitions 2").exit_code, 0);
  const std::string cmd = std::string("cd ") + tmp.path() + " && timeout 60 " + MILLRACE_BINARY +
                          " log consume t --follow --from-beginning --max-records 40";
  FILE* consumer = ::popen(cmd.c_str(), "r");
  ASSERT_NE(consumer, nullptr);
  ASSERT_EQ(RunCli(tmp, "log produce t", Transactions(25)).exit_code, 0);
  ASSERT_EQ(RunCli(tmp, "log produce t", Transactions(15)).exit_code, 0);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), consumer)) > 0) out.append(buf, n);
  int status = ::pclose(consumer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(Lines(out).size(), 40u);
}

TEST(LogCli, ConsumeReportsDamageAndPrintsNothingDamaged) {
  TempDir tmp;
  ASSERT_EQ(RunCli(tmp, "log create t --segment-bytes 1024").exit_code, 0);
  ASSERT_EQ(RunCli(tmp, "log produce t", Transactions(100)).exit_code, 0);
  // The produce above wrote one batch; more batches roll more segments.
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(RunCli(tmp, "log produce t", Transactions(30)).exit_code, 0);
  auto bases = ListSegments(PartitionDir(tmp.path() + "/t", 0));
  ASSERT_GE(bases->size(), 2u);
  testing::FlipByte(SegmentPath(PartitionDir(tmp.path() + "/t", 0), 0), 100);
  auto r = RunCli(tmp, "log consume t --from-beginning");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("corrupt log"), std::string::npos) << r.err;
  for (const auto& line : Lines(r.out)) EXPECT_EQ(line.front(), '{') << line;
  EXPECT_LT(Lines(r.out).size(), 3u);
}

TEST(LogCli, ErrorsSayWhatToDo) {
  TempDir tmp;
  auto r = RunCli(tmp, "log produce missing");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("millrace log create missing"), std::string::npos) << r.err;
  ASSERT_EQ(RunCli(tmp, "log create t").exit_code, 0);
  auto again = RunCli(tmp, "log create t");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);
  EXPECT_NE(RunCli(tmp, "log consume t --group 'bad/name'").exit_code, 0);
}

TEST(LogCli, EveryCommandHasHelpWithAnExample) {
  TempDir tmp;
  for (const char* sub : {"", " create", " produce", " consume", " describe"}) {
    auto r = RunCli(tmp, std::string("log") + sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Example:\n  millrace log"), std::string::npos) << sub << r.out;
  }
}

}  // namespace
}  // namespace millrace::log

namespace millrace::log {
namespace {

TEST(LogCli, ConsumeCommittedSkipsUndecidedAndAbortedTransactions) {
  testing::TempDir tmp;
  const std::string path = tmp.path() + "/t";
  auto topic = Topic::Create(path, TopicOptions{});
  ASSERT_TRUE(topic.ok());
  std::vector<std::string_view> plain = {"{\"n\":1}"}, aborted = {"{\"n\":2}"},
                                committed = {"{\"n\":3}"}, open = {"{\"n\":4}"};
  ASSERT_TRUE((*topic)->Append(0, plain, 0).ok());
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  ASSERT_TRUE((*topic)->Append(0, aborted, 0).ok());
  ASSERT_TRUE((*topic)->AbortTransaction().ok());
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  ASSERT_TRUE((*topic)->Append(0, committed, 0).ok());
  ASSERT_TRUE((*topic)->CommitTransaction().ok());
  ASSERT_TRUE((*topic)->BeginTransaction().ok());
  ASSERT_TRUE((*topic)->Append(0, open, 0).ok());
  ASSERT_TRUE((*topic)->Flush().ok());
  auto c = RunCli(tmp, "log consume t --from-beginning --committed --group g");
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "{\"n\":1}\n{\"n\":3}\n");
  auto all = RunCli(tmp, "log consume t --from-beginning");
  EXPECT_EQ(all.out, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
  // The group stays before the undecided transaction, and gets it on commit.
  ASSERT_TRUE((*topic)->CommitTransaction().ok());
  auto rest = RunCli(tmp, "log consume t --committed --group g");
  EXPECT_EQ(rest.out, "{\"n\":4}\n");
}

}  // namespace
}  // namespace millrace::log
