// The fraud demo end to end on a small simulated dataset (seconds): the model
// trained on backfilled vectors ranks the test days' frauds well above
// chance, every test transaction is decided once, every scored event is
// timed, the reports are written; and the nightly job's rows against a
// brute-force recomputation from the transactions.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "millrace/fraud/demo.h"
#include "millrace/fraud/nightly.h"
#include "tests/support/temp_dir.h"

namespace millrace::fraud {
namespace {

using millrace::testing::TempDir;
using nlohmann::json;

DemoOptions small(const std::string& dir) {
  DemoOptions o;
  o.spec = std::string(MILLRACE_SOURCE_DIR) + "/apps/fraud/fraud.yaml";
  o.out_dir = dir;
  o.sim.customers = 300;
  o.sim.terminals = 600;
  o.sim.days = 40;
  o.sim.drift_day = 33;
  o.sim.seed = 3;
  o.train_start_day = 10;
  o.train_days = 10;
  o.delay_days = 7;
  o.trees = 60;
  o.depth = 4;
  o.train_threads = 1;
  o.load = 0.5;
  o.latency_seconds = 0.3;
  return o;
}

TEST(FraudDemo, EndToEndOnASmallSimulatedDataset) {
  TempDir dir;
  auto r = run_demo(small(dir.file("demo")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& q = r->quality.quality;
  EXPECT_GT(q.overall.n_fraud, 20u);
  EXPECT_GT(q.overall.auc, 0.85) << "a model no better than chance would give 0.5";
  EXPECT_GT(q.overall.ap, 0.3) << "the fraud rate, " << q.overall.n_fraud * 1.0 / q.overall.n;
  ASSERT_TRUE(q.has_drift);
  EXPECT_EQ(q.before_drift.n + q.after_drift.n, q.overall.n);
  // Test days only: from the end of training plus the delay.
  EXPECT_EQ(r->test_from - r->train_to, 7 * 86'400'000LL);
  EXPECT_EQ(q.overall.days.size(), 40u - 27u);
  // Every test transaction decided once; every scored transaction timed once.
  uint64_t decided = 0, decided_frauds = 0;
  for (const auto& a : r->decisions) {
    decided += a[0] + a[1];
    decided_frauds += a[1];
  }
  EXPECT_EQ(decided, q.overall.n);
  EXPECT_EQ(decided_frauds, q.overall.n_fraud);
  EXPECT_EQ(r->transactions, r->data.transactions);
  EXPECT_EQ(r->records, 2 * r->data.transactions);  // each transaction and its label
  for (int s = 0; s < StageLatency::kStages; ++s)
    EXPECT_EQ(r->peak_latency.stages[s].count(), r->transactions) << StageLatency::name(s);
  ASSERT_NE(r->paced_latency, nullptr);
  EXPECT_GT(r->paced_latency->stages[StageLatency::kTotal].count(), 0u);
  // The replay's warm-up (the first 7 days, untimed): its transactions are
  // the records before the paced ones, none of them timed.
  EXPECT_GT(r->paced_warmup_records, 0u);
  EXPECT_LT(r->paced_warmup_records, r->records);
  EXPECT_LE(r->paced_latency->stages[StageLatency::kTotal].count(), r->paced_records);
  EXPECT_GT(r->paced_cpu_share, 0);
  EXPECT_EQ(r->trees, 60);
  EXPECT_GE(r->features, 45u);
  // Declines catch frauds far above their share.
  const double declined_share = static_cast<double>(r->decisions[2][1]) /
                                std::max<uint64_t>(1, r->decisions[2][0] + r->decisions[2][1]);
  EXPECT_GT(declined_share, 0.5);

  // The reports.
  std::ifstream jin(dir.file("demo/report.json"));
  json j = json::parse(jin);
  EXPECT_EQ(j["data"]["transactions"], r->data.transactions);
  EXPECT_NEAR(j["quality"]["auc"].get<double>(), q.overall.auc, 1e-4);
  EXPECT_TRUE(j["quality"].contains("before_drift"));
  EXPECT_EQ(j["quality"]["days"].size(), q.overall.days.size());
  EXPECT_TRUE(j["latency_paced"]["stages"]["total"].contains("p99_us"));
  EXPECT_EQ(j["latency_paced"]["warmup_records"], r->paced_warmup_records);
  EXPECT_GT(j["throughput"]["records_per_s"].get<double>(), 0);
  std::ifstream hin(dir.file("demo/report.html"));
  std::stringstream html;
  html << hin.rdbuf();
  EXPECT_NE(html.str().find("total (event -&gt; decision)"), std::string::npos);
  EXPECT_NE(html.str().find("<svg"), std::string::npos);
  // The scored test transactions, one line each.
  std::ifstream sin(dir.file("demo/scored.jsonl"));
  std::string line;
  size_t lines = 0;
  while (std::getline(sin, line)) ++lines;
  EXPECT_EQ(lines, q.overall.n);
  const std::string text = demo_text(*r);
  EXPECT_NE(text.find("before the drift"), std::string::npos);
  EXPECT_NE(text.find("rule: impossible_travel"), std::string::npos) << text;

  // A paced replay whose records were mostly behind schedule says that its
  // figures are the machine's; one that kept up does not.
  DemoReport paced = *r;
  paced.paced_records = 1000;
  paced.paced_behind = 600;
  paced.paced_cpu_share = 0.3;
  EXPECT_NE(demo_text(paced).find("needed more of a core than the 30% it had"), std::string::npos);
  paced.paced_behind = 20;
  EXPECT_EQ(demo_text(paced).find("needed more of a core"), std::string::npos);
}

TEST(FraudDemo, NightlyJobMatchesABruteForceRecomputation) {
  TempDir dir;
  sim::FraudSimOptions so;
  so.customers = 200;
  so.terminals = 400;
  so.days = 40;
  so.seed = 5;
  ASSERT_TRUE(sim::write_fraud_dataset(so, dir.path(), sim::SimFormat::Jsonl).ok());
  NightlyOptions no;
  no.transactions = dir.file("transactions.jsonl");
  no.out_dir = dir.path();
  auto stats = run_nightly(no);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->nights, 40u);
  struct Tx {
    int64_t ts;
    double amount;
    bool cnp;
    std::string device;
  };
  std::map<std::string, std::vector<Tx>> by_card;
  {
    std::ifstream in(dir.file("transactions.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      json t = json::parse(line);
      by_card[t["card_id"]].push_back({t["ts"], t["amount"], !t["card_present"].get<bool>(),
                                       t["device_id"].is_null() ? "" : t["device_id"]});
    }
  }
  std::ifstream in(dir.file("card_stats.csv"));
  std::string line;
  std::getline(in, line);
  size_t rows = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) c.push_back(cell);
    while (c.size() < 7) c.emplace_back();
    const int64_t as_of = std::stoll(c[1]);
    const int64_t midnight = as_of - no.ready_after;
    ASSERT_EQ(midnight % 86'400'000, 0) << line;
    uint64_t n = 0, lifetime = 0, cnp = 0;
    double sum = 0;
    for (const Tx& t : by_card[c[0]]) {
      if (t.ts >= midnight) continue;
      ++lifetime;
      if (t.ts >= midnight - 30 * 86'400'000LL) {
        ++n;
        sum += t.amount;
        cnp += t.cnp;
      }
    }
    ASSERT_EQ(std::to_string(lifetime), c[6]) << line;
    ASSERT_EQ(std::to_string(n), c[4]) << line;
    if (n == 0) {
      EXPECT_TRUE(c[2].empty()) << line;
    } else {
      EXPECT_NEAR(std::stod(c[2]), sum / n, 1e-4) << line;
      EXPECT_NEAR(std::stod(c[5]), static_cast<double>(cnp) / n, 1e-4) << line;
    }
    ++rows;
  }
  EXPECT_EQ(rows, stats->card_rows);
  EXPECT_GT(rows, 1000u);
  // Device rows: the count of payments of the card from the device before the midnight.
  std::ifstream din(dir.file("device_stats.csv"));
  std::getline(din, line);
  size_t drows = 0;
  while (std::getline(din, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) c.push_back(cell);
    ASSERT_EQ(c.size(), 4u) << line;
    const int64_t midnight = std::stoll(c[2]) - no.ready_after;
    uint64_t n = 0;
    for (const Tx& t : by_card[c[0]]) n += t.device == c[1] && t.ts < midnight;
    ASSERT_EQ(std::to_string(n), c[3]) << line;
    ++drows;
  }
  EXPECT_EQ(drows, stats->device_rows);
}

}  // namespace
}  // namespace millrace::fraud
