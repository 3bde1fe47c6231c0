// Windows through the runtime: a watermark that fires far more results than
// one chunk (WindowOutput::spill_at) streams them to the output while it
// fires; every record arrives once, the same as the operator run alone.
#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "millrace/log/reader.h"
#include "millrace/log/topic.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"
#include "window_case_runner.h"

namespace millrace::testing {
namespace {

std::vector<std::string> window_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("{\"window\"", 0) == 0) out.push_back(line);
  std::sort(out.begin(), out.end());
  return out;
}

// 3000 keys, 3 s of event time, written to `path`: at the end of the input
// every key has about 32 hopping windows of kHopping open, about 8 MB of
// results fired by one watermark (kMaxTime), several chunks of 1 MB.
std::vector<std::string> write_hopping_input(const std::string& path) {
  std::vector<std::string> lines;
  std::ofstream f(path);
  for (int i = 0; i < 30000; ++i) {
    lines.push_back(fmt::format(R"({{"key": "k{}", "amount": {}, "ts": {}}})", (i * 7919) % 3000,
                                i % 100, 1'000'000 + i / 10));
    f << lines.back() << "\n";
  }
  return lines;
}
constexpr const char* kHopping =
    "windows:\n  - {name: w, key: [key], type: hopping, size: 5s, slide: 250ms,"
    " aggs: [{name: n, agg: count}, {name: total, agg: sum, field: amount}]}\n";

// The window's results of the operator run alone over `lines`, sorted.
std::vector<std::string> results_alone(const PipelineSpec& spec,
                                       const std::vector<std::string>& lines) {
  auto alone = run_window_lines(spec, lines, {.count_open = false});
  EXPECT_TRUE(alone.ok()) << alone.status().message();
  if (!alone.ok()) return {};
  std::vector<std::string> expected = alone->results;
  std::sort(expected.begin(), expected.end());
  return expected;
}

// Runs the spec over dir's in.jsonl with `workers` workers: every window
// result comes out once, as `expected` has them. Returns the output's path.
std::string check_run(const PipelineSpec& spec, const TempDir& dir, int workers,
                      const std::vector<std::string>& expected) {
  RunOptions opts;
  opts.input = dir.file("in.jsonl");
  opts.output = dir.file(fmt::format("out{}.jsonl", workers));
  opts.workers = workers;
  auto stats = run_pipeline(spec, opts);
  EXPECT_TRUE(stats.ok()) << stats.status().message();
  if (!stats.ok()) return opts.output;
  EXPECT_EQ(stats->window_results, expected.size()) << workers << " workers";
  auto got = window_lines(opts.output);
  EXPECT_EQ(got.size(), expected.size()) << workers << " workers";
  EXPECT_TRUE(got == expected) << workers << " workers";
  return opts.output;
}

