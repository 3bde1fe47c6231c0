// Quality of a scored run against delayed labels: joins scored transactions
// (JSONL, e.g. the output of `millrace run` with a model) to a label stream
// (the simulator's labels.jsonl) by id, and measures them as the handbook
// does (fraud_quality.h). A card counts as known compromised from its first
// fraud's `reported_at`, so card precision@k only ranks cards nobody has
// reported yet.
//
// Scores: one JSON object a line with the id, time, card and score fields
// (names configurable); the time is epoch ms or RFC 3339. Labels: one JSON
// object a line with id, card_id, is_fraud, reported_at and optionally
// scenario. A bad line is an error naming the file and the line.
#pragma once

#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/eval/fraud_quality.h"
#include "millrace/report/html_report.h"

namespace millrace::eval {

struct ScoredRunOptions {
  std::string scores, labels;
  std::string id_field = "id", time_field = "ts", card_field = "card_id";
  std::string score_field = "score";
  QualityOptions quality;
};

struct ScenarioQuality {
  std::string name;
  size_t n = 0;
  double auc = 0;  // its frauds against every genuine transaction
};

struct ScoredRunReport {
  QualityReport quality;
  std::vector<ScenarioQuality> scenarios;  // by name
  size_t unlabelled = 0;                   // scored transactions without a label (left out)
  std::vector<double> genuine_scores, fraud_scores;
};

Result<ScoredRunReport> evaluate_scored_run(const ScoredRunOptions& options);

// The same from scored transactions in memory: scenario_of[i] indexes
// scenario_names for txs[i] (frauds only; genuine ones are ignored there).
ScoredRunReport evaluate_scores(const std::vector<ScoredTransaction>& txs,
                                const std::vector<uint16_t>& scenario_of,
                                const std::vector<std::string>& scenario_names,
                                const KnownCompromised& known, const QualityOptions& options);

// {"n":..,"n_fraud":..,"auc":..,"ap":..,"cp@k":..,"unlabelled":..,"scenarios":{..}
//  [,"before_drift":{..},"after_drift":{..}][,"days":[..]]}
std::string scored_run_json(const ScoredRunReport& report, size_t k, bool with_days);

// A page with the summary, per-scenario quality, per-day AUC and card
// precision, and the score distributions.
report::HtmlReport scored_run_html(const ScoredRunReport& report, size_t k,
                                   const std::string& title);

}  // namespace millrace::eval
