// A pipeline spec (YAML): the sources' schemas and time settings, per-event
// sliding features, and windowed results. Loading checks everything before a
// pipeline runs; an error names the file, the line and the field.
//
// One source:
//   source:
//     time: ts                    # epoch ms or RFC 3339 string
//     max_out_of_orderness: 5s    # watermark = max event time - this
//     allowed_lateness: 1m        # events older than watermark - this are late
//     late: side_output           # drop | side_output
//     idle_timeout: 30s           # optional: idle partitions leave the watermark
//     schema: {id: string, card_id: string, amount: double?, ts: int64}
//   features:
//     - {name: card_txn_count_5m, key: [card_id], agg: count, window: 5m}
//     - {name: amount_ratio, expr: "amount / coalesce(card_avg_30d, amount)"}
//   batch: [...]                  # batch values, tables: reference tables
//   tables: [...]                 # (features/derived_features.h)
//   windows:
//     - {name: merchant_volume_1m, key: [merchant_id], type: tumbling, size: 1m,
//        aggs: [{name: n, agg: count}], allowed_lateness: 2m, late: side_output}
//
// Several sources, by name (the first one listed is the scored source: its
// events are enriched, scored and written; docs/feature_store.md):
//   sources:
//     transactions: {uri: tx.jsonl, time: ts, schema: {...}}
//     labels: {uri: labels.jsonl, time: reported_at, max_out_of_orderness: 1m,
//              schema: {tx_id: string, terminal_id: string, reported_at: int64}}
//   features:
//     - {name: terminal_frauds_7d, source: labels, key: [terminal_id], agg: count,
//        window: 7d}
//   store: redis://127.0.0.1:6379   # or {uri: ..., slice: 1m, prefix: mr}; default embedded
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "millrace/core/schema.h"
#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/window/aggregate.h"

namespace millrace {

enum class LatePolicy { Drop, SideOutput };

struct SourceSpec {
  std::string name = "input";
  std::string uri;  // optional; `--input NAME=URI` overrides it
  Schema schema;
  int time_field = -1;
  TimeMs max_out_of_orderness = 5000;
  TimeMs allowed_lateness = 0;
  LatePolicy late = LatePolicy::Drop;
  TimeMs idle_timeout = 0;  // 0: partitions never count as idle
};

// A per-event sliding feature of one source: for each accepted event of that
// source with key k at time t, agg over the key's accepted events with time in
// (t - window, t]. Events of other sources whose schemas have fields of the
// same names as the key read it as of their own time (docs/feature_store.md).
// Or, with `expr`, a derived feature of the scored source's events, computed
// from the event, the features before it, batch values and tables
// (features/derived_features.h).
struct FeatureSpec {
  std::string name;
  int source = 0;                      // index into PipelineSpec::sources
  std::vector<int> key_fields;         // indexes into the source's schema (derived: optional,
                                       // the key of prev() and is_new())
  std::string expr;                    // non-empty: a derived feature
  std::vector<std::string> key_names;  // the key fields' names
  TimeMs ttl = 0;                      // reads as of t give null when the newest contributing event
                                       // is older than t - ttl (0: no TTL beyond the window)
  TimeMs slice = 0;                    // Redis store: time-slice size (0: the store's default)
  AggKind agg = AggKind::Count;
  int field = -1;  // schema index, -1 when the aggregate takes none
  TimeMs window = 0;
  double q = 0.5;  // quantile
  int line = 0;
};

enum class WindowType { Tumbling, Hopping, Session };

struct WindowAggSpec {
  std::string name;
  AggKind agg = AggKind::Count;
  int field = -1;
  double q = 0.5;
};

// A windowed result, emitted when the watermark passes the window's end.
struct WindowSpec {
  std::string name;
  int source = 0;  // windows see the events of this source only
  std::vector<int> key_fields;
  WindowType type = WindowType::Tumbling;
  TimeMs size = 0;   // tumbling, hopping
  TimeMs slide = 0;  // hopping (tumbling: == size)
  TimeMs gap = 0;    // session
  std::vector<WindowAggSpec> aggs;
  TimeMs allowed_lateness = 0;
  LatePolicy late = LatePolicy::Drop;
  bool retract = false;
  std::string output;  // optional per-window output URI
  int line = 0;
};

// Where the online store keeps feature state: in process (default) or in a
// Redis server shared by several millrace processes (docs/feature_store.md).
struct StoreSpec {
  std::string uri;            // "" : embedded; "redis://HOST:PORT"
  TimeMs slice = 0;           // Redis: default time-slice size (0: window / 60, >= 1 s)
  std::string prefix = "mr";  // Redis: key prefix
};

struct DerivedFeaturePlan;

struct PipelineSpec {
  std::string file;
  SourceSpec source;                // the first (scored) source: sources[0]
  std::vector<SourceSpec> sources;  // the event sources, in spec order
  // Sources named by a table's `source:`: their records are the table's
  // change records, read by the table (features/derived_features.h), not
  // events: they are not in `sources`, carry no features and do not hold the
  // pipeline's watermark back.
  std::vector<SourceSpec> table_sources;
  StoreSpec store;
  std::vector<FeatureSpec> features;
  // Hidden per-key sliding features that derived features read (prev,
  // is_new): their values follow the features' (slot features.size() + i).
  std::vector<FeatureSpec> helper_features;
  std::shared_ptr<const DerivedFeaturePlan> derived;  // null without expr/batch/tables

  // Feature values per event: the features, then the helper features.
  size_t feature_slots() const { return features.size() + helper_features.size(); }
  std::vector<WindowSpec> windows;
  int workers = 0;  // 0: one per hardware thread
  YAML::Node root;  // the whole document, for sections read by other layers
};

// Parses spec text; `file` names it in error messages ("spec.yaml:12: ...").
Result<PipelineSpec> parse_spec(const std::string& text, const std::string& file);
Result<PipelineSpec> load_spec(const std::string& path);

// Index of the source named `name`, or -1.
int source_index(const PipelineSpec& spec, std::string_view name);
// Index in spec.table_sources of the table source named `name`, or -1.
int table_source_index(const PipelineSpec& spec, std::string_view name);

}  // namespace millrace
