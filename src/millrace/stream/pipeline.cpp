#include "millrace/stream/pipeline.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "millrace/core/entity_key.h"
#include "millrace/core/event_parser.h"
#include "millrace/core/hash.h"
#include "millrace/core/json_writer.h"
#include "millrace/core/latency_histogram.h"
#include "millrace/features/derived_features.h"
#include "millrace/features/feature_plan.h"
#include "millrace/features/feature_value.h"
#include "millrace/features/sliding_features.h"
#include "millrace/model/score_quality.h"
#include "millrace/serve/http_server.h"
#include "millrace/state/rocks_state.h"
#include "millrace/store/derived_reads.h"
#include "millrace/store/embedded_store.h"
#include "millrace/store/freshness.h"
#include "millrace/store/redis_store.h"
#include "millrace/stream/checkpoint.h"
#include "millrace/stream/exactly_once.h"
#include "millrace/stream/io.h"
#include "millrace/stream/multi_source.h"
#include "millrace/stream/scoring.h"
#include "millrace/stream/spsc_queue.h"
#include "millrace/stream/watermark.h"
#include "millrace/window/window_operator.h"

namespace millrace {
namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TimeMs now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

// Messages prefetched and processed together.
constexpr size_t kBatch = 32;
// Ring slots with an inline sink (a few batches).
constexpr size_t kInlineSlots = 4 * kBatch;
// The sink publishes how far it has written every this many slots (and before it waits).
constexpr uint64_t kReleaseEvery = 64;

enum class SlotKind : uint8_t { Event, Late, Dead, Watermark, Barrier, Stop };

struct Slot {
  SlotKind kind = SlotKind::Event;
  int source = 0;    // index into spec.sources
  std::string line;  // the raw record, with simdjson padding after it
  Event event;
  TimeMs wm_before = kMinTime, wm_after = kMinTime;
  uint32_t partition = 0;
  uint64_t offset = 0;
  std::vector<std::string> keys;     // per key group
  std::vector<uint64_t> key_hashes;  // hash_string(keys[g])
  std::vector<FeatureValue> values;  // per feature
  std::vector<TimeMs> freshness;     // per feature read as of the event (other sources)
  std::string out;                   // the formatted record for the sink
  uint64_t seq = 0;                  // Event: its sequence number (table changes' stamps)
  // Event: the dead letters and late records of table change records read
  // before it (the sink writes them before the event and clears them).
  std::string table_dead, table_late;
  std::vector<WindowOutput> wout;  // per (worker, window)
  ScoreResult score;               // when the spec has a model
  std::string shadow_out;
  // Barrier: the checkpoint, what the source saved, and timings (steady ns).
  uint64_t checkpoint = 0;
  std::shared_ptr<SourceCheckpoint> source_state;
  int64_t injected_ns = 0;
  std::atomic<int64_t> taken_ns{0}, pause_ns{0};  // max over workers
  std::atomic<int32_t> pending{0};
  std::atomic<uint64_t> ready{0};  // seq + 1 once the slot is complete
  // Stage timing (RunOptions::stage_latency), StageClock ticks: when the
  // record was due, when the first worker started on it, and the workers'
  // time on its own features and on reads of other sources' features.
  int64_t due = 0;
  std::atomic<int64_t> started{0}, feature_ticks{0}, retrieval_ticks{0};
};

struct Message {
  uint64_t seq = 0;
  uint32_t mask = 0;  // key groups of the event this worker owns
};

class Pipeline {
 public:
  Pipeline(const PipelineSpec& spec, const RunOptions& opts)
      : spec_(spec), opts_(opts), plan_(plan_features(spec)) {}

  Result<RunStats> run();

 private:
  Status open_io();
  void source_loop();
  void worker_loop(int w);
  // Processes one message; `windows_done`: its event already went to the
  // window operators (run_windows).
  bool process(int w, const Message& m, bool windows_done = false);
  // Hands the window operators the events of consecutive event messages in
  // one on_events call per window, each event's results going to its own slot.
  void run_windows(int w, const Message* msgs, size_t n);
  // Processes messages in order, after prefetching the key states of their
  // events in stages so that the batch's cache misses overlap. False once a
  // Stop message is processed.
  bool process_batch(int w, const Message* msgs, size_t n);
  // One worker on the source thread: messages wait here for a batch.
  void flush_inline();
  void advance(int w, TimeMs wm, Slot& s);
  void dispatch(int w, const Message& m);
  void sink_loop();
  // The sink's work, on the sink thread or, with an inline sink, on the
  // source thread: sink_begin() once, sink_write() for each complete slot in
  // order (true once the Stop slot is written), sink_end() after the last.
  void sink_begin();
  bool sink_write(Slot& s);
  void sink_end();
  // Inline sink: writes every complete slot in order, as far as the first
  // incomplete one, and releases them.
  void drain_inline_sink();

  Slot& slot(uint64_t seq) { return *slots_[seq & (slots_.size() - 1)]; }
  Slot& acquire(uint64_t seq);
  void complete(Slot& s, uint64_t seq);
  // Completes an event on thread `t` (a worker, or nworkers_ for the source):
  // derived features, scoring, the output record.
  void format_event(Slot& s, int t);
  // format_event()'s parts: the derived features (returns their ticks when
  // timed), and the output record.
  int64_t derive_event(Slot& s, int t);
  void write_event(Slot& s);
  // With a model, the scored source's events a worker finishes are scored
  // together at the end of its batch (finish_scored()); the others complete at once.
  struct ScoredBatch {
    std::vector<uint64_t> seqs;
    std::vector<Scorer::BatchItem> items;
    std::vector<int64_t> derive_ticks;
  };
  std::vector<ScoredBatch> scored_;  // per worker
  void finish_scored(int w);
  void format_dead(Slot& s, std::string_view error);
  void append_origin(const Slot& s, std::string& out) const;
  void format_late(Slot& s, TimeMs watermark);
  void broadcast(SlotKind kind, TimeMs wm);
  // Makes the messages staged for every worker visible: the worker threads'
  // first (they start on them), then worker 0's, run here when it is inline.
  void publish_all() {
    if (staged_ != 0) ++stats_.handoffs;
    for (auto& q : queues_) q->publish();
    if (inline_worker_) flush_inline();
    if (inline_sink_) drain_inline_sink();
    staged_ = 0;
  }
  void fail(const Status& s);
  // A worker is done with slot s: true for the last of the workers it went to.
  // One worker is always the last (no read-modify-write per event).
  bool last_worker(Slot& s) {
    return nworkers_ == 1 || s.pending.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }

  // Checkpoints (stream/checkpoint.h); all no-ops without a checkpoint dir.
  Status open_checkpoints();
  Result<std::unique_ptr<RecordWriter>> open_output(const std::string& uri);
  Status restore_workers();
  void inject_barrier(const WatermarkTracker& wm, TimeMs last_broadcast, uint64_t since_broadcast);
  void snapshot_worker(int w, Slot& s);
  Status complete_checkpoint(Slot& s);
  bool checkpointing() const { return ckpt_store_ != nullptr; }
  std::unique_ptr<CheckpointStore> ckpt_store_;
  std::unique_ptr<CheckpointPartWriter> ckpt_parts_;
  std::optional<RestoredCheckpoint> restored_;
  std::vector<std::pair<std::string, EpochWriter*>> epoch_writers_;
  std::vector<RecordWriter*> plain_writers_;  // flushed at checkpoints, not exactly-once
  uint64_t next_checkpoint_ = 1;              // source only
  bool tables_read_to_end_ = false;           // source only: the change inputs are all read
  // Following an input that has nothing new: the source asks for the outputs
  // to be flushed once the sink has written the slots before flush_to_.
  std::atomic<uint64_t> flush_to_{0};
  uint64_t flushed_to_ = 0;     // sink only
  void flush_when_caught_up();  // sink (or the source thread, with an inline sink)
  std::string spec_fingerprint_;
  // Keyed state backend.
  Status resolve_state_backend();
  Status open_state_stores();
  std::string state_backend_ = "memory";
  size_t cache_keys_ = 65536;
  std::string state_tmp_dir_;  // removed at the end (RocksDB without checkpoints)

  const PipelineSpec& spec_;
  const RunOptions& opts_;
  FeaturePlan plan_;
  std::unique_ptr<EmbeddedStore> store_;
  std::unique_ptr<RedisStore> redis_;      // reads, when the spec keeps the store in Redis
  std::vector<int> unread_features_;       // features the scored source's events do not carry
  std::vector<std::string> feature_keys_;  // per feature: `, "name": `, escaped once
  std::unique_ptr<Scorer> scorer_;
  std::unique_ptr<DerivedFeatures> derived_;
  // HTTP reads: the store's vectors with the derived features they can take.
  std::unique_ptr<DerivedReads> derived_reads_;
  std::vector<std::unique_ptr<DerivedFeatures::Evaluator>> evaluators_;  // per thread
  std::unique_ptr<RecordWriter> shadow_;
  int nworkers_ = 1;
  uint16_t owner_[kKeyGroups] = {};  // the worker of each key group: kg % nworkers_
  // Worker 0 runs on the source thread, batch by batch (no hand-off, no
  // wake-up); the others, if any, on threads of their own.
  bool inline_worker_ = false;
  // With one worker, inline, every slot is complete once the batch is run: the
  // source thread writes the outputs itself (no sink thread, no hand-off), and
  // the ring's slots are reused while still in the cache.
  bool inline_sink_ = false;
  // The sink's state.
  struct Sink {
    model::ScoreQuality champion_quality{1u << 30}, shadow_quality{1u << 30};
    double shadow_diff = 0;
    uint64_t shadow_n = 0;
    std::vector<std::vector<uint64_t>> next_offsets;  // per source and partition
    uint64_t next = 0;                                // the next slot to write
    bool stopped = false;                             // the Stop slot is written
  } sink_;
  bool emit_events_ = false;

