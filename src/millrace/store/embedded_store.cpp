#include "millrace/store/embedded_store.h"

#include <algorithm>

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
  for (const FeatureSetPlan& set : plan.feature_sets) {
    SetLayout l;
    l.min_lateness = kMaxTime;
    for (int g : set.groups) {
      l.min_lateness =
          std::min(l.min_lateness, spec.sources[plan.groups[g].source].allowed_lateness);
      if (!plan.groups[g].features.empty()) l.groups.push_back(g);
    }
    l.slots = set.features;
    layouts_.push_back(std::move(l));
  }
}

EmbeddedStore::~EmbeddedStore() = default;

void EmbeddedStore::enable_concurrent_reads() {
  concurrent_ = true;
  for (auto& shard : shards_)
    for (auto& g : shard->groups)
      if (g) g->enable_concurrent_reads();
}

int EmbeddedStore::worker_of(std::string_view key) const {
  return static_cast<int>(key_group_of(hash_string(key)) % shards_.size());
}

Status EmbeddedStore::read(int feature_set, std::string_view key, TimeMs at,
                           FeatureVector* out) const {
  if (feature_set < 0 || feature_set >= static_cast<int>(layouts_.size()))
    return Status::Error(fmt::format("no feature set #{}", feature_set));
  const SetLayout& layout = layouts_[feature_set];
  const TimeMs wm = watermark_.load(std::memory_order_relaxed);
  if (wm != kMinTime && wm != kMaxTime && at < wm - layout.min_lateness)
    return Status::Error(fmt::format(
        "at={} is older than the store keeps for feature set '{}' (watermark {} - allowed "
        "lateness {})",
        at, plan_.feature_sets[feature_set].name, wm, format_duration(layout.min_lateness)));
  struct ThreadScratch {
    SlidingFeatureGroup::ReadScratch read;
    std::vector<FeatureValue> values;
    std::vector<TimeMs> fresh;
  };
  thread_local ThreadScratch scratch;
  const size_t slots = spec_.feature_slots();
  if (scratch.values.size() < slots) {
    scratch.values.resize(slots);
    scratch.fresh.resize(slots);
  }
  Shard& shard = *shards_[worker_of(key)];
  if (concurrent_ && !needs_lock(shard)) {
    for (int g : layout.groups)
      shard.groups[g]->read_at_concurrent(key, at, &scratch.read, scratch.values.data(),
                                          scratch.fresh.data());
  } else {
    bool exclusive = false;
    if (concurrent_) {
      for (int g : layout.groups) exclusive |= shard.groups[g]->reads_load_keys();
      exclusive ? shard.lock.lock() : shard.lock.lock_shared();
    }
    for (int g : layout.groups)
      shard.groups[g]->read_at(key, at, &scratch.read, scratch.values.data(), scratch.fresh.data());
    if (concurrent_) exclusive ? shard.lock.unlock() : shard.lock.unlock_shared();
  }

  const size_t n = layout.slots.size();
  if (out->names_of != this || out->names_set != feature_set || out->names.size() != n) {
    out->names.resize(n);
    for (size_t i = 0; i < n; ++i) out->names[i] = spec_.features[layout.slots[i]].name;
    out->names_of = this;
    out->names_set = feature_set;
  }
  out->values.resize(n);
  out->freshness.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const FeatureValue& v = scratch.values[layout.slots[i]];
    FeatureValue& o = out->values[i];
    o.kind = v.kind;
    o.i = v.i;
    o.d = v.d;
    if (v.kind == FeatureValue::Kind::String) o.s.assign(v.s);
    out->freshness[i] = scratch.fresh[layout.slots[i]];
  }
  return Status::Ok();
}

}  // namespace millrace
