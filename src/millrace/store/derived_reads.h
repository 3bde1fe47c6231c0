// DerivedReads: the online store's vectors with the derived (`expr:`)
// features a read can evaluate as of t, computed at read time by the same
// compiled expressions as the online path.
//
// A derived feature belongs to the vector of feature set S when its
// expression (and every derived feature it reads, transitively) reads
// nothing but:
//  - S's own features (sliding aggregates of any source keyed by S's key),
//    which the read has just evaluated as of t;
//  - the event fields that are S's key fields (the read's key);
//  - batch values keyed by S's key fields only, as of t;
//  - reference-table lookups (as of t), whatever their key expression, of
//    tables with their change records (DerivedFeatures::table_fed);
//  - constants and functions;
// and reads at least one of the first three. The others cannot be computed
// without an event, and are left out of the vector:
//  - fields of the event other than the key (amount, ts, lat ...): there is
//    no event at read time (`amount / card_avg_1h` is a value per event);
//  - prev() and is_new(): they are defined against the event being scored
//    (the event before it; whether its field value is new);
//  - features of other feature sets (another key).
// Evaluated at t, a derived feature is what an event of that key at t would
// have been given if it did not add itself to the windows: read right after
// a key's event, at its time, the value equals the one the online path gave
// that event (tested). Its freshness is the newest freshness among the
// features it reads (null when it reads none with a contributing event).
//
// Thread-safe: each reading thread gets its own evaluator.
#pragma once

#include <memory>
#include <vector>

#include "millrace/features/derived_features.h"
#include "millrace/features/feature_plan.h"
#include "millrace/store/online_store.h"

namespace millrace {

class DerivedReads : public OnlineStore {
 public:
  // `base` and `derived` must outlive this; `derived` is the run's (its
  // batch values and tables), or one opened for reads (`millrace features get`).
  DerivedReads(const PipelineSpec& spec, const FeaturePlan& plan, const OnlineStore& base,
               const DerivedFeatures& derived);
  ~DerivedReads() override;

  Status read(int feature_set, std::string_view key, TimeMs at, FeatureVector* out) const override;

  // The spec indexes of the derived features read with feature set `set`.
  const std::vector<int>& features(int set) const { return sets_[set].outputs; }

 private:
  struct SetDerived {
    std::vector<int> which;    // indexes into DerivedFeaturePlan::features
    std::vector<int> outputs;  // their spec indexes
    // Per derived feature: positions in the base vector whose freshness it takes.
    std::vector<std::vector<int>> fresh_from;
    std::vector<int> key_fields;  // scored-source field of each key name, -1 if none
  };
  const PipelineSpec& spec_;
  const FeaturePlan& plan_;
  const OnlineStore& base_;
  const DerivedFeatures& derived_;
  std::vector<SetDerived> sets_;
  const uint64_t id_;  // tells this instance's per-thread evaluators apart
};

}  // namespace millrace