  std::unique_ptr<SourceMerger> sources_;
  std::unique_ptr<RecordWriter> output_, late_, dead_;
  std::vector<std::unique_ptr<RecordWriter>> window_outputs_;  // per window ("" -> output_)

  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::unique_ptr<SpscQueue<Message>>> queues_;
  std::vector<Message> inline_batch_;  // source only, with one inline worker
  uint64_t next_seq_ = 0;              // source only
  uint32_t staged_ = 0;                // source only: messages not yet published
  // Slots the sink has finished, published every kReleaseEvery slots and
  // whenever the sink waits (a worker spilling window results waits for it).
  std::atomic<uint64_t> released_{0};
  uint64_t released_seen_ = 0;  // source only: the last value read

  // Worker state, indexed by worker.
  struct Worker {
    std::vector<std::unique_ptr<WindowOperator>> windows;  // per window spec
    std::unique_ptr<RocksKeyedState> store;                // RocksDB backend
    size_t snapshot_bytes = 0;                             // of the last checkpoint
    std::unique_ptr<FreshnessStats> freshness;             // per feature, scored events
    std::unique_ptr<RedisStoreWriter> redis;               // `store: redis://...`
    SlidingFeatureGroup::ReadScratch scratch;
    TimeMs watermark = kMinTime;
    size_t keys = 0, state_bytes = 0;
    uint64_t seq = 0;  // the slot being processed (run_windows: the run's first)
    std::vector<std::vector<WindowEvent>> window_events;  // per window, run_windows
    std::vector<bool> window_of_event;
    const Message* run = nullptr;  // run_windows' messages
    size_t run_n = 0;
  };
  std::vector<Worker> workers_;
  // Writes a chunk of window results of the slot worker w is processing,
  // once the sink has written every earlier slot (WindowOutput::spill).
  void spill_window_results(int w, size_t window, WindowOutput& wo);
  std::mutex spill_mu_;  // workers spilling in the same slot

  // Counters readable while the pipeline runs (HTTP API), published in batches.
  struct Live {
    std::atomic<uint64_t> records{0}, accepted{0}, late_dropped{0}, late_side_output{0},
        dead_letters{0}, outputs{0}, window_results{0}, decisions[3]{};
    std::atomic<TimeMs> watermark{kMinTime};
  } live_;
  void publish_source_counters(TimeMs watermark);
  std::string metrics_text() const;
  std::unique_ptr<HttpServer> http_;

  std::mutex error_mu_;
  Status error_;
  std::atomic<bool> failed_{false};
  RunStats stats_;
  // Stage timing: one set of histograms per thread (workers, then the source).
  bool timed_ = false;
  std::vector<StageLatency> latency_;
  void record_latency(Slot& s, int t, int64_t feature_ticks);
  std::atomic<uint64_t> dead_shown_{0};
};

Status Pipeline::open_io() {
  if (opts_.generator == nullptr) {
    ReaderOptions ro;
    ro.follow = opts_.follow && !opts_.stop_at_end;
    ro.group = opts_.group;
    if (restored_) ro.resume = &restored_->manifest.source.reader;
    if (checkpointing() && spec_.sources.size() > 1)
      return Status::Error(
          fmt::format("{}: checkpoints support specs with one source for now; this one has {}",
                      spec_.file, spec_.sources.size()));
    std::vector<std::string> uris(spec_.sources.size());
    if (spec_.sources.size() == 1) uris[0] = opts_.input;
    for (const auto& [name, uri] : opts_.source_inputs) {
      int i = source_index(spec_, name);
      if (i < 0 && table_source_index(spec_, name) >= 0) continue;  // read by its table
      if (i < 0) {
        std::string list;
        for (const auto& src : spec_.sources) list += (list.empty() ? "" : ", ") + src.name;
        return Status::Error(fmt::format("--input {}={}: the spec has no source '{}' (sources: {})",
                                         name, uri, name, list));
      }
      uris[i] = uri;
    }
    auto r = SourceMerger::Open(spec_, uris, ro);
    if (!r.ok()) return r.status();
    sources_ = std::move(r.value());
    if (checkpointing() && spec_.sources.size() > 1)
      return Status::Error(spec_.file +
                           ": checkpoints support specs with one source for now; run without "
                           "--checkpoint-dir, or split the pipeline");
    if (checkpointing() && !sources_->reader(0).position())
      return Status::Error(opts_.input +
                           ": checkpoints need an input that can be read again from a position: a "
                           "file or log:DIR/TOPIC, not stdin");
  }
  auto o = open_output(opts_.output);
  if (!o.ok()) return o.status();
  output_ = std::move(o.value());
  auto l = open_output(opts_.late_output);
  if (!l.ok()) return l.status();
  late_ = std::move(l.value());
  auto d = open_output(opts_.dead_letter);
  if (!d.ok()) return d.status();
  dead_ = std::move(d.value());
  for (const auto& w : spec_.windows) {
    if (w.output.empty()) {
      window_outputs_.push_back(nullptr);
      continue;
    }
    auto wo = open_output(w.output);
    if (!wo.ok()) return wo.status();
    window_outputs_.push_back(std::move(wo.value()));
  }
  return Status::Ok();
}

void Pipeline::publish_source_counters(TimeMs watermark) {
  live_.records.store(stats_.records, std::memory_order_relaxed);
  live_.accepted.store(stats_.accepted, std::memory_order_relaxed);
  live_.late_dropped.store(stats_.late_dropped, std::memory_order_relaxed);
  live_.late_side_output.store(stats_.late_side_output, std::memory_order_relaxed);
  live_.dead_letters.store(stats_.dead_letters, std::memory_order_relaxed);
  live_.watermark.store(watermark, std::memory_order_relaxed);
}

std::string Pipeline::metrics_text() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v, const char* labels = "") {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0}{2} {3}\n", name, help, labels, v);
  };
  auto load = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  counter("millrace_records_total", "Records read from the input.", load(live_.records));
  counter("millrace_events_accepted_total", "Events that reached features and windows.",
          load(live_.accepted));
  counter("millrace_late_events_total", "Events late at the source.",
          load(live_.late_dropped) + load(live_.late_side_output));
  counter("millrace_dead_letters_total", "Malformed records sent to the dead-letter output.",
          load(live_.dead_letters));
  counter("millrace_outputs_total", "Enriched events written.", load(live_.outputs));
  counter("millrace_window_results_total", "Window results written.", load(live_.window_results));
  if (scorer_) {
    out +=
        "# HELP millrace_decisions_total Decisions by action.\n# TYPE millrace_decisions_total "
        "counter\n";
    const char* actions[] = {"approve", "challenge", "decline"};
    for (int i = 0; i < 3; ++i)
      out += fmt::format("millrace_decisions_total{{action=\"{}\"}} {}\n", actions[i],
                         load(live_.decisions[i]));
    out += fmt::format(
        "# HELP millrace_model_swaps_total Models swapped in while running.\n"
        "# TYPE millrace_model_swaps_total counter\nmillrace_model_swaps_total {}\n",
        scorer_->reloads());
  }
  TimeMs wm = live_.watermark.load(std::memory_order_relaxed);
  out += fmt::format(
      "# HELP millrace_watermark_ms Event-time watermark (epoch ms).\n"
      "# TYPE millrace_watermark_ms gauge\nmillrace_watermark_ms {}\n",
      wm == kMinTime ? 0 : wm);
  if (!spec_.features.empty()) {
    out +=
        "# HELP millrace_feature_age_ms Age of the feature values served to scored events "
        "(event time - freshness).\n# TYPE millrace_feature_age_ms summary\n";
    std::vector<const FreshnessStats*> fs;
    for (const auto& w : workers_) fs.push_back(w.freshness.get());
    for (int f : plan_.source_features[0]) {
      uint64_t n = 0;
      for (double q : {0.5, 0.95, 0.99}) {
        double v = freshness_quantile(fs, f, q, &n);
        if (n == 0) break;
        out += fmt::format("millrace_feature_age_ms{{feature=\"{}\",quantile=\"{}\"}} {}\n",
                           spec_.features[f].name, q, v);
      }
      out += fmt::format("millrace_feature_age_ms_count{{feature=\"{}\"}} {}\n",
                         spec_.features[f].name, n);
    }
  }
  return out;
}

void Pipeline::fail(const Status& s) {
  std::lock_guard<std::mutex> lock(error_mu_);
  if (error_.ok()) error_ = s;
  failed_.store(true);
}

Slot& Pipeline::acquire(uint64_t seq) {
  const uint64_t n = slots_.size();
  // The sink's count is read only when the ring looks full: no cache line
  // passes between the two threads per event.
  if (seq - released_seen_ < n) return slot(seq);
  released_seen_ = released_.load(std::memory_order_acquire);
  if (seq - released_seen_ >= n) publish_all();
  poll_until([&] {
    released_seen_ = released_.load(std::memory_order_acquire);
    return seq - released_seen_ < n;
  });
  return slot(seq);
}

void Pipeline::complete(Slot& s, uint64_t seq) {
  s.ready.store(seq + 1, std::memory_order_release);  // the sink polls: no wake-up per event
}

// Writes an event that has no raw text (made in memory) as a JSON object, without the closing
// brace.
void append_event_fields(std::string& out, const Schema& schema, const Event& e) {
  out += '{';
  for (size_t i = 0; i < schema.size(); ++i) {
    append_json_key(out, schema[i].name, i == 0);
    const FieldValue& v = e.values[i];
    switch (v.kind) {
      case FieldValue::Kind::Null:
        out += "null";
        break;
      case FieldValue::Kind::Int:
        append_json_int(out, v.i);
        break;
      case FieldValue::Kind::Double:
        append_json_double(out, v.d);
        break;
      case FieldValue::Kind::Bool:
        out += v.b ? "true" : "false";
        break;
      case FieldValue::Kind::String:
        append_json_string(out, e.str(v));
        break;
    }
  }
}

void Pipeline::format_event(Slot& s, int t) {
  if (s.source != 0) return;  // only the scored source's events go out
  const int64_t derive_ticks = derive_event(s, t);
  if (scorer_) {
    scorer_->score(s.event, s.values.data(), &s.score, timed_);
    if (timed_) record_latency(s, t, derive_ticks);
  }
  write_event(s);
}

