// The fraud-detection demo (`millrace fraud demo`, `make demo`): the whole
// flow of docs/fraud.md on simulated data, through the real runtime.
//
//   1. simulate: transactions, delayed labels, card profiles
//      (sim/fraud_simulator.h), with a new scenario from the drift day on
//   2. the nightly batch job over them (nightly.h): per-card 30-day history,
//      known devices, each row usable from its as_of time
//   3. backfill: the spec (apps/fraud/fraud.yaml) replays transactions and
//      labels through the pipeline; the training days' feature vectors, as
//      they were served, with their labels, become the training table
//   4. train: gradient-boosted trees through libxgboost into a model registry
//      (model/trainer.h), promoted
//   5. stream: the whole period again through the pipeline with the model
//      inline (one worker), labels arriving as they are reported; every
//      transaction is scored and decided; the days after the training days
//      and the label delay are the test days
//   6. a second, paced replay at a share of the first run's throughput, for
//      the latency of each stage at that load
//   7. evaluation as the handbook defines it, per day, per scenario, before
//      and from the drift; decisions by action against the truth
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/eval/scored_run.h"
#include "millrace/report/html_report.h"
#include "millrace/sim/fraud_simulator.h"
#include "millrace/stream/stage_latency.h"

namespace millrace::fraud {

struct DemoOptions {
  std::string spec = "apps/fraud/fraud.yaml";
  std::string out_dir = "out/fraud";
  sim::FraudSimOptions sim;  // days, customers, terminals, seed, drift_day
  int train_start_day = 21;  // days before it fill the 30-day windows
  int train_days = 10;
  int delay_days = 7;  // labels of the training days are all known after it; testing starts then
  int trees = 300, depth = 6;
  double eta = 0.1;
  int train_threads = 1;  // XGBoost threads per model (the two models train at once)
  // The paced replay's rate, as a share of the peak: the records one core
  // handles per CPU-second in the first run (0: no replay).
  double load = 0.5;
  bool baseline = true;         // also train and score the handbook-style baseline
  double latency_seconds = 10;  // the paced replay reads this long (after the warm-up), at most
  int warmup_days = 7;          // the paced replay first reads these days at full speed, untimed
  size_t k = 100;               // card precision@k
};

struct StageFigures {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // us
};

struct DemoReport {
  DemoOptions options;
  sim::SimSummary data;
  TimeMs train_from = 0, train_to = 0, test_from = 0, test_to = 0, drift_from = 0;
  // Training.
  size_t features = 0;
  size_t train_rows = 0, train_frauds = 0;
  double valid_auc = 0, valid_ap = 0;
  int trees = 0;
  // The scored run (peak) and the paced one.
  uint64_t records = 0, transactions = 0;
  double run_seconds = 0;
  double records_per_s = 0, transactions_per_s = 0;
  // CPU time of the thread that reads, computes the features, scores and
  // decides (the source with its one worker inline; the sink writes apart):
  // the throughput of one core whatever else the machine runs.
  double thread_cpu_seconds = 0;
  double records_per_cpu_s = 0, transactions_per_cpu_s = 0;
  // The same stream again through the pipeline alone: no latency timers and
  // no evaluation work per transaction (the scored run above also joins
  // each one to its label and writes scored.jsonl on the same thread).
  double alone_cpu_seconds = 0;
  double alone_transactions_per_cpu_s = 0;
  StageLatency peak_latency;
  double paced_rate = 0;  // records/s
  double paced_seconds = 0;
  uint64_t paced_records = 0;         // after the warm-up
  uint64_t paced_warmup_records = 0;  // read at full speed first, untimed
  uint64_t paced_behind = 0;          // records already due when the source got to them
  double paced_cpu_share = 0;         // CPU time of the pipeline thread over the replay's wall time
  double load_average = -1;           // of the machine (1 min) after the runs, when known
  std::shared_ptr<StageLatency> paced_latency;  // null without a paced replay
  // Quality on the test days.
  eval::ScoredRunReport quality;
  double card_precision_ceiling = 0;  // mean over days of min(k, fraud cards) / k
  // A baseline in the same run: the same trees trained on the same rows with
  // only the handbook's kind of features (baseline_features), scored on the
  // same test transactions.
  std::vector<std::string> baseline_features;
  eval::QualityReport baseline;
  // Decisions on the test days: [action][genuine, fraud]; by segment or rule.
  std::array<std::array<uint64_t, 2>, 3> decisions{};
  std::array<std::array<double, 2>, 3> decided_amount{};
  std::map<std::string, std::array<uint64_t, 4>> by_reason;  // approve, challenge, decline, frauds
  // Timings of the steps (s).
  std::vector<std::pair<std::string, double>> steps;
  double seconds = 0;
  std::string dir;
};

// Runs the flow into options.out_dir (data/, models/, scored.jsonl,
// report.json, report.html). `progress` is told each step as it starts.
Result<DemoReport> run_demo(const DemoOptions& options,
                            const std::function<void(const std::string&)>& progress = {});

// The printed summary.
std::string demo_text(const DemoReport& report);
std::string demo_json(const DemoReport& report);
report::HtmlReport demo_html(const DemoReport& report);

}  // namespace millrace::fraud
