// millrace features: point-in-time backfill of training sets, and reads of a
// Redis-backed online store.
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "command.h"
#include "millrace/stream/backfill.h"
#include "millrace/stream/spec.h"
#include "source_inputs.h"

namespace millrace::cli {
namespace {

struct BackfillArgs {
  std::string spec;
  std::vector<std::string> inputs;
  BackfillOptions opts;
  bool quiet = false;
};

void register_backfill(CLI::App& features) {
  auto args = std::make_shared<BackfillArgs>();
  auto* cmd = features.add_subcommand(
      "backfill", "Write a training set: each scored event's feature vector as served online");
  cmd->add_option("--spec", args->spec, "Pipeline spec (YAML)")->required();
  cmd->add_option("--input", args->inputs,
                  "SOURCE=URI once per source (JSONL file, - or log:DIR/TOPIC); a spec with one "
                  "source also takes a plain URI; default: each source's `uri`");
  cmd->add_option("--output", args->opts.output, "CSV output (default -: stdout)");
  cmd->add_option("--labels", args->opts.labels,
                  "JSONL file of labels, joined to the scored events by id");
  cmd->add_option("--label-field", args->opts.label_field,
                  "Field of the label records holding the label (default is_fraud)");
  cmd->add_option("--label-id", args->opts.label_id,
                  "Field of the label records holding the event id (default id)");
  cmd->add_option("--event-id", args->opts.event_id,
                  "Field of the scored events holding their id (default id)");
  cmd->add_option("--dead-letter", args->opts.dead_letter, "Where malformed records go");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress and no summary on stderr");
  cmd->footer(
      "Example:\n"
      "  millrace features backfill --spec fraud.yaml --input transactions=tx.jsonl \\\n"
      "      --input labels=labels.jsonl --labels labels.jsonl --label-id tx_id \\\n"
      "      --label-field is_fraud --output train.csv\n"
      "Every source is replayed merged by event time through the same feature code as\n"
      "`millrace run`: a row holds the event's fields, its features as of that event,\n"
      "and the label. See docs/feature_store.md.");
  cmd->callback([args] {
    auto spec = load_spec(args->spec);
    if (!spec.ok()) throw CommandError(spec.status().message(), 2);
    if (auto s = split_inputs(spec.value(), args->inputs, &args->opts.input, &args->opts.inputs);
        !s.ok())
      throw CommandError(s.message(), 2);
    args->opts.progress = !args->quiet && isatty(STDERR_FILENO);
    auto stats = run_backfill(spec.value(), args->opts);
    if (!stats.ok()) throw CommandError(stats.status().message());
    if (!args->quiet) {
      const BackfillStats& b = stats.value();
      std::string labels =
          args->opts.labels.empty()
              ? ""
              : fmt::format(", {} with a label ({} label records)", b.labeled, b.labels);
      std::fprintf(stderr, "millrace: %llu rows%s; %s\n", static_cast<unsigned long long>(b.rows),
                   labels.c_str(), format_run_stats(b.run).c_str());
    }
  });
}

void register_features(CLI::App& app) {
  auto* cmd = app.add_subcommand("features", "Feature store: backfill training sets, read vectors");
  cmd->require_subcommand(1);
  register_backfill(*cmd);
}

CommandRegistrar reg("features", register_features);

}  // namespace
}  // namespace millrace::cli