int64_t Pipeline::derive_event(Slot& s, int t) {
  for (int i : unread_features_) s.values[i].set_null();
  const int64_t t0 = timed_ ? StageClock::now() : 0;
  if (derived_) {
    evaluators_[t]->set_stamp(s.seq);
    evaluators_[t]->evaluate(s.event, s.values.data());
  }
  return timed_ ? StageClock::now() - t0 : 0;
}

// The scored source's events worker w finished in its batch (format_event()'s
// work for all of them at once): their derived features, the model over all their rows, then
// each one's decision and output; then they go to the sink.
void Pipeline::finish_scored(int w) {
  std::vector<uint64_t>& seqs = scored_[w].seqs;
  if (seqs.empty()) return;
  std::vector<Scorer::BatchItem>& items = scored_[w].items;
  std::vector<int64_t>& ticks = scored_[w].derive_ticks;
  items.clear();
  ticks.clear();
  for (uint64_t seq : seqs) {
    Slot& s = slot(seq);
    ticks.push_back(derive_event(s, w));
    items.push_back({&s.event, s.values.data(), &s.score});
  }
  scorer_->score_batch(items.data(), items.size(), timed_);
  for (size_t k = 0; k < seqs.size(); ++k) {
    Slot& s = slot(seqs[k]);
    if (timed_) record_latency(s, w, ticks[k]);
    write_event(s);
    complete(s, seqs[k]);
  }
  seqs.clear();
}

void Pipeline::write_event(Slot& s) {
  if (!emit_events_) return;
  std::string& out = s.out;
  if (s.line.empty()) {
    out.clear();
    append_event_fields(out, spec_.source.schema, s.event);
  } else {
    std::string_view line = s.line;
    out.assign(line.data(), line.find_last_of('}'));  // parsed: the object's brace is there
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
  }
  bool empty_object = !out.empty() && out.back() == '{';
  bool first = true;
  for (int i : plan_.source_features[0]) {
    const std::string& key = feature_keys_[i];  // `, "name": `
    out.append(empty_object && first ? std::string_view(key).substr(2) : std::string_view(key));
    s.values[i].append_json(out);
    first = false;
  }
  if (scorer_) {
    Scorer::append_fields(s.score, out);
    if (s.score.has_shadow) {
      std::string& sh = s.shadow_out;
      sh = "{";
      int id = spec_.source.schema.index_of("id");
      if (id >= 0 && !s.event.values[id].is_null()) {
        append_json_key(sh, "id", true);
        if (s.event.values[id].kind == FieldValue::Kind::String) {
          append_json_string(sh, s.event.str(id));
        } else {
          append_json_double(sh, s.event.values[id].as_double());
        }
        sh += ", ";
      }
      sh += "\"score\": ";
      append_json_double(sh, s.score.shadow_score);
      append_json_key(sh, "model");
      append_json_string(sh, s.score.shadow_snapshot->name);
      append_json_key(sh, "model_version");
      append_json_string(sh, s.score.shadow_snapshot->version);
      append_json_key(sh, "champion_score");
      append_json_double(sh, s.score.score);
      sh += "}\n";
    }
  }
  out += "}\n";
}

void Pipeline::record_latency(Slot& s, int t, int64_t feature_ticks) {
  if (s.due == 0) return;  // a warm-up record
  const int64_t done = StageClock::now();
  StageLatency& l = latency_[t];
  int64_t started = s.started.load(std::memory_order_relaxed);
  if (started == 0) started = done;
  l.stages[StageLatency::kIngest].record(StageClock::to_ns(started - s.due));
  l.stages[StageLatency::kFeatures].record(
      StageClock::to_ns(s.feature_ticks.load(std::memory_order_relaxed) + feature_ticks));
  l.stages[StageLatency::kRetrieval].record(
      StageClock::to_ns(s.retrieval_ticks.load(std::memory_order_relaxed)));
  l.stages[StageLatency::kInference].record(StageClock::to_ns(s.score.inference_ticks));
  l.stages[StageLatency::kDecision].record(StageClock::to_ns(s.score.decision_ticks));
  l.stages[StageLatency::kTotal].record(StageClock::to_ns(done - s.due));
}

// Appends `, "source": NAME, "partition": P, "offset": O`: where a record came from.
void Pipeline::append_origin(const Slot& s, std::string& out) const {
  append_json_key(out, "source");
  append_json_string(out, spec_.sources[s.source].name);
  append_json_key(out, "partition");
  append_json_int(out, s.partition);
  append_json_key(out, "offset");
  append_json_int(out, static_cast<int64_t>(s.offset));
}

void Pipeline::format_dead(Slot& s, std::string_view error) {
  std::string& out = s.out;
  out = "{\"error\": ";
  append_json_string(out, error);
  append_json_key(out, "raw");
  append_json_string(out, s.line);
  append_origin(s, out);
  out += "}\n";
}

void Pipeline::format_late(Slot& s, TimeMs watermark) {
  std::string& out = s.out;
  out.clear();
  out += "{\"reason\": ";
  append_json_string(
      out, fmt::format("late: event time {} is older than watermark {} - allowed lateness {}",
                       s.event.time, watermark,
                       format_duration(spec_.sources[s.source].allowed_lateness)));
  append_origin(s, out);
  out += ", \"watermark\": ";
  append_json_int(out, watermark);
  out += ", \"event\": ";
  out.append(s.line);
  out += "}\n";
}

void Pipeline::broadcast(SlotKind kind, TimeMs wm) {
  uint64_t seq = next_seq_++;
  Slot& s = acquire(seq);
  s.kind = kind;
  s.wm_before = s.wm_after = wm;
  s.pending.store(nworkers_, std::memory_order_relaxed);
  for (int w = 0; w < nworkers_; ++w) dispatch(w, Message{seq, 0});
  publish_all();
}

