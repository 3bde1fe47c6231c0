// FeaturePlan: how a spec's features run. Features of one source with one key
// form a group, held per worker by a SlidingFeatureGroup. An event of the
// group's source updates it (per-event values); an event of another source
// whose schema has fields named like the group's key reads it as of its own
// event time. Groups with the same key names, whatever their source, form one
// feature set: what the online store serves as one vector per entity key.
#pragma once

#include <string>
#include <vector>

#include "millrace/stream/spec.h"

namespace millrace {

struct FeatureGroupPlan {
  int source = 0;
  std::vector<int> key_fields;  // in the owning source's schema
  std::vector<std::string> key_names;
  std::vector<FeatureSpec> features;
  std::vector<int> feature_outputs;  // spec feature index of each feature
  std::vector<int> windows;          // spec window indexes (same source and key)
  // Per source: the key's fields in that source's schema when its events read
  // this group as of their time; empty for the owner and for sources that lack
  // a key field.
  std::vector<std::vector<int>> read_fields;
  int feature_set = 0;  // index into FeaturePlan::feature_sets
};

struct FeatureSetPlan {
  std::string name;  // the key names joined by '+': "card_id", "card_id+merchant_id"
  std::vector<std::string> key_names;
  std::vector<int> groups;    // FeaturePlan::groups in this set
  std::vector<int> features;  // spec feature indexes, in spec order
};

struct FeaturePlan {
  std::vector<FeatureGroupPlan> groups;
  std::vector<FeatureSetPlan> feature_sets;
  // Per source: the spec feature indexes its events carry (own and read), in
  // spec order.
  std::vector<std::vector<int>> source_features;
  // Per spec feature: its group and position in the group ({-1, -1} for a
  // derived feature, which belongs to no group and no feature set).
  std::vector<std::pair<int, int>> feature_slot;

  int feature_set_index(std::string_view name) const;
};

FeaturePlan plan_features(const PipelineSpec& spec);

// Joins key values as keys are built internally (unit separator between fields).
inline constexpr char kKeySeparator = '\x1f';

}  // namespace millrace
