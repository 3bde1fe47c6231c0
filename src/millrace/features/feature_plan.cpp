#include "millrace/features/feature_plan.h"

#include <algorithm>

namespace millrace {

int FeaturePlan::feature_set_index(std::string_view name) const {
  for (size_t i = 0; i < feature_sets.size(); ++i)
    if (feature_sets[i].name == name) return static_cast<int>(i);
  return -1;
}

FeaturePlan plan_features(const PipelineSpec& spec) {
  FeaturePlan plan;
  const size_t nsrc = spec.sources.size();
  auto group_of = [&](int source, const std::vector<int>& key) -> int {
    for (size_t g = 0; g < plan.groups.size(); ++g)
      if (plan.groups[g].source == source && plan.groups[g].key_fields == key)
        return static_cast<int>(g);
    FeatureGroupPlan g;
    g.source = source;
    g.key_fields = key;
    for (int k : key) g.key_names.push_back(spec.sources[source].schema[k].name);
    g.read_fields.resize(nsrc);
    for (size_t s = 0; s < nsrc; ++s) {
      if (static_cast<int>(s) == source) continue;
      std::vector<int> fields;
      for (const auto& name : g.key_names) {
        int f = spec.sources[s].schema.index_of(name);
        if (f < 0) break;
        fields.push_back(f);
      }
      if (fields.size() == key.size()) g.read_fields[s] = std::move(fields);
    }
    plan.groups.push_back(std::move(g));
    return static_cast<int>(plan.groups.size()) - 1;
  };
  plan.feature_slot.resize(spec.features.size(), {-1, -1});
  for (size_t i = 0; i < spec.features.size(); ++i) {
    const FeatureSpec& f = spec.features[i];
    if (!f.expr.empty()) continue;  // derived: computed once the event has its other features
    int g = group_of(f.source, f.key_fields);
    plan.feature_slot[i] = {g, static_cast<int>(plan.groups[g].features.size())};
    plan.groups[g].features.push_back(f);
    plan.groups[g].feature_outputs.push_back(static_cast<int>(i));
  }
  // Helpers of derived features (prev, is_new) run with the key's other
  // features; their values go after the features' (PipelineSpec::feature_slots).
  for (size_t i = 0; i < spec.helper_features.size(); ++i) {
    const FeatureSpec& f = spec.helper_features[i];
    int g = group_of(f.source, f.key_fields);
    plan.groups[g].features.push_back(f);
    plan.groups[g].feature_outputs.push_back(static_cast<int>(spec.features.size() + i));
  }
  for (size_t i = 0; i < spec.windows.size(); ++i) {
    int g = group_of(spec.windows[i].source, spec.windows[i].key_fields);
    plan.groups[g].windows.push_back(static_cast<int>(i));
  }
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    FeatureGroupPlan& gp = plan.groups[g];
    std::string name;
    for (const auto& k : gp.key_names) name += (name.empty() ? "" : "+") + k;
    int set = plan.feature_set_index(name);
    if (set < 0) {
      plan.feature_sets.push_back(FeatureSetPlan{name, gp.key_names, {}, {}});
      set = static_cast<int>(plan.feature_sets.size()) - 1;
    }
    gp.feature_set = set;
    plan.feature_sets[set].groups.push_back(static_cast<int>(g));
  }
  plan.source_features.resize(nsrc);
  for (size_t i = 0; i < spec.features.size(); ++i) {
    if (plan.feature_slot[i].first < 0) {  // derived: on the scored source's events only
      plan.source_features[0].push_back(static_cast<int>(i));
      continue;
    }
    const FeatureGroupPlan& gp = plan.groups[plan.feature_slot[i].first];
    plan.feature_sets[gp.feature_set].features.push_back(static_cast<int>(i));
    for (size_t s = 0; s < nsrc; ++s)
      if (gp.source == static_cast<int>(s) || !gp.read_fields[s].empty())
        plan.source_features[s].push_back(static_cast<int>(i));
  }
  return plan;
}

}  // namespace millrace
