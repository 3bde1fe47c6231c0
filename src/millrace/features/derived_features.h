// Derived features (`expr:` entries of `features:`), with the batch values
// (`batch:`) and reference tables (`tables:`) their expressions read. See
// docs/features.md for the language and the semantics.
//
//   batch:
//     - {name: card_stats, path: card_stats.csv, key: card_id, as_of: as_of,
//        columns: {avg_amount_30d: double?, lifetime_count: int64?}, poll: 1s}
//   tables:
//     - {name: merchants, path: merchants.csv, key: merchant_id,
//        columns: {risk: double?, country: string?}, changes: merchant_changes.jsonl, time: ts}
//   features:
//     - {name: amount_ratio, expr: "amount / coalesce(batch.card_stats.avg_amount_30d, amount)"}
//     - {name: merchant_risk, expr: "coalesce(lookup(merchants, merchant_id).risk, 0.5)"}
//     - {name: new_merchant, key: card_id, expr: "is_new(merchant_id, 30d)"}
//
// At load (plan_derived_features) every expression is parsed and type-checked
// and compiled; prev() and is_new() become hidden per-key sliding features
// (PipelineSpec::helper_features), so their state lives, and is checkpointed,
// with the key's other sliding state. At run time (DerivedFeatures) the batch
// files and tables are loaded, and an Evaluator per thread computes an event's
// derived features once its sliding features are all there.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "millrace/expr/program.h"
#include "millrace/features/batch_values.h"
#include "millrace/features/feature_value.h"
#include "millrace/features/reference_table.h"
#include "millrace/stream/spec.h"
#include "millrace/stream/watermark.h"

namespace millrace {

class RecordReader;
class EventParser;
struct RecordRef;

struct DerivedFeaturePlan {
  struct Feature {
    std::string name;
    int output = -1;  // index in the event's feature values
    expr::Program program;
  };
  std::vector<Feature> features;  // in spec order
  std::vector<BatchSpec> batches;
  std::vector<TableSpec> tables;
};

// Reads `batch:` and `tables:` and compiles the spec's `expr:` features;
// fills spec->derived and spec->helper_features. Errors name the file, line,
// feature and the column in the expression. Called by parse_spec.
Status plan_derived_features(PipelineSpec* spec);

// The static type of a sliding feature's values.
expr::Type sliding_feature_type(const FeatureSpec& f, const Schema& schema);

class DerivedFeatures {
 public:
  struct Options {
    bool watch_batch_files = true;  // poll batch files for changes
    bool follow_changes = false;    // change logs: wait for new records (with a followed input)
    // A table whose source has no uri (and no --input) is opened with its
    // initial rows and no change records, and reported by table_fed(),
    // instead of failing Open (reads that can do without it: features get).
    bool unfed_tables_ok = false;
  };
  // Loads the batch files and tables of spec.derived (nullptr when the spec
  // has neither derived features nor tables). An error names the file and line.
  // `inputs` are the `--input SOURCE=URI` values: those naming a table
  // source override its uri.
  static Result<std::unique_ptr<DerivedFeatures>> Open(
      const PipelineSpec& spec, const Options& options,
      const std::vector<std::pair<std::string, std::string>>& inputs = {});
  ~DerivedFeatures();

  // A change record that was not applied: malformed (not JSON, a wrong type,
  // no key, an unknown op), or, of a table source (`source:`), late (older
  // than its partition's watermark less the source's allowed lateness).
  // `record` is the line for the dead-letter output (malformed) or the late
  // output (late, side_output policy), in the format of the events' own with
  // the table's name added (its "source" is the source's name, or the uri of
  // a `changes:` input); it is empty for a late record the source's policy
  // drops.
  enum class Reject { Malformed, LateDropped, LateSideOutput };
  using RejectFn = std::function<void(Reject kind, std::string_view record, uint32_t partition)>;

  // Applies every table change with time <= t not applied yet (call from the
  // thread that reads the input, before an event at time t is routed, so the
  // changes and the events are merged by event time; a change at exactly t
  // comes before the event). Reads will not ask for times < horizon any more,
  // nor with stamps < retired. The changes are stamped `stamp` (see
  // ReferenceTable): pass the sequence number of the event about to be
  // routed, and read with it; 0 makes them seen by every read. Records not
  // applied (malformed or late) are counted and go to on_reject (none: the
  // first ones are printed). t = kMaxTime reads the bounded change inputs to
  // their end. Fails on an I/O error of a change input.
  Status advance_to(TimeMs t, TimeMs horizon, const RejectFn& on_reject = nullptr,
                    uint64_t stamp = 0, uint64_t retired = 0);