TEST(WindowPipeline, ResultsOfOneWatermarkStreamOutInChunks) {
  TempDir dir;
  auto spec = parse_spec(std::string("source:\n  time: ts\n  max_out_of_orderness: 0s\n"
                                     "  schema: {key: string, amount: double, ts: int64}\n") +
                             kHopping,
                         "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  const std::vector<std::string> lines = write_hopping_input(dir.file("in.jsonl"));
  const std::vector<std::string> expected = results_alone(spec.value(), lines);
  size_t bytes = 0;
  for (const auto& r : expected) bytes += r.size() + 1;
  ASSERT_GT(bytes, size_t{4} << 20);

  for (int workers : {1, 2}) check_run(spec.value(), dir, workers, expected);
}

// The same with a model: the events a worker finishes are scored at the end
// of its batch, and a watermark's spill waits for every earlier slot to be
// written, so it first finishes the events it would otherwise wait for. Every
// window result and every scored event comes out once.
TEST(WindowPipeline, ResultsStreamOutBesideScoredEvents) {
  TempDir dir;
  std::ofstream(dir.file("model.json"))
      << R"({"kind": "logistic_regression", "features": ["n_1m", "amount"],)"
      << R"( "weights": [0.01, 0.02], "bias": -1.0})";
  auto spec = parse_spec(
      "source:\n  time: ts\n  max_out_of_orderness: 0s\n"
      "  schema: {key: string, amount: double, ts: int64}\n"
      "features:\n  - {name: n_1m, key: key, agg: count, window: 1m}\n"
      "model: {path: " +
          dir.file("model.json") + "}\n" + kHopping,
      "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  const std::vector<std::string> lines = write_hopping_input(dir.file("in.jsonl"));
  const std::vector<std::string> expected = results_alone(spec.value(), lines);
  ASSERT_GT(expected.size(), 90000u);  // several MB: several spills
  for (int workers : {1, 2}) {
    const std::string output = check_run(spec.value(), dir, workers, expected);
    size_t scored = 0;
    std::ifstream in(output);
    for (std::string line; std::getline(in, line);)
      scored += line.rfind("{\"key\"", 0) == 0 && line.find("\"score\": ") != std::string::npos;
    EXPECT_EQ(scored, lines.size()) << workers << " workers";
  }
}

// A log output of several partitions: every result record of a key (its
// final, retracts and updates, which come out at different times) is in the
// same partition, in order, whatever the number of workers.
TEST(WindowPipeline, ResultsOfAKeyStayInOnePartition) {
  TempDir dir;
  auto spec = parse_spec(
      "source:\n  time: ts\n  max_out_of_orderness: 0s\n  allowed_lateness: 10s\n"
      "  schema: {key: string, amount: double, ts: int64}\n"
      "windows:\n  - {name: w, key: [key], type: tumbling, size: 1s, allowed_lateness: 5s,"
      " retract: true, aggs: [{name: n, agg: count}, {name: total, agg: sum, field: amount}]}\n",
      "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  // 200 keys over 20 s of event time; a third of the events 0-3 s late, so
  // that windows that fired get updates later on.
  std::vector<std::string> lines;
  {
    std::mt19937_64 rng(7);
    std::ofstream f(dir.file("in.jsonl"));
    for (int i = 0; i < 20000; ++i) {
      const int64_t late = rng() % 3 == 0 ? static_cast<int64_t>(rng() % 3000) : 0;
      lines.push_back(fmt::format(R"({{"key": "k{}", "amount": {}, "ts": {}}})", rng() % 200,
                                  rng() % 100, 1'000'000 + i - late));
      f << lines.back() << "\n";
    }
  }
  auto alone = run_window_lines(spec.value(), lines, {.count_open = false});
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  size_t updates = 0;
  for (const auto& r : alone->results) updates += r.find("\"update\"") != std::string::npos;
  ASSERT_GT(updates, 100u);

  for (int workers : {1, 2}) {
    const std::string out = dir.file(fmt::format("out{}", workers));
    {
      log::TopicOptions topts;
      topts.partitions = 4;
      ASSERT_TRUE(log::Topic::Create(out, topts).ok());
    }
    RunOptions opts;
    opts.input = dir.file("in.jsonl");
    opts.output = "log:" + out;
    opts.workers = workers;
    auto stats = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    std::map<std::string, std::set<uint32_t>> partitions_of_key;
    std::vector<std::string> got;
    for (uint32_t p = 0; p < 4; ++p) {
      auto reader = log::PartitionReader::Open(out, p, 0);
      ASSERT_TRUE(reader.ok()) << reader.status().message();
      std::string_view rec;
      uint64_t offset;
      while ((*reader)->Next(&rec, &offset).value()) {
        auto j = nlohmann::json::parse(rec);
        partitions_of_key[j["key"].get<std::string>()].insert(p);
        got.emplace_back(rec);
      }
    }
    EXPECT_EQ(partitions_of_key.size(), 200u) << workers << " workers";
    std::set<uint32_t> used;
    for (const auto& [key, ps] : partitions_of_key) {
      EXPECT_EQ(ps.size(), 1u) << key << " in several partitions, " << workers << " workers";
      used.insert(*ps.begin());
    }
    EXPECT_EQ(used.size(), 4u);
    // Each partition is read in order: per window instance, the records are
    // those of the operator alone, in the same order.
    EXPECT_TRUE(same_window_results(spec.value(), alone->results, got)) << workers << " workers";
  }
}

}  // namespace
}  // namespace millrace::testing
