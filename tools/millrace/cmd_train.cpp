// `millrace train`: gradient-boosted trees through libxgboost, with a
// time-ordered validation split, into a model directory or the registry.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "millrace/model/registry.h"
#include "millrace/model/trainer.h"

namespace millrace::cli {
namespace {

void register_train(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("train",
                         "Train a gradient-boosted tree model (XGBoost) on a CSV file; the last "
                         "--valid-fraction of rows by time validate it");
  auto o = std::make_shared<model::TrainOptions>();
  auto registry = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto promote = std::make_shared<bool>(false);
  cmd->add_option("--data", o->data_path, "Training CSV with a header")->required();
  cmd->add_option("--label", o->label, "The label column (0/1 for binary:logistic)")->required();
  cmd->add_option("--out", o->out_dir, "Directory for model.json and model.meta.json");
  cmd->add_option("--registry", *registry, "Model registry root (with --name: next version)");
  cmd->add_option("--name", *name, "Registry model name; the model becomes its next version");
  cmd->add_flag("--promote", *promote, "Promote the new registry version");
  cmd->add_option("--time", o->time_column,
                  "Time column ordering the rows (default: time, timestamp or ts if present, "
                  "else file order)");
  cmd->add_option("--features", o->features,
                  "Feature columns, comma-separated (default: all but label, time and id)")
      ->delimiter(',');
  cmd->add_option("--objective", o->objective, "XGBoost objective")->capture_default_str();
  cmd->add_option("--trees", o->trees, "Boosting rounds")->capture_default_str();
  cmd->add_option("--depth", o->depth, "Maximum tree depth")->capture_default_str();
  cmd->add_option("--eta", o->eta, "Learning rate")->capture_default_str();
  cmd->add_option("--valid-fraction", o->valid_fraction, "Last fraction of rows (by time) held out")
      ->capture_default_str();
  cmd->add_option("--early-stopping", o->early_stopping,
                  "Stop after this many rounds without validation gain; keep the best (0: off)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "XGBoost threads (0: its default)");
  cmd->footer(
      "Example:\n"
      "  millrace train --data train.csv --label is_fraud --out models/fraud/1 \\\n"
      "      --trees 300 --depth 6 --eta 0.1 --valid-fraction 0.2 --early-stopping 20\n"
      "  millrace train --data train.csv --label is_fraud --registry models --name fraud "
      "--promote\n");
  cmd->callback([=] {
    model::TrainOptions opts = *o;
    std::unique_ptr<model::ModelRegistry> reg;
    std::string version;
    if (!name->empty()) {
      if (registry->empty()) throw CommandError("--name needs --registry ROOT", 2);
      reg = std::make_unique<model::ModelRegistry>(*registry);
      auto v = reg->next_version(*name);
      if (!v.ok()) throw CommandError(v.status().message());
      version = *v;
      opts.out_dir = (std::filesystem::path(*registry) / *name / version).string();
    }
    if (opts.out_dir.empty())
      throw CommandError("give --out DIR, or --registry ROOT --name NAME", 2);
    const bool tty = isatty(fileno(stderr));
    auto progress = [tty](int round, int rounds, double metric) {
      if (!tty) return;
      std::fprintf(stderr, "\r  round %d/%d  validation %.5f   ", round, rounds, metric);
      if (round == rounds) std::fputc('\n', stderr);
    };
    auto report = model::train_gbdt(opts, progress);
    if (tty) std::fputc('\n', stderr);
    if (!report.ok()) throw CommandError(report.status().message());
    std::printf("wrote %s and %s\n", report->model_path.c_str(), report->meta_path.c_str());
    std::printf("rows: %zu training, %zu validation (the latest by time); trees: %d kept of %d\n",
                report->train_rows, report->valid_rows, report->trees_kept, report->trees_trained);
    std::printf("validation: AUC %.4f, average precision %.4f\n", report->valid_auc,
                report->valid_average_precision);
    if (reg && *promote) {
      Status s = reg->promote(*name, version);
      if (!s.ok()) throw CommandError(s.message());
      std::printf("promoted %s version %s\n", name->c_str(), version.c_str());
    }
  });
}

CommandRegistrar reg("train", register_train);

}  // namespace
}  // namespace millrace::cli
