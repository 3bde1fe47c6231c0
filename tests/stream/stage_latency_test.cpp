// Stage timing inside the pipeline: every scored event is measured once per
// stage, each event's total covers its stages, scores reach on_scored in input
// order without writing events, and a paced input is not read faster than
// its rate. Also the latency histogram's quantiles against a sorted sample.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "millrace/core/latency_histogram.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/scoring.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

TEST(LatencyHistogram, QuantilesWithinABucketOfTheSortedSample) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(9.0, 1.5);  // ns: ~8 us median, long tail
  std::vector<uint64_t> values;
  LatencyHistogram h, a, b;
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng)) + (i % 10 == 0 ? i % 31 : 0);
    values.push_back(v);
    h.record(v);
    (i % 2 ? a : b).record(v);
  }
  a.merge(b);
  std::sort(values.begin(), values.end());
  for (double q : {0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    size_t rank = std::max<size_t>(1, static_cast<size_t>(q * values.size() + 0.5));
    const double want = static_cast<double>(values[rank - 1]);
    EXPECT_NEAR(h.quantile(q), want, want / 32 + 1) << "q=" << q;
    EXPECT_EQ(a.quantile(q), h.quantile(q)) << "merged, q=" << q;
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), values.back());
  // Buckets tile the values: every value falls in [low, high) of its bucket.
  for (uint64_t v : {0ull, 1ull, 31ull, 32ull, 33ull, 63ull, 64ull, 1000ull, 123456789ull,
                     (1ull << 40) + 12345, ~0ull}) {
    const int i = LatencyHistogram::bucket_of(v);
    EXPECT_LE(LatencyHistogram::bucket_low(i), v);
    if (v != ~0ull) {
      EXPECT_GT(LatencyHistogram::bucket_high(i), v);
    }
  }
}

class Events : public EventGenerator {
 public:
  // may_wait false: like a file, the next record is always there to read, so
  // the runtime may batch (only its pacing, if any, makes records wait).
  Events(const Schema& schema, int n, bool may_wait = true)
      : schema_(schema), n_(n), may_wait_(may_wait) {}
  bool may_wait() const override { return may_wait_; }
  bool next(Event* e) override {
    if (i_ == n_) return false;
    e->reset(schema_.size());
    e->time = 1'000'000 + i_ * 100;
    e->set_string(0, "e" + std::to_string(i_));
    e->set_string(1, "c" + std::to_string(i_ % 13));
    e->values[2].kind = FieldValue::Kind::Double;
    e->values[2].d = (i_ % 50) * 2.0;
    e->values[3].kind = FieldValue::Kind::Int;
    e->values[3].i = e->time;
    ++i_;
    return true;
  }

 private:
  const Schema& schema_;
  int n_, i_ = 0;
  bool may_wait_;
};

Result<PipelineSpec> scored_spec(const std::string& model_dir) {
  std::filesystem::create_directories(model_dir);
  std::ofstream(model_dir + "/model.json")
      << R"({"kind": "logistic_regression", "features": ["c_count_1h", "amount"],
             "weights": [0.05, 0.04], "bias": -3.0})";
  return parse_spec(R"(
source:
  time: ts
  schema: {id: string, card: string, amount: double, ts: int64}
features:
  - {name: c_count_1h, key: card, agg: count, window: 1h}
  - {name: c_sum_1h, key: card, agg: sum, field: amount, window: 1h}
  - {name: ratio, expr: "amount / c_sum_1h"}
model:
  path: )" + model_dir + R"(/model.json
)",
                    "s.yaml");
}

TEST(StageLatency, EveryScoredEventIsMeasuredAndItsTotalCoversItsStages) {
  TempDir dir;
  auto spec = scored_spec(dir.file("m"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  for (int workers : {1, 2}) {
    Events events(spec->source.schema, 5000);
    RunOptions opts;
    opts.generator = &events;
    opts.workers = workers;
    opts.write_events = false;
    opts.stage_latency = true;
    std::vector<double> scores;
    std::vector<std::string> ids;
    opts.on_scored = [&](const Event& e, const FeatureValue* f, const ScoreResult& r) {
      ids.emplace_back(e.str(0));
      const double want =
          1 / (1 + std::exp(-(-3.0 + 0.05 * f[0].as_double() + 0.04 * e.values[2].d)));
      EXPECT_NEAR(r.score, want, 1e-9);
      scores.push_back(r.score);
    };
    auto stats = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    ASSERT_EQ(ids.size(), 5000u);
    for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], "e" + std::to_string(i));
    EXPECT_EQ(stats->outputs, 0u);
    EXPECT_EQ(stats->decisions[0] + stats->decisions[1] + stats->decisions[2], 5000u);
    ASSERT_NE(stats->latency, nullptr);
    const StageLatency& l = *stats->latency;
    for (int s = 0; s < StageLatency::kStages; ++s)
      EXPECT_EQ(l.stages[s].count(), 5000u) << StageLatency::name(s);
    // Per event, total >= each stage that lies inside it, so every quantile is too.
    for (int s : {StageLatency::kIngest, StageLatency::kInference, StageLatency::kDecision})
      for (double q : {0.5, 0.99, 1.0})
        EXPECT_GE(l.stages[StageLatency::kTotal].quantile(q), l.stages[s].quantile(q))
            << StageLatency::name(s) << " q=" << q << " workers=" << workers;
    EXPECT_GT(l.stages[StageLatency::kTotal].quantile(0.5), 0);
    EXPECT_NE(l.table().find("total (event -> decision)"), std::string::npos);
  }
}

