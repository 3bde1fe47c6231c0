#include "millrace/store/embedded_store.h"

#include <fmt/format.h>

#include "millrace/core/hash.h"

namespace millrace {

EmbeddedStore::EmbeddedStore(const PipelineSpec& spec, const FeaturePlan& plan, int workers)
    : spec_(spec), plan_(plan) {
  for (int w = 0; w < workers; ++w) {
    auto shard = std::make_unique<Shard>();
    for (const auto& g : plan.groups) {
      shard->groups.push_back(g.features.empty() ? nullptr
                                                 : std::make_unique<SlidingFeatureGroup>(
                                                       spec.sources[g.source].schema, g.features,
                                                       g.feature_outputs,
                                                       spec.sources[g.source].allowed_lateness));
    }
    shards_.push_back(std::move(shard));
  }
}

EmbeddedStore::~EmbeddedStore() = default;

int EmbeddedStore::worker_of(std::string_view key) const {
  return static_cast<int>(key_group_of(hash_string(key)) % shards_.size());
}

Status EmbeddedStore::read(int feature_set, std::string_view key, TimeMs at,
                           FeatureVector* out) const {
  if (feature_set < 0 || feature_set >= static_cast<int>(plan_.feature_sets.size()))
    return Status::Error(fmt::format("no feature set #{}", feature_set));
  const FeatureSetPlan& set = plan_.feature_sets[feature_set];
  const TimeMs wm = watermark_.load(std::memory_order_relaxed);
  for (int g : set.groups) {
    TimeMs lateness = spec_.sources[plan_.groups[g].source].allowed_lateness;
    if (wm != kMinTime && wm != kMaxTime && at < wm - lateness)
      return Status::Error(fmt::format(
          "at={} is older than the store keeps for feature set '{}' (watermark {} - allowed "
          "lateness {})",
          at, set.name, wm, format_duration(lateness)));
  }
  thread_local SlidingFeatureGroup::ReadScratch scratch;
  thread_local std::vector<FeatureValue> values;
  thread_local std::vector<TimeMs> fresh;
  values.resize(spec_.feature_slots());
  fresh.resize(spec_.feature_slots());
  const int w = worker_of(key);
  Shard& shard = *shards_[w];
  if (locking_) shard.lock();
  for (int g : set.groups)
    if (shard.groups[g]) shard.groups[g]->read_at(key, at, &scratch, values.data(), fresh.data());
  if (locking_) shard.unlock();
  out->names.resize(set.features.size());
  out->values.resize(set.features.size());
  out->freshness.resize(set.features.size());
  for (size_t i = 0; i < set.features.size(); ++i) {
    int f = set.features[i];
    if (out->names[i] != spec_.features[f].name) out->names[i] = spec_.features[f].name;
    out->values[i] = values[f];
    out->freshness[i] = fresh[f];
  }
  return Status::Ok();
}

}  // namespace millrace
