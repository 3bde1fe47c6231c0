#include "millrace/fraud/demo.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "millrace/core/event_parser.h"
#include "millrace/core/hash.h"
#include "millrace/core/json_writer.h"
#include "millrace/fraud/nightly.h"
#include "millrace/fraud/training_set.h"
#include "millrace/model/registry.h"
#include "millrace/model/trainer.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/scoring.h"
#include "millrace/stream/spec.h"

namespace millrace::fraud {
namespace {

constexpr TimeMs kDay = 86'400'000;
namespace fs = std::filesystem;

// What the label stream says of one transaction.
struct Truth {
  bool fraud = false;
  uint16_t scenario = 0;
  TimeMs reported_at = 0;
};

struct Labels {
  absl::flat_hash_map<std::string, Truth> by_id;
  std::vector<std::string> scenario_names;
  eval::KnownCompromised known;  // card hash -> first fraud report
};

Result<Labels> read_labels(const std::string& path) {
  Labels out;
  std::map<std::string, uint16_t> index;
  Schema schema;
  const int id = schema.add({"id", FieldType::String, false});
  const int card = schema.add({"card_id", FieldType::String, false});
  const int fraud = schema.add({"is_fraud", FieldType::Bool, false});
  const int scenario = schema.add({"scenario", FieldType::String, true});
  const int reported = schema.add({"reported_at", FieldType::Timestamp, false});
  EventParser parser(schema, reported);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": cannot open");
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
    Truth t;
    t.fraud = ev.values[fraud].b;
    t.reported_at = ev.time;
    if (t.fraud) {
      std::string name = ev.values[scenario].is_null() ? "fraud" : std::string(ev.str(scenario));
      auto [it, fresh] = index.try_emplace(name, static_cast<uint16_t>(out.scenario_names.size()));
      if (fresh) out.scenario_names.push_back(name);
      t.scenario = it->second;
      const std::string_view c = ev.str(card);
      auto [k, first] = out.known.try_emplace(hash_bytes(c.data(), c.size()), ev.time);
      if (!first) k->second = std::min(k->second, ev.time);
    }
    const std::string_view key = ev.str(id);
    out.by_id[absl::string_view(key.data(), key.size())] = t;
  }
  if (in.bad()) return Status::Error(path + ": read failed");
  return out;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

StageFigures figures(const LatencyHistogram& h) {
  return {h.quantile(0.5) / 1e3, h.quantile(0.99) / 1e3, h.quantile(0.999) / 1e3,
          static_cast<double>(h.max()) / 1e3};
}

std::string num(double v, int digits = 4) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, digits) : "null";
}

std::string date(TimeMs t) {
  return format_rfc3339_ms(t).substr(0, 10);
}

const char* kActions[] = {"approve", "challenge", "decline"};

// The handbook's kind of features, as fraud.yaml computes them: the amount,
// weekend and night, the card's counts and average amounts over 1, 7 and 30
// days, the terminal's counts and risks over 7, 14 and 30 days.
const char* kBaselineFeatures[] = {
    "tx_amount",           "tx_weekend",         "tx_night",        "card_tx_24h",
    "card_amount_avg_24h", "card_amount_avg_7d", "batch_tx_30d",    "batch_avg_amount_30d",
    "terminal_tx_7d",      "terminal_tx_14d",    "terminal_tx_30d", "terminal_risk_7d",
    "terminal_risk_14d",   "terminal_risk_30d"};

}  // namespace

