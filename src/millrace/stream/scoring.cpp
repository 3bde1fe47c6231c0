#include "millrace/stream/scoring.h"

#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "millrace/core/json_writer.h"
#include "millrace/core/latency_histogram.h"
#include "millrace/model/registry.h"

namespace millrace {
namespace {

Result<std::unique_ptr<model::ModelWatcher>> watch(const YAML::Node& n, const std::string& registry,
                                                   const std::string& what,
                                                   const model::WatchOptions& options) {
  std::string reg = n["registry"] ? n["registry"].as<std::string>() : registry;
  if (n["path"]) return model::ModelWatcher::watch_file(n["path"].as<std::string>(), options);
  if (!n["name"])
    return Status::Error(fmt::format("{}: needs 'name' (with 'registry') or 'path'", what));
  if (reg.empty())
    return Status::Error(fmt::format("{}: 'name' needs a 'registry' directory", what));
  return model::ModelWatcher::watch_registry(model::ModelRegistry(reg), n["name"].as<std::string>(),
                                             options);
}

}  // namespace

Scorer::~Scorer() = default;

Result<std::vector<Scorer::Source>> Scorer::bind(const model::LoadedModel& m) const {
  auto binding = model::bind_features(m, names_);
  if (!binding.ok()) return binding.status();
  std::vector<Source> out;
  const int nfeat = static_cast<int>(spec_->features.size());
  for (size_t idx : binding->spec_index) {
    Source s;
    if (static_cast<int>(idx) < nfeat) {
      s.feature = static_cast<int>(idx);
    } else {
      s.field = static_cast<int>(idx) - nfeat;
    }
    out.push_back(s);
  }
  return out;
}

Result<std::unique_ptr<Scorer>> Scorer::Create(const PipelineSpec& spec) {
  const YAML::Node m = spec.root["model"];
  if (!m) return std::unique_ptr<Scorer>();
  auto where = [&](const YAML::Node& n) {
    return fmt::format("{}:{}", spec.file, n.Mark().line + 1);
  };
  if (!m.IsMap()) return Status::Error(where(m) + ": model: expected a mapping");
  std::unique_ptr<Scorer> s(new Scorer());
  s->spec_ = &spec;
  for (const auto& f : spec.features) s->names_.push_back(f.name);
  for (const auto& f : spec.source.schema.fields()) s->names_.push_back(f.name);
  const Scorer* self = s.get();
  model::WatchOptions opts;
  opts.validate = [self](const model::LoadedModel& lm) -> Status {
    auto b = self->bind(lm);
    return b.ok() ? Status::Ok() : b.status();
  };
  std::string registry = m["registry"] ? m["registry"].as<std::string>() : "";
  auto champion = watch(m, registry, where(m) + ": model", opts);
  if (!champion.ok()) return Status::Error(where(m) + ": model: " + champion.status().message());
  s->champion_ = std::move(champion.value());
  if (const YAML::Node sh = m["shadow"]) {
    auto shadow = watch(sh, registry, where(sh) + ": model.shadow", opts);
    if (!shadow.ok())
      return Status::Error(where(sh) + ": model.shadow: " + shadow.status().message());
    s->shadow_ = std::move(shadow.value());
  }
  if (const YAML::Node l = m["label"]) {
    s->label_field_ = spec.source.schema.index_of(l.as<std::string>());
    if (s->label_field_ < 0)
      return Status::Error(fmt::format("{}: model.label: field '{}' is not in the source schema",
                                       where(l), l.as<std::string>()));
  }
  auto decisions = decision::DecisionEngine::build(spec.root["decisions"]);
  if (!decisions.ok()) return Status::Error(spec.file + ": " + decisions.status().message());
  s->decisions_ = std::move(decisions.value());
  for (const auto& name : s->decisions_.fields()) {
    Source src;
    for (size_t i = 0; i < spec.features.size(); ++i)
      if (spec.features[i].name == name) src.feature = static_cast<int>(i);
    if (src.feature < 0) src.field = spec.source.schema.index_of(name);
    if (src.feature < 0 && src.field < 0)
      return Status::Error(fmt::format(
          "{}: decisions: '{}' is neither a feature nor a field of the source", spec.file, name));
    s->decision_sources_.push_back(src);
  }
  return s;
}

const std::vector<Scorer::Source>& Scorer::sources(const model::ModelSnapshot& snap) const {
  // Bindings per scorer and model version, cached per thread: a swap binds
  // once per thread. An entry holds a weak reference to its model: snapshots
  // are made by make_shared, so that keeps the model's memory allocated while
  // the entry is there, and a model loaded later (another version, another
  // pipeline's) can't take the address of a cached one and be read through
  // its binding (keyed by address alone, that happened: a stale binding fed a
  // new model the inputs of an old one).
  struct Cached {
    const Scorer* scorer;
    const model::LoadedModel* model;
    std::weak_ptr<const model::LoadedModel> hold;
    std::vector<Source> sources;
  };
  thread_local std::vector<Cached> cache;
  for (const Cached& c : cache)
    if (c.model == snap.get() && c.scorer == this) return c.sources;
  if (cache.size() >= 16) cache.clear();
  auto b = bind(*snap);
  cache.push_back({this, snap.get(), snap, b.ok() ? b.value() : std::vector<Source>()});
  return cache.back().sources;
}

void Scorer::fill_row(const std::vector<Source>& srcs, const Event& event,
                      const FeatureValue* features, float* row) {
  for (size_t i = 0; i < srcs.size(); ++i) {
    double v = srcs[i].feature >= 0 ? features[srcs[i].feature].as_double()
                                    : event.values[srcs[i].field].as_double();
    row[i] = static_cast<float>(v);
  }
}

double Scorer::run_model(const model::ModelSnapshot& snap, const Event& event,
                         const FeatureValue* features) const {
  thread_local std::vector<float> row;
  const std::vector<Source>& srcs = sources(snap);
  row.resize(srcs.size());
  fill_row(srcs, event, features, row.data());
  return snap->model->score(row.data());
}

void Scorer::score(const Event& event, const FeatureValue* features, ScoreResult* out,
                   bool timed) const {
  const int64_t t0 = timed ? StageClock::now() : 0;
  out->snapshot = champion_->handle()->current();
  out->model = out->snapshot.get();
  out->score = run_model(out->snapshot, event, features);
  if (timed) out->inference_ticks = StageClock::now() - t0;
  decide(event, features, out, timed);
}

void Scorer::score_batch(const BatchItem* items, size_t n, bool timed) const {
  if (n == 0) return;
  if (n == 1) return score(*items[0].event, items[0].features, items[0].out, timed);
  const int64_t t0 = timed ? StageClock::now() : 0;
  model::ModelSnapshot snap = champion_->handle()->current();
  const std::vector<Source>& srcs = sources(snap);
  const size_t stride = srcs.size(), outs = snap->model->num_outputs();
  thread_local std::vector<float> rows;
  thread_local std::vector<double> scores;
  rows.resize(n * stride);
  scores.resize(n * outs);
  for (size_t r = 0; r < n; ++r)
    fill_row(srcs, *items[r].event, items[r].features, rows.data() + r * stride);
  snap->model->predict_batch(rows.data(), n, stride, scores.data());
  const int64_t ticks = timed ? StageClock::now() - t0 : 0;
  for (size_t r = 0; r < n; ++r) {
    ScoreResult* out = items[r].out;
    out->snapshot = snap;
    out->model = snap.get();
    out->score = scores[r * outs];  // as Model::score(): the first output
    out->inference_ticks = ticks;
    decide(*items[r].event, items[r].features, out, timed);
  }
}

void Scorer::decide(const Event& event, const FeatureValue* features, ScoreResult* out,
                    bool timed) const {
  const int64_t t1 = timed ? StageClock::now() : 0;
  thread_local std::vector<decision::FieldValue> values;
  values.resize(decision_sources_.size());
  for (size_t i = 0; i < decision_sources_.size(); ++i) {
    const Source& src = decision_sources_[i];
    if (src.feature >= 0) {
      const FeatureValue& f = features[src.feature];
      if (f.is_null()) {
        values[i] = std::monostate();
      } else if (f.kind == FeatureValue::Kind::String) {
        values[i] = std::string_view(f.s);
      } else {
        values[i] = f.as_double();
      }
    } else {
      const FieldValue& v = event.values[src.field];
      if (v.is_null()) {
        values[i] = std::monostate();
      } else if (v.kind == FieldValue::Kind::String) {
        values[i] = event.str(v);
      } else {
        values[i] = v.as_double();
      }
    }
  }
  decisions_.decide(out->score, values, &out->decision);
  if (timed) out->decision_ticks = StageClock::now() - t1;
  out->has_shadow = shadow_ != nullptr;
  if (shadow_) {
    out->shadow_snapshot = shadow_->handle()->current();
    out->shadow_score = run_model(out->shadow_snapshot, event, features);
  }
}

void Scorer::append_fields(const ScoreResult& r, std::string& out) {
  append_json_key(out, "score");
  append_json_double(out, r.score);
  append_json_key(out, "action");
  append_json_string(out, decision::action_name(r.decision.action));
  if (r.decision.action == decision::Action::kChallenge && !r.decision.step_up.empty()) {
    append_json_key(out, "step_up");
    append_json_string(out, r.decision.step_up);
  }
  if (r.decision.review) {
    append_json_key(out, "review");
    out += "true";
  }
  append_json_key(out, "reason");
  append_json_string(out, r.decision.reason);
  append_json_key(out, "model");
  append_json_string(out, r.model->name);
  append_json_key(out, "model_version");
  append_json_string(out, r.model->version);
}

uint64_t Scorer::reloads() const {
  return champion_->reloads();
}

}  // namespace millrace

namespace millrace {

Status Scorer::reload(std::string* json) const {
  if (Status st = champion_->reload(); !st.ok()) return st;
  if (shadow_) {
    if (Status st = shadow_->reload(); !st.ok()) return st;
  }
  auto describe = [](const model::ModelSnapshot& m, std::string& out) {
    out += "{\"model\": ";
    append_json_string(out, m->name);
    append_json_key(out, "model_version");
    append_json_string(out, m->version);
    out += "}";
  };
  *json = "{\"champion\": ";
  describe(champion_->handle()->current(), *json);
  if (shadow_) {
    append_json_key(*json, "shadow");
    describe(shadow_->handle()->current(), *json);
  }
  *json += "}";
  return Status::Ok();
}

}  // namespace millrace
