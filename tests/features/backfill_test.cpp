// The backfill's direct loop (one thread, no queues) against the backfill
// through the runtime (run_pipeline, one worker, a sink thread): on randomized
// two-source streams with out-of-order and late events, malformed records,
// text needing CSV quotes, derived features over batch values, a reference
// table with changes, prev() and is_new(), the two write the same bytes (rows
// and dead letters) and count the same records.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "millrace/core/json_writer.h"
#include "millrace/stream/backfill.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The rows of a CSV text, cells unquoted (RFC 4180).
std::vector<std::vector<std::string>> split_csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n') {
      rows.back().push_back(std::move(cell));
      cell.clear();
      rows.emplace_back();
    } else {
      cell += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

std::string spec_text(const TempDir& dir) {
  return fmt::format(R"SPEC(
sources:
  transactions:
    time: ts
    max_out_of_orderness: 2s
    allowed_lateness: 1s
    schema: {{id: string, card_id: string, merchant_id: string, memo: string?, amount: double?,
              ts: int64}}
  labels:
    time: reported_at
    max_out_of_orderness: 0s
    late: side_output
    schema: {{tx_id: string, merchant_id: string, loss: double?, reported_at: int64}}
batch:
  - {{name: card_stats, path: {0}/card_stats.csv, key: card_id, as_of: as_of,
     columns: {{avg_amount: double?}}, poll: 0}}
tables:
  - {{name: merchants, path: {0}/merchants.csv, key: merchant_id, columns: {{risk: double?}},
     changes: {0}/merchant_changes.jsonl, time: ts}}
features:
  - {{name: card_n_1m, key: card_id, agg: count, window: 1m}}
  - {{name: card_avg_5m, key: card_id, agg: avg, field: amount, window: 5m}}
  - {{name: card_sd_5m, key: card_id, agg: stddev, field: amount, window: 5m}}
  - {{name: card_max_2m, key: card_id, agg: max, field: amount, window: 2m}}
  - {{name: card_merchants_5m, key: card_id, agg: count_distinct, field: merchant_id, window: 5m}}
  - {{name: card_last_memo, key: card_id, agg: last, field: memo, window: 5m}}
  - {{name: card_since, key: card_id, agg: time_since_last}}
  - {{name: merchant_sum_1m, key: merchant_id, agg: sum, field: amount, window: 1m}}
  - {{name: merchant_losses_10m, source: labels, key: merchant_id, agg: count, window: 10m}}
  - {{name: merchant_loss_sum_10m, source: labels, key: merchant_id, agg: sum, field: loss,
     window: 10m, ttl: 3m}}
  - {{name: amount_ratio, expr: "amount / coalesce(batch.card_stats.avg_amount, amount, 1)"}}
  - {{name: merchant_risk, expr: "coalesce(lookup(merchants, merchant_id).risk, 0.5)"}}
  - {{name: new_merchant, key: card_id, expr: "is_new(merchant_id, 2m)"}}
  - {{name: amount_jump, key: card_id, expr: "amount - coalesce(prev(amount), 0)"}}
)SPEC",
                     dir.path());
}