void Pipeline::source_loop() {
  const size_t nsrc = spec_.sources.size();
  std::vector<WatermarkTracker> wms;
  for (size_t i = 0; i < nsrc; ++i) {
    const SourceSpec& src = spec_.sources[i];
    wms.emplace_back(sources_ ? sources_->reader(static_cast<int>(i)).partitions() : 1,
                     src.max_out_of_orderness, src.idle_timeout);
  }
  // The pipeline's watermark: the minimum over the sources (each the minimum
  // over its partitions), never going backwards.
  TimeMs combined_wm = kMinTime;
  auto combined = [&](TimeMs now) {
    TimeMs c = kMaxTime;
    for (auto& t : wms) c = std::min(c, t.combined(now));
    combined_wm = std::max(combined_wm, c);
    return combined_wm;
  };
  std::vector<uint32_t> masks(nworkers_);
  MergedRecord rec;
  TimeMs last_broadcast = kMinTime;
  uint64_t since_broadcast = 0;
  auto started = Clock::now();
  auto last_progress = started;
  const bool has_windows = !spec_.windows.empty();
  TimeMs now = now_ms();
  TimeMs last_checkpoint = now;
  if (restored_) {
    const SourceCheckpoint& rs = restored_->manifest.source;
    if (!wms[0].restore(rs.partition_max, rs.watermark)) {
      fail(Status::Error(fmt::format("{}: checkpoint {} has {} input partitions, the input has {}",
                                     opts_.checkpoint_dir, restored_->manifest.id,
                                     rs.partition_max.size(), wms[0].max_times().size())));
    }
    combined_wm = rs.watermark;
    last_broadcast = rs.last_broadcast;
    since_broadcast = rs.since_broadcast;
    if (opts_.generator) {  // a generator replays from its start: skip what was read
      Event e;
      for (uint64_t i = 0; i < rs.reader.next_offsets.at(0) && opts_.generator->next(&e); ++i)
        ++stats_.records;
    }
  } else if (checkpointing()) {
    // A first checkpoint before any record: even a crash before the next one
    // resumes from a known state of the outputs.
    inject_barrier(wms[0], last_broadcast, since_broadcast);
  }
  bool stopped = false;
  TimeMs table_horizon = kMinTime;
  // Table change records that are not applied go out with the event they were
  // read before, and are counted as the events' own.
  Slot* reject_slot = nullptr;
  const DerivedFeatures::RejectFn on_reject = [&](DerivedFeatures::Reject kind,
                                                  std::string_view record, uint32_t) {
    switch (kind) {
      case DerivedFeatures::Reject::Malformed:
        ++stats_.dead_letters;
        reject_slot->table_dead.append(record);
        break;
      case DerivedFeatures::Reject::LateSideOutput:
        ++stats_.late_side_output;
        reject_slot->table_late.append(record);
        break;
      case DerivedFeatures::Reject::LateDropped:
        ++stats_.late_dropped;
        break;
    }
  };
  if (restored_ && derived_) {
    // The table as it was at the checkpoint: the changes read up to the newest
    // event time seen then, seen by every event to come. Their rejects were
    // written before the checkpoint.
    TimeMs seen = kMinTime;
    for (TimeMs t : restored_->manifest.source.partition_max) seen = std::max(seen, t);
    // A checkpoint taken after the end of the input: the change inputs were
    // read to their end too.
    if (restored_->manifest.source.tables_read_to_end) seen = kMaxTime;
    tables_read_to_end_ = seen == kMaxTime;
    if (seen != kMinTime)
      if (auto st = derived_->advance_to(seen, kMinTime, [](auto, auto, auto) {}); !st.ok())
        fail(st);
  }
  // Pacing: record n (counted from the end of the warm-up) is due at
  // pace_start + n * ticks_per_record.
  int64_t pace_start = StageClock::now();
  bool warm = opts_.warmup_records == 0;
  const double ticks_per_record =
      opts_.max_rate > 0 ? 1e9 / opts_.max_rate / StageClock::ns_per_tick() : 0;

  for (;;) {
    if (failed_.load(std::memory_order_relaxed)) break;
    if (opts_.stop && opts_.stop->load(std::memory_order_relaxed)) {
      stopped = true;
      break;
    }
    if (checkpointing() && now - last_checkpoint >= opts_.checkpoint_interval_ms) {
      inject_barrier(wms[0], last_broadcast, since_broadcast);
      last_checkpoint = now;
    }
    if (!warm && stats_.records >= opts_.warmup_records) {
      // The warm-up's records are through (with one worker, on this thread;
      // with more, what they still hold counts in the first records' latency):
      // the schedule and the timing start now.
      publish_all();
      warm = true;
      pace_start = StageClock::now();
    }
    int64_t due = 0;
    if (ticks_per_record > 0 && warm) {
      due = pace_start +
            static_cast<int64_t>(static_cast<double>(stats_.records - opts_.warmup_records) *
                                 ticks_per_record);
      // The next record is not there yet: what was read goes on now, a partial
      // batch included (batches fill only under a backlog).
      if (StageClock::now() < due)
        publish_all();
      else
        ++stats_.behind_schedule;
      for (int64_t now_t = StageClock::now(); now_t < due; now_t = StageClock::now()) {
        const uint64_t wait_ns = StageClock::to_ns(due - now_t);
        if (wait_ns > 200'000)
          std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns - 100'000));
      }
    }
    uint64_t seq = next_seq_;
    Slot& s = acquire(seq);
    if (timed_) {
      s.due = !warm ? 0 : due != 0 ? due : StageClock::now();  // 0: not timed
      s.started.store(0, std::memory_order_relaxed);
      s.feature_ticks.store(0, std::memory_order_relaxed);
      s.retrieval_ticks.store(0, std::memory_order_relaxed);
    }
    if ((stats_.records & 255) == 0) {
      now = now_ms();  // processing time, for idle partitions
      // A source read to its end no longer holds the watermark back.
      for (size_t i = 0; sources_ && nsrc > 1 && i < nsrc; ++i) {
        RecordReader& r = sources_->reader(static_cast<int>(i));
        for (uint32_t p = 0; p < r.partitions(); ++p)
          if (r.partition_finished(p)) wms[i].finish(p);
      }
    }
    // Before a read that may wait, what was read goes on (latency).
    if (opts_.generator ? opts_.generator->may_wait() : sources_->may_block()) publish_all();
    bool got;
    if (opts_.generator) {
      got = opts_.generator->next(&s.event);
      s.source = 0;
      s.partition = 0;
      s.offset = stats_.records;
      s.line.clear();
      rec.ok = true;
    } else {
      auto r = sources_->next(&s.line, &s.event, &rec, now);
      if (!r.ok()) {
        fail(r.status());
        break;
      }
      got = r.value();
      if (got) {
        s.source = rec.source;
        s.partition = rec.partition;
        s.offset = rec.offset;
      }
    }
    if (!got) {
      if (opts_.generator || sources_->finished()) break;
      // Following a log: nothing new yet. Let the watermark move (idle
      // partitions) and wait a little.
      publish_all();
      now = now_ms();
      TimeMs c = combined(now);
      if (has_windows && c > last_broadcast) {
        broadcast(SlotKind::Watermark, c);
        last_broadcast = c;
      }
      // What was read goes out to the outputs once written, not when a
      // buffer fills: a reader of the outputs does not wait for more input.
      if (flush_to_.load(std::memory_order_relaxed) != next_seq_)
        flush_to_.store(next_seq_, std::memory_order_release);
      if (inline_sink_) flush_when_caught_up();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    ++next_seq_;
    ++stats_.records;
    s.kind = SlotKind::Event;
    s.out.clear();
    if (!rec.ok) {
      s.kind = SlotKind::Dead;
      ++stats_.dead_letters;
      format_dead(s, rec.error);
      s.pending.store(0, std::memory_order_relaxed);
      complete(s, seq);
      continue;
    }
    const SourceSpec& src = spec_.sources[s.source];
    WatermarkTracker& wm = wms[s.source];
    const TimeMs pwm = wm.partition_watermark(s.partition);
    if (pwm != kMinTime && s.event.time < pwm - src.allowed_lateness) {
      s.kind = SlotKind::Late;
      if (src.late == LatePolicy::SideOutput) {
        ++stats_.late_side_output;
        format_late(s, pwm);
      } else {
        ++stats_.late_dropped;
      }
      s.pending.store(0, std::memory_order_relaxed);
      complete(s, seq);
      continue;
    }
    ++stats_.accepted;
    if (derived_) {
      // Table changes up to this event's time first: events and changes merge
      // by event time. No partition of any source will accept an event older
      // than the horizon (refreshed now and then: an older one is only less tidy).
      if ((stats_.accepted & 255) == 1) table_horizon = table_change_horizon(spec_, wms);
      // Changes applied now are seen by this event and the ones after it; the
      // events that can still be running are the ring's.
      s.seq = seq;
      reject_slot = &s;
      const uint64_t retired = seq + 1 > slots_.size() ? seq + 1 - slots_.size() : 0;
      if (auto st = derived_->advance_to(s.event.time, table_horizon, on_reject, seq, retired);
          !st.ok()) {
        fail(st);
        s.kind = SlotKind::Dead;
        s.out.clear();
        s.pending.store(0, std::memory_order_relaxed);
        complete(s, seq);
        break;
      }
    }
    s.wm_before = combined(now);
    wm.observe(s.partition, s.event.time, now);
    s.wm_after = combined(now);
    // Route to the owners of the event's keys: the groups of its source, and,
    // for an event of the scored source, the groups of other sources it reads
    // as of its time (the events of other sources go out with no values:
    // what they would read is never used).
    std::fill(masks.begin(), masks.end(), 0);
    for (size_t g = 0; g < plan_.groups.size(); ++g) {
      const FeatureGroupPlan& gp = plan_.groups[g];
      const std::vector<int>* fields = &gp.key_fields;
      if (gp.source != s.source) {
        if (s.source != 0) continue;
        fields = &gp.read_fields[s.source];
        if (fields->empty() || gp.features.empty()) continue;
      }
      build_entity_key(s.event, *fields, &s.keys[g]);
      s.key_hashes[g] = hash_string(s.keys[g]);
      masks[owner_[key_group_of(s.key_hashes[g])]] |= 1u << g;
    }
    int targets = 0;
    for (int w = 0; w < nworkers_; ++w) targets += masks[w] != 0;
    s.pending.store(targets, std::memory_order_relaxed);
    if (targets == 0) {
      if (timed_) s.started.store(StageClock::now(), std::memory_order_relaxed);
      format_event(s, nworkers_);
      complete(s, seq);
    } else {
      for (int w = 0; w < nworkers_; ++w)
        if (masks[w]) dispatch(w, Message{seq, masks[w]});
      if (++staged_ >= 32) publish_all();
    }
    // Keep workers that own none of the recent keys moving in event time.
    if (has_windows && ++since_broadcast >= 1024 && s.wm_after > last_broadcast) {
      broadcast(SlotKind::Watermark, s.wm_after);
      last_broadcast = s.wm_after;
      since_broadcast = 0;
    }
    if ((stats_.records & 255) == 0) {
      publish_source_counters(s.wm_after);
      if (store_) store_->set_watermark(s.wm_after);
    }
    if (opts_.progress && (stats_.records & 0xffff) == 0) {
      auto t = Clock::now();
      if (t - last_progress > std::chrono::milliseconds(500)) {
        double secs = std::chrono::duration<double>(t - started).count();
        std::fprintf(stderr, "\r%llu events, %.0f events/s   ",
                     static_cast<unsigned long long>(stats_.records), stats_.records / secs);
        last_progress = t;
      }
    }
  }
  if (derived_ && !stopped && !failed_.load() && !tables_read_to_end_) {
    // The end of a bounded input: the change records after the last event are
    // read too (their bad and late records go out, counted). Their rejects
    // ride on a slot of their own, which the workers do not see.
    const uint64_t seq = next_seq_++;
    Slot& s = acquire(seq);
    s.kind = SlotKind::Watermark;
    s.wm_before = s.wm_after = combined_wm;
    s.partition = 0;
    reject_slot = &s;
    const uint64_t retired = seq + 1 > slots_.size() ? seq + 1 - slots_.size() : 0;
    if (auto st = derived_->advance_to(kMaxTime, table_horizon, on_reject, seq, retired); !st.ok())
      fail(st);
    tables_read_to_end_ = true;
    s.pending.store(0, std::memory_order_relaxed);
    complete(s, seq);
  }
  publish_source_counters(combined_wm);
  if (opts_.progress) std::fprintf(stderr, "\r%*s\r", 40, "");
  // End of a bounded input: every open window fires, then everything stops.
  // Stopped by a signal with checkpoints, the windows stay open: the last
  // checkpoint keeps them for the next run.
  if (!(stopped && checkpointing())) broadcast(SlotKind::Watermark, kMaxTime);
  if (checkpointing() && !failed_.load()) inject_barrier(wms[0], last_broadcast, since_broadcast);
  broadcast(SlotKind::Stop, kMaxTime);
}

// Advances worker w's watermark: fires windows, frees expired keys.
void Pipeline::advance(int w, TimeMs wm, Slot& s) {
  Worker& me = workers_[w];
  if (wm <= me.watermark) return;
  me.watermark = wm;
  const size_t nwin = spec_.windows.size();
  for (size_t i = 0; i < nwin; ++i) me.windows[i]->advance(wm, &s.wout[w * nwin + i]);
  for (size_t g = 0; g < plan_.groups.size(); ++g)
    if (SlidingFeatureGroup* sg = store_->group(w, static_cast<int>(g))) sg->expire(wm);
}

// Window results go to the output partition their operator picked by key
// (WindowOutput::by_partition), so that every record of a key is in one partition.
Status write_window_results(RecordWriter* out, WindowOutput& wo) {
  if (!wo.results.empty()) {
    if (Status st = out->write(wo.results, 0); !st.ok()) return st;
    wo.results.clear();
  }
  for (uint32_t p = 0; p < wo.by_partition.size(); ++p) {
    if (wo.by_partition[p].empty()) continue;
    if (Status st = out->write(wo.by_partition[p], p); !st.ok()) return st;
    wo.by_partition[p].clear();
  }
  return Status::Ok();
}

void Pipeline::spill_window_results(int w, size_t window, WindowOutput& wo) {
  Worker& me = workers_[w];
  const uint64_t seq = me.seq;
  // The events this worker finished earlier in its batch wait to be scored
  // with the batch (finish_scored()): the sink needs them before this slot.
  finish_scored(w);
  // The sink is then waiting for this slot and touches no writer until it is
  // complete. An inline sink writes the earlier slots now (they are complete:
  // the one worker runs them in order).
  if (inline_sink_) drain_inline_sink();
  poll_until([&] { return released_.load(std::memory_order_acquire) == seq; });
  std::lock_guard<std::mutex> lock(spill_mu_);
  RecordWriter* out = window_outputs_[window] ? window_outputs_[window].get() : output_.get();
  auto write = [&](WindowOutput& o) {
    if (Status st = write_window_results(out, o); !st.ok()) fail(st);
  };
  // In a run of events (run_windows), this window's results in the run's
  // earlier slots come first.
  const size_t i = w * spec_.windows.size() + window;
  for (size_t k = 0; k < me.run_n; ++k) {
    WindowOutput& earlier = slot(me.run[k].seq).wout[i];
    if (&earlier == &wo) break;
    if (earlier.has_results()) write(earlier);
  }
  write(wo);
}

void Pipeline::run_windows(int w, const Message* msgs, size_t n) {
  Worker& me = workers_[w];
  const size_t nwin = spec_.windows.size();
  me.window_events.resize(nwin);
  me.window_of_event.resize(nwin);
  for (auto& v : me.window_events) v.clear();
  for (size_t k = 0; k < n; ++k) {
    Slot& s = slot(msgs[k].seq);
    // Every message moves every window's watermark at its own slot, as
    // process() does; the windows of its groups also get its event.
    std::fill(me.window_of_event.begin(), me.window_of_event.end(), false);
    for (uint32_t mask = msgs[k].mask; mask; mask &= mask - 1) {
      const FeatureGroupPlan& gp = plan_.groups[__builtin_ctz(mask)];
      if (gp.source == s.source)
        for (int wi : gp.windows) me.window_of_event[wi] = true;
    }
    for (size_t wi = 0; wi < nwin; ++wi)
      me.window_events[wi].push_back(WindowEvent{me.window_of_event[wi] ? &s.event : nullptr,
                                                 s.line, s.wm_before, s.wm_after,
                                                 &s.wout[w * nwin + wi]});
  }
  me.seq = msgs[0].seq;
  me.run = msgs;
  me.run_n = n;
  for (size_t wi = 0; wi < nwin; ++wi)
    me.windows[wi]->on_events(me.window_events[wi].data(), me.window_events[wi].size(), nullptr);
  me.run_n = 0;
}

bool Pipeline::process(int w, const Message& m, bool windows_done) {
  Worker& me = workers_[w];
  const size_t nwin = spec_.windows.size();
  Slot& s = slot(m.seq);
  me.seq = m.seq;
  if (s.kind == SlotKind::Stop) {
    finish_scored(w);
    if (me.redis)
      if (Status st = me.redis->flush(); !st.ok()) fail(st);
    if (last_worker(s)) complete(s, m.seq);
    return false;
  }
  store_->lock(w);
  if (s.kind == SlotKind::Barrier) {
    snapshot_worker(w, s);
  } else if (s.kind == SlotKind::Watermark) {
    if (s.wm_after == kMaxTime) {
      // Measure state at the end of the input, before the final flush frees it.
      me.keys = 0;
      me.state_bytes = 0;
      for (size_t g = 0; g < plan_.groups.size(); ++g)
        if (SlidingFeatureGroup* sg = store_->group(w, static_cast<int>(g))) {
          me.keys += sg->keys();
          me.state_bytes += sg->state_bytes();
        }
      for (auto& op : me.windows) {
        me.keys += op->keys();
        me.state_bytes += op->state_bytes();
      }
    }
    advance(w, s.wm_after, s);
  } else {
    int64_t t_prev = 0, own_ticks = 0, read_ticks = 0;
    if (timed_) {
      t_prev = StageClock::now();
      int64_t none = 0;
      s.started.compare_exchange_strong(none, t_prev, std::memory_order_relaxed);
    }
    advance(w, s.wm_before, s);
    for (uint32_t mask = m.mask; mask; mask &= mask - 1) {
      int g = __builtin_ctz(mask);
      const FeatureGroupPlan& gp = plan_.groups[g];
      SlidingFeatureGroup* sg = store_->group(w, g);
      if (gp.source == s.source) {
        if (sg) {
          sg->on_event(s.keys[g], s.key_hashes[g], s.event, s.wm_before, s.values.data());
          if (me.redis)
            if (Status st = me.redis->on_event(g, s.keys[g], s.event.time, *sg); !st.ok()) fail(st);
        }
        if (!windows_done)
          for (int wi : gp.windows)
            me.windows[wi]->on_event(s.event, s.line, s.wm_before, &s.wout[w * nwin + wi]);
        if (sg && s.source == 0)
          for (int f : gp.feature_outputs) me.freshness->add(f, 0);
      } else {
        // Another source's features, as of this event's time.
        sg->read_at(s.keys[g], s.event.time, &me.scratch, s.values.data(), s.freshness.data());
        if (s.source == 0)
          for (int f : gp.feature_outputs)
            if (s.freshness[f] != kMinTime) me.freshness->add(f, s.event.time - s.freshness[f]);
      }
      if (timed_) {
        const int64_t t_now = StageClock::now();
        (gp.source == s.source ? own_ticks : read_ticks) += t_now - t_prev;
        t_prev = t_now;
      }
    }
    if (timed_) {
      s.feature_ticks.fetch_add(own_ticks, std::memory_order_relaxed);
      s.retrieval_ticks.fetch_add(read_ticks, std::memory_order_relaxed);
    }
    advance(w, s.wm_after, s);
  }
  store_->unlock(w);
  if (last_worker(s)) {
    if (s.kind == SlotKind::Event && s.source == 0 && scorer_) {
      scored_[w].seqs.push_back(m.seq);  // scored with the batch's other events
    } else {
      if (s.kind == SlotKind::Event) format_event(s, w);
      complete(s, m.seq);
    }
  }
  return true;
}

bool Pipeline::process_batch(int w, const Message* msgs, size_t n) {
  struct Pending {
    SlidingFeatureGroup* sg;
    const SlidingFeatureGroup::KeyState* ks;
    const Event* event;
  };
  Pending pending[kBatch * 4];
  size_t np = 0;
  // Stage 1: the key table slots of every event's keys, those it updates and
  // those of other sources it reads as of its time.
  for (size_t i = 0; i < n; ++i) {
    const Slot& s = slot(msgs[i].seq);
    if (s.kind != SlotKind::Event) continue;
    for (uint32_t mask = msgs[i].mask; mask; mask &= mask - 1) {
      const int g = __builtin_ctz(mask);
      if (SlidingFeatureGroup* sg = store_->group(w, g)) {
        sg->prefetch_slot(s.key_hashes[g]);
        // The event's values index the tables of the groups it updates only.
        const Event* own = plan_.groups[g].source == s.source ? &s.event : nullptr;
        if (np < std::size(pending)) pending[np++] = {sg, nullptr, own};
      }
    }
  }
  // The batch values the derived features of the scored source's events
  // read: their index slots here, their times after stage 2, the cells of the
  // rows in force after stage 3.
  DerivedFeatures::Evaluator* ev = derived_ ? evaluators_[w].get() : nullptr;
  auto prefetch_batch_values = [&](int step) {
    for (size_t i = 0; i < n; ++i) {
      const Slot& s = slot(msgs[i].seq);
      if (s.kind == SlotKind::Event && s.source == 0) ev->prefetch(s.event, step);
    }
  };
  if (ev) prefetch_batch_values(0);
  // Stage 2: the key states (the slots are in the cache by now).
  size_t k = 0;
  for (size_t i = 0; i < n && k < np; ++i) {
    const Slot& s = slot(msgs[i].seq);
    if (s.kind != SlotKind::Event) continue;
    for (uint32_t mask = msgs[i].mask; mask && k < np; mask &= mask - 1) {
      const int g = __builtin_ctz(mask);
      if (!store_->group(w, g)) continue;
      pending[k].ks = pending[k].sg->prefetch_state(s.keys[g], s.key_hashes[g]);
      ++k;
    }
  }
  if (ev) prefetch_batch_values(1);
  // Stage 3: their event rows and feature structures.
  for (size_t j = 0; j < np; ++j)
    if (pending[j].ks) pending[j].sg->prefetch_rows(pending[j].ks, pending[j].event);
  if (ev) prefetch_batch_values(2);
  // Window operators take each run of consecutive events in one call, ahead
  // of the rest of the events' work (their state is their own).
  const bool has_windows = !spec_.windows.empty();
  size_t windows_done = 0;
  for (size_t i = 0; i < n; ++i) {
    if (has_windows && i >= windows_done) {
      size_t j = i;
      while (j < n && slot(msgs[j].seq).kind == SlotKind::Event) ++j;
      if (j > i) run_windows(w, msgs + i, j - i);
      windows_done = j;
    }
    if (!process(w, msgs[i], i < windows_done)) return false;
  }
  finish_scored(w);
  return true;
}

void Pipeline::worker_loop(int w) {
  Message batch[kBatch];
  for (;;) {
    queues_[w]->pop_wait(&batch[0]);
    size_t n = 1;
    while (n < kBatch && queues_[w]->try_pop(&batch[n])) ++n;
    if (!process_batch(w, batch, n)) break;
  }
  stats_.worker_cpu_seconds[w - (inline_worker_ ? 1 : 0)] = thread_cpu_seconds();
}

void Pipeline::flush_inline() {
  for (size_t i = 0; i < inline_batch_.size(); i += kBatch)
    process_batch(0, inline_batch_.data() + i, std::min(kBatch, inline_batch_.size() - i));
  inline_batch_.clear();
}

// Hands a message to worker w: through its queue, or, for an inline worker 0,
// by running it on the source thread (no hand-off at all) once a batch is there.
void Pipeline::dispatch(int w, const Message& m) {
  if (w == 0 && inline_worker_) {
    inline_batch_.push_back(m);
    // The other workers' messages of these events go first (publish_all()).
    if (inline_batch_.size() >= kBatch) publish_all();
  } else {
    queues_[w]->stage(m);
  }
}

void Pipeline::sink_begin() {
  sink_.next_offsets.resize(spec_.sources.size());
  for (size_t i = 0; i < sink_.next_offsets.size(); ++i)
    sink_.next_offsets[i].assign(sources_ ? sources_->reader(static_cast<int>(i)).partitions() : 1,
                                 UINT64_MAX);
}

bool Pipeline::sink_write(Slot& s) {
  const size_t nwin = spec_.windows.size();
  const uint64_t seq = sink_.next;
  auto check = [&](const Status& st) {
    if (!st.ok()) fail(st);
  };
  bool stop = s.kind == SlotKind::Stop;
  if (!s.table_dead.empty()) {
    check(dead_->write(s.table_dead, s.partition));
    if (opts_.dead_letter.empty() && dead_shown_.fetch_add(1) < 5)
      std::fprintf(stderr, "millrace: dead letter: %s", s.table_dead.c_str());
    s.table_dead.clear();
  }
  if (!s.table_late.empty()) {
    check(late_->write(s.table_late, s.partition));
    s.table_late.clear();
  }
  switch (s.kind) {
    case SlotKind::Event:
      if (s.source != 0) {
        ++stats_.other_source_events;
        break;
      }
      if (opts_.on_vector) opts_.on_vector(s.event, s.values.data());
      if (emit_events_) {
        check(output_->write(s.out, s.partition));
        ++stats_.outputs;
      }
      if (scorer_) {
        ++stats_.decisions[static_cast<int>(s.score.decision.action)];
        if (opts_.on_scored) opts_.on_scored(s.event, s.values.data(), s.score);
        int lf = scorer_->label_field();
        if (lf >= 0 && !s.event.values[lf].is_null()) {
          bool label = s.event.values[lf].as_double() > 0;
          sink_.champion_quality.add(s.score.score, label);
          if (s.score.has_shadow) sink_.shadow_quality.add(s.score.shadow_score, label);
        }
        if (s.score.has_shadow) {
          check(shadow_->write(s.shadow_out, s.partition));
          sink_.shadow_diff += std::fabs(s.score.shadow_score - s.score.score);
          ++sink_.shadow_n;
        }
        s.score.snapshot.reset();
        s.score.shadow_snapshot.reset();
      }
      break;
    case SlotKind::Late:
      if (!s.out.empty()) check(late_->write(s.out, s.partition));
      break;
    case SlotKind::Barrier:
      if (!failed_.load()) check(complete_checkpoint(s));
      break;
    case SlotKind::Dead:
      check(dead_->write(s.out, s.partition));
      if (opts_.dead_letter.empty() && dead_shown_.fetch_add(1) < 5)
        std::fprintf(stderr, "millrace: dead letter: %s", s.out.c_str());
      break;
    default:
      break;
  }
  if (s.kind == SlotKind::Event || s.kind == SlotKind::Late || s.kind == SlotKind::Dead)
    if (s.partition < sink_.next_offsets[s.source].size())
      sink_.next_offsets[s.source][s.partition] = s.offset + 1;
  for (size_t i = 0; i < s.wout.size(); ++i) {
    WindowOutput& wo = s.wout[i];
    if (wo.has_results()) {
      RecordWriter* out =
          window_outputs_[i % nwin] ? window_outputs_[i % nwin].get() : output_.get();
      check(write_window_results(out, wo));
    }
    if (!wo.late.empty()) {
      check(late_->write(wo.late, s.partition));
      wo.late.clear();
    }
    stats_.window_results += wo.results_emitted;
    stats_.window_late_dropped += wo.late_dropped;
    stats_.window_late_side_output += wo.late_side_output;
    wo.results_emitted = wo.late_dropped = wo.late_side_output = 0;
  }
  if ((seq & 255) == 0 || stop) {
    live_.outputs.store(stats_.outputs, std::memory_order_relaxed);
    live_.window_results.store(stats_.window_results, std::memory_order_relaxed);
    for (int i = 0; i < 3; ++i)
      live_.decisions[i].store(stats_.decisions[i], std::memory_order_relaxed);
  }
  ++sink_.next;
  if (inline_sink_ || stop || sink_.next % kReleaseEvery == 0)
    released_.store(sink_.next, std::memory_order_release);
  sink_.stopped = stop;
  return stop;
}

void Pipeline::sink_end() {
  auto check = [&](const Status& st) {
    if (!st.ok()) fail(st);
  };
  if (scorer_) {
    if (sink_.champion_quality.count()) stats_.champion_quality = sink_.champion_quality.summary();
    if (sink_.shadow_quality.count()) stats_.shadow_quality = sink_.shadow_quality.summary();
    if (sink_.shadow_n) stats_.shadow_mean_abs_diff = sink_.shadow_diff / sink_.shadow_n;
    stats_.model_reloads = scorer_->reloads();
    check(shadow_->flush());
  }
  check(output_->flush());
  check(late_->flush());
  check(dead_->flush());
  for (auto& w : window_outputs_)
    if (w) check(w->flush());
  if (sources_ && !failed_.load())
    for (size_t i = 0; i < sink_.next_offsets.size(); ++i)
      check(sources_->reader(static_cast<int>(i)).commit(sink_.next_offsets[i]));
}

void Pipeline::sink_loop() {
  sink_begin();
  for (;;) {
    const uint64_t seq = sink_.next;
    Slot& s = slot(seq);
    if (s.ready.load(std::memory_order_acquire) != seq + 1) {
      released_.store(seq, std::memory_order_release);  // all written so far, before waiting
      poll_until([&] {
        if (s.ready.load(std::memory_order_acquire) == seq + 1) return true;
        flush_when_caught_up();
        return false;
      });
    }
    if (sink_write(s)) break;
  }
  sink_end();
}

void Pipeline::flush_when_caught_up() {
  const uint64_t want = flush_to_.load(std::memory_order_acquire);
  if (want <= flushed_to_ || sink_.next < want) return;
  flushed_to_ = want;
  auto flush = [&](RecordWriter* w) {
    if (Status st = w->flush(); !st.ok()) fail(st);
  };
  // A worker may be spilling window results into an output (the sink is
  // then waiting for that worker's slot).
  std::lock_guard<std::mutex> lock(spill_mu_);
  if (checkpointing()) {  // exactly-once outputs show records at checkpoints only
    for (RecordWriter* w : plain_writers_) flush(w);
    return;
  }
  flush(output_.get());
  flush(late_.get());
  flush(dead_.get());
  for (auto& w : window_outputs_)
    if (w) flush(w.get());
  if (scorer_) flush(shadow_.get());
}

void Pipeline::drain_inline_sink() {
  while (!sink_.stopped && sink_.next < next_seq_) {
    Slot& s = slot(sink_.next);
    if (s.ready.load(std::memory_order_relaxed) != sink_.next + 1) break;
    sink_write(s);
  }
}

// ---- Checkpoints -----------------------------------------------------------

double ms_since(int64_t steady_ns) {
  return (std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
              .count() -
          steady_ns) /
         1e6;
}

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void atomic_max(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

Status Pipeline::resolve_state_backend() {
  const YAML::Node state = spec_.root["state"];
  std::string backend = "memory";
  size_t cache = 0;
  try {
    if (state && state.IsScalar()) {
      backend = state.as<std::string>();
    } else if (state && state.IsMap()) {
      if (state["backend"]) backend = state["backend"].as<std::string>();
      if (state["cache_keys"]) cache = state["cache_keys"].as<size_t>();
    } else if (state) {
      return Status::Error(spec_.file +
                           ": state: expected memory, rocksdb or {backend: rocksdb, "
                           "cache_keys: N}");
    }
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("{}:{}: state: {}", spec_.file, e.mark.line + 1, e.msg));
  }
  if (!opts_.state_backend.empty()) backend = opts_.state_backend;
  if (opts_.state_cache_keys) cache = opts_.state_cache_keys;
  if (backend != "memory" && backend != "rocksdb")
    return Status::Error("state backend '" + backend + "': expected memory or rocksdb");
  state_backend_ = backend;
  if (cache) cache_keys_ = cache;
  return Status::Ok();
}

// RocksDB backend: one working database per worker, rebuilt from the resumed
// checkpoint, holding the per-event feature state of keys beyond the cache.
Status Pipeline::open_state_stores() {
  if (state_backend_ != "rocksdb") return Status::Ok();
  std::string base;
  if (checkpointing()) {
    base = opts_.checkpoint_dir + "/state";
  } else {
    std::string tmpl = (std::filesystem::temp_directory_path() / "millrace-state-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return Status::Error("cannot create a temporary state directory");
    base = state_tmp_dir_ = tmpl;
  }
  for (int w = 0; w < nworkers_; ++w) {
    std::string from;
    if (restored_)
      from = fmt::format("{}/rocksdb-{}", ckpt_store_->chk_dir(restored_->manifest.id), w);
    auto store = RocksKeyedState::Open(fmt::format("{}/worker-{}", base, w), from);
    if (!store.ok()) return store.status();
    workers_[w].store = std::move(store.value());
    for (size_t g = 0; g < plan_.groups.size(); ++g)
      if (SlidingFeatureGroup* sg = store_->group(w, static_cast<int>(g)))
        sg->attach_store(workers_[w].store.get(), std::string(1, static_cast<char>(g)),
                         cache_keys_);
  }
  return Status::Ok();
}

Status Pipeline::open_checkpoints() {
  if (opts_.checkpoint_dir.empty()) return Status::Ok();
  if (opts_.checkpoint_interval_ms <= 0)
    return Status::Error("--checkpoint-interval must be positive");
  auto started = steady_ns();
  auto store = CheckpointStore::Open(opts_.checkpoint_dir, opts_.checkpoint_keep);
  if (!store.ok()) return store.status();
  ckpt_store_ = std::move(store.value());
  spec_fingerprint_ = spec_fingerprint(YAML::Dump(spec_.root));
  auto latest = ckpt_store_->load_latest(&stats_.checkpoints.warnings);
  if (!latest.ok()) return latest.status();
  if (latest.value()) {
    restored_ = std::move(*latest.value());
    const CheckpointManifest& m = restored_->manifest;
    if (m.spec != spec_fingerprint_)
      return Status::Error(fmt::format(
          "{}: checkpoint {} was written by a different spec than {}; run it with the spec that "
          "wrote it, or use a new --checkpoint-dir",
          opts_.checkpoint_dir, m.id, spec_.file));
    if (m.state != state_backend_)
      return Status::Error(
          fmt::format("{}: checkpoint {} holds {} state; this run uses {} (--state {} resumes it)",
                      opts_.checkpoint_dir, m.id, m.state, state_backend_, m.state));
    stats_.checkpoints.restored_from = m.id;
  }
  next_checkpoint_ = ckpt_store_->max_id() + 1;
  stats_.checkpoints.recovery_ms = ms_since(started);
  return Status::Ok();
}

// Opens an output: exactly-once (settling what a crash left) with checkpoints,
// plain without.
Result<std::unique_ptr<RecordWriter>> Pipeline::open_output(const std::string& uri) {
  if (!checkpointing()) return open_writer(uri);
  const OutputCommit* resumed = nullptr;
  if (restored_)
    for (const auto& c : restored_->manifest.outputs)
      if (c.uri == uri) resumed = &c;
  auto started = steady_ns();
  auto r = open_exactly_once_writer(uri, resumed);
  if (!r.ok()) return r.status();
  stats_.checkpoints.recovery_ms += ms_since(started);
  for (auto& n : r->notes) stats_.checkpoints.warnings.push_back(std::move(n));
  next_checkpoint_ = std::max(next_checkpoint_, r->max_epoch + 1);
  if (auto* ew = dynamic_cast<EpochWriter*>(r->writer.get()))
    epoch_writers_.emplace_back(uri, ew);
  else
    plain_writers_.push_back(r->writer.get());
  return std::move(r->writer);
}

// Restores every worker's feature groups and window operators.
Status Pipeline::restore_workers() {
  if (!restored_) return Status::Ok();
  auto started = steady_ns();
  const CheckpointManifest& m = restored_->manifest;
  if (m.workers != nworkers_)
    return Status::Error(fmt::format(
        "{}: checkpoint {} was taken with {} workers; run with --workers {} to resume it",
        opts_.checkpoint_dir, m.id, m.workers, m.workers));
  for (int w = 0; w < nworkers_; ++w) {
    Worker& me = workers_[w];
    ByteReader r(restored_->parts[w]);
    me.watermark = r.i64();
    bool ok = r.u32() == plan_.groups.size();
    for (size_t gi = 0; gi < plan_.groups.size(); ++gi) {
      if (!ok) break;
      SlidingFeatureGroup* g = store_->group(w, static_cast<int>(gi));
      const bool present = r.u8() != 0;
      ok = present == (g != nullptr) && (!g || g->restore(r));
    }
    ok = ok && r.u32() == me.windows.size();
    for (auto& op : me.windows) {
      if (!ok) break;
      if (Status st = op->restore(r); !st.ok())
        return Status::Error(fmt::format("{}: checkpoint {}, worker {}: {}", opts_.checkpoint_dir,
                                         m.id, w, st.message()));
    }
    if (!ok || r.failed() || !r.at_end())
      return Status::Error(
          fmt::format("{}: checkpoint {}: the state of worker {} does not match this pipeline",
                      opts_.checkpoint_dir, m.id, w));
  }
  restored_->parts.clear();
  stats_.checkpoints.recovery_ms += ms_since(started);
  return Status::Ok();
}

// Source: puts a barrier slot after every record read so far.
void Pipeline::inject_barrier(const WatermarkTracker& wm, TimeMs last_broadcast,
                              uint64_t since_broadcast) {
  auto st = std::make_shared<SourceCheckpoint>();
  if (sources_) {
    st->reader = *sources_->reader(0).position();
  } else {
    st->reader.next_offsets.push_back(stats_.records);
  }
  st->partition_max = wm.max_times();
  st->watermark = wm.current();
  st->last_broadcast = last_broadcast;
  st->since_broadcast = since_broadcast;
  st->tables_read_to_end = tables_read_to_end_;
  uint64_t seq = next_seq_++;
  Slot& s = acquire(seq);
  s.kind = SlotKind::Barrier;
  s.checkpoint = next_checkpoint_++;
  s.source_state = std::move(st);
  s.injected_ns = steady_ns();
  s.taken_ns.store(0, std::memory_order_relaxed);
  s.pause_ns.store(0, std::memory_order_relaxed);
  s.wm_before = s.wm_after = wm.current();
  s.pending.store(nworkers_, std::memory_order_relaxed);
  for (int w = 0; w < nworkers_; ++w) dispatch(w, Message{seq, 0});
  publish_all();
}

// Worker: copies its state into a buffer, handed to the part writer.
void Pipeline::snapshot_worker(int w, Slot& s) {
  const int64_t t0 = steady_ns();
  atomic_max(s.taken_ns, t0);
  Worker& me = workers_[w];
  std::string buf;
  buf.reserve(me.snapshot_bytes + me.snapshot_bytes / 8 + 4096);  // one allocation, most times
  ByteWriter out(&buf);
  out.i64(me.watermark);
  out.u32(static_cast<uint32_t>(plan_.groups.size()));
  for (size_t gi = 0; gi < plan_.groups.size(); ++gi) {
    const SlidingFeatureGroup* g = store_->group(w, static_cast<int>(gi));
    out.u8(g ? 1 : 0);
    if (g) g->snapshot(out);
  }
  out.u32(static_cast<uint32_t>(me.windows.size()));
  for (const auto& op : me.windows) op->snapshot(out);
  if (me.store) {  // an incremental RocksDB checkpoint beside the part
    Status st = me.store->status();
    if (st.ok()) {
      const std::string dir = ckpt_store_->chk_dir(s.checkpoint);
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      st = me.store->checkpoint(fmt::format("{}/rocksdb-{}", dir, w));
    }
    if (!st.ok()) fail(st);
  }
  atomic_max(s.pause_ns, steady_ns() - t0);
  me.snapshot_bytes = buf.size();
  ckpt_parts_->submit(s.checkpoint, w, std::move(buf));
}

// Sink: every result before the barrier is written. Prepare the outputs'
// epoch, wait for the workers' parts, write the manifest (the commit point),
// then commit the outputs.
Status Pipeline::complete_checkpoint(Slot& s) {
  CheckpointManifest m;
  m.id = s.checkpoint;
  m.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  m.spec = spec_fingerprint_;
  m.workers = nworkers_;
  m.state = state_backend_;
  m.source = *s.source_state;
  s.source_state.reset();
  for (RecordWriter* w : plain_writers_)
    if (auto st = w->flush(); !st.ok()) return st;
  for (auto& [uri, w] : epoch_writers_) {
    auto c = w->prepare(m.id);
    if (!c.ok()) return c.status();
    c->uri = uri;
    m.outputs.push_back(std::move(c.value()));
  }
  auto parts = ckpt_parts_->wait(m.id);
  if (!parts.ok()) return parts.status();
  m.parts = std::move(parts.value());
  if (auto st = ckpt_store_->write_manifest(m); !st.ok()) return st;
  for (auto& [uri, w] : epoch_writers_)
    if (auto st = w->commit(); !st.ok()) return st;
  if (auto st = ckpt_store_->prune(m.id); !st.ok()) return st;
  CheckpointStats& cs = stats_.checkpoints;
  ++cs.count;
  cs.last_duration_ms = ms_since(s.injected_ns);
  cs.total_duration_ms += cs.last_duration_ms;
  cs.max_duration_ms = std::max(cs.max_duration_ms, cs.last_duration_ms);
  cs.max_alignment_ms = std::max(cs.max_alignment_ms, (s.taken_ns.load() - s.injected_ns) / 1e6);
  cs.max_pause_ms = std::max(cs.max_pause_ms, s.pause_ns.load() / 1e6);
  cs.last_bytes = 0;
  for (const auto& p : m.parts) cs.last_bytes += p.bytes;
  return Status::Ok();
}

Result<RunStats> Pipeline::run() {
  if (plan_.groups.size() > 32)
    return Status::Error(
        fmt::format("{}: {} different (source, key) pairs; at most 32 are supported", spec_.file,
                    plan_.groups.size()));
  if (auto s = resolve_state_backend(); !s.ok()) return s;
  if (auto s = open_checkpoints(); !s.ok()) return s;
  auto scorer = Scorer::Create(spec_);
  if (!scorer.ok()) return scorer.status();
  scorer_ = std::move(scorer.value());
  if (scorer_) {
    auto sh = open_output(opts_.shadow_output);
    if (!sh.ok()) return sh.status();
    shadow_ = std::move(sh.value());
  }
  DerivedFeatures::Options dopts;
  dopts.follow_changes = opts_.follow;
  auto derived = DerivedFeatures::Open(spec_, dopts, opts_.source_inputs);
  if (!derived.ok()) return derived.status();
  derived_ = std::move(derived.value());
  if (auto s = open_io(); !s.ok()) return s;
  nworkers_ = opts_.workers > 0 ? opts_.workers : spec_.workers;
  if (nworkers_ <= 0)
    nworkers_ = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nworkers_ = std::min<int>(nworkers_, static_cast<int>(kKeyGroups));
  for (uint32_t kg = 0; kg < kKeyGroups; ++kg) owner_[kg] = static_cast<uint16_t>(kg % nworkers_);
  emit_events_ = opts_.write_events && (!spec_.features.empty() || scorer_ != nullptr);
  for (const auto& f : spec_.features) {
    feature_keys_.emplace_back();
    append_json_key(feature_keys_.back(), f.name);
  }
  {
    std::vector<bool> read(spec_.features.size(), false);
    for (int f : plan_.source_features[0]) read[f] = true;
    for (size_t f = 0; f < read.size(); ++f)
      if (!read[f]) unread_features_.push_back(static_cast<int>(f));
  }
  store_ = std::make_unique<EmbeddedStore>(spec_, plan_, nworkers_);
  if (!opts_.serve.empty()) store_->enable_concurrent_reads();
  if (derived_)
    for (int t = 0; t <= nworkers_; ++t) evaluators_.push_back(derived_->evaluator());
  timed_ = opts_.stage_latency && scorer_ != nullptr;
  if (timed_ || opts_.max_rate > 0) StageClock::calibrate();
  if (timed_) latency_.resize(nworkers_ + 1);
  scored_.resize(nworkers_);
  inline_worker_ = !opts_.worker_thread;
  inline_sink_ = inline_worker_ && nworkers_ == 1;
  // An inline sink frees slots as soon as a batch is run: a small ring, whose
  // slots stay in the cache, is enough.
  const size_t in_flight =
      inline_sink_ ? std::min<size_t>(opts_.max_in_flight, kInlineSlots) : opts_.max_in_flight;
  size_t nslots = 64;
  while (nslots < in_flight) nslots <<= 1;
  const size_t nwin = spec_.windows.size();
  for (size_t i = 0; i < nslots; ++i) {
    auto s = std::make_unique<Slot>();
    s->keys.resize(plan_.groups.size());
    s->key_hashes.resize(plan_.groups.size());
    s->values.resize(spec_.feature_slots());
    s->freshness.resize(spec_.feature_slots(), kMinTime);
    s->wout.resize(nwin * nworkers_);
    for (size_t i = 0; i < s->wout.size(); ++i) {
      RecordWriter* out =
          window_outputs_[i % nwin] ? window_outputs_[i % nwin].get() : output_.get();
      s->wout[i].partitions = out->partitions();
      s->wout[i].spill = [this, i, nwin](WindowOutput& wo) {
        spill_window_results(static_cast<int>(i / nwin), i % nwin, wo);
      };
    }
    slots_.push_back(std::move(s));
  }
  workers_.resize(nworkers_);
  for (int w = 0; w < nworkers_; ++w) {
    queues_.push_back(std::make_unique<SpscQueue<Message>>(nslots));
    Worker& wk = workers_[w];
    wk.freshness = std::make_unique<FreshnessStats>(spec_.feature_slots());
    if (!spec_.store.uri.empty()) {
      auto rw = RedisStoreWriter::Open(spec_, plan_);
      if (!rw.ok()) return rw.status();
      wk.redis = std::move(rw.value());
    }
    for (const auto& ws : spec_.windows)
      wk.windows.push_back(WindowOperator::Create(ws, spec_.sources[ws.source].schema));
  }
  if (auto s = open_state_stores(); !s.ok()) return s;
  if (auto s = restore_workers(); !s.ok()) return s;
  if (opts_.on_recovery)
    for (const auto& w : stats_.checkpoints.warnings) opts_.on_recovery(w);
  if (checkpointing())
    ckpt_parts_ = std::make_unique<CheckpointPartWriter>(ckpt_store_.get(), nworkers_);
  if (!opts_.serve.empty()) {
    if (!spec_.store.uri.empty()) {
      auto rs = RedisStore::Open(spec_, plan_);
      if (!rs.ok()) return rs.status();
      redis_ = std::move(rs.value());
    }
    if (derived_)
      derived_reads_ = std::make_unique<DerivedReads>(
          spec_, plan_, redis_ ? static_cast<const OnlineStore&>(*redis_) : *store_, *derived_);
    HttpHandlers h;
    h.health = [this] {
      return fmt::format("{{\"status\": \"ok\", \"records\": {}, \"watermark\": {}}}",
                         live_.records.load(), live_.watermark.load());
    };
    h.metrics = [this] { return metrics_text(); };
    if (scorer_) h.reload_models = [this](std::string* body) { return scorer_->reload(body); };
    h.features = [this](std::string_view set, std::string_view key, TimeMs at,
                        std::string* body) -> int {
      int fs = plan_.feature_set_index(set);
      if (fs < 0) {
        std::string list;
        for (const auto& s : plan_.feature_sets) list += (list.empty() ? "" : ", ") + s.name;
        *body = fmt::format("feature set '{}' is not in the spec (feature sets: {})", set, list);
        return 404;
      }
      FeatureVector v;
      std::string k = parse_entity_key(key);
      const OnlineStore& from = derived_reads_ ? static_cast<const OnlineStore&>(*derived_reads_)
                                : redis_       ? static_cast<const OnlineStore&>(*redis_)
                                               : *store_;
      if (Status st = from.read(fs, k, at, &v); !st.ok()) {
        *body = st.message();
        return 400;
      }
      *body = v.to_json(set, k, at);
      return 200;
    };
    auto server = HttpServer::Start(opts_.serve, h);
    if (!server.ok()) return server.status();
    http_ = std::move(server.value());
    if (opts_.on_serving) opts_.on_serving(http_->port());
  }
  auto started = Clock::now();
  std::vector<std::thread> threads;
  for (int w = inline_worker_ ? 1 : 0; w < nworkers_; ++w) {
    threads.emplace_back([this, w] {
      pthread_setname_np(pthread_self(), fmt::format("mr-worker-{}", w).c_str());
      worker_loop(w);
    });
  }
  stats_.worker_cpu_seconds.assign(nworkers_ - (inline_worker_ ? 1 : 0), 0.0);
  std::thread sink;
  if (inline_sink_) {
    sink_begin();
  } else {
    sink = std::thread([this] {
      pthread_setname_np(pthread_self(), "mr-sink");
      sink_loop();
      stats_.sink_cpu_seconds = thread_cpu_seconds();
    });
  }
  const double source_cpu0 = thread_cpu_seconds();
  source_loop();
  stats_.source_cpu_seconds = thread_cpu_seconds() - source_cpu0;
  for (auto& t : threads) t.join();
  if (inline_sink_) {
    drain_inline_sink();
    sink_end();
  } else {
    sink.join();
  }
  ckpt_parts_.reset();
  for (auto& wk : workers_) {
    if (wk.store && !wk.store->status().ok()) fail(wk.store->status());
    wk.store.reset();
  }
  if (!state_tmp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(state_tmp_dir_, ec);
  }
  stats_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  http_.reset();
  stats_.workers = nworkers_;
  if (derived_) stats_.derived = derived_->summary();
  if (timed_) {
    stats_.latency = std::make_shared<StageLatency>();
    for (const auto& l : latency_) stats_.latency->merge(l);
  }
  std::vector<const FreshnessStats*> fs;
  for (const auto& wk : workers_) {
    stats_.keys += wk.keys;
    stats_.state_bytes += wk.state_bytes;
    fs.push_back(wk.freshness.get());
  }
  for (int f : plan_.source_features[0]) {
    RunStats::Freshness fr;
    fr.feature = spec_.features[f].name;
    fr.p50 = freshness_quantile(fs, f, 0.5, &fr.n);
    fr.p95 = freshness_quantile(fs, f, 0.95);
    fr.p99 = freshness_quantile(fs, f, 0.99);
    stats_.freshness.push_back(std::move(fr));
  }
  if (!error_.ok()) return error_;
  return stats_;
}

}  // namespace

Result<RunStats> run_pipeline(const PipelineSpec& spec, const RunOptions& opts) {
  Pipeline p(spec, opts);
  return p.run();
}

std::string format_freshness(const RunStats& s) {
  if (s.freshness.empty()) return "";
  size_t width = 7;
  for (const auto& f : s.freshness) width = std::max(width, f.feature.size());
  std::string out = fmt::format("{:<{}}  {:>10}  {:>10}  {:>10}  {:>10}\n", "feature", width,
                                "values", "age p50", "age p95", "age p99");
  for (const auto& f : s.freshness) {
    if (f.n == 0) {
      out += fmt::format("{:<{}}  {:>10}  {:>10}  {:>10}  {:>10}\n", f.feature, width, 0, "-", "-",
                         "-");
      continue;
    }
    out += fmt::format("{:<{}}  {:>10}  {:>10}  {:>10}  {:>10}\n", f.feature, width, f.n,
                       format_duration(static_cast<TimeMs>(f.p50)),
                       format_duration(static_cast<TimeMs>(f.p95)),
                       format_duration(static_cast<TimeMs>(f.p99)));
  }
  return out;
}

std::string format_run_stats(const RunStats& s) {
  std::string out = fmt::format(
      "{} records in {:.2f} s ({:.0f} records/s, {} workers): {} accepted, {} late ({} dropped, "
      "{} to the late output), {} dead letters",
      s.records, s.seconds, s.seconds > 0 ? s.records / s.seconds : 0.0, s.workers, s.accepted,
      s.late_dropped + s.late_side_output, s.late_dropped, s.late_side_output, s.dead_letters);
  if (s.outputs) out += fmt::format("; {} enriched events written", s.outputs);
  if (s.other_source_events)
    out += fmt::format("; {} events of other sources", s.other_source_events);
  if (s.window_results || s.window_late_dropped || s.window_late_side_output)
    out += fmt::format("; {} window results, {} late for windows", s.window_results,
                       s.window_late_dropped + s.window_late_side_output);
  if (s.keys)
    out += fmt::format("; {} keys, {:.0f} bytes of state per key", s.keys,
                       static_cast<double>(s.state_bytes) / s.keys);
  const CheckpointStats& c = s.checkpoints;
  if (c.restored_from)
    out += fmt::format("; resumed from checkpoint {} in {:.0f} ms", c.restored_from, c.recovery_ms);
  if (c.count)
    out += fmt::format(
        "; {} checkpoints (last {:.0f} ms, max {:.0f} ms, {} bytes; alignment max {:.1f} ms, "
        "worker pause max {:.1f} ms)",
        c.count, c.last_duration_ms, c.max_duration_ms, c.last_bytes, c.max_alignment_ms,
        c.max_pause_ms);
  if (!s.derived.empty()) out += "; " + s.derived;
  return out;
}

}  // namespace millrace
