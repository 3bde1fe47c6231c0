// Throughput of the fraud pipeline (`apps/fraud/fraud.yaml`: 55 features over
// card, terminal, device, the nightly batch values, a reference table and the
// delayed labels; 300 trees of depth 6; decisions), as `millrace fraud demo`
// streams it: one worker on the calling thread, transactions and their labels
// merged by event time, nothing written. Beside it, in the same run:
//   - the baseline, a simdjson parse-only loop over the same records;
//   - the same pipeline without the model (features only).
// Figures are per CPU-second of the thread that runs the pipeline (the source
// with its worker inline: read, parse, features, model, decision), the best of
// --reps runs, so the machine's other processes take nothing from them.
//
//   build/fraud_bench [--days 38] [--reps 3] [--dir DIR] [--only features|scored]   (--help: usage)
//
// The data (simulated, 2000 cards, 4000 terminals) and the model (trained
// on 7 days of backfilled vectors, one XGBoost thread) are made first, in
// --dir if given (kept and reused by later runs with the same --dir), else in
// a temporary directory removed at the end.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include <simdjson.h>

#include "millrace/core/json_writer.h"
#include "millrace/fraud/nightly.h"
#include "millrace/fraud/training_set.h"
#include "millrace/model/registry.h"
#include "millrace/model/trainer.h"
#include "millrace/sim/fraud_simulator.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/scoring.h"
#include "millrace/stream/spec.h"
#include "parse_only.h"

using namespace millrace;
namespace fs = std::filesystem;

namespace {

constexpr TimeMs kDay = 86'400'000;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fraud_bench: %s\n", what.c_str());
  std::exit(1);
}

// Appends the file to *out in one read into memory sized once (a stream
// copy grows and copies 50 MB several times, page-faulting each copy in:
// most of the page-fault samples of a profile of this benchmark).
void append_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!in || ec) fail("cannot read " + path);
  const size_t at = out->size();
  out->resize(at + size);
  if (!in.read(out->data() + at, static_cast<std::streamsize>(size))) fail("cannot read " + path);
}

struct Setup {
  std::string data, registry;
  size_t train_rows = 0;
  int trees = 0;
};

// Simulates the data, runs the nightly job, backfills the training days and
// trains the model into dir (skipped when dir already holds them).
Setup prepare(const std::string& dir, int days) {
  Setup s;
  s.data = dir + "/data";
  s.registry = fs::absolute(dir + "/models").string();
  const std::string model_dir = s.registry + "/fraud/1";
  if (fs::exists(model_dir + "/model.json") && fs::exists(s.data + "/transactions.jsonl")) return s;
  std::error_code ec;
  fs::create_directories(s.data, ec);
  sim::FraudSimOptions so;
  so.customers = 2000;
  so.terminals = 4000;
  so.days = days;
  so.seed = 0;
  auto sum = sim::write_fraud_dataset(so, s.data, sim::SimFormat::Jsonl);
  if (!sum.ok()) fail(sum.status().message());
  fraud::NightlyOptions nightly;
  nightly.transactions = s.data + "/transactions.jsonl";
  nightly.out_dir = s.data;
  if (auto n = fraud::run_nightly(nightly); !n.ok()) fail(n.status().message());
  fs::copy_file(std::string(MILLRACE_SOURCE_DIR) + "/apps/fraud/fraud.yaml", s.data + "/fraud.yaml",
                fs::copy_options::overwrite_existing, ec);
  if (ec) fail("cannot copy apps/fraud/fraud.yaml: " + ec.message());
  auto spec = load_spec(s.data + "/fraud.yaml");
  if (!spec.ok()) fail(spec.status().message());
  // Labels by transaction id (the simulator's ids are t0, t1, ...).
  std::vector<char> fraud;
  {
    std::ifstream in(s.data + "/labels.jsonl");
    std::string line;
    simdjson::ondemand::parser parser;
    while (std::getline(in, line)) {
      simdjson::padded_string p(line);
      auto doc = parser.iterate(p);
      std::string_view id = doc["id"].get_string().value();
      bool f = doc["is_fraud"].get_bool().value();
      size_t n = std::stoull(std::string(id.substr(1)));
      if (fraud.size() <= n) fraud.resize(n + 1, 0);
      fraud[n] = f;
    }
  }
  const int id_field = spec->source.schema.index_of("id");
  const fraud::ModelInputs inputs = fraud::model_inputs(spec.value());
  const TimeMs train_from = so.start + 21 * kDay, train_to = train_from + 7 * kDay;
  const std::string train_csv = s.data + "/train.csv";
  auto label = [&](std::string_view id) {
    const size_t n = std::stoull(std::string(id.substr(1)));
    return n < fraud.size() && fraud[n] ? 1 : 0;
  };
  auto set = fraud::write_training_set(spec.value(), s.data, train_from, train_to, id_field, inputs,
                                       label, train_csv);
  if (!set.ok()) fail(set.status().message());
  s.train_rows = set->rows;
  model::TrainOptions t;
  t.data_path = train_csv;
  t.label = "is_fraud";
  t.time_column = "ts";
  t.features = inputs.names;
  t.out_dir = model_dir;
  t.trees = 300;
  t.depth = 6;
  t.eta = 0.1;
  t.valid_fraction = 0.1;
  t.threads = 1;
  auto report = model::train_gbdt(t);
  if (!report.ok()) fail(report.status().message());
  s.trees = report->trees_kept;
  if (Status st = model::ModelRegistry(s.registry).promote("fraud", "1"); !st.ok())
    fail(st.message());
  return s;
}