// Writes the inputs: transactions (some out of order, some late, some
// malformed), labels, the batch file and the table with its changes.
void write_inputs(const TempDir& dir, uint64_t seed, int ntx) {
  std::mt19937_64 rng(seed);
  const TimeMs start = 1'767'225'600'000;
  std::ofstream tx(dir.file("tx.jsonl")), labels(dir.file("labels.jsonl"));
  TimeMs t = start, lt = start;
  // Texts to quote (the character that asks for it early, late, or past the
  // first 8 bytes) and one that needs none.
  const char* memos[] = {
      "plain",           "with, comma",  "with \\\"quote\\\"", "line\\nbreak",
      "a longer memo,x", "eight ch\\\"", "sixteen bytes ok",   "sixteen bytes ok\\r"};
  for (int i = 0; i < ntx; ++i) {
    t += static_cast<TimeMs>(rng() % 700);
    TimeMs ts = t;
    const uint64_t r = rng() % 100;
    if (r < 10) ts -= static_cast<TimeMs>(rng() % 2500);  // out of order, within 2 s
    if (r == 10) ts -= 10'000;                            // late
    if (r == 11) {
      tx << "{\"id\": \"bad" << i << "\", \"card_id\": 7}\n";  // a wrong type
      continue;
    }
    if (r == 12) {
      tx << "not json at all\n";
      continue;
    }
    std::string amount =
        rng() % 15 == 0 ? "null" : fmt::format("{}", static_cast<double>(rng() % 100000) / 100);
    std::string memo =
        rng() % 3 == 0 ? "null" : fmt::format("\"{}\"", memos[rng() % std::size(memos)]);
    tx << fmt::format(
              R"({{"id": "t{}", "card_id": "c{}", "merchant_id": "m{}", "memo": {}, "amount": {}, "ts": {}}})",
              i, rng() % 30, rng() % 8, memo, amount, ts)
       << "\n";
    while (lt < t && rng() % 4 == 0) {
      lt += static_cast<TimeMs>(rng() % 3000);
      TimeMs lts = rng() % 20 == 0 ? lt - 5000 : lt;  // some late labels
      labels << fmt::format(
                    R"({{"tx_id": "t{}", "merchant_id": "m{}", "loss": {}, "reported_at": {}}})",
                    rng() % (i + 1), rng() % 8,
                    rng() % 4 == 0 ? "null"
                                   : fmt::format("{}", static_cast<double>(rng() % 9000) / 10),
                    lts)
             << "\n";
    }
  }
  std::ofstream batch(dir.file("card_stats.csv"));
  batch << "card_id,as_of,avg_amount\n";
  for (int c = 0; c < 30; ++c)
    for (int v = 0; v < 3; ++v)
      batch << fmt::format("c{},{},{}\n", c,
                           start + v * 60'000 + static_cast<TimeMs>(rng() % 60'000),
                           static_cast<double>(rng() % 50000) / 100);
  std::ofstream merchants(dir.file("merchants.csv"));
  merchants << "merchant_id,risk\nm0,0.1\nm1,0.9\nm2,0.4\n";
  std::ofstream changes(dir.file("merchant_changes.jsonl"));
  TimeMs ct = start;
  for (int i = 0; i < 40; ++i) {
    ct += static_cast<TimeMs>(rng() % 20'000);
    if (rng() % 4 == 0) {
      changes << fmt::format(R"({{"op": "delete", "ts": {}, "merchant_id": "m{}"}})", ct, rng() % 8)
              << "\n";
    } else {
      changes << fmt::format(R"({{"op": "upsert", "ts": {}, "merchant_id": "m{}", "risk": {}}})",
                             ct, rng() % 8, static_cast<double>(rng() % 100) / 100)
              << "\n";
    }
  }
}

class BackfillPaths : public ::testing::TestWithParam<uint64_t> {};

