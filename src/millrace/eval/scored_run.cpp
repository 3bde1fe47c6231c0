#include "millrace/eval/scored_run.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "millrace/core/event_parser.h"
#include "millrace/core/hash.h"
#include "millrace/model/metrics.h"

namespace millrace::eval {
namespace {

// Calls fn(event, line number) for each line of a JSONL file parsed against
// `schema`; the first bad line is an error naming the file and the line.
template <typename Fn>
Status for_each_event(const std::string& path, const Schema& schema, int time_field, Fn&& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": cannot open");
  EventParser parser(schema, time_field);
  std::string line, error;
  Event ev;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    const size_t len = line.size();
    line.resize(len + simdjson::SIMDJSON_PADDING);
    if (!parser.parse(line.data(), len, line.size(), &ev, &error))
      return Status::Error(fmt::format("{}:{}: {}", path, lineno, error));
    fn(ev);
  }
  if (in.bad()) return Status::Error(path + ": read failed");
  return Status::Ok();
}

std::string num(double v) {
  return std::isnan(v) ? "null" : fmt::format("{:.4f}", v);
}

}  // namespace

Result<ScoredRunReport> evaluate_scored_run(const ScoredRunOptions& o) {
  struct Label {
    bool fraud;
    uint16_t scenario;
  };
  absl::flat_hash_map<std::string, Label> labels;
  std::vector<std::string> scenario_names;
  std::map<std::string, uint16_t> scenario_index;
  KnownCompromised known;
  {
    Schema schema;
    const int id = schema.add({"id", FieldType::String, false});
    const int card = schema.add({"card_id", FieldType::String, false});
    const int fraud = schema.add({"is_fraud", FieldType::Bool, false});
    const int scenario = schema.add({"scenario", FieldType::String, true});
    const int reported = schema.add({"reported_at", FieldType::Timestamp, false});
    Status s = for_each_event(o.labels, schema, reported, [&](const Event& ev) {
      const bool is_fraud = ev.values[fraud].b;
      std::string name = ev.values[scenario].is_null() ? (is_fraud ? "fraud" : "none")
                                                       : std::string(ev.str(scenario));
      auto [it, inserted] =
          scenario_index.try_emplace(name, static_cast<uint16_t>(scenario_names.size()));
      if (inserted) scenario_names.push_back(name);
      const std::string_view key = ev.str(id);
      labels[absl::string_view(key.data(), key.size())] = {is_fraud, it->second};
      if (is_fraud) {
        const std::string_view c = ev.str(card);
        auto [k, fresh] = known.try_emplace(hash_bytes(c.data(), c.size()), ev.time);
        if (!fresh) k->second = std::min(k->second, ev.time);
      }
    });
    if (!s.ok()) return s;
  }

  ScoredRunReport report;
  std::vector<ScoredTransaction> txs;
  std::vector<uint16_t> scenario_of;
  {
    Schema schema;
    const int id = schema.add({o.id_field, FieldType::String, false});
    const int ts = schema.add({o.time_field, FieldType::Timestamp, false});
    const int card = schema.add({o.card_field, FieldType::String, false});
    const int score = schema.add({o.score_field, FieldType::Double, false});
    Status s = for_each_event(o.scores, schema, ts, [&](const Event& ev) {
      const std::string_view key = ev.str(id);
      auto it = labels.find(absl::string_view(key.data(), key.size()));
      if (it == labels.end()) {
        ++report.unlabelled;
        return;
      }
      const std::string_view c = ev.str(card);
      txs.push_back(
          {ev.time, hash_bytes(c.data(), c.size()), ev.values[score].d, it->second.fraud});
      scenario_of.push_back(it->second.scenario);
    });
    if (!s.ok()) return s;
  }
  if (txs.empty())
    return Status::Error(
        fmt::format("{}: no scored transaction has a label in {}", o.scores, o.labels));

  ScoredRunReport evaluated = evaluate_scores(txs, scenario_of, scenario_names, known, o.quality);
  evaluated.unlabelled = report.unlabelled;
  return evaluated;
}

