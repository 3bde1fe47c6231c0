// Inline scoring in the pipeline: features -> model -> decision, the version
// that scored each event, a live swap on promote, the shadow model's output.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "millrace/model/registry.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/scoring.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;
using nlohmann::json;

void write_model(const std::string& dir, double w_count, double w_amount, double bias) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/model.json") << json{
      {"kind", "logistic_regression"},
      {"features", {"c_count_1h", "amount"}},
      {"weights", {w_count, w_amount}},
      {"bias", bias}}.dump();
}

double logistic(double z) {
  return 1 / (1 + std::exp(-z));
}

std::string spec_text(const std::string& registry, const std::string& extra = "") {
  return R"(
source:
  time: ts
  schema: {id: string, card: string, amount: double, is_fraud: bool, ts: int64}
features:
  - {name: c_count_1h, key: card, agg: count, window: 1h}
model:
  registry: )" +
         registry + R"(
  name: fraud
  label: is_fraud
)" + extra +
         R"(
decisions:
  thresholds: {challenge: 0.3, decline: 0.7}
  rules:
    - {name: huge, when: {field: amount, op: ">", value: 5000}, action: decline}
)";
}

// Events whose amounts spread scores over all three bands; optionally calls
// `at_half` once half of them are out (and waits as long as it says).
class Events : public EventGenerator {
 public:
  Events(const Schema& schema, int n, std::function<void()> at_half = nullptr)
      : schema_(schema), n_(n), at_half_(std::move(at_half)) {}
  bool next(Event* e) override {
    if (i_ == n_) return false;
    if (i_ == n_ / 2 && at_half_) at_half_();
    e->reset(schema_.size());
    e->time = 1'000'000 + i_ * 1000;
    e->set_string(0, "e" + std::to_string(i_));
    e->set_string(1, "c" + std::to_string(i_ % 7));
    e->values[2].kind = FieldValue::Kind::Double;
    e->values[2].d = (i_ % 50) * 2.0 + (i_ % 97 == 0 ? 6000 : 0);
    e->values[3].kind = FieldValue::Kind::Bool;
    e->values[3].b = i_ % 5 == 0;
    e->values[4].kind = FieldValue::Kind::Int;
    e->values[4].i = e->time;
    ++i_;
    return true;
  }

 private:
  const Schema& schema_;
  int n_, i_ = 0;
  std::function<void()> at_half_;
};

