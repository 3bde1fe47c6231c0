#include "millrace/eval/scored_run.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/model/metrics.h"
#include "millrace/sim/fraud_simulator.h"
#include "tests/support/temp_dir.h"

namespace millrace::eval {
namespace {

constexpr TimeMs kDay = 86'400'000;

// Scores every simulated transaction: frauds higher on average, with overlap.
void write_scores(const std::string& transactions, const std::string& labels,
                  const std::string& out_path, std::vector<double>* scores,
                  std::vector<float>* truth) {
  std::map<std::string, bool> fraud;
  std::ifstream lin(labels);
  std::string line;
  while (std::getline(lin, line)) {
    auto j = nlohmann::json::parse(line);
    fraud[j["id"]] = j["is_fraud"];
  }
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  std::ifstream in(transactions);
  std::ofstream out(out_path);
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const bool f = fraud.at(j["id"]);
    const double s = f ? 0.3 + 0.7 * u(rng) : 0.7 * u(rng);
    out << fmt::format(R"({{"id":"{}","ts":{},"card_id":"{}","score":{}}})",
                       j["id"].get<std::string>(), j["ts"].get<int64_t>(),
                       j["card_id"].get<std::string>(), s)
        << "\n";
    scores->push_back(s);
    truth->push_back(f ? 1.0f : 0.0f);
  }
  out << R"({"id":"nobody","ts":1,"card_id":"c0","score":0.5})"
      << "\n";
}

TEST(ScoredRun, JoinsScoresToDelayedLabelsAndMeasuresThem) {
  testing::TempDir dir;
  sim::FraudSimOptions so;
  so.customers = 400;
  so.terminals = 800;
  so.days = 20;
  so.drift_day = 10;
  so.seed = 9;
  ASSERT_TRUE(sim::write_fraud_dataset(so, dir.file("data"), sim::SimFormat::Jsonl).ok());
  std::vector<double> scores;
  std::vector<float> truth;
  write_scores(dir.file("data/transactions.jsonl"), dir.file("data/labels.jsonl"),
               dir.file("scores.jsonl"), &scores, &truth);

  ScoredRunOptions o;
  o.scores = dir.file("scores.jsonl");
  o.labels = dir.file("data/labels.jsonl");
  o.quality.k = 10;
  o.quality.drift_start = so.start + so.drift_day * kDay;
  auto r = evaluate_scored_run(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->unlabelled, 1u);
  EXPECT_EQ(r->quality.overall.n, scores.size());
  EXPECT_NEAR(r->quality.overall.auc, model::roc_auc(scores, truth), 1e-12);
  EXPECT_NEAR(r->quality.overall.ap, model::average_precision(scores, truth), 1e-12);
  EXPECT_EQ(r->quality.overall.days.size(), 20u);
  ASSERT_TRUE(r->quality.has_drift);
  EXPECT_EQ(r->quality.before_drift.days.size(), 10u);
  EXPECT_EQ(r->quality.before_drift.n + r->quality.after_drift.n, scores.size());
  std::map<std::string, size_t> by_name;
  for (const auto& s : r->scenarios) by_name[s.name] = s.n;
  EXPECT_TRUE(by_name.count("card_testing"));
  EXPECT_TRUE(by_name.count("session_hijack"));
  EXPECT_FALSE(by_name.count("none"));
  size_t frauds = 0;
  for (const auto& [name, n] : by_name) frauds += n;
  EXPECT_EQ(frauds, r->quality.overall.n_fraud);

  const auto j = nlohmann::json::parse(scored_run_json(*r, 10, true));
  EXPECT_EQ(j["n"].get<size_t>(), scores.size());
  EXPECT_EQ(j["unlabelled"].get<size_t>(), 1u);
  EXPECT_TRUE(j["after_drift"].contains("cp@10"));
  EXPECT_EQ(j["days"].size(), 20u);
  EXPECT_TRUE(j["scenarios"].contains("impossible_travel"));

  const std::string html = scored_run_html(*r, 10, "test").html();
  EXPECT_NE(html.find("<title>session_hijack: "), std::string::npos);
  EXPECT_NE(html.find("from the drift"), std::string::npos);
  EXPECT_NE(html.find("Score distributions"), std::string::npos);

  // The command prints the same figures and writes the pages.
  const std::string cmd = fmt::format(
      "{} fraud evaluate --scores {} --labels {} --k 10 --json {} --html {} > {}", MILLRACE_BINARY,
      o.scores, o.labels, dir.file("r.json"), dir.file("r.html"), dir.file("out.json"));
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream printed(dir.file("out.json"));
  std::string first;
  std::getline(printed, first);
  EXPECT_NEAR(nlohmann::json::parse(first)["auc"].get<double>(), r->quality.overall.auc, 1e-4);
  EXPECT_TRUE(std::ifstream(dir.file("r.html")).good());
  EXPECT_TRUE(std::ifstream(dir.file("r.json")).good());
}

TEST(ScoredRun, ABadLineNamesTheFileAndTheLine) {
  testing::TempDir dir;
  std::ofstream(dir.file("labels.jsonl"))
      << R"({"id":"t0","card_id":"c1","is_fraud":false,"reported_at":5})"
      << "\n"
      << R"({"id":"t1","card_id":"c1","is_fraud":"yes","reported_at":6})"
      << "\n";
  std::ofstream(dir.file("scores.jsonl")) << R"({"id":"t0","ts":1,"card_id":"c1","score":0.5})"
                                          << "\n";
  ScoredRunOptions o;
  o.scores = dir.file("scores.jsonl");
  o.labels = dir.file("labels.jsonl");
  auto r = evaluate_scored_run(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("labels.jsonl:2: field 'is_fraud'"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace millrace::eval
