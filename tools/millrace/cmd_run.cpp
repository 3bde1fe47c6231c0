// millrace run: runs a pipeline spec over an input.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include <fmt/format.h>

#include "command.h"
#include "millrace/core/time.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "source_inputs.h"

namespace millrace::cli {
namespace {

std::atomic<bool> g_stop{false};

}  // namespace

Status split_inputs(const PipelineSpec& spec, const std::vector<std::string>& values,
                    std::string* single, std::vector<std::pair<std::string, std::string>>* named) {
  for (const auto& v : values) {
    size_t eq = v.find('=');
    if (eq != std::string::npos && (source_index(spec, v.substr(0, eq)) >= 0 ||
                                    table_source_index(spec, v.substr(0, eq)) >= 0)) {
      named->emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (spec.sources.size() == 1) {
      *single = v;
    } else {
      std::string list;
      for (const auto& s : spec.sources) list += (list.empty() ? "" : ", ") + s.name;
      return Status::Error(fmt::format(
          "--input {}: the spec has several sources; name one: --input SOURCE=URI (sources: {})", v,
          list));
    }
  }
  return Status::Ok();
}

namespace {

void on_signal(int) {
  g_stop.store(true);
}

struct RunArgs {
  std::string spec;
  std::vector<std::string> inputs;
  RunOptions opts;
  bool quiet = false;
  bool check = false;
  std::string checkpoint_interval = "5s";
};

void register_run(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Run a pipeline spec: features, windows, outputs");
  cmd->add_option("--spec", args->spec, "Pipeline spec (YAML)")->required();
  cmd->add_option("--input", args->inputs,
                  "Input: a JSONL file, - for stdin, or log:DIR/TOPIC (default -); with several "
                  "sources, SOURCE=URI once per source (default: each source's `uri`)");
  cmd->add_option("--output", args->opts.output,
                  "Output for enriched events and window results: file, - or log:DIR/TOPIC");
  cmd->add_option("--late-output", args->opts.late_output,
                  "Where late events go when a policy is side_output (default: counted only)");
  cmd->add_option("--dead-letter", args->opts.dead_letter,
                  "Where malformed records go, with the reason (default: counted; the first "
                  "five are shown on stderr)");
  cmd->add_option("--shadow-output", args->opts.shadow_output,
                  "Where the shadow model's scores go (spec model.shadow)");
  cmd->add_option("--workers", args->opts.workers,
                  "Worker threads (default: the spec's `workers`, else one per hardware thread)");
  cmd->add_option("--max-in-flight", args->opts.max_in_flight,
                  "Events between source and sink at most (memory bound; default 512)");
  cmd->add_flag("--follow", args->opts.follow, "Log input: keep waiting for new records");
  cmd->add_option("--group", args->opts.group,
                  "Log input: consumer group; resumes from and commits its offsets");
  cmd->add_option("--serve", args->opts.serve,
                  "Serve the HTTP API on HOST:PORT: GET /v1/health, GET /v1/metrics, "
                  "GET /v1/features/{feature_set}/{key}?at=MS, POST /v1/models/reload");
  cmd->add_option("--checkpoint-dir", args->opts.checkpoint_dir,
                  "Take checkpoints here and resume from the newest valid one; file and log "
                  "outputs become exactly-once (docs/fault_tolerance.md)");
  cmd->add_option("--checkpoint-interval", args->checkpoint_interval,
                  "Time between checkpoints (default 5s; e.g. 500ms, 1s, 1m)");
  cmd->add_option("--checkpoint-keep", args->opts.checkpoint_keep,
                  "Complete checkpoints kept (default 3)");
  cmd->add_option("--state", args->opts.state_backend,
                  "Keyed state backend: memory or rocksdb (default: the spec's `state:`, else "
                  "memory); rocksdb keeps per-event feature state beyond the cache on disk")
      ->check(CLI::IsMember({"memory", "rocksdb"}));
  cmd->add_option("--state-cache-keys", args->opts.state_cache_keys,
                  "rocksdb: keys kept in memory per feature key and worker (default 65536)");
  cmd->add_flag("--stop-at-end", args->opts.stop_at_end,
                "Log input: end once every partition is read to its end (even with --follow), "
                "after the windows are flushed and the last checkpoint is committed");
  cmd->add_flag("--latency", args->opts.stage_latency,
                "With a model: measure each event's stages (ingest, feature computation, feature "
                "retrieval, inference, decision, total) and print p50/p99/p99.9 at the end");
  cmd->add_option("--max-rate", args->opts.max_rate,
                  "Read at most this many records a second (a paced replay; latency then counts "
                  "from when each record is due)");
  cmd->add_option("--warm-up", args->opts.warmup_records,
                  "With --max-rate or --latency: read this many records first at full speed, "
                  "untimed; the schedule and the timing start after them (default 0)");
  cmd->add_flag("--check", args->check, "Only check the spec and exit");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress and no summary on stderr");
  cmd->footer(
      "Example:\n"
      "  millrace run --spec apps/quickstart/spec.yaml --input events.jsonl \\\n"
      "      --output out.jsonl --late-output late.jsonl --dead-letter dead.jsonl\n"
      "  millrace run --spec spec.yaml --input log:data/tx --output log:data/features \\\n"
      "      --checkpoint-dir ckpt --checkpoint-interval 1s   # exactly-once, resumable\n"
      "Several sources (merged by event time; docs/feature_store.md):\n"
      "  millrace run --spec fraud.yaml --input transactions=tx.jsonl \\\n"
      "      --input labels=labels.jsonl --output out.jsonl --serve 127.0.0.1:8080\n"
      "Output records are the input events with one field per feature; window results\n"
      "carry \"window\", \"window_start\", \"window_end\" and \"kind\". See docs/semantics.md.");
  cmd->callback([args] {
    auto spec = load_spec(args->spec);
    if (!spec.ok()) throw CommandError(spec.status().message(), 2);
    if (args->check) {
      std::printf("%s: ok (%zu fields, %zu features, %zu windows)\n", args->spec.c_str(),
                  spec->source.schema.size(), spec->features.size(), spec->windows.size());
      return;
    }
    auto interval = parse_duration_ms(args->checkpoint_interval);
    if (!interval.ok())
      throw CommandError("--checkpoint-interval: " + interval.status().message(), 2);
    args->opts.checkpoint_interval_ms = interval.value();
    if (auto s =
            split_inputs(spec.value(), args->inputs, &args->opts.input, &args->opts.source_inputs);
        !s.ok())
      throw CommandError(s.message(), 2);
    args->opts.progress = !args->quiet && isatty(STDERR_FILENO);
    args->opts.stop = &g_stop;
    std::string host = args->opts.serve.substr(0, args->opts.serve.rfind(':'));
    args->opts.on_serving = [host](int port) {
      std::fprintf(stderr,
                   "millrace: serving http://%s:%d (/v1/health, /v1/metrics, "
                   "/v1/features/{feature_set}/{key}, POST /v1/models/reload)\n",
                   host.c_str(), port);
    };
    args->opts.on_recovery = [](const std::string& what) {
      std::fprintf(stderr, "millrace: recovery: %s\n", what.c_str());  // even with --quiet
    };
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    auto stats = run_pipeline(spec.value(), args->opts);
    if (!stats.ok()) throw CommandError(stats.status().message());
    if (!args->quiet) {
      std::fprintf(stderr, "millrace: %s\n", format_run_stats(stats.value()).c_str());
      std::string fresh = format_freshness(stats.value());
      if (!fresh.empty())
        std::fprintf(stderr, "millrace: feature freshness (age of served values):\n%s",
                     fresh.c_str());
      if (stats->latency)
        std::fprintf(stderr, "millrace: latency of scored events:\n%s",
                     stats->latency->table().c_str());
    }
  });
}

CommandRegistrar reg("run", register_run);

}  // namespace
}  // namespace millrace::cli