// A worker scores the events of its batch together (Scorer::score_batch):
// for a binary and a multi-class tree model, every event of batches of 1 to
// 40 gets the score (bit for bit), decision and model that score() gives it
// alone; the multi-class model's score is its first output, as Model::score's.
TEST(Scoring, ABatchIsScoredAsEachEventAlone) {
  const std::string models = std::string(MILLRACE_SOURCE_DIR) + "/tests/data/models/";
  for (const char* file : {"lgb_binary_nan.txt", "lgb_multiclass.txt"}) {
    SCOPED_TRACE(file);
    auto spec = parse_spec(
        "source:\n  time: ts\n"
        "  schema: {id: string, f0: double?, f1: double?, f2: double?, f3: double?, f4: double?,"
        " f5: double?, f6: double?, f7: double?, ts: int64}\n"
        "features:\n  - {name: n, key: id, agg: count, window: 1m}\n"
        "model: {path: " +
            models + file +
            "}\n"
            "decisions:\n  thresholds: {challenge: 0.3, decline: 0.7}\n"
            "  rules:\n    - {name: big, when: {field: f0, op: \">\", value: 1.5}, action: "
            "decline}\n",
        "s.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    auto scorer = Scorer::Create(spec.value());
    ASSERT_TRUE(scorer.ok()) << scorer.status().message();
    const Schema& schema = spec->source.schema;
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> u(-2.5, 2.5);
    const size_t n = 40;
    std::vector<Event> events(n);
    std::vector<std::vector<FeatureValue>> features(n);
    for (size_t i = 0; i < n; ++i) {
      events[i].reset(schema.size());
      events[i].set_string(0, "e" + std::to_string(i));
      for (int f = 1; f <= 8; ++f) {
        if (rng() % 7 == 0) continue;  // null: the model's missing value
        events[i].values[f].kind = FieldValue::Kind::Double;
        events[i].values[f].d = u(rng);
      }
      events[i].values[9].kind = FieldValue::Kind::Int;
      events[i].values[9].i = static_cast<int64_t>(i);
      features[i].resize(spec->feature_slots());
      features[i][0].set_int(static_cast<int64_t>(i % 3));
    }
    std::vector<ScoreResult> alone(n);
    for (size_t i = 0; i < n; ++i) (*scorer)->score(events[i], features[i].data(), &alone[i]);
    for (size_t batch : {size_t{1}, size_t{2}, size_t{7}, size_t{40}}) {
      std::vector<ScoreResult> together(n);
      for (size_t b = 0; b < n; b += batch) {
        std::vector<Scorer::BatchItem> items;
        for (size_t i = b; i < std::min(n, b + batch); ++i)
          items.push_back({&events[i], features[i].data(), &together[i]});
        (*scorer)->score_batch(items.data(), items.size());
      }
      for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(std::memcmp(&together[i].score, &alone[i].score, sizeof(double)), 0)
            << "batch " << batch << " event " << i << ": " << together[i].score << " vs "
            << alone[i].score;
        EXPECT_EQ(together[i].decision.action, alone[i].decision.action) << i;
        EXPECT_EQ(together[i].decision.reason, alone[i].decision.reason) << i;
        EXPECT_EQ(together[i].model, alone[i].model);
      }
    }
    // The scores fall in at least two actions (the comparison above is not of constants).
    std::set<decision::Action> actions;
    for (const ScoreResult& r : alone) actions.insert(r.decision.action);
    EXPECT_GE(actions.size(), 2u);
  }
}

