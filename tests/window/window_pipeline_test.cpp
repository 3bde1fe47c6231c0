// Windows through the runtime: a watermark that fires far more results than
// one chunk (WindowOutput::spill_at) streams them to the output while it
// fires; every record arrives once, the same as the operator run alone.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

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

TEST(WindowPipeline, ResultsOfOneWatermarkStreamOutInChunks) {
  TempDir dir;
  // 3000 keys, 3 s of event time: at the end of the input every key has
  // about 32 hopping windows open, about 8 MB of results fired by one
  // watermark (kMaxTime), several chunks of 1 MB.
  auto spec = parse_spec(
      "source:\n  time: ts\n  max_out_of_orderness: 0s\n"
      "  schema: {key: string, amount: double, ts: int64}\n"
      "windows:\n  - {name: w, key: [key], type: hopping, size: 5s, slide: 250ms,"
      " aggs: [{name: n, agg: count}, {name: total, agg: sum, field: amount}]}\n",
      "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  std::vector<std::string> lines;
  {
    std::ofstream f(dir.file("in.jsonl"));
    for (int i = 0; i < 30000; ++i) {
      lines.push_back(fmt::format(R"({{"key": "k{}", "amount": {}, "ts": {}}})", (i * 7919) % 3000,
                                  i % 100, 1'000'000 + i / 10));
      f << lines.back() << "\n";
    }
  }
  auto alone = run_window_lines(spec.value(), lines, {.count_open = false});
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  std::vector<std::string> expected = alone->results;
  std::sort(expected.begin(), expected.end());
  size_t bytes = 0;
  for (const auto& r : expected) bytes += r.size() + 1;
  ASSERT_GT(bytes, size_t{4} << 20);

  for (int workers : {1, 2}) {
    RunOptions opts;
    opts.input = dir.file("in.jsonl");
    opts.output = dir.file(fmt::format("out{}.jsonl", workers));
    opts.workers = workers;
    auto stats = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    EXPECT_EQ(stats->window_results, expected.size()) << workers << " workers";
    auto got = window_lines(opts.output);
    EXPECT_EQ(got.size(), expected.size()) << workers << " workers";
    EXPECT_TRUE(got == expected) << workers << " workers";
  }
}

}  // namespace
}  // namespace millrace::testing
