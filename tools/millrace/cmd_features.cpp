// millrace features: point-in-time backfill of training sets, and reads of a
// Redis-backed online store.
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "command.h"
#include "millrace/features/derived_features.h"
#include "millrace/features/feature_plan.h"
#include "millrace/store/derived_reads.h"
#include "millrace/store/online_store.h"
#include "millrace/store/redis_store.h"
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

struct GetArgs {
  std::string spec, key, feature_set;
  std::vector<std::string> inputs;
  int64_t at = 0;
};

void register_get(CLI::App& features) {
  auto args = std::make_shared<GetArgs>();
  auto* cmd = features.add_subcommand(
      "get", "Read one feature vector from a Redis-backed store (the spec's `store:`)");
  cmd->add_option("--spec", args->spec, "Pipeline spec (YAML) with store: redis://HOST:PORT")
      ->required();
  cmd->add_option("--key", args->key, "Entity key; composite keys as a|b")->required();
  cmd->add_option("--feature-set", args->feature_set,
                  "Feature set: the key's field names joined by '+' (default: the first one)");
  cmd->add_option("--at", args->at, "As of this event time, epoch ms (default: now)");
  cmd->add_option("--input", args->inputs,
                  "TABLE_SOURCE=URI: where a table's change records are (JSONL file or "
                  "log:DIR/TOPIC), as given to `millrace run`; default: the source's `uri`");
  cmd->footer(
      "Example:\n"
      "  millrace features get --spec fraud.yaml --feature-set terminal_id --key T42 \\\n"
      "      --at 1767312000000 --input merchant_changes=log:data/merchant_changes\n"
      "Prints {\"feature_set\", \"key\", \"at\", \"features\": {NAME: {\"value\", "
      "\"freshness\"}}}.\n"
      "Reads are exact at multiples of the slice size (docs/feature_store.md). Derived\n"
      "features that read only the set's features, key fields, batch values and tables\n"
      "are evaluated as of --at and follow the set's features. A table is rebuilt from\n"
      "its file and all its change records (read from its source's uri or --input);\n"
      "without them, the features that look it up are left out (a note says so).");
  cmd->callback([args] {
    auto spec = load_spec(args->spec);
    if (!spec.ok()) throw CommandError(spec.status().message(), 2);
    if (spec->store.uri.empty())
      throw CommandError(args->spec +
                             ": the spec keeps its store in process (no `store: redis://...`); "
                             "read it over HTTP from `millrace run --serve` instead",
                         2);
    FeaturePlan plan = plan_features(spec.value());
    if (plan.feature_sets.empty()) throw CommandError(args->spec + ": the spec has no features", 2);
    int set = args->feature_set.empty() ? 0 : plan.feature_set_index(args->feature_set);
    if (set < 0) {
      std::string list;
      for (const auto& s : plan.feature_sets) list += (list.empty() ? "" : ", ") + s.name;
      throw CommandError(fmt::format("--feature-set {}: not in the spec (feature sets: {})",
                                     args->feature_set, list),
                         2);
    }
    auto store = RedisStore::Open(spec.value(), plan);
    if (!store.ok()) throw CommandError(store.status().message());
    TimeMs at = args->at ? args->at : wall_clock_ms();
    std::vector<std::pair<std::string, std::string>> inputs;
    for (const std::string& v : args->inputs) {
      const size_t eq = v.find('=');
      if (eq == std::string::npos || table_source_index(spec.value(), v.substr(0, eq)) < 0) {
        std::string list;
        for (const auto& s : spec->table_sources) list += (list.empty() ? "" : ", ") + s.name;
        throw CommandError(
            fmt::format("--input {}: expected TABLE_SOURCE=URI naming a source that feeds a "
                        "table (the spec's: {})",
                        v, list.empty() ? "none" : list),
            2);
      }
      inputs.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    }
    // Derived features the vector can take, with the spec's batch values and
    // tables. A table holds all its change records, each at its time (reads
    // as of `at` see those with time <= at); a table whose change records are
    // nowhere to be found is left out, with the features that read it.
    DerivedFeatures::Options dopts;
    dopts.watch_batch_files = false;
    dopts.unfed_tables_ok = true;
    auto derived = DerivedFeatures::Open(spec.value(), dopts, inputs);
    if (!derived.ok()) throw CommandError(derived.status().message());
    std::unique_ptr<DerivedReads> reads;
    if (derived.value()) {
      // Bad and late change records were reported by the run that read them.
      if (Status s = derived.value()->advance_to(kMaxTime, kMinTime, [](auto, auto, auto) {});
          !s.ok())
        throw CommandError(s.message());
      const auto& tables = spec->derived->tables;
      for (size_t i = 0; i < tables.size(); ++i)
        if (!derived.value()->table_fed(i))
          std::fprintf(stderr,
                       "millrace: table '%s': source '%s' has no uri: the features that look "
                       "it up are left out (give --input %s=URI, as to millrace run, or a uri "
                       "in the spec)\n",
                       tables[i].name.c_str(), tables[i].source.c_str(), tables[i].source.c_str());
      reads = std::make_unique<DerivedReads>(spec.value(), plan, *store.value(), *derived.value());
    }
    const OnlineStore& from = reads ? static_cast<const OnlineStore&>(*reads) : *store.value();
    FeatureVector v;
    std::string key = parse_entity_key(args->key);
    if (Status s = from.read(set, key, at, &v); !s.ok()) throw CommandError(s.message());
    std::printf("%s\n", v.to_json(plan.feature_sets[set].name, key, at).c_str());
  });
}

void register_features(CLI::App& app) {
  auto* cmd = app.add_subcommand("features", "Feature store: backfill training sets, read vectors");
  cmd->footer(
      "Example:\n"
      "  millrace features backfill --spec apps/fraud/fraud.yaml --input transactions=tx.jsonl \\\n"
      "      --input labels=labels.jsonl --labels labels.jsonl --output train.csv\n"
      "  millrace features get --spec spec.yaml --key C42\n");
  cmd->require_subcommand(1);
  register_backfill(*cmd);
  register_get(*cmd);
}

CommandRegistrar reg("features", register_features);

}  // namespace
}  // namespace millrace::cli
