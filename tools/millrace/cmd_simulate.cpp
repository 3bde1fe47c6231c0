// millrace simulate: synthetic datasets with ground truth (fraud).
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "millrace/sim/fraud_simulator.h"

namespace millrace::cli {
namespace {

void register_simulate(CLI::App& app) {
  auto* sim = app.add_subcommand("simulate", "Simulate datasets with ground truth");
  sim->footer(
      "Example:\n"
      "  millrace simulate fraud --days 60 --drift-day 30 --out data/fraud\n");
  sim->require_subcommand(1);
  auto o = std::make_shared<sim::FraudSimOptions>();
  auto start = std::make_shared<std::string>("2018-04-01");
  auto out = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("jsonl");
  auto* fraud = sim->add_subcommand(
      "fraud",
      "Card transactions with fraud scenarios and delayed labels (after the fraud-detection "
      "handbook's simulator, extended; docs/fraud.md)");
  fraud->add_option("--customers", o->customers, "Customers, one card each")->capture_default_str();
  fraud->add_option("--terminals", o->terminals, "Physical terminals")->capture_default_str();
  fraud->add_option("--days", o->days, "Days to simulate")->capture_default_str();
  fraud->add_option("--start", *start, "First day, YYYY-MM-DD (UTC)")->capture_default_str();
  fraud->add_option("--seed", o->seed, "Random seed: the same seed gives the same bytes")
      ->capture_default_str();
  fraud->add_option("--radius", o->radius, "Grid units a customer goes to a terminal (of 100)")
      ->capture_default_str();
  fraud
      ->add_option("--drift-day", o->drift_day,
                   "Day the session-hijack scenario starts (-1: half way)")
      ->capture_default_str();
  fraud
      ->add_option("--format", *format,
                   "jsonl: transactions.jsonl + labels.jsonl with every extension; handbook: "
                   "transactions.csv with the handbook's columns and only its design")
      ->check(CLI::IsMember({"jsonl", "handbook"}))
      ->capture_default_str();
  fraud->add_option("--out", *out, "Output directory (created)")->required();
  fraud->footer(
      "Examples:\n"
      "  millrace simulate fraud --customers 5000 --terminals 10000 --days 183 \\\n"
      "      --start 2018-04-01 --seed 0 --out data/fraud\n"
      "  millrace simulate fraud --format handbook --out data/handbook   # for `millrace fraud "
      "handbook`\n");
  fraud->callback([o, start, out, format] {
    sim::FraudSimOptions opts = *o;
    opts.start = parse_date_option(*start, "--start");
    const bool tty = isatty(fileno(stderr));
    auto progress = [tty](int day, int days, uint64_t n) {
      if (tty) std::fprintf(stderr, "\rsimulate: day %d/%d, %lu transactions", day, days, n);
    };
    auto summary = sim::write_fraud_dataset(
        opts, *out, *format == "handbook" ? sim::SimFormat::Handbook : sim::SimFormat::Jsonl,
        progress);
    if (tty) std::fprintf(stderr, "\n");
    if (!summary.ok()) throw CommandError(summary.status().message());
    const auto& s = *summary;
    std::string scenarios;
    for (int i = 1; i < sim::kScenarioCount; ++i)
      if (s.by_scenario[i] > 0)
        scenarios +=
            fmt::format("{}{} {}", scenarios.empty() ? "" : ", ",
                        sim::scenario_name(static_cast<sim::Scenario>(i)), s.by_scenario[i]);
    std::fprintf(stderr,
                 "millrace: %lu transactions in %.2f s (%.0f/s), %lu frauds (%.2f%%) on %lu cards: "
                 "%s; written to %s\n",
                 s.transactions, s.seconds, s.transactions / std::max(s.seconds, 1e-9), s.frauds,
                 s.transactions ? 100.0 * s.frauds / s.transactions : 0.0, s.fraud_cards,
                 scenarios.c_str(), out->c_str());
  });
}

CommandRegistrar reg("simulate", register_simulate);

}  // namespace
}  // namespace millrace::cli
