// run_pipeline: runs a spec over an input until the input ends (or forever
// when following a log), on one source thread, N worker threads and one sink
// thread:
//
//   source: read -> parse (simdjson, against the schema) -> late check ->
//           watermark -> route by key hash to the owners of the event's keys
//   worker: owns whole key groups (256, by key hash) and their state; runs the
//           sliding features and window operators of its keys
//   sink:   writes results in input order (deterministic whatever the number
//           of workers), late events and dead letters
//
// Memory is bounded: at most `max_in_flight` events are between the source
// and the sink (a ring of slots); a slow worker or sink blocks the source.
// Unless `worker_thread` is set, the source thread runs worker 0 itself, batch
// by batch (N - 1 worker threads); with one worker it also writes the results
// itself (no sink thread), over a ring of at most 128 slots.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/event.h"
#include "millrace/core/status.h"
#include "millrace/features/feature_value.h"
#include "millrace/stream/spec.h"
#include "millrace/stream/stage_latency.h"

namespace millrace {

struct ScoreResult;

// Events made in memory (benchmarks): fills `event` directly, no parsing.
class EventGenerator {
 public:
  virtual ~EventGenerator() = default;
  // Fills the next event; false at the end.
  virtual bool next(Event* event) = 0;
  // True when next() may wait for something outside (a signal, a clock): the
  // runtime then finishes every event it has before asking for the next, so
  // that reads see them. Generators that never wait return false and let
  // the runtime batch events.
  virtual bool may_wait() const { return true; }
};

struct RunOptions {
  std::string input = "-";  // file, "-" or log:DIR/TOPIC (a spec with one source)
  // Inputs by source name ("transactions", "labels.jsonl"); a source not named
  // here reads its spec `uri`.
  std::vector<std::pair<std::string, std::string>> source_inputs;
  std::string output = "-";    // enriched events and window results
  std::string late_output;     // late events ("" : counted only)
  std::string dead_letter;     // malformed records ("" : counted, first ones on stderr)
  std::string shadow_output;   // scores of the shadow model, if the spec has one
  bool follow = false;         // log input: wait for new records
  std::string group;           // log input: consumer group
  int workers = 0;             // 0: spec's `workers`, else one per hardware thread
  bool worker_thread = false;  // run worker 0 on a thread too (else on the source thread)
  // Ring slots between source and sink (a power of two). 512 keeps the ring
  // (about 1 KB a slot) in the caches: with 8192 slots every event touched
  // cold slot memory on three threads, and 2 workers took 1.5x the CPU.
  size_t max_in_flight = 512;
  bool progress = false;                     // print progress on stderr
  std::string serve;                         // HOST:PORT of the HTTP API ("" : none)
  std::function<void(int port)> on_serving;  // told the port once the API listens
  EventGenerator* generator = nullptr;       // instead of `input`
  std::atomic<bool>* stop = nullptr;         // set to end the run (signals)