Result<DemoReport> run_demo(const DemoOptions& o,
                            const std::function<void(const std::string&)>& progress) {
  const auto started = std::chrono::steady_clock::now();
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  DemoReport r;
  r.options = o;
  r.dir = o.out_dir;
  const int days = o.sim.days;
  if (o.train_start_day < 1 || o.train_days < 1 || o.delay_days < 0 ||
      o.train_start_day + o.train_days + o.delay_days >= days)
    return Status::Error(fmt::format(
        "--days {}: too short for {} days of history, {} training days, {} days of label delay "
        "and at least one test day",
        days, o.train_start_day, o.train_days, o.delay_days));
  if (o.load > 0 && (o.warmup_days < 0 || o.warmup_days >= days))
    return Status::Error(fmt::format(
        "--warm-up-days {}: expected 0 to {} (the paced replay needs days after its warm-up)",
        o.warmup_days, days - 1));
  if (!fs::exists(o.spec))
    return Status::Error(o.spec + ": no such spec; run from the millrace checkout or pass --spec");
  const sim::FraudSimOptions& so = o.sim;
  const int drift_day = so.drift_day >= 0 ? so.drift_day : days / 2;
  r.train_from = so.start + o.train_start_day * kDay;
  r.train_to = r.train_from + o.train_days * kDay;
  r.test_from = r.train_to + o.delay_days * kDay;
  r.test_to = so.start + days * kDay;
  r.drift_from = so.start + drift_day * kDay;
  const std::string data = o.out_dir + "/data";
  std::error_code ec;
  fs::remove_all(o.out_dir, ec);
  fs::create_directories(data, ec);
  if (ec) return Status::Error(o.out_dir + ": " + ec.message());
  auto step = [&](const std::string& name, std::chrono::steady_clock::time_point t) {
    r.steps.emplace_back(name, since(t));
  };

  // 1. The data.
  say(fmt::format("simulating {} customers, {} terminals, {} days (drift from day {})",
                  so.customers, so.terminals, days, drift_day));
  auto t = std::chrono::steady_clock::now();
  MR_TRY_ASSIGN(summary, sim::write_fraud_dataset(so, data, sim::SimFormat::Jsonl));
  r.data = summary;
  step("simulate", t);

  // 2. The nightly batch job.
  say("nightly batch job");
  t = std::chrono::steady_clock::now();
  NightlyOptions nightly;
  nightly.transactions = data + "/transactions.jsonl";
  nightly.out_dir = data;
  if (auto n = run_nightly(nightly); !n.ok()) return n.status();
  step("nightly batch job", t);

  // The spec beside its data (its batch and table paths are relative to it).
  fs::copy_file(o.spec, data + "/fraud.yaml", fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::Error(o.spec + ": cannot copy to " + data + ": " + ec.message());
  MR_TRY_ASSIGN(spec, load_spec(data + "/fraud.yaml"));
  if (spec.sources.size() != 2 || spec.sources[0].name != "transactions" ||
      spec.sources[1].name != "labels")
    return Status::Error(o.spec + ": the demo needs two sources, transactions then labels");
  MR_TRY_ASSIGN(labels, read_labels(data + "/labels.jsonl"));
  const int id_field = spec.source.schema.index_of("id");
  const int card_field = spec.source.schema.index_of("card_id");
  const int amount_field = spec.source.schema.index_of("amount");
  if (id_field < 0 || card_field < 0 || amount_field < 0)
    return Status::Error(o.spec + ": the transactions need id, card_id and amount fields");
  // Model inputs: every numeric feature but absolute times.
  const ModelInputs model_in = model_inputs(spec);
  const std::vector<int>& inputs = model_in.features;
  const std::vector<std::string>& input_names = model_in.names;
  r.features = inputs.size();

  // 3. Backfill the training days: the vectors as served, with their labels.
  say(fmt::format("backfill: feature vectors of {} to {}", date(r.train_from),
                  date(r.train_to - 1)));
  t = std::chrono::steady_clock::now();
  const std::string train_csv = data + "/train.csv";
  {
    auto label = [&](std::string_view id) {
      auto it = labels.by_id.find(absl::string_view(id.data(), id.size()));
      return it == labels.by_id.end() ? -1 : static_cast<int>(it->second.fraud);
    };
    MR_TRY_ASSIGN(set, write_training_set(spec, data, r.train_from, r.train_to, id_field, model_in,
                                          label, train_csv));
    if (set.dead_letters > 0)
      return Status::Error(
          fmt::format("backfill: {} records did not parse against {}", set.dead_letters, o.spec));
    r.train_rows = set.rows;
    r.train_frauds = set.frauds;
  }
  step("backfill (training days)", t);
  if (r.train_frauds == 0) return Status::Error("the training days hold no fraud; simulate more");

  // 4. Train, into the registry, promoted.
  say(fmt::format("training {} trees on {} transactions ({} frauds), {} features", o.trees,
                  r.train_rows, r.train_frauds, inputs.size()));
  t = std::chrono::steady_clock::now();
  const std::string registry = fs::absolute(o.out_dir + "/models").string();
  // The model and the baseline: the same trees on the same rows, each its own features.
  auto train = [&](const std::vector<std::string>& features, const std::string& name) {
    model::TrainOptions t;
    t.data_path = train_csv;
    t.label = "is_fraud";
    t.time_column = "ts";
    t.features = features;
    t.out_dir = registry + "/" + name + "/1";
    t.trees = o.trees;
    t.depth = o.depth;
    t.eta = o.eta;
    t.valid_fraction = 0.1;
    t.threads = o.train_threads;
    return model::train_gbdt(t);
  };
  std::vector<int> baseline_cols;  // indexes into inputs
  if (o.baseline)
    for (const char* name : kBaselineFeatures)
      for (size_t i = 0; i < input_names.size(); ++i)
        if (input_names[i] == name) {
          baseline_cols.push_back(static_cast<int>(i));
          r.baseline_features.emplace_back(name);
        }
  // The two models train at once, each on one thread: on two cores that is
  // the wall time of one, and a single-threaded trainer never spins waiting
  // for a thread the machine's other processes hold (XGBoost's threads wait
  // for each other at every level of every tree: on a loaded machine two
  // threads took twice the wall time of one).
  std::optional<Result<model::TrainReport>> baseline_report;
  {
    std::thread baseline_thread;
    if (!baseline_cols.empty())
      baseline_thread =
          std::thread([&] { baseline_report.emplace(train(r.baseline_features, "baseline")); });
    auto report = train(input_names, "fraud");
    if (baseline_thread.joinable()) baseline_thread.join();
    if (!report.ok()) return report.status();
    if (baseline_report && !baseline_report->ok()) return baseline_report->status();
    r.valid_auc = report->valid_auc;
    r.valid_ap = report->valid_average_precision;
    r.trees = report->trees_kept;
    if (Status s = model::ModelRegistry(registry).promote("fraud", "1"); !s.ok()) return s;
  }
  step(baseline_cols.empty() ? "train" : "train (model and baseline at once)", t);

  // 5. Stream everything through the pipeline with the model inline.
  spec.root["model"]["registry"] = registry;
  spec.root["model"]["name"] = "fraud";
  say("streaming every day through the pipeline, scoring and deciding each transaction");
  t = std::chrono::steady_clock::now();
  std::vector<eval::ScoredTransaction> scored;
  std::vector<uint16_t> scenario_of;
  std::vector<float> baseline_rows;  // the test rows' baseline inputs
  const std::string scored_path = o.out_dir + "/scored.jsonl";
  // The paced replay's warm-up: the records of the first days.
  const TimeMs warm_until = so.start + o.warmup_days * kDay;
  uint64_t warm_transactions = 0;
  {
    std::ofstream out(scored_path, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Error(scored_path + ": cannot open for writing");
    std::string buf;
    RunOptions run = one_worker_run(data);
    run.stage_latency = true;
    // The counts of each reason (rule, or segment's thresholds), found by
    // comparing names: no string is built per transaction.
    struct ReasonCounts {
      std::string rule, segment;
      std::array<uint64_t, 4>* counts;
    };
    std::vector<ReasonCounts> reasons;
    auto counts_for = [&](const decision::Decision& d) -> std::array<uint64_t, 4>& {
      for (const ReasonCounts& rc : reasons)
        if (rc.rule == d.rule && rc.segment == d.segment) return *rc.counts;
      const std::string why = !d.rule.empty()     ? "rule: " + d.rule
                              : d.segment.empty() ? std::string("default thresholds")
                                                  : "segment: " + d.segment;
      reasons.push_back({d.rule, d.segment, &r.by_reason[why]});  // map nodes stay put
      return *reasons.back().counts;
    };
    run.on_scored = [&](const Event& e, const FeatureValue* features, const ScoreResult& s) {
      ++r.transactions;
      warm_transactions += e.time < warm_until;
      if (e.time < r.test_from) return;
      const std::string_view id = e.str(id_field);
      auto it = labels.by_id.find(absl::string_view(id.data(), id.size()));
      if (it == labels.by_id.end()) return;
      const Truth& truth = it->second;
      const std::string_view card = e.str(card_field);
      scored.push_back({e.time, hash_bytes(card.data(), card.size()), s.score, truth.fraud});
      for (int c : baseline_cols) {
        const FeatureValue& v = features[inputs[c]];
        baseline_rows.push_back(v.is_null() ? NAN : static_cast<float>(v.as_double()));
      }
      scenario_of.push_back(truth.scenario);
      const int a = static_cast<int>(s.decision.action);
      ++r.decisions[a][truth.fraud];
      r.decided_amount[a][truth.fraud] += e.values[amount_field].d;
      auto& counts = counts_for(s.decision);
      ++counts[a];
      counts[3] += truth.fraud;
      buf += R"({"id":)";
      append_json_string(buf, id);
      buf += R"(,"ts":)";
      append_json_int(buf, e.time);
      buf += R"(,"card_id":)";
      append_json_string(buf, card);
      buf += R"(,"score":)";
      append_json_double(buf, s.score);
      buf += R"(,"action":")";
      buf += kActions[a];
      buf += "\"}\n";
      if (buf.size() > (1 << 20)) {
        out << buf;
        buf.clear();
      }
    };
    const double cpu0 = thread_cpu_seconds();
    MR_TRY_ASSIGN(stats, run_pipeline(spec, run));  // the source (and worker) run on this thread
    r.thread_cpu_seconds = thread_cpu_seconds() - cpu0;
    out << buf;
    if (!out.flush()) return Status::Error(scored_path + ": write failed");
    r.records = stats.records;
    r.run_seconds = stats.seconds;
    r.records_per_s = stats.records / std::max(stats.seconds, 1e-9);
    r.transactions_per_s = r.transactions / std::max(stats.seconds, 1e-9);
    r.records_per_cpu_s = stats.records / std::max(r.thread_cpu_seconds, 1e-9);
    r.transactions_per_cpu_s = r.transactions / std::max(r.thread_cpu_seconds, 1e-9);
    if (stats.latency) r.peak_latency = *stats.latency;
  }
  step("stream with inline scoring", t);
  if (scored.empty()) return Status::Error("no transaction was scored in the test days");

  // 5b. The engine's own throughput: the same stream, nothing done per
  // transaction but counting it.
  {
    say("streaming again, the pipeline alone (throughput)");
    t = std::chrono::steady_clock::now();
    RunOptions run = one_worker_run(data);
    uint64_t transactions = 0;
    run.on_scored = [&](const Event&, const FeatureValue*, const ScoreResult&) { ++transactions; };
    const double cpu0 = thread_cpu_seconds();
    MR_TRY_ASSIGN(stats, run_pipeline(spec, run));
    r.alone_cpu_seconds = thread_cpu_seconds() - cpu0;
    r.alone_transactions_per_cpu_s = transactions / std::max(r.alone_cpu_seconds, 1e-9);
    step("stream, the pipeline alone", t);
  }

  // 6. The paced replay.
  if (o.load > 0) {
    r.paced_rate = r.records_per_cpu_s * o.load;
    say(fmt::format("paced replay at {:.0f} records/s ({:.0f}% of one core's peak)", r.paced_rate,
                    o.load * 100));
    t = std::chrono::steady_clock::now();
    RunOptions run = one_worker_run(data);
    run.stage_latency = true;
    run.max_rate = r.paced_rate;
    // The first days go through at full speed, untimed: the latency measured
    // is that of a pipeline whose cards and terminals have state (as after a
    // restart from a checkpoint), not of its first seconds, when every record
    // allocates its keys. New keys still come at their own rate afterwards.
    uint64_t warm_labels = 0;
    for (const auto& [id, truth] : labels.by_id) warm_labels += truth.reported_at < warm_until;
    r.paced_warmup_records = warm_transactions + warm_labels;
    run.warmup_records = r.paced_warmup_records;
    // Transactions are about half of the records (each has its label).
    const uint64_t limit =
        warm_transactions + static_cast<uint64_t>(r.paced_rate * o.latency_seconds / 2);
    uint64_t seen = 0;
    auto paced_from = std::chrono::steady_clock::now();
    std::atomic<bool> stop{false};
    run.stop = &stop;
    run.on_scored = [&](const Event&, const FeatureValue*, const ScoreResult&) {
      if (seen++ == warm_transactions) paced_from = std::chrono::steady_clock::now();
      if (seen >= limit) stop.store(true);
    };
    const double cpu0 = thread_cpu_seconds();
    const auto wall0 = std::chrono::steady_clock::now();
    MR_TRY_ASSIGN(stats, run_pipeline(spec, run));
    // The share of a core the pipeline's thread had: at the paced load it
    // needs about `load` of one; less means the machine's other processes
    // held it back, and the latency shows their preemption, not millrace.
    r.paced_cpu_share = (thread_cpu_seconds() - cpu0) / std::max(since(wall0), 1e-9);
    r.paced_seconds = since(paced_from);
    r.paced_records = stats.records - std::min(stats.records, r.paced_warmup_records);
    r.paced_behind = stats.behind_schedule;
    r.paced_latency = stats.latency;
    step("paced replay", t);
  }

  // 7. Quality on the test days.
  say("evaluating");
  t = std::chrono::steady_clock::now();
  eval::QualityOptions q;
  q.k = o.k;
  q.day_origin = 0;
  if (r.drift_from > r.test_from && r.drift_from < r.test_to) q.drift_start = r.drift_from;
  r.quality = eval::evaluate_scores(scored, scenario_of, labels.scenario_names, labels.known, q);
  step("evaluate", t);
  if (!baseline_cols.empty()) {
    say(fmt::format("baseline: {} trees on the {} handbook-style features", o.trees,
                    baseline_cols.size()));
    t = std::chrono::steady_clock::now();
    MR_TRY_ASSIGN(model, model::load_model_file((*baseline_report)->model_path));
    std::vector<double> scores(scored.size());
    model->predict_batch(baseline_rows.data(), scored.size(), baseline_cols.size(), scores.data());
    std::vector<eval::ScoredTransaction> base = scored;
    for (size_t i = 0; i < base.size(); ++i) base[i].score = scores[i];
    r.baseline = eval::evaluate_with_drift(base, labels.known, q);
    step("baseline (score)", t);
  }
  if (!r.quality.quality.overall.days.empty()) {
    for (const auto& day : r.quality.quality.overall.days)
      r.card_precision_ceiling += static_cast<double>(std::min(day.fraud_cards, o.k)) / o.k;
    r.card_precision_ceiling /= r.quality.quality.overall.days.size();
  }
  if (std::ifstream la("/proc/loadavg"); la) la >> r.load_average;
  r.seconds = since(started);
  {
    std::ofstream json(o.out_dir + "/report.json", std::ios::binary | std::ios::trunc);
    json << demo_json(r) << "\n";
    if (!json.flush()) return Status::Error(o.out_dir + "/report.json: write failed");
  }
  if (Status s = demo_html(r).write(o.out_dir + "/report.html"); !s.ok()) return s;
  return r;
}

std::string demo_text(const DemoReport& r) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  const auto& d = r.data;
  line("== millrace fraud demo ==");
  line(fmt::format(
      "data: {} transactions of {} cards, {} days from {}; {} frauds ({:.2f}%) on {} cards",
      d.transactions, r.options.sim.customers, r.options.sim.days, date(r.options.sim.start),
      d.frauds, 100.0 * d.frauds / std::max<uint64_t>(d.transactions, 1), d.fraud_cards));
  std::string sc;
  for (int i = 1; i < sim::kScenarioCount; ++i)
    if (d.by_scenario[i])
      sc += fmt::format("{}{} {}", sc.empty() ? "" : ", ",
                        sim::scenario_name(static_cast<sim::Scenario>(i)), d.by_scenario[i]);
  line("      " + sc);
  line(fmt::format(
      "model: {} trees (depth {}) on {} features; trained on {} to {}: {} transactions, {} "
      "frauds; validation AUC {}",
      r.trees, r.options.depth, r.features, date(r.train_from), date(r.train_to - 1), r.train_rows,
      r.train_frauds, num(r.valid_auc)));
  line(
      fmt::format("test days: {} to {} (labels of the training days all known by then); drift "
                  "(session_hijack) from {}",
                  date(r.test_from), date(r.test_to - 1), date(r.drift_from)));
  line("");
  const size_t k = r.options.k;
  line(fmt::format("quality{:<20} {:>8} {:>7} {:>8} {:>8} {:>8}", "", "txs", "frauds", "AUC", "AP",
                   fmt::format("CP@{}", k)));
  auto qrow = [&](const std::string& name, const eval::Quality& q) {
    line(fmt::format("  {:<25} {:>8} {:>7} {:>8} {:>8} {:>8}", name, q.n, q.n_fraud, num(q.auc),
                     num(q.ap), num(q.card_precision)));
  };
  const auto& qr = r.quality.quality;
  qrow("test days", qr.overall);
  line(
      fmt::format("  (card precision@{} can reach {} here: the mean of min({}, fraud cards not yet "
                  "reported) / {} over the days)",
                  k, num(r.card_precision_ceiling, 3), k, k));
  if (qr.has_drift) {
    qrow("before the drift", qr.before_drift);
    qrow("from the drift", qr.after_drift);
  }
  if (!r.baseline_features.empty()) {
    line(
        fmt::format("  baseline: the same {} trees on {} handbook-style features (amount, "
                    "weekend, night, the card's 1/7/30-day counts and averages, the terminal's "
                    "counts and risks):",
                    r.options.trees, r.baseline_features.size()));
    qrow("test days", r.baseline.overall);
    if (r.baseline.has_drift) {
      qrow("before the drift", r.baseline.before_drift);
      qrow("from the drift", r.baseline.after_drift);
    }
  }
  line("  per scenario (its frauds against every genuine transaction):");
  for (const auto& s : r.quality.scenarios)
    line(fmt::format("    {:<23} {:>8} {:>7} {:>8}", s.name, "", s.n, num(s.auc)));
  line("");
  line("decisions on the test days        genuine     frauds   fraud amount");
  for (int a = 0; a < 3; ++a)
    line(fmt::format("  {:<30} {:>8} {:>10} {:>14.2f}", kActions[a], r.decisions[a][0],
                     r.decisions[a][1], r.decided_amount[a][1]));
  for (const auto& [why, c] : r.by_reason)
    line(fmt::format("  {:<30} approve {} / challenge {} / decline {} ({} frauds)", why, c[0], c[1],
                     c[2], c[3]));
  line("");
  line(fmt::format(
      "throughput: {} records ({} transactions + their labels) in {:.2f} s on one worker: "
      "{:.0f} records/s, {:.0f} transactions/s ({} features, {} trees)",
      r.records, r.transactions, r.run_seconds, r.records_per_s, r.transactions_per_s, r.features,
      r.trees));
  line(
      fmt::format("  per CPU-second of the pipeline thread (read, parse, features, model, "
                  "decision, and this report's timers, label joins and scored.jsonl; {:.2f} s "
                  "of CPU): {:.0f} records/s, {:.0f} transactions/s",
                  r.thread_cpu_seconds, r.records_per_cpu_s, r.transactions_per_cpu_s));
  line(fmt::format(
      "  the pipeline alone, the same stream again (read, parse, features, model, decision; "
      "{:.2f} s of CPU): {:.0f} transactions per CPU-second",
      r.alone_cpu_seconds, r.alone_transactions_per_cpu_s));
  auto table = [&](const StageLatency& l) {
    line(fmt::format("  {:<27} {:>9} {:>9} {:>9} {:>9}", "stage (us)", "p50", "p99", "p99.9",
                     "max"));
    for (int s = 0; s < StageLatency::kStages; ++s) {
      StageFigures f = figures(l.stages[s]);
      line(fmt::format("  {:<27} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}", StageLatency::name(s), f.p50,
                       f.p99, f.p999, f.max));
    }
  };
  if (r.paced_latency) {
    line(fmt::format(
        "latency at {:.0f}% of one core's peak ({:.0f} records/s, paced replay of "
        "{} records in {:.1f} s after the {} of the first {} days at full speed; {} "
        "records were due before the source got to them; the pipeline thread ran "
        "{:.0f}% of the time):",
        r.options.load * 100, r.paced_rate, r.paced_records, r.paced_seconds,
        r.paced_warmup_records, r.options.warmup_days, r.paced_behind, r.paced_cpu_share * 100));
    table(*r.paced_latency);
    if (r.paced_records > 0 && r.paced_behind * 2 > r.paced_records)
      line(fmt::format(
          "  (most paced records were due before the source got to them: the pipeline thread "
          "needed more of a core than the {:.0f}% it had, so these figures measure the "
          "machine's other processes; run on a quieter machine for millrace's own)",
          r.paced_cpu_share * 100));
  }
  line("latency at full speed (the throughput run; queueing included):");
  table(r.peak_latency);
  line("");
  std::string steps;
  for (const auto& [name, secs] : r.steps)
    steps += fmt::format("{}{} {:.1f} s", steps.empty() ? "" : ", ", name, secs);
  line(fmt::format("steps: {}; {:.1f} s in all", steps, r.seconds));
  if (r.load_average >= 0)
    line(
        fmt::format("machine: {} hardware threads, load average {:.1f} (other processes share "
                    "the cores: latency tails include their preemption)",
                    std::thread::hardware_concurrency(), r.load_average));
  line(
      fmt::format("files: {0}/report.html, {0}/report.json, {0}/scored.jsonl, {0}/data/, "
                  "{0}/models/",
                  r.dir));
  return out;
}

