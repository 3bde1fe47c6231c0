// The runtime end to end: log topics in and out, consumer groups, determinism
// across worker counts, the in-flight bound, and the CLI's errors.
#include "millrace/stream/pipeline.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/log/reader.h"
#include "millrace/log/topic.h"
#include "millrace/sim/transactions.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

const char* kSpec = R"(
source:
  time: ts
  max_out_of_orderness: 5s
  allowed_lateness: 1m
  late: side_output
  schema: {id: string, card_id: string, merchant_id: string, amount: double, ts: int64}
features:
  - {name: c_count_5m, key: [card_id], agg: count, window: 5m}
  - {name: c_avg_1h, key: [card_id], agg: avg, field: amount, window: 1h}
  - {name: m_max_10m, key: [merchant_id], agg: max, field: amount, window: 10m}
  - {name: cm_count, key: [card_id, merchant_id], agg: count, window: 1h}
windows:
  - name: m_1m
    key: [merchant_id]
    type: tumbling
    size: 1m
    aggs: [{name: n, agg: count}, {name: total, agg: sum, field: amount}]
)";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> transactions(size_t n, uint64_t seed) {
  TransactionStreamOptions o;
  o.cards = 300;
  o.merchants = 40;
  o.mean_gap_ms = 200;
  o.seed = seed;
  TransactionStream s(o);
  std::vector<std::string> out;
  std::string line;
  for (size_t i = 0; i < n; ++i) {
    line.clear();
    s.next(&line);
    line.pop_back();
    out.push_back(line);
  }
  return out;
}

TEST(Pipeline, LogTopicInAndOutWithConsumerGroup) {
  TempDir dir;
  auto spec = parse_spec(kSpec, "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  const std::string in = dir.file("in");
  {
    log::TopicOptions topts;
    topts.partitions = 3;
    auto topic = log::Topic::Create(in, topts);
    ASSERT_TRUE(topic.ok()) << topic.status().message();
    auto lines = transactions(6000, 3);
    std::vector<std::vector<std::string_view>> parts(3);
    for (size_t i = 0; i < lines.size(); ++i) parts[i % 3].push_back(lines[i]);
    for (uint32_t p = 0; p < 3; ++p) ASSERT_TRUE((*topic)->Append(p, parts[p], 0).ok());
    ASSERT_TRUE((*topic)->Flush().ok());
  }
  RunOptions opts;
  opts.input = "log:" + in;
  opts.output = "log:" + dir.file("out");
  opts.group = "features";
  opts.workers = 2;
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->records, 6000u);
  EXPECT_EQ(stats->accepted + stats->late_side_output + stats->late_dropped, 6000u);
  EXPECT_GT(stats->window_results, 0u);

  // Every accepted event is in the output exactly once, with its features.
  auto out = log::Topic::Open(dir.file("out"));
  ASSERT_TRUE(out.ok());
  std::set<std::string> ids;
  size_t windows = 0;
  auto reader = log::PartitionReader::Open(dir.file("out"), 0, 0);
  ASSERT_TRUE(reader.ok());
  std::string_view rec;
  uint64_t offset;
  while ((*reader)->Next(&rec, &offset).value()) {
    auto j = nlohmann::json::parse(rec);
    if (j.contains("window")) {
      ++windows;
      continue;
    }
    ASSERT_TRUE(j.contains("c_count_5m") && j.contains("cm_count")) << rec;
    EXPECT_TRUE(ids.insert(j["id"].get<std::string>()).second) << "twice: " << rec;
  }
  EXPECT_EQ(ids.size(), stats->accepted);
  EXPECT_EQ(windows, stats->window_results);

  // The group's offsets are committed at the end: a second run reads nothing.
  auto in_topic = log::Topic::Open(in);
  auto committed = (*in_topic)->GroupOffsets("features");
  ASSERT_TRUE(committed.ok());
  for (uint32_t p = 0; p < 3; ++p) EXPECT_EQ(committed.value()[p], (*in_topic)->end_offset(p));
  opts.output = dir.file("again.jsonl");
  auto again = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->records, 0u);
}

