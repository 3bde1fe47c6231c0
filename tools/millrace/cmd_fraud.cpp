// millrace fraud: the fraud-detection benchmarks (docs/fraud.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "millrace/eval/handbook.h"
#include "millrace/eval/scored_run.h"
#include "millrace/fraud/demo.h"
#include "millrace/fraud/nightly.h"

namespace millrace::cli {
namespace {

void register_fraud(CLI::App& app) {
  auto* fraud = app.add_subcommand("fraud", "Fraud-detection benchmarks");
  fraud->footer(
      "Example:\n"
      "  millrace fraud demo                       # what `make demo` runs\n"
      "  millrace fraud handbook --transactions data/handbook/transactions.csv\n");
  fraud->require_subcommand(1);
  auto o = std::make_shared<eval::HandbookOptions>();
  auto start = std::make_shared<std::string>("2018-07-25");
  auto* hb = fraud->add_subcommand(
      "handbook",
      "The fraud-detection handbook's benchmark: its features through the streaming engine, "
      "its protocol (train 7 days, 7 days of label delay, test 7 days), gradient-boosted trees; "
      "prints {\"auc\", \"ap\", \"cp100\", \"n_test\", \"n_test_fraud\"}");
  hb->add_option("--transactions", o->transactions,
                 "CSV with TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, "
                 "TX_FRAUD (other columns ignored)")
      ->required();
  hb->add_option("--spec", o->spec, "Feature spec")->capture_default_str();
  hb->add_option("--predictions", o->predictions,
                 "Also write TRANSACTION_ID,prediction for every test transaction");
  hb->add_option("--train-start", *start, "First training day, YYYY-MM-DD")->capture_default_str();
  hb->add_option("--train-days", o->protocol.train_days)->capture_default_str();
  hb->add_option("--delay-days", o->protocol.delay_days, "Days until labels are known")
      ->capture_default_str();
  hb->add_option("--test-days", o->protocol.test_days)->capture_default_str();
  hb->add_option("--trees", o->trees, "Boosting rounds")->capture_default_str();
  hb->add_option("--depth", o->depth, "Maximum tree depth")->capture_default_str();
  hb->add_option("--eta", o->eta, "Learning rate")->capture_default_str();
  hb->add_option("--workers", o->workers, "Engine workers (0: one per hardware thread)");
  hb->add_option("--work-dir", o->work_dir,
                 "Keep the engine's input and output, the training table and the model here "
                 "(default: a temporary directory, removed)");
  hb->footer(
      "Example:\n"
      "  millrace simulate fraud --format handbook --customers 5000 --terminals 10000 \\\n"
      "      --days 183 --start 2018-04-01 --seed 0 --out data/handbook\n"
      "  millrace fraud handbook --transactions data/handbook/transactions.csv "
      "--predictions pred.csv\n");
  hb->callback([o, start] {
    eval::HandbookOptions opts = *o;
    namespace fs = std::filesystem;
    if (!fs::exists(opts.spec) && fs::path(opts.spec).is_relative()) {
      // Run from elsewhere than the checkout: the spec beside the binary's build directory.
      std::error_code ec;
      const fs::path beside =
          fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / opts.spec;
      if (!ec && fs::exists(beside)) {
        opts.spec = beside.string();
      } else {
        throw CommandError(opts.spec +
                           ": no such spec; run from the millrace checkout or pass --spec");
      }
    }
    opts.protocol.train_start = parse_date_option(*start, "--train-start");
    const bool tty = isatty(fileno(stderr));
    auto progress = [tty](const std::string& stage) {
      if (tty) std::fprintf(stderr, "handbook: %s\n", stage.c_str());
    };
    auto r = eval::run_handbook(opts, progress);
    if (!r.ok()) throw CommandError(r.status().message());
    std::printf("%s\n", eval::handbook_json(*r).c_str());
    std::fflush(stdout);
    if (tty)
      std::fprintf(stderr,
                   "handbook: %zu rows read in %.1f s; %zu events through the engine in %.1f s; "
                   "trained on %zu transactions (%zu frauds) in %.1f s; %.1f s in all\n",
                   r->rows_read, r->seconds_read, r->events_streamed, r->seconds_features,
                   r->train_rows, r->train_frauds, r->seconds_train, r->seconds_total);
  });
}

void register_evaluate(CLI::App* fraud) {
  auto o = std::make_shared<eval::ScoredRunOptions>();
  auto drift = std::make_shared<std::string>();
  auto html = std::make_shared<std::string>();
  auto json = std::make_shared<std::string>();
  auto* ev = fraud->add_subcommand(
      "evaluate",
      "Quality of scored transactions against delayed labels, as the handbook measures it: AUC "
      "ROC, average precision, card precision@k (cards reported before a day left out), overall, "
      "per day, per scenario, before and from a drift; prints one JSON line");
  ev->add_option("--scores", o->scores,
                 "JSONL of scored transactions (e.g. `millrace run` output with a model)")
      ->required();
  ev->add_option("--labels", o->labels,
                 "JSONL labels: id, card_id, is_fraud, reported_at, scenario (the simulator's "
                 "labels.jsonl)")
      ->required();
  ev->add_option("--score-field", o->score_field)->capture_default_str();
  ev->add_option("--id-field", o->id_field)->capture_default_str();
  ev->add_option("--time-field", o->time_field, "Epoch ms or RFC 3339")->capture_default_str();
  ev->add_option("--card-field", o->card_field)->capture_default_str();
  ev->add_option("--k", o->quality.k, "Cards investigated a day")->capture_default_str();
  ev->add_option("--drift-start", *drift, "Also measure before and from this day, YYYY-MM-DD");
  ev->add_option("--json", *json, "Write the full report (with every day) as JSON here");
  ev->add_option("--html", *html, "Write a self-contained HTML report with plots here");
  ev->footer(
      "Example:\n"
      "  millrace simulate fraud --days 60 --drift-day 30 --out data/fraud\n"
      "  millrace run --spec spec-with-a-model.yaml --input data/fraud/transactions.jsonl "
      "--output scored.jsonl\n"
      "  millrace fraud evaluate --scores scored.jsonl --labels data/fraud/labels.jsonl \\\n"
      "      --drift-start 2018-05-01 --html report.html\n");
  ev->callback([o, drift, html, json] {
    eval::ScoredRunOptions opts = *o;
    if (!drift->empty()) opts.quality.drift_start = parse_date_option(*drift, "--drift-start");
    auto r = eval::evaluate_scored_run(opts);
    if (!r.ok()) throw CommandError(r.status().message());
    std::printf("%s\n", eval::scored_run_json(*r, opts.quality.k, false).c_str());
    std::fflush(stdout);
    if (!json->empty()) {
      FILE* f = std::fopen(json->c_str(), "wb");
      const std::string body = eval::scored_run_json(*r, opts.quality.k, true) + "\n";
      if (f == nullptr || std::fwrite(body.data(), 1, body.size(), f) != body.size() ||
          std::fclose(f) != 0)
        throw CommandError(*json + ": cannot write");
    }
    if (!html->empty()) {
      Status s =
          eval::scored_run_html(*r, opts.quality.k, "Fraud scores against labels").write(*html);
      if (!s.ok()) throw CommandError(s.message());
    }
  });
}

void register_nightly(CLI::App* fraud) {
  auto o = std::make_shared<fraud::NightlyOptions>();
  auto ready = std::make_shared<std::string>("1h");
  auto until = std::make_shared<std::string>();
  auto* cmd = fraud->add_subcommand(
      "nightly",
      "The nightly batch job of apps/fraud/fraud.yaml: per card, for every night, the 30-day "
      "average, standard deviation, count and card-not-present share of amounts and the "
      "lifetime count (card_stats.csv); per card and device, the payments so far "
      "(device_stats.csv); each row with the as_of time it is usable from");
  cmd->add_option("--transactions", o->transactions, "transactions.jsonl of `simulate fraud`")
      ->required();
  cmd->add_option("--out", o->out_dir, "Directory for card_stats.csv and device_stats.csv")
      ->required();
  cmd->add_option("--ready-after", *ready,
                  "How long after midnight the job's output is usable (as_of)")
      ->capture_default_str();
  cmd->add_option("--until", *until,
                  "Only the transactions and nights before this day, YYYY-MM-DD");
  cmd->footer(
      "Example:\n"
      "  millrace simulate fraud --customers 2000 --terminals 4000 --days 60 --out data/fraud\n"
      "  millrace fraud nightly --transactions data/fraud/transactions.jsonl --out data/fraud\n");
  cmd->callback([o, ready, until] {
    fraud::NightlyOptions opts = *o;
    auto r = parse_duration_ms(*ready);
    if (!r.ok()) throw CommandError("--ready-after: " + r.status().message(), 2);
    opts.ready_after = *r;
    if (!until->empty()) opts.until = parse_date_option(*until, "--until");
    auto stats = fraud::run_nightly(opts);
    if (!stats.ok()) throw CommandError(stats.status().message());
    std::fprintf(stderr,
                 "millrace: nightly job over %lu transactions of %lu cards, %lu nights, in %.2f s: "
                 "%lu rows in %s/card_stats.csv, %lu in %s/device_stats.csv\n",
                 stats->transactions, stats->cards, stats->nights, stats->seconds, stats->card_rows,
                 opts.out_dir.c_str(), stats->device_rows, opts.out_dir.c_str());
  });
}

// The spec beside the binary's build directory when run from elsewhere than the checkout.
std::string find_spec(const std::string& spec) {
  namespace fs = std::filesystem;
  if (fs::exists(spec) || !fs::path(spec).is_relative()) return spec;
  std::error_code ec;
  const fs::path beside = fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / spec;
  if (!ec && fs::exists(beside)) return beside.string();
  throw CommandError(spec + ": no such spec; run from the millrace checkout or pass --spec");
}

void register_demo(CLI::App* fraud) {
  auto o = std::make_shared<fraud::DemoOptions>();
  o->sim.customers = 2000;
  o->sim.terminals = 4000;
  o->sim.days = 52;
  o->sim.drift_day = 45;
  auto start = std::make_shared<std::string>("2018-04-01");
  auto* cmd = fraud->add_subcommand(
      "demo",
      "The whole fraud flow on simulated data: simulate, nightly batch job, backfill of the "
      "training days, training (GBDT), streaming every day through the pipeline with inline "
      "scoring and decisions while labels arrive late, a paced replay for latency, and the "
      "evaluation; prints the report and writes it as JSON and HTML");
  cmd->add_option("--spec", o->spec, "Feature spec")->capture_default_str();
  cmd->add_option("--out", o->out_dir, "Working directory (emptied first)")->capture_default_str();
  cmd->add_option("--customers", o->sim.customers)->capture_default_str();
  cmd->add_option("--terminals", o->sim.terminals)->capture_default_str();
  cmd->add_option("--days", o->sim.days)->capture_default_str();
  cmd->add_option("--drift-day", o->sim.drift_day, "Day the session-hijack scenario starts")
      ->capture_default_str();
  cmd->add_option("--start", *start, "First day, YYYY-MM-DD")->capture_default_str();
  cmd->add_option("--seed", o->sim.seed)->capture_default_str();
  cmd->add_option("--train-start-day", o->train_start_day,
                  "First training day (the days before fill the 30-day windows)")
      ->capture_default_str();
  cmd->add_option("--train-days", o->train_days)->capture_default_str();
  cmd->add_option("--delay-days", o->delay_days,
                  "Days between training and testing (until every training label is known)")
      ->capture_default_str();
  cmd->add_option("--trees", o->trees)->capture_default_str();
  cmd->add_option("--depth", o->depth)->capture_default_str();
  cmd->add_option("--eta", o->eta)->capture_default_str();
  cmd->add_option("--load", o->load,
                  "Paced replay at this share of the measured throughput, for latency (0: none)")
      ->capture_default_str();
  cmd->add_option("--latency-seconds", o->latency_seconds,
                  "The paced replay reads for this long at most (after the warm-up)")
      ->capture_default_str();
  cmd->add_option("--warm-up-days", o->warmup_days,
                  "The paced replay first reads these days at full speed, untimed (the state of "
                  "a running pipeline: cards and terminals known)")
      ->capture_default_str();
  cmd->add_option("--k", o->k, "Cards investigated a day (card precision@k)")
      ->capture_default_str();
  cmd->footer(
      "Example:\n"
      "  millrace fraud demo                       # what `make demo` runs\n"
      "  millrace fraud demo --customers 5000 --days 90 --drift-day 75 --out out/big\n");
  cmd->callback([o, start] {
    fraud::DemoOptions opts = *o;
    opts.spec = find_spec(opts.spec);
    opts.sim.start = parse_date_option(*start, "--start");
    const bool tty = isatty(fileno(stderr));
    auto t0 = std::chrono::steady_clock::now();
    auto progress = [tty, t0](const std::string& s) {
      if (tty)
        std::fprintf(stderr, "[%5.1f s] %s\n",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     s.c_str());
    };
    auto r = fraud::run_demo(opts, progress);
    if (!r.ok()) throw CommandError(r.status().message());
    std::printf("%s", fraud::demo_text(*r).c_str());
    std::fflush(stdout);
  });
}

CommandRegistrar reg("fraud", [](CLI::App& app) {
  register_fraud(app);
  register_evaluate(app.get_subcommand("fraud"));
  register_nightly(app.get_subcommand("fraud"));
  register_demo(app.get_subcommand("fraud"));
});

}  // namespace
}  // namespace millrace::cli
