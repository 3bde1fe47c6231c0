// Logistic regression, CSV tables, quality metrics and training.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/core/hash.h"
#include "millrace/model/csv_table.h"
#include "millrace/model/linear.h"
#include "millrace/model/metrics.h"
#include "millrace/model/model_handle.h"
#include "millrace/model/trainer.h"
#include "tests/support/temp_dir.h"

namespace millrace::model {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::path(::millrace::testing::process_temp_dir()) / ("millrace_tools_" + name)).string();
}

void write(const std::string& path, const std::string& body) {
  std::ofstream out(path, std::ios::trunc);
  out << body;
}

TEST(ModelLogistic, ScoresAndRejectsBadFiles) {
  auto m = LogisticModel::parse(
      R"({"kind": "logistic_regression", "features": ["a", "b"], "weights": [0.5, -2], "bias": 0.25})",
      "lr.json");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const float row[2] = {2.0f, 0.5f};
  EXPECT_DOUBLE_EQ((*m)->score(row), 1.0 / (1.0 + std::exp(-(0.25 + 1.0 - 1.0))));
  const float missing[2] = {NAN, 0.5f};
  EXPECT_DOUBLE_EQ((*m)->score(missing), 1.0 / (1.0 + std::exp(-(0.25 - 1.0))));
  double batch[2];
  const float rows[4] = {2.0f, 0.5f, NAN, 0.5f};
  (*m)->predict_batch(rows, 2, 2, batch);
  EXPECT_EQ(batch[0], (*m)->score(row));
  EXPECT_EQ(batch[1], (*m)->score(missing));
  auto bad = LogisticModel::parse(R"({"features": ["a"], "weights": [1, 2], "bias": 0})", "x.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x.json: weights: expected 1 numbers"), std::string::npos);
  auto no_bias = LogisticModel::parse(R"({"features": [], "weights": []})", "y.json");
  ASSERT_FALSE(no_bias.ok());
  EXPECT_NE(no_bias.status().message().find("y.json: bias: expected a number"), std::string::npos);
}

TEST(ModelCsv, QuotesBlankLinesAndErrors) {
  const std::string path = temp_path("t.csv");
  write(path, "id,name,x\r\n1,\"a, b\",1.5\r\n\n2,\"say \"\"hi\"\"\",\n");
  auto t = read_csv(path);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[0][1], "a, b");
  EXPECT_EQ(t->rows[1][1], "say \"hi\"");
  auto x = t->numeric_column(2);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ((*x)[0], 1.5f);
  EXPECT_TRUE(std::isnan((*x)[1]));
  auto names = t->numeric_column(1);
  ASSERT_FALSE(names.ok());
  EXPECT_NE(names.status().message().find(":2: column \"name\": expected a number"),
            std::string::npos)
      << names.status().message();
  write(path, "a,b\n1,2\n3\n");
  auto short_row = read_csv(path);
  ASSERT_FALSE(short_row.ok());
  EXPECT_NE(short_row.status().message().find(":3: expected 2 cells"), std::string::npos);
  EXPECT_EQ(csv_escape("a,b"), "\"a,b\"");
}

TEST(ModelMetrics, AucAndAveragePrecisionMatchBruteForce) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> s;
    std::vector<float> y;
    for (int i = 0; i < 200; ++i) {
      s.push_back(std::round(std::uniform_real_distribution<double>(0, 1)(rng) * 20) / 20);  // ties
      y.push_back(rng() % 3 == 0 ? 1.0f : 0.0f);
    }
    double pairs = 0, wins = 0;
    for (size_t i = 0; i < s.size(); ++i)
      for (size_t j = 0; j < s.size(); ++j)
        if (y[i] == 1 && y[j] == 0) {
          pairs += 1;
          wins += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
        }
    EXPECT_NEAR(roc_auc(s, y), wins / pairs, 1e-12);
    // AP: sum over distinct thresholds of (recall gain) * precision.
    std::vector<double> thr(s);
    std::sort(thr.rbegin(), thr.rend());
    thr.erase(std::unique(thr.begin(), thr.end()), thr.end());
    double positives = 0;
    for (float l : y) positives += l;
    double ap = 0, prev_recall = 0;
    for (double t : thr) {
      double tp = 0, n = 0;
      for (size_t i = 0; i < s.size(); ++i)
        if (s[i] >= t) n += 1, tp += y[i];
      ap += (tp / positives - prev_recall) * (tp / n);
      prev_recall = tp / positives;
    }
    EXPECT_NEAR(average_precision(s, y), ap, 1e-12);
  }
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
}