TEST(Pipeline, OutputIsIdenticalForAnyNumberOfWorkers) {
  TempDir dir;
  auto spec = parse_spec(kSpec, "spec");
  ASSERT_TRUE(spec.ok());
  {
    std::ofstream f(dir.file("in.jsonl"));
    for (const auto& l : transactions(20000, 5)) f << l << "\n";
  }
  std::string first;
  for (int workers : {1, 2, 4, 7}) {
    RunOptions opts;
    opts.input = dir.file("in.jsonl");
    opts.output = dir.file("out.jsonl");
    opts.workers = workers;
    auto stats = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->workers, workers);
    std::string out = read_file(opts.output);
    if (first.empty()) {
      first = out;
      EXPECT_GT(first.size(), 20000u * 100);
    } else {
      // Enriched events come in input order; window results are attached to
      // the event whose processing fired them, so with another number of
      // workers they may move, but never change. Compare the event lines
      // exactly and the window lines as a multiset.
      auto split = [](const std::string& text, bool windows) {
        std::multiset<std::string> ws;
        std::vector<std::string> events;
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
          if (line.rfind("{\"window\"", 0) == 0) {
            ws.insert(line);
          } else {
            events.push_back(line);
          }
        }
        return windows ? std::vector<std::string>(ws.begin(), ws.end()) : events;
      };
      EXPECT_TRUE(split(out, false) == split(first, false)) << workers << " workers";
      EXPECT_TRUE(split(out, true) == split(first, true)) << workers << " workers";
    }
  }
}

// With one worker the source thread runs the worker and writes the outputs
// itself (no sink thread, a small ring); the outputs must be exactly those of
// one worker on its own thread with a sink thread: enriched events, window
// results, late events and dead letters, in the same order.
TEST(Pipeline, OneInlineWorkerWritesWhatWorkerAndSinkThreadsWrite) {
  TempDir dir;
  auto spec = parse_spec(kSpec, "spec");
  ASSERT_TRUE(spec.ok());
  {
    std::ofstream f(dir.file("in.jsonl"));
    size_t i = 0;
    for (const auto& l : transactions(20000, 11)) {
      f << l << "\n";
      if (++i % 997 == 0) f << "{\"id\": \"bad\", \"ts\": 1}\n";  // no card: a dead letter
      if (i % 1499 == 0)                                          // ten minutes back: late
        f << "{\"id\": \"late" << i << "\", \"card_id\": \"c1\", \"merchant_id\": \"m1\", "
          << "\"amount\": 2, \"ts\": " << 1767225600000 + static_cast<int64_t>(i) * 200 - 600000
          << "}\n";
    }
  }
  std::map<bool, RunStats> stats;
  for (bool thread : {false, true}) {
    RunOptions opts;
    opts.input = dir.file("in.jsonl");
    opts.output = dir.file(fmt::format("out{}.jsonl", int(thread)));
    opts.late_output = dir.file(fmt::format("late{}.jsonl", int(thread)));
    opts.dead_letter = dir.file(fmt::format("dead{}.jsonl", int(thread)));
    opts.workers = 1;
    opts.worker_thread = thread;
    auto r = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(r.ok()) << r.status().message();
    stats[thread] = r.value();
  }
  EXPECT_EQ(stats[false].records, stats[true].records);
  EXPECT_EQ(stats[false].dead_letters, 20u);
  EXPECT_EQ(stats[true].dead_letters, 20u);
  EXPECT_GT(stats[false].late_side_output, 0u);
  EXPECT_EQ(stats[false].late_side_output, stats[true].late_side_output);
  EXPECT_EQ(stats[false].outputs, stats[true].outputs);
  EXPECT_GT(stats[false].window_results, 0u);
  EXPECT_EQ(stats[false].window_results, stats[true].window_results);
  for (const char* name : {"out", "late", "dead"}) {
    std::string inline_out = read_file(dir.file(fmt::format("{}0.jsonl", name)));
    EXPECT_FALSE(inline_out.empty()) << name;
    EXPECT_TRUE(inline_out == read_file(dir.file(fmt::format("{}1.jsonl", name)))) << name;
  }
}

class CountingGenerator : public EventGenerator {
 public:
  CountingGenerator(const Schema& schema, uint64_t n) : schema_(schema), n_(n) {}
  bool next(Event* e) override {
    if (i_ == n_) return false;
    e->reset(schema_.size());
    e->time = 1'000'000 + static_cast<TimeMs>(i_ / 10);
    e->set_string(0, "e" + std::to_string(i_));
    e->set_string(1, "c" + std::to_string(i_ % 997));
    e->set_string(2, "m" + std::to_string(i_ % 13));
    e->values[3].kind = FieldValue::Kind::Double;
    e->values[3].d = 1.0;
    e->values[4].kind = FieldValue::Kind::Int;
    e->values[4].i = e->time;
    ++i_;
    return true;
  }