namespace {

void latency_json(std::string& out, const StageLatency& l) {
  out += "{";
  for (int s = 0; s < StageLatency::kStages; ++s) {
    static const char* keys[] = {"ingest",    "features", "retrieval",
                                 "inference", "decision", "total"};
    StageFigures f = figures(l.stages[s]);
    fmt::format_to(std::back_inserter(out),
                   R"({}"{}":{{"p50_us":{:.2f},"p99_us":{:.2f},"p999_us":{:.2f},"max_us":{:.2f}}})",
                   s ? "," : "", keys[s], f.p50, f.p99, f.p999, f.max);
  }
  out += "}";
}

}  // namespace

std::string demo_json(const DemoReport& r) {
  std::string out = "{";
  const auto& d = r.data;
  fmt::format_to(std::back_inserter(out),
                 R"("data":{{"transactions":{},"frauds":{},"fraud_cards":{},"customers":{},)"
                 R"("terminals":{},"days":{},"seed":{},"scenarios":{{)",
                 d.transactions, d.frauds, d.fraud_cards, r.options.sim.customers,
                 r.options.sim.terminals, r.options.sim.days, r.options.sim.seed);
  bool first = true;
  for (int i = 1; i < sim::kScenarioCount; ++i) {
    fmt::format_to(std::back_inserter(out), R"({}"{}":{})", first ? "" : ",",
                   sim::scenario_name(static_cast<sim::Scenario>(i)), d.by_scenario[i]);
    first = false;
  }
  fmt::format_to(std::back_inserter(out),
                 R"(}}}},"periods":{{"train":["{}","{}"],"test":["{}","{}"],"drift_from":"{}"}},)",
                 date(r.train_from), date(r.train_to - 1), date(r.test_from), date(r.test_to - 1),
                 date(r.drift_from));
  fmt::format_to(std::back_inserter(out),
                 R"("model":{{"trees":{},"depth":{},"features":{},"train_rows":{},)"
                 R"("train_frauds":{},"valid_auc":{},"valid_ap":{}}},)",
                 r.trees, r.options.depth, r.features, r.train_rows, r.train_frauds,
                 num(r.valid_auc), num(r.valid_ap));
  out += R"("quality":)" + eval::scored_run_json(r.quality, r.options.k, true);
  fmt::format_to(std::back_inserter(out), R"(,"card_precision_ceiling":{})",
                 num(r.card_precision_ceiling));
  if (!r.baseline_features.empty()) {
    out += R"(,"baseline":{"features":[)";
    for (size_t i = 0; i < r.baseline_features.size(); ++i) {
      out += i ? "," : "";
      append_json_string(out, r.baseline_features[i]);
    }
    out += R"(],"test":)" + eval::quality_json(r.baseline.overall, r.options.k, false);
    if (r.baseline.has_drift) {
      out +=
          R"(,"before_drift":)" + eval::quality_json(r.baseline.before_drift, r.options.k, false);
      out += R"(,"after_drift":)" + eval::quality_json(r.baseline.after_drift, r.options.k, false);
    }
    out += "}";
  }
  out += R"(,"decisions":{)";
  for (int a = 0; a < 3; ++a)
    fmt::format_to(std::back_inserter(out),
                   R"({}"{}":{{"genuine":{},"fraud":{},"fraud_amount":{:.2f}}})", a ? "," : "",
                   kActions[a], r.decisions[a][0], r.decisions[a][1], r.decided_amount[a][1]);
  out += R"(},"decisions_by_reason":{)";
  first = true;
  for (const auto& [why, c] : r.by_reason) {
    out += first ? "" : ",";
    append_json_string(out, why);
    fmt::format_to(std::back_inserter(out),
                   R"(:{{"approve":{},"challenge":{},"decline":{},"frauds":{}}})", c[0], c[1], c[2],
                   c[3]);
    first = false;
  }
  fmt::format_to(std::back_inserter(out),
                 R"(}},"throughput":{{"records":{},"transactions":{},"seconds":{:.3f},)"
                 R"("records_per_s":{:.0f},"transactions_per_s":{:.0f},"workers":1,)"
                 R"("thread_cpu_seconds":{:.3f},"records_per_cpu_s":{:.0f},)"
                 R"("transactions_per_cpu_s":{:.0f},"alone_cpu_seconds":{:.3f},)"
                 R"("alone_transactions_per_cpu_s":{:.0f}}},)",
                 r.records, r.transactions, r.run_seconds, r.records_per_s, r.transactions_per_s,
                 r.thread_cpu_seconds, r.records_per_cpu_s, r.transactions_per_cpu_s,
                 r.alone_cpu_seconds, r.alone_transactions_per_cpu_s);
  out += R"("latency_peak":)";
  latency_json(out, r.peak_latency);
  if (r.paced_latency) {
    fmt::format_to(std::back_inserter(out),
                   R"(,"latency_paced":{{"load":{},"records_per_s":{:.0f},"records":{},)"
                   R"("warmup_records":{},"behind_schedule":{},"thread_cpu_share":{:.3f},)"
                   R"("stages":)",
                   r.options.load, r.paced_rate, r.paced_records, r.paced_warmup_records,
                   r.paced_behind, r.paced_cpu_share);
    latency_json(out, *r.paced_latency);
    out += "}";
  }
  out += R"(,"steps":{)";
  for (size_t i = 0; i < r.steps.size(); ++i) {
    out += i ? "," : "";
    append_json_string(out, r.steps[i].first);
    fmt::format_to(std::back_inserter(out), ":{:.2f}", r.steps[i].second);
  }
  fmt::format_to(std::back_inserter(out), R"(}},"load_average":{:.2f},"seconds":{:.2f}}})",
                 r.load_average, r.seconds);
  return out;
}