// The validation set is the latest rows by time, whatever the file order.
TEST(ModelTrain, TimeOrderedSplitMetaAndEarlyStopping) {
  const std::string data = temp_path("train.csv");
  std::mt19937 rng(6);
  std::normal_distribution<float> g(0, 1);
  std::string csv = "id,ts,x1,x2,x3,label\n";
  std::vector<int> times(1000);
  for (int i = 0; i < 1000; ++i) times[i] = i;
  std::shuffle(times.begin(), times.end(), rng);
  for (int i = 0; i < 1000; ++i) {
    const float x1 = g(rng), x2 = g(rng), x3 = g(rng);
    // The relation drifts with time, so a split by file order scores differently.
    const float drift = times[i] > 700 ? -1.0f : 1.0f;
    const int label = drift * x1 + 0.5f * x2 + 0.3f * g(rng) > 0.2f ? 1 : 0;
    csv += fmt::format("r{},{},{},{},{},{}\n", i, 1700000000000LL + times[i] * 1000LL, x1,
                       i % 10 == 0 ? std::string() : fmt::format("{}", x2), x3, label);
  }
  write(data, csv);
  TrainOptions o;
  o.data_path = data;
  o.label = "label";
  o.out_dir = temp_path("model_out");
  o.trees = 60;
  o.depth = 3;
  o.valid_fraction = 0.25;
  o.early_stopping = 5;
  o.threads = 1;
  int rounds_seen = 0;
  auto report = train_gbdt(o, [&](int round, int, double) { rounds_seen = round; });
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->train_rows, 750u);
  EXPECT_EQ(report->valid_rows, 250u);
  EXPECT_EQ(rounds_seen, report->trees_trained);
  EXPECT_LE(report->trees_kept, report->trees_trained);

  auto meta_text = read_file_to_string(report->meta_path);
  ASSERT_TRUE(meta_text.ok());
  auto meta = nlohmann::json::parse(*meta_text);
  EXPECT_EQ(meta["features"], (std::vector<std::string>{"x1", "x2", "x3"}));
  EXPECT_EQ(meta["time_column"], "ts");
  EXPECT_EQ(meta["training_data"]["rows"], 1000);
  EXPECT_EQ(meta["training_data"]["xxh3"],
            fmt::format("{:016x}", hash_bytes(csv.data(), csv.size())));
  EXPECT_EQ(meta["hyperparameters"]["trees_kept"], report->trees_kept);
  EXPECT_TRUE(meta.contains("created_at"));

  auto m = load_model_snapshot(report->model_path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->features, (std::vector<std::string>{"x1", "x2", "x3"}));
  // Recompute validation AUC on the 250 latest rows by time.
  auto table = read_csv(data);
  std::vector<double> scores;
  std::vector<float> labels;
  for (const auto& row : table->rows) {
    if (std::stoll(row[1]) < 1700000000000LL + 750 * 1000LL) continue;
    const float x[3] = {std::stof(row[2]), row[3].empty() ? NAN : std::stof(row[3]),
                        std::stof(row[4])};
    scores.push_back((*m)->model->score(x));
    labels.push_back(std::stof(row[5]));
  }
  ASSERT_EQ(scores.size(), 250u);
  EXPECT_DOUBLE_EQ(meta["validation"]["auc"].get<double>(), roc_auc(scores, labels));
  EXPECT_DOUBLE_EQ(meta["validation"]["average_precision"].get<double>(),
                   average_precision(scores, labels));
  EXPECT_DOUBLE_EQ(report->valid_auc, roc_auc(scores, labels));
}

TEST(ModelTrain, BadOptionsAreRejected) {
  TrainOptions o;
  o.data_path = temp_path("nonexistent.csv");
  o.label = "y";
  o.out_dir = temp_path("never");
  EXPECT_FALSE(train_gbdt(o).ok());
  const std::string data = temp_path("small.csv");
  write(data, "a,b\n1,0\n2,1\n");
  o.data_path = data;
  auto r = train_gbdt(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no column \"y\""), std::string::npos);
  o.valid_fraction = 1.5;
  EXPECT_NE(train_gbdt(o).status().message().find("--valid-fraction"), std::string::npos);
}

}  // namespace
}  // namespace millrace::model