  // Computes derived features; one per thread.
  class Evaluator : public expr::Lookups {
   public:
    // Writes each derived feature of `event` to values[output]; `values`
    // already holds the event's sliding features (and helper features).
    void evaluate(const Event& event, FeatureValue* values);
    // The same for some of them: indexes into DerivedFeaturePlan::features,
    // in increasing order.
    void evaluate(const Event& event, FeatureValue* values, const std::vector<int>& which);
    // Hints that evaluate() comes soon for `event`, in three steps a batch of
    // events goes through one after the other (step 0, 1, then 2), so that
    // the cache misses of the batch values they read overlap: each key's
    // index slot (BatchTable::prefetch_slot()), its as_of times
    // (prefetch_rows()), then the cells of the row in force at the event's
    // time (prefetch_cells()). The keys built, hashed and located and the rows
    // found here are kept for the events' evaluations (in the same order),
    // which then read them without searching. Changes no result. An event is
    // known by its address: step 0 of a batch starts afresh, and a batch's
    // events are evaluated before the next batch's step 0.
    void prefetch(const Event& event, int step);
    // Table lookups from now on see the changes stamped <= stamp
    // (ReferenceTable; default: every change applied).
    void set_stamp(uint64_t stamp) { stamp_ = stamp; }

    expr::Value batch(int source, int column, const Event& event, std::string* scratch) override;
    expr::Value table(int table, int column, const expr::Value& key, TimeMs t,
                      std::string* scratch) override;

   private:
    friend class DerivedFeatures;
    explicit Evaluator(const DerivedFeatures& owner);
    const DerivedFeatures& owner_;
    expr::Scratch scratch_;
    struct BatchView {
      std::shared_ptr<const BatchTable> table;
      uint64_t generation = 0;
      std::string key;
      // The row found for the event being evaluated (its columns are read by
      // several features: one search per event and source).
      uint64_t row_of = 0;  // the evaluation it was found in
      const FieldValue* row = nullptr;
    };
    std::vector<BatchView> batch_views_;
    // The batch keys of the events being prefetched: built and hashed in
    // step 0, located in step 1, read by evaluate(). Entries past `count`
    // keep their strings' memory for the next batch.
    struct Located {
      const Event* event = nullptr;
      int source = 0;
      const BatchTable* table = nullptr;
      std::string key;
      uint64_t hash = 0;
      BatchTable::KeyRef ref;
      bool located = false;  // step 1 done: ref is set
      bool has_row = false;  // step 2 done: row is set
      const FieldValue* row = nullptr;
    };
    struct LocatedKeys {
      std::vector<Located> entries;
      size_t count = 0;
      size_t step[3] = {};  // steps 1 and 2: the next entry they look at
      size_t next = 0;      // the next entry an evaluation looks at
      int last_step = 2;
    };
    LocatedKeys located_;
    // The located key of (event, source), or nullptr.
    const Located* located(const Event& event, int source, const BatchTable* table);
    // The row of each table read for the event being evaluated: its columns
    // are often read by several features (one search per event, table and key).
    struct TableView {
      uint64_t row_of = 0;  // the evaluation it was read in
      TimeMs t = 0;
      uint64_t stamp = 0;
      std::string key;
      ReferenceTable::Row row;
    };
    std::vector<TableView> table_views_;
    uint64_t evaluation_ = 0;  // events evaluated
    uint64_t stamp_ = ReferenceTable::kSeesAll;
    std::string key_text_;
  };
  std::unique_ptr<Evaluator> evaluator() const;

  BatchValues& batch(size_t i) { return *batches_[i]; }
  ReferenceTable& table(size_t i) { return *tables_[i]; }
  // False for a table left without its change records (Options::unfed_tables_ok).
  bool table_fed(size_t i) const { return fed_[i]; }
  // "batch card_stats: 1 reload, 0 failed; table merchants: 12 changes, 0 rejected".
  std::string summary() const;

 private:
  DerivedFeatures() = default;
  struct ChangeFeed {
    ReferenceTable* table = nullptr;
    const SourceSpec* source = nullptr;  // a table source; null: a `changes:` file
    std::string uri;
    std::unique_ptr<RecordReader> reader;
    std::unique_ptr<EventParser> parser;
    std::unique_ptr<WatermarkTracker> watermarks;  // table source: lateness per partition
    std::string line;
    Event pending;
    bool has_pending = false;
    uint64_t applied = 0, rejected = 0, late = 0;
  };
  // A record of a table source that is not applied: counted, and handed on.
  void reject(ChangeFeed& f, Reject kind, const RecordRef& rec, std::string_view reason,
              TimeMs watermark, const RejectFn& on_reject);

  const DerivedFeaturePlan* plan_ = nullptr;
  std::vector<std::unique_ptr<BatchValues>> batches_;
  std::vector<std::unique_ptr<ReferenceTable>> tables_;
  std::vector<bool> fed_;  // per table
  std::vector<ChangeFeed> feeds_;
};

}  // namespace millrace