 private:
  const Schema& schema_;
  uint64_t n_, i_ = 0;
};

TEST(Pipeline, SmallInFlightBoundStillCompletes) {
  auto spec = parse_spec(kSpec, "spec");
  ASSERT_TRUE(spec.ok());
  CountingGenerator gen(spec->source.schema, 100'000);
  RunOptions opts;
  opts.generator = &gen;
  opts.output = "";
  opts.max_in_flight = 64;
  opts.workers = 3;
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->accepted, 100'000u);
  EXPECT_EQ(stats->outputs, 100'000u);
  EXPECT_GT(stats->keys, 997u);  // cards + merchants + pairs, measured before the final flush
}

// Runs the millrace binary; returns its exit code and stderr+stdout.
std::pair<int, std::string> millrace(const std::string& args) {
  std::string cmd = std::string(MILLRACE_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

TEST(Cli, RunRejectsABadSpecWithItsLine) {
  TempDir dir;
  std::ofstream(dir.file("bad.yaml")) << "source:\n  time: ts\n  schema: {ts: int64, amount: "
                                         "double}\nfeatures:\n  - {name: x, key: [card], agg: "
                                         "count, window: 1m}\n";
  auto [code, out] = millrace("run --spec " + dir.file("bad.yaml") + " --input /dev/null");
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("bad.yaml:5: feature 'x': key field 'card' is not in the source schema"),
            std::string::npos)
      << out;
}

TEST(Cli, RunFromStdinCountsDeadLettersAndGoesOn) {
  TempDir dir;
  std::ofstream(dir.file("s.yaml")) << kSpec;
  std::ofstream(dir.file("in.jsonl")) << "{\"id\": \"a\", \"card_id\": \"c\", \"merchant_id\": "
                                         "\"m\", \"amount\": 1, \"ts\": 1000}\n"
                                      << "garbage\n"
                                      << "{\"id\": \"b\", \"card_id\": \"c\", \"merchant_id\": "
                                         "\"m\", \"amount\": 3, \"ts\": 2000}\n";
  auto [code, out] = millrace("run --spec " + dir.file("s.yaml") + " --output - --dead-letter " +
                              dir.file("dead.jsonl") + " < " + dir.file("in.jsonl"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"id\": \"b\", \"card_id\": \"c\", \"merchant_id\": \"m\", \"amount\": 3, "
                     "\"ts\": 2000, \"c_count_5m\": 2, \"c_avg_1h\": 2"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("1 dead letters"), std::string::npos) << out;
  EXPECT_NE(read_file(dir.file("dead.jsonl")).find("\"raw\": \"garbage\""), std::string::npos);
}

// The subcommand names listed under "Subcommands:" in a --help text.
std::vector<std::string> listed_subcommands(const std::string& help) {
  std::vector<std::string> names;
  size_t at = help.find("\nSubcommands:\n");
  if (at == std::string::npos) return names;
  std::istringstream lines(help.substr(at + 14));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) break;
    if (line.rfind("  ", 0) != 0 || line[2] == ' ') continue;  // a wrapped description
    names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return names;
}

// Walks the whole command tree from `millrace --help`: every group and every command prints
// help with an example, so a command added later without one fails here.
TEST(Cli, EveryCommandHasHelpWithAnExample) {
  std::vector<std::string> pending = {""};
  size_t visited = 0;
  while (!pending.empty()) {
    std::string cmd = pending.back();
    pending.pop_back();
    auto [code, out] = millrace(cmd + (cmd.empty() ? "" : " ") + "--help");
    ++visited;
    EXPECT_EQ(code, 0) << "millrace " << cmd;
    EXPECT_NE(out.find("Example"), std::string::npos) << "millrace " << cmd << ":\n" << out;
    for (const auto& sub : listed_subcommands(out))
      pending.push_back(cmd.empty() ? sub : cmd + " " + sub);
  }
  // The top level, its ten groups and commands, and the subcommands of the groups.
  EXPECT_GE(visited, 25u);
}

}  // namespace
}  // namespace millrace