  // Checkpoints and exactly-once outputs (docs/fault_tolerance.md).
  std::string checkpoint_dir;             // "" : none
  int64_t checkpoint_interval_ms = 5000;  // processing time between checkpoints
  int checkpoint_keep = 3;                // complete checkpoints kept
  bool stop_at_end = false;               // log input: end once every partition is read to its end
  // Keyed state backend: "" (the spec's `state:`, else memory), "memory" or
  // "rocksdb" (per-event feature state beyond `state_cache_keys` keys per
  // feature key and worker lives in RocksDB, under DIR/state with checkpoints,
  // else in a temporary directory).
  std::string state_backend;
  size_t state_cache_keys = 0;  // 0: the spec's `state.cache_keys`, else 65536
  // Told what recovery found and settled (skipped checkpoints, outputs
  // committed or discarded), as it happens; also kept in RunStats.
  std::function<void(const std::string&)> on_recovery;
  // Called on the sink thread, in input order, with every accepted event of
  // the scored source and its feature values (indexed by spec feature).
  std::function<void(const Event&, const FeatureValue*)> on_vector;
  bool write_events = true;  // false: enriched events are not formatted nor written
  // With a model: called on the sink thread, in input order, with every scored
  // event, its feature values and its score and decision.
  std::function<void(const Event&, const FeatureValue*, const ScoreResult&)> on_scored;
  // Measure each scored event's stages (RunStats::latency; stage_latency.h).
  bool stage_latency = false;
  // Pace the input: record n is due at start + n / max_rate (0: read as fast
  // as possible). Latency then counts from when a record is due, so a backlog
  // shows in it.
  double max_rate = 0;
  // With max_rate or stage_latency: the first `warmup_records` records are
  // read as fast as possible and not timed; the schedule starts after them.
  // The latency is then that of a running pipeline's state rather than of its
  // first seconds, when every key is new (a restarted pipeline restores its
  // state from a checkpoint).
  uint64_t warmup_records = 0;
};

// Checkpoint figures of a run.
struct CheckpointStats {
  uint64_t count = 0;          // checkpoints completed
  uint64_t restored_from = 0;  // checkpoint id resumed from, 0 if none
  double recovery_ms = 0;      // loading and restoring it, settling the outputs
  double last_duration_ms = 0, max_duration_ms = 0, total_duration_ms = 0;  // barrier -> committed
  double max_alignment_ms = 0;        // barrier injected -> taken by the last worker
  double max_pause_ms = 0;            // longest time a worker spent copying its state
  uint64_t last_bytes = 0;            // size of the last checkpoint's state
  std::vector<std::string> warnings;  // what recovery found and settled
};

struct RunStats {
  uint64_t records = 0;   // records read
  uint64_t accepted = 0;  // events that reached the features
  uint64_t late_dropped = 0;
  uint64_t late_side_output = 0;
  uint64_t dead_letters = 0;
  uint64_t outputs = 0;              // enriched events written
  uint64_t other_source_events = 0;  // accepted events of sources other than the scored one
  // Batches of events handed to the workers: a batch fills (up to 32) only
  // while records wait to be read; a record with none behind it goes alone.
  uint64_t handoffs = 0;
  uint64_t behind_schedule =
      0;  // paced (max_rate): records already due when the source got to them
  uint64_t window_results = 0;
  uint64_t window_late_dropped = 0;
  uint64_t window_late_side_output = 0;
  uint64_t decisions[3] = {0, 0, 0};  // approve, challenge, decline
  std::string champion_quality;       // with `model.label`: "n=... auc=... ap=..."
  std::string shadow_quality;
  double shadow_mean_abs_diff = -1;  // mean |shadow - champion| score, -1 without a shadow
  uint64_t model_reloads = 0;        // models swapped in while running
  double seconds = 0;
  // CPU time of each thread: the source (with worker 0, unless
  // `worker_thread`), each worker thread, the sink.
  double source_cpu_seconds = 0, sink_cpu_seconds = 0;
  std::vector<double> worker_cpu_seconds;
  int workers = 0;
  size_t keys = 0;         // live keys at the end of the input, over all key groups
  size_t state_bytes = 0;  // feature and window state then (before the final flush)
  TimeMs watermark = 0;
  CheckpointStats checkpoints;
  // Per feature: the age of the values the scored source's events were given
  // (event time - freshness), over the run.
  struct Freshness {
    std::string feature;
    uint64_t n = 0;
    double p50 = -1, p95 = -1, p99 = -1;  // ms
  };
  std::vector<Freshness> freshness;
  std::string derived;                    // batch reloads and table changes, when the spec has them
  std::shared_ptr<StageLatency> latency;  // with RunOptions::stage_latency
};

Result<RunStats> run_pipeline(const PipelineSpec& spec, const RunOptions& opts);

// One line of figures for people ("1,234,567 events in 1.2 s (1.0 M/s) ...").
std::string format_run_stats(const RunStats& stats);

// The freshness table printed at the end of a run ("" without features).
std::string format_freshness(const RunStats& stats);

}  // namespace millrace