// Scorers come and go on one thread (pipelines run one after the other, a
// model swapped for a version with other inputs): each reads its own model's
// inputs, even when its model takes the memory of one scored before. Two
// models with other inputs, alternated: each score is the model's own on the
// row its inputs make.
TEST(Scoring, EachModelReadsItsOwnInputs) {
  TempDir dir;
  const std::string models = std::string(MILLRACE_SOURCE_DIR) + "/tests/data/models/";
  std::ofstream(dir.file("logistic.json")) << json{
      {"kind", "logistic_regression"},
      {"features", {"f7", "f0"}},
      {"weights", {0.5, -0.25}},
      {"bias", 0.1}}.dump();
  const std::string schema =
      "source:\n  time: ts\n"
      "  schema: {id: string, f0: double, f1: double, f2: double, f3: double, f4: double,"
      " f5: double, f6: double, f7: double, ts: int64}\n";
  Event e;
  e.reset(10);
  e.set_string(0, "e");
  for (int f = 1; f <= 8; ++f) {
    e.values[f].kind = FieldValue::Kind::Double;
    e.values[f].d = 0.3 * f - 1.2;
  }
  e.values[9].kind = FieldValue::Kind::Int;
  for (int round = 0; round < 6; ++round) {
    const bool trees = round % 2 == 0;
    auto spec =
        parse_spec(schema + "model: {path: " +
                       (trees ? models + "lgb_binary_nan.txt" : dir.file("logistic.json")) + "}\n",
                   "s.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    auto scorer = Scorer::Create(spec.value());
    ASSERT_TRUE(scorer.ok()) << scorer.status().message();
    std::vector<FeatureValue> features(spec->feature_slots());
    ScoreResult r;
    (*scorer)->score(e, features.data(), &r);
    // The model's own row: f0..f7 for the trees, (f7, f0) for the logistic one.
    std::vector<float> row;
    if (trees) {
      for (int f = 0; f < 8; ++f) row.push_back(static_cast<float>(e.values[1 + f].d));
    } else {
      row = {static_cast<float>(e.values[8].d), static_cast<float>(e.values[1].d)};
    }
    EXPECT_EQ(r.score, r.model->model->score(row.data())) << "round " << round;
    if (!trees) {
      EXPECT_NEAR(r.score, logistic(0.1 + 0.5 * 1.2 - 0.25 * -0.9), 1e-6);  // f7 = 1.2, f0 = -0.9
    }
  }
}

TEST(Scoring, EveryEventIsScoredDecidedAndNamesItsModel) {
  TempDir dir;
  write_model(dir.file("models/fraud/1"), 0.05, 0.04, -3.0);
  write_model(dir.file("models/challenger/1"), 0.0, 0.05, -2.0);
  auto spec = parse_spec(spec_text(dir.file("models"), "  shadow: {name: challenger}\n"), "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  Events events(spec->source.schema, 3000);
  RunOptions opts;
  opts.generator = &events;
  opts.output = dir.file("out.jsonl");
  opts.shadow_output = dir.file("shadow.jsonl");
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  std::ifstream in(opts.output);
  std::string line;
  int n = 0, rule = 0;
  std::map<std::string, int> actions;
  while (std::getline(in, line)) {
    json r = json::parse(line);
    double want =
        logistic(-3.0 + 0.05 * r["c_count_1h"].get<double>() + 0.04 * r["amount"].get<double>());
    ASSERT_NEAR(r["score"].get<double>(), want, 1e-9) << line;
    EXPECT_EQ(r["model"], "fraud");
    EXPECT_EQ(r["model_version"], "1");
    std::string action = r["action"];
    ++actions[action];
    if (r["amount"].get<double>() > 5000) {
      EXPECT_EQ(action, "decline") << line;
      ++rule;
    } else if (want < 0.3) {
      EXPECT_EQ(action, "approve") << line;
    } else if (want < 0.7) {
      EXPECT_EQ(action, "challenge") << line;
    } else {
      EXPECT_EQ(action, "decline") << line;
    }
    ++n;
  }
  EXPECT_EQ(n, 3000);
  EXPECT_GT(rule, 0);
  EXPECT_GT(actions["approve"], 0);
  EXPECT_GT(actions["challenge"], 0);
  EXPECT_GT(actions["decline"], rule);
  EXPECT_EQ(stats->decisions[0] + stats->decisions[1] + stats->decisions[2], 3000u);
  EXPECT_NE(stats->champion_quality.find("n=3000"), std::string::npos) << stats->champion_quality;
  EXPECT_NE(stats->shadow_quality.find("n=3000"), std::string::npos) << stats->shadow_quality;
  // The shadow's scores go to their own output, one per event.
  std::ifstream sh(opts.shadow_output);
  int shadow = 0;
  while (std::getline(sh, line)) {
    json r = json::parse(line);
    EXPECT_EQ(r["model"], "challenger");
    ++shadow;
  }
  EXPECT_EQ(shadow, 3000);
}

TEST(Scoring, PromotingAVersionSwapsItInWhileRunning) {
  TempDir dir;
  write_model(dir.file("models/fraud/1"), 0.05, 0.04, -3.0);
  write_model(dir.file("models/fraud/2"), 0.01, 0.02, -1.0);
  model::ModelRegistry registry(dir.file("models"));
  ASSERT_TRUE(registry.promote("fraud", "1").ok());
  auto spec = parse_spec(spec_text(dir.file("models")), "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  Events events(spec->source.schema, 4000, [&] {
    ASSERT_TRUE(registry.promote("fraud", "2").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the watcher polls every 200 ms
  });
  RunOptions opts;
  opts.generator = &events;
  opts.output = dir.file("out.jsonl");
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_GE(stats->model_reloads, 1u);
  std::ifstream in(opts.output);
  std::string line;
  int n = 0;
  std::map<std::string, int> versions;
  std::string last_version;
  while (std::getline(in, line)) {
    json r = json::parse(line);
    std::string v = r["model_version"];
    double x = r["c_count_1h"].get<double>(), a = r["amount"].get<double>();
    double want =
        v == "1" ? logistic(-3.0 + 0.05 * x + 0.04 * a) : logistic(-1.0 + 0.01 * x + 0.02 * a);
    ASSERT_TRUE(v == "1" || v == "2") << line;
    ASSERT_NEAR(r["score"].get<double>(), want, 1e-9) << line;  // scored by the version it names
    if (!last_version.empty()) {
      EXPECT_GE(v, last_version) << "no event after the swap uses the old model";
    }
    last_version = v;
    ++versions[v];
    ++n;
  }
  EXPECT_EQ(n, 4000);  // none lost
  EXPECT_GT(versions["1"], 0);
  EXPECT_GE(versions["2"], 2000);  // everything after the swap
}

// The number of decisions the /v1/metrics text reports, over all actions.
long decided(const std::string& metrics) {
  long total = 0;
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("millrace_decisions_total{", 0) == 0) {
      total += std::stol(line.substr(line.rfind(' ') + 1));
    }
  }
  return total;
}