TEST_P(BackfillPaths, DirectLoopWritesTheRuntimesBytes) {
  TempDir dir;
  write_inputs(dir, GetParam(), 3000);
  auto spec = parse_spec(spec_text(dir), dir.file("spec.yaml"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  {
    std::ofstream y(dir.file("y.jsonl"));
    for (int i = 0; i < 3000; i += 2)
      y << fmt::format(R"({{"id": "t{}", "is_fraud": {}}})", i, i % 3) << "\n";
  }
  BackfillStats stats[2];
  for (int through_runtime = 0; through_runtime < 2; ++through_runtime) {
    BackfillOptions bo;
    bo.inputs = {{"transactions", dir.file("tx.jsonl")}, {"labels", dir.file("labels.jsonl")}};
    bo.output = dir.file(fmt::format("train-{}.csv", through_runtime));
    bo.dead_letter = dir.file(fmt::format("dead-{}.jsonl", through_runtime));
    bo.labels = dir.file("y.jsonl");
    bo.through_runtime = through_runtime == 1;
    auto b = run_backfill(spec.value(), bo);
    ASSERT_TRUE(b.ok()) << b.status().message();
    stats[through_runtime] = b.value();
  }
  const std::string direct = read_file(dir.file("train-0.csv"));
  const std::string runtime = read_file(dir.file("train-1.csv"));
  ASSERT_GT(stats[0].rows, 2000u);
  EXPECT_EQ(direct, runtime);
  EXPECT_EQ(read_file(dir.file("dead-0.jsonl")), read_file(dir.file("dead-1.jsonl")));
  EXPECT_EQ(stats[0].rows, stats[1].rows);
  EXPECT_EQ(stats[0].labeled, stats[1].labeled);
  EXPECT_GT(stats[0].labeled, 0u);
  EXPECT_EQ(stats[0].run.records, stats[1].run.records);
  EXPECT_EQ(stats[0].run.accepted, stats[1].run.accepted);
  EXPECT_EQ(stats[0].run.dead_letters, stats[1].run.dead_letters);
  EXPECT_GT(stats[0].run.dead_letters, 0u);
  EXPECT_EQ(stats[0].run.late_dropped, stats[1].run.late_dropped);
  EXPECT_GT(stats[0].run.late_dropped, 0u);
  EXPECT_EQ(stats[0].run.late_side_output, stats[1].run.late_side_output);
  EXPECT_EQ(stats[0].run.other_source_events, stats[1].run.other_source_events);
  EXPECT_EQ(stats[0].run.derived, stats[1].run.derived);
  EXPECT_GT(stats[0].run.late_side_output, 0u);
  EXPECT_GT(stats[0].run.other_source_events, 100u);
  EXPECT_NE(stats[0].run.derived.find("table merchants: 40 changes applied"), std::string::npos)
      << stats[0].run.derived;
  // The rows are what a reader of the CSV expects: quoted text, empty nulls.
  EXPECT_NE(direct.find("\"with, comma\""), std::string::npos);
  EXPECT_NE(direct.find("\"line\nbreak\""), std::string::npos);
  EXPECT_NE(direct.find("\"a longer memo,x\""), std::string::npos);
  EXPECT_NE(direct.find("\"eight ch\"\"\""), std::string::npos);
  EXPECT_NE(direct.find(",sixteen bytes ok,"), std::string::npos);
  EXPECT_NE(direct.find("\"sixteen bytes ok\r\""), std::string::npos);
  EXPECT_NE(direct.find(",,"), std::string::npos);
  // Numbers are written as the JSON output writes them: a cell read back
  // as a double and written by append_json_double() (or as an int) is the
  // same text; bools as true/false.
  const auto rows = split_csv_rows(direct);
  ASSERT_EQ(rows.size(), stats[0].rows + 1);
  const std::vector<std::string>& header = rows[0];
  uint64_t numbers = 0;
  for (size_t r = 1; r < rows.size(); ++r) {
    ASSERT_EQ(rows[r].size(), header.size()) << "row " << r;
    for (size_t c = 4; c + 1 < header.size(); ++c) {
      const std::string& cell = rows[r][c];
      if (cell.empty() || header[c] == "card_last_memo") continue;
      if (header[c] == "new_merchant") {
        EXPECT_TRUE(cell == "true" || cell == "false") << cell;
        continue;
      }
      std::string want;
      append_json_double(want, std::stod(cell));
      EXPECT_EQ(cell, want) << header[c] << " row " << r;
      ++numbers;
    }
  }
  EXPECT_GT(numbers, 10 * stats[0].rows);
}

INSTANTIATE_TEST_SUITE_P(Seeds, BackfillPaths, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace millrace