struct Figures {
  uint64_t records = 0, transactions = 0;
  double cpu = 0;
  double score_sum = 0;
};

// One run of the pipeline on this thread; the scores' sum shows that two
// builds compute the same.
Figures run_once(const Setup& s, bool scored) {
  auto spec = load_spec(s.data + "/fraud.yaml");
  if (!spec.ok()) fail(spec.status().message());
  if (scored) {
    spec->root["model"]["registry"] = s.registry;
    spec->root["model"]["name"] = "fraud";
  }
  Figures f;
  RunOptions run = fraud::one_worker_run(s.data);
  if (scored)
    run.on_scored = [&](const Event&, const FeatureValue*, const ScoreResult& r) {
      ++f.transactions;
      f.score_sum += r.score;
    };
  else
    run.on_vector = [&](const Event&, const FeatureValue*) { ++f.transactions; };
  const double c0 = bench::thread_cpu_seconds();
  auto stats = run_pipeline(spec.value(), run);
  f.cpu = bench::thread_cpu_seconds() - c0;
  if (!stats.ok()) fail(stats.status().message());
  f.records = stats->records;
  return f;
}

}  // namespace

constexpr const char* kUsage =
    "usage: fraud_bench [--days N] [--reps N] [--dir DIR] [--only features|scored]\n"
    "\n"
    "Throughput of apps/fraud/fraud.yaml (its ~55 features, 300 trees of depth 6 and the\n"
    "decisions) on one thread, per CPU-second, beside a simdjson parse-only loop over the same\n"
    "records measured in the same run (the ratio column).\n"
    "\n"
    "  --days N    days simulated (default 38; at least 30)\n"
    "  --reps N    runs of each row, the best kept (default 3)\n"
    "  --dir DIR   make the data and the model in DIR, or reuse them when DIR has them\n"
    "              (default: a temporary directory, removed at the end)\n"
    "  --only ROW  run only the features row or only the scored row\n"
    "\n"
    "example: build/fraud_bench --dir /tmp/fb --reps 2\n";

int main(int argc, char** argv) {
  int days = 38, reps = 3;
  std::string dir, only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) fail(std::string("option ") + argv[i] + " needs a value (see --help)");
    if (std::strcmp(argv[i], "--days") == 0)
      days = std::stoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--reps") == 0)
      reps = std::max(1, std::stoi(argv[i + 1]));
    else if (std::strcmp(argv[i], "--dir") == 0)
      dir = argv[i + 1];
    else if (std::strcmp(argv[i], "--only") == 0)
      only = argv[i + 1];
    else
      fail(std::string("unknown option ") + argv[i] + " (see --help)");
  }
  if (!only.empty() && only != "features" && only != "scored")
    fail("--only: expected features or scored, got " + only);
  if (days < 30) fail("--days: at least 30 (21 days of history, 7 of training)");
  const bool temporary = dir.empty();
  if (temporary) dir = "/tmp/millrace-fraud-bench-" + std::to_string(getpid());
  const auto t0 = std::chrono::steady_clock::now();
  Setup s = prepare(dir, days);
  const double setup_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string data;
  data.reserve(fs::file_size(s.data + "/transactions.jsonl") +
               fs::file_size(s.data + "/labels.jsonl"));
  append_file(s.data + "/transactions.jsonl", &data);
  append_file(s.data + "/labels.jsonl", &data);

  uint64_t records = 0, checksum = 0;
  double base = 0;
  for (int r = 0; r < reps; ++r) {
    const bench::ParseOnly p = bench::parse_only_loop(data);
    base = std::max(base, p.per_cpu_second());
    records = p.lines;
    checksum = p.checksum;
  }
  std::printf(
      "fraud pipeline benchmark: apps/fraud/fraud.yaml, 2000 cards, 4000 terminals, %d days: "
      "%llu records (transactions and their labels), %.0f MB; setup %.1f s%s\n\n",
      days, static_cast<unsigned long long>(records), data.size() / 1e6, setup_s,
      s.train_rows ? "" : " (data and model reused)");
  std::printf("%-58s %16s %16s %8s\n", "run (one thread, best of the reps)", "records/CPU-s",
              "transactions/CPU-s", "ratio");
  std::printf("%-58s %16.0f %16s %8.2f   (baseline; checksum %llu)\n",
              "simdjson parse-only loop over the same records", base, "", 1.0,
              static_cast<unsigned long long>(checksum % 1000));
  auto row = [&](const char* name, bool scored) {
    Figures best;
    for (int r = 0; r < reps; ++r) {
      Figures f = run_once(s, scored);
      if (best.cpu == 0 || f.cpu < best.cpu) best = f;
    }
    const double rps = best.records / best.cpu;
    std::printf("%-58s %16.0f %16.0f %8.3f", name, rps, best.transactions / best.cpu, rps / base);
    if (scored) std::printf("   (score sum %.6f)", best.score_sum);
    std::printf("\n");
  };
  if (only.empty() || only == "features") row("fraud.yaml features, no model", false);
  if (only.empty() || only == "scored")
    row("fraud.yaml features + 300 trees depth 6 + decisions", true);
  std::printf("\ntarget: 200,000 transactions per CPU-second (features, model, decision)\n");
  if (temporary) fs::remove_all(dir);
  return 0;
}