TEST(StageLatency, APacedInputIsNotReadFasterThanItsRate) {
  TempDir dir;
  auto spec = scored_spec(dir.file("m"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  Events events(spec->source.schema, 2000);
  RunOptions opts;
  opts.generator = &events;
  opts.workers = 1;
  opts.write_events = false;
  opts.stage_latency = true;
  opts.max_rate = 20000;  // 2000 records: at least 0.1 s
  auto t0 = std::chrono::steady_clock::now();
  auto stats = run_pipeline(spec.value(), opts);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_GE(secs, 1999 / 20000.0);
  EXPECT_EQ(stats->latency->stages[StageLatency::kTotal].count(), 2000u);
}

// A warm-up: the first records go at full speed and are not timed; the
// schedule starts after them, so the paced part alone takes its time and is
// the only part measured. Every record is still scored, in order.
TEST(StageLatency, WarmUpRecordsAreReadAtFullSpeedAndNotTimed) {
  TempDir dir;
  auto spec = scored_spec(dir.file("m"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  for (int workers : {1, 2}) {
    Events events(spec->source.schema, 3000);
    RunOptions opts;
    opts.generator = &events;
    opts.workers = workers;
    opts.write_events = false;
    opts.stage_latency = true;
    opts.max_rate = 20000;       // the 1000 paced records: at least 0.05 s
    opts.warmup_records = 2000;  // at 20000/s these would take 0.1 s more
    std::vector<std::string> ids;
    opts.on_scored = [&](const Event& e, const FeatureValue*, const ScoreResult&) {
      ids.emplace_back(e.str(0));
    };
    auto t0 = std::chrono::steady_clock::now();
    auto stats = run_pipeline(spec.value(), opts);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    ASSERT_EQ(ids.size(), 3000u);
    for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], "e" + std::to_string(i));
    EXPECT_GE(secs, 999 / 20000.0) << workers << " workers";
    ASSERT_NE(stats->latency, nullptr);
    for (int s = 0; s < StageLatency::kStages; ++s)
      EXPECT_EQ(stats->latency->stages[s].count(), 1000u)
          << StageLatency::name(s) << ", " << workers << " workers";
    EXPECT_LE(stats->behind_schedule, 1000u);
  }
  // Without pacing, the warm-up still leaves its records untimed.
  Events events(spec->source.schema, 500);
  RunOptions opts;
  opts.generator = &events;
  opts.workers = 1;
  opts.write_events = false;
  opts.stage_latency = true;
  opts.warmup_records = 200;
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->latency->stages[StageLatency::kTotal].count(), 300u);
}

// At a light paced load a record is handed to its worker as soon as it is read,
// not kept until a batch of 32 fills or a timer fires: the records come 150 us
// apart (a gap shorter than the pacing's sleep threshold), and whenever the
// source is ahead of its schedule (the next record not due yet) what it read
// goes on. On a busy machine the source may fall behind and then batch: those
// records are counted apart. Read at full speed, the same records go in full
// batches.
TEST(StageLatency, APacedRecordIsHandedOnBeforeTheNextIsDue) {
  TempDir dir;
  auto spec = scored_spec(dir.file("m"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  constexpr int kRecords = 640;
  for (int workers : {1, 2}) {
    Events paced_events(spec->source.schema, kRecords, /*may_wait=*/false);
    RunOptions opts;
    opts.generator = &paced_events;
    opts.workers = workers;
    opts.write_events = false;
    opts.max_rate = 1e6 / 150;
    auto paced = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(paced.ok()) << paced.status().message();
    ASSERT_EQ(paced->accepted, static_cast<uint64_t>(kRecords));
    // Every record but the last is followed either by a handoff (the source
    // was ahead) or by a record already due (behind: batching is right).
    EXPECT_GE(paced->handoffs + paced->behind_schedule, kRecords - 1u)
        << workers << " workers: " << paced->handoffs << " handoffs, " << paced->behind_schedule
        << " records read behind schedule";

    Events fast_events(spec->source.schema, kRecords, /*may_wait=*/false);
    opts.generator = &fast_events;
    opts.max_rate = 0;
    auto fast = run_pipeline(spec.value(), opts);
    ASSERT_TRUE(fast.ok()) << fast.status().message();
    EXPECT_LE(fast->handoffs, kRecords / 32u + 1) << workers << " workers";
  }
}

}  // namespace
}  // namespace millrace