report::HtmlReport demo_html(const DemoReport& r) {
  report::HtmlReport page = eval::scored_run_html(r.quality, r.options.k, "millrace fraud demo");
  page.heading("Data and model");
  page.paragraph(fmt::format(
      "{} simulated transactions of {} cards over {} days ({} frauds, {:.2f}%). Trained on {} to "
      "{} "
      "({} transactions, {} frauds): {} trees of depth {} over {} features, validation AUC {}. "
      "Tested on {} to {}; the session_hijack scenario starts on {}.",
      r.data.transactions, r.options.sim.customers, r.options.sim.days, r.data.frauds,
      100.0 * r.data.frauds / std::max<uint64_t>(r.data.transactions, 1), date(r.train_from),
      date(r.train_to - 1), r.train_rows, r.train_frauds, r.trees, r.options.depth, r.features,
      num(r.valid_auc), date(r.test_from), date(r.test_to - 1), date(r.drift_from)));
  if (!r.baseline_features.empty()) {
    std::vector<std::vector<std::string>> br;
    auto brow = [&](const std::string& who, const std::string& period, const eval::Quality& x) {
      br.push_back({who, period, std::to_string(x.n), std::to_string(x.n_fraud), num(x.auc),
                    num(x.ap), num(x.card_precision)});
    };
    const auto& qq = r.quality.quality;
    brow(fmt::format("fraud.yaml ({} features)", r.features), "test days", qq.overall);
    brow(fmt::format("baseline ({} features)", r.baseline_features.size()), "test days",
         r.baseline.overall);
    if (qq.has_drift) {
      brow("fraud.yaml", "before the drift", qq.before_drift);
      brow("baseline", "before the drift", r.baseline.before_drift);
      brow("fraud.yaml", "from the drift", qq.after_drift);
      brow("baseline", "from the drift", r.baseline.after_drift);
    }
    page.heading("Against a baseline");
    page.table({"model", "period", "transactions", "frauds", "AUC ROC", "average precision",
                fmt::format("card precision@{}", r.options.k)},
               br);
  }
  page.heading("Decisions on the test days");
  std::vector<std::vector<std::string>> rows;
  rows.reserve(3);
  for (int a = 0; a < 3; ++a)
    rows.push_back({kActions[a], std::to_string(r.decisions[a][0]),
                    std::to_string(r.decisions[a][1]),
                    fmt::format("{:.2f}", r.decided_amount[a][1])});
  page.table({"action", "genuine", "frauds", "fraud amount"}, rows);
  rows.clear();
  for (const auto& [why, c] : r.by_reason)
    rows.push_back({why, std::to_string(c[0]), std::to_string(c[1]), std::to_string(c[2]),
                    std::to_string(c[3])});
  page.table({"decided by", "approve", "challenge", "decline", "frauds"}, rows);
  page.heading("Throughput and latency");
  page.paragraph(fmt::format(
      "{} records ({} transactions and their labels) in {:.2f} s on one worker: {:.0f} records/s, "
      "{:.0f} transactions/s; per CPU-second of the pipeline thread: {:.0f} records/s, {:.0f} "
      "transactions/s (with this report's timers and evaluation work); the pipeline alone: {:.0f} "
      "transactions per CPU-second.",
      r.records, r.transactions, r.run_seconds, r.records_per_s, r.transactions_per_s,
      r.records_per_cpu_s, r.transactions_per_cpu_s, r.alone_transactions_per_cpu_s));
  auto table = [&](const std::string& title, const StageLatency& l) {
    page.paragraph(title);
    std::vector<std::vector<std::string>> lr;
    for (int s = 0; s < StageLatency::kStages; ++s) {
      StageFigures f = figures(l.stages[s]);
      lr.push_back({StageLatency::name(s), fmt::format("{:.1f}", f.p50),
                    fmt::format("{:.1f}", f.p99), fmt::format("{:.1f}", f.p999),
                    fmt::format("{:.1f}", f.max)});
    }
    page.table({"stage", "p50 (us)", "p99 (us)", "p99.9 (us)", "max (us)"}, lr);
    // The total's histogram, on a log scale of microseconds.
    std::vector<double> sample;
    const LatencyHistogram& h = l.stages[StageLatency::kTotal];
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
      const uint64_t n = h.bucket_count(i);
      if (n == 0) continue;
      const double mid = (static_cast<double>(LatencyHistogram::bucket_low(i)) +
                          static_cast<double>(LatencyHistogram::bucket_high(i))) /
                         2e3;
      sample.insert(sample.end(), n, std::log10(std::max(mid, 1e-3)));
    }
    page.histogram(title + ": event -> decision", "log10(latency in microseconds)",
                   {{"events", sample}}, {.bins = 60, .log_y = true});
  };
  if (r.paced_latency)
    table(fmt::format("At {:.0f}% of one core's peak ({:.0f} records/s, paced)",
                      r.options.load * 100, r.paced_rate),
          *r.paced_latency);
  table("At full speed (queueing included)", r.peak_latency);
  return page;
}

}  // namespace millrace::fraud