ScoredRunReport evaluate_scores(const std::vector<ScoredTransaction>& txs,
                                const std::vector<uint16_t>& scenario_of,
                                const std::vector<std::string>& scenario_names,
                                const KnownCompromised& known, const QualityOptions& options) {
  ScoredRunReport report;
  report.quality = evaluate_with_drift(txs, known, options);
  for (const auto& tx : txs)
    (tx.fraud ? report.fraud_scores : report.genuine_scores).push_back(tx.score);
  std::vector<float> genuine_labels(report.genuine_scores.size(), 0.0f);
  for (size_t s = 0; s < scenario_names.size(); ++s) {
    std::vector<double> scores = report.genuine_scores;
    std::vector<float> y = genuine_labels;
    size_t n = 0;
    for (size_t i = 0; i < txs.size(); ++i)
      if (txs[i].fraud && scenario_of[i] == s) {
        scores.push_back(txs[i].score);
        y.push_back(1.0f);
        ++n;
      }
    if (n == 0) continue;
    report.scenarios.push_back({scenario_names[s], n, model::roc_auc(scores, y)});
  }
  std::sort(report.scenarios.begin(), report.scenarios.end(),
            [](const ScenarioQuality& a, const ScenarioQuality& b) { return a.name < b.name; });
  return report;
}

std::string scored_run_json(const ScoredRunReport& r, size_t k, bool with_days) {
  std::string out = quality_json(r.quality.overall, k, false);
  out.pop_back();  // the closing brace: more fields follow
  fmt::format_to(std::back_inserter(out), R"(,"unlabelled":{},"scenarios":{{)", r.unlabelled);
  for (size_t i = 0; i < r.scenarios.size(); ++i)
    fmt::format_to(std::back_inserter(out), R"({}"{}":{{"n":{},"auc":{}}})", i ? "," : "",
                   r.scenarios[i].name, r.scenarios[i].n, num(r.scenarios[i].auc));
  out += "}";
  if (r.quality.has_drift) {
    out += R"(,"before_drift":)" + quality_json(r.quality.before_drift, k, false);
    out += R"(,"after_drift":)" + quality_json(r.quality.after_drift, k, false);
  }
  if (with_days) {
    const std::string days = quality_json(r.quality.overall, k, true);
    out += "," + days.substr(days.find(R"("days":)"));
    out.pop_back();
  }
  out += "}";
  return out;
}

report::HtmlReport scored_run_html(const ScoredRunReport& r, size_t k, const std::string& title) {
  report::HtmlReport page(title);
  const std::string cp = fmt::format("card precision@{}", k);
  auto row = [&](const std::string& name, const Quality& q) {
    return std::vector<std::string>{name,       std::to_string(q.n), std::to_string(q.n_fraud),
                                    num(q.auc), num(q.ap),           num(q.card_precision)};
  };
  page.heading("Quality");
  std::vector<std::vector<std::string>> rows = {row("all days", r.quality.overall)};
  if (r.quality.has_drift) {
    rows.push_back(row("before the drift", r.quality.before_drift));
    rows.push_back(row("from the drift", r.quality.after_drift));
  }
  page.table({"period", "transactions", "frauds", "AUC ROC", "average precision", cp}, rows);
  if (r.unlabelled > 0)
    page.paragraph(
        fmt::format("{} scored transactions had no label and are left out.", r.unlabelled));

  page.heading("Per scenario");
  std::vector<std::vector<std::string>> srows;
  std::vector<std::pair<std::string, double>> bars;
  for (const auto& s : r.scenarios) {
    srows.push_back({s.name, std::to_string(s.n), num(s.auc)});
    bars.emplace_back(s.name, s.auc);
  }
  page.table({"scenario", "frauds", "AUC against genuine"}, srows);
  page.bar_chart("AUC of each scenario's frauds against genuine transactions", "AUC", bars);

  page.heading("Per day");
  report::Series auc{"AUC ROC", {}, {}}, ap{"average precision", {}, {}}, cpk{cp, {}, {}};
  std::vector<std::vector<std::string>> drows;
  for (const auto& d : r.quality.overall.days) {
    const double x = static_cast<double>(d.day);
    auc.x.push_back(x);
    auc.y.push_back(d.auc);
    ap.x.push_back(x);
    ap.y.push_back(d.ap);
    cpk.x.push_back(x);
    cpk.y.push_back(d.card_precision);
    drows.push_back({format_rfc3339_ms(d.start).substr(0, 10), std::to_string(d.n),
                     std::to_string(d.n_fraud), num(d.auc), num(d.ap), num(d.card_precision)});
  }
  page.line_plot("Quality per day", "day (since the epoch)", "value", {auc, ap, cpk});
  page.heading("Scores");
  page.histogram("Score distributions (log scale)", "score",
                 {{"genuine", r.genuine_scores}, {"fraud", r.fraud_scores}},
                 {.bins = 50, .log_y = true});
  page.table({"day", "transactions", "frauds", "AUC ROC", "average precision", cp}, drows);
  return page;
}

}  // namespace millrace::eval
