// Inline scoring (pattern 2): the spec's `model:` and `decisions:` sections.
// Once every feature of an event is attached, the champion model scores it,
// the decision engine turns the score into an action, and an optional shadow
// (challenger) model scores the same event for comparison.
//
//   model:
//     registry: models            # a registry directory (models/NAME/VERSION/)
//     name: fraud                 # served: its promoted version, swapped live on
//                                 # promote, file change or SIGHUP
//     # path: model.json          # or a plain model file (reloaded when it changes)
//     shadow: {name: fraud_challenger}   # optional, same keys as the champion
//     label: is_fraud             # optional: a field with the known label, for quality
//   decisions: {...}              # docs/models.md; defaults when absent
//
// Model inputs bind by name to the spec's features, then to numeric schema
// fields; a model input that is neither is an error naming it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "millrace/core/event.h"
#include "millrace/decision/decision_engine.h"
#include "millrace/features/feature_value.h"
#include "millrace/model/model_handle.h"
#include "millrace/model/model_watcher.h"
#include "millrace/stream/spec.h"

namespace millrace {

struct ScoreResult {
  double score = 0;
  const model::LoadedModel* model = nullptr;  // valid while the snapshot below lives
  model::ModelSnapshot snapshot;
  decision::Decision decision;
  bool has_shadow = false;
  double shadow_score = 0;
  model::ModelSnapshot shadow_snapshot;
  // With timing (score(..., true)): StageClock ticks of the model and the rules.
  int64_t inference_ticks = 0, decision_ticks = 0;
};

class Scorer {
 public:
  // nullptr when the spec has no `model:` section.
  static Result<std::unique_ptr<Scorer>> Create(const PipelineSpec& spec);
  ~Scorer();

  // Scores one event whose features are all attached. Thread-safe. `timed`:
  // also measure the model and the rules (out->inference_ticks, decision_ticks).
  void score(const Event& event, const FeatureValue* features, ScoreResult* out,
             bool timed = false) const;

  // The same for n events at once: one model snapshot for all, their rows
  // scored together (Model::predict_batch: the trees are walked by every row
  // while they are in the cache), then each event's decision. The scores are
  // those score() gives, bit for bit. With `timed`, each event's
  // inference_ticks is the whole batch's model time (what it waited for).
  struct BatchItem {
    const Event* event;
    const FeatureValue* features;
    ScoreResult* out;
  };
  void score_batch(const BatchItem* items, size_t n, bool timed = false) const;

  // Appends `, "score": ..., "action": ..., "reason": ..., "model": ..., "model_version": ...`.
  static void append_fields(const ScoreResult& r, std::string& out);

  // Reloads the champion (and the shadow) now; on success describes what is
  // served as JSON. For POST /v1/models/reload.
  Status reload(std::string* json) const;

  int label_field() const { return label_field_; }
  bool has_shadow() const { return shadow_ != nullptr; }
  uint64_t reloads() const;

 private:
  Scorer() = default;
  struct Source {
    int feature = -1;  // spec feature index, or
    int field = -1;    // schema field index
  };
  Result<std::vector<Source>> bind(const model::LoadedModel& m) const;
  // The model's inputs: where each of its features comes from (cached per
  // model version and thread).
  const std::vector<Source>& sources(const model::ModelSnapshot& snap) const;
  static void fill_row(const std::vector<Source>& srcs, const Event& event,
                       const FeatureValue* features, float* row);
  double run_model(const model::ModelSnapshot& snap, const Event& event,
                   const FeatureValue* features) const;
  // The rules' decision for a scored event (out->score set), and the shadow's score.
  void decide(const Event& event, const FeatureValue* features, ScoreResult* out, bool timed) const;

  const PipelineSpec* spec_ = nullptr;
  std::vector<std::string> names_;  // features, then schema fields
  std::unique_ptr<model::ModelWatcher> champion_, shadow_;
  decision::DecisionEngine decisions_ = decision::DecisionEngine::defaults();
  std::vector<Source> decision_sources_;
  int label_field_ = -1;
};

}  // namespace millrace