TEST(Scoring, HttpApiServesHealthMetricsAndReloadsTheModel) {
  TempDir dir;
  write_model(dir.file("models/fraud/1"), 0.05, 0.04, -3.0);
  write_model(dir.file("models/fraud/2"), 0.01, 0.02, -1.0);
  model::ModelRegistry registry(dir.file("models"));
  ASSERT_TRUE(registry.promote("fraud", "1").ok());
  auto spec = parse_spec(spec_text(dir.file("models")), "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  std::atomic<int> port{0};
  std::string health, metrics, reload;
  int reload_status = 0;
  // Halfway through the stream, from the source thread: ask the API.
  Events events(spec->source.schema, 2000, [&] {
    httplib::Client client("127.0.0.1", port.load());
    auto h = client.Get("/v1/health");
    // Events queued behind the source are scored later; wait until 500 are
    // decided so that version 1 has provably scored some.
    for (int i = 0; i < 500; ++i) {
      auto seen = client.Get("/v1/metrics");
      if (seen && decided(seen->body) >= 500) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto m = client.Get("/v1/metrics");
    ASSERT_TRUE(registry.promote("fraud", "2").ok());
    auto r = client.Post("/v1/models/reload", "", "application/json");
    ASSERT_TRUE(h && m && r);
    health = h->body;
    metrics = m->body;
    reload = r->body;
    reload_status = r->status;
  });
  RunOptions opts;
  opts.generator = &events;
  opts.output = dir.file("out.jsonl");
  opts.serve = "127.0.0.1:0";
  opts.on_serving = [&](int p) { port = p; };
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_GT(port.load(), 0);
  EXPECT_NE(health.find("\"status\": \"ok\""), std::string::npos) << health;
  EXPECT_NE(metrics.find("# TYPE millrace_records_total counter"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("millrace_decisions_total{action=\"approve\"}"), std::string::npos);
  EXPECT_EQ(reload_status, 200) << reload;
  EXPECT_NE(reload.find("\"model_version\": \"2\""), std::string::npos) << reload;
  // Every event read after the reload was scored by version 2 at once (no
  // polling delay); events still in flight then may have been scored by either.
  std::ifstream in(opts.output);
  std::string line;
  int n = 0, v1 = 0;
  while (std::getline(in, line)) {
    json r = json::parse(line);
    if (n >= 1000) {
      EXPECT_EQ(r["model_version"], "2") << line;
    }
    v1 += r["model_version"] == "1";
    ++n;
  }
  EXPECT_EQ(n, 2000);
  EXPECT_GE(v1, 500);
}

TEST(Scoring, AModelInputThatIsNotAFeatureIsAnError) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("models/fraud/1"));
  std::ofstream(dir.file("models/fraud/1/model.json"))
      << R"({"features": ["c_count_1h", "velocity"], "weights": [1, 1], "bias": 0})";
  auto spec = parse_spec(spec_text(dir.file("models")), "s.yaml");
  ASSERT_TRUE(spec.ok());
  Events events(spec->source.schema, 10);
  RunOptions opts;
  opts.generator = &events;
  opts.output = "";
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.status().message().find("velocity"), std::string::npos)
      << stats.status().message();
}

}  // namespace
}  // namespace millrace
