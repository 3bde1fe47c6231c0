#include "millrace/store/derived_reads.h"

#include <atomic>
#include <charconv>
#include <cstdlib>

namespace millrace {
namespace {

std::atomic<uint64_t> next_id{1};

// Sets field `f` of `e` from its text in an entity key (entity_key.h).
void set_key_field(const Schema& schema, int f, std::string_view text, Event* e) {
  if (text == "\x1e") return;  // null
  FieldValue& v = e->values[f];
  switch (schema[f].type) {
    case FieldType::String:
      e->set_string(f, text);
      break;
    case FieldType::Int64:
    case FieldType::Timestamp: {
      int64_t i = 0;
      if (std::from_chars(text.data(), text.data() + text.size(), i).ec == std::errc()) {
        v.kind = FieldValue::Kind::Int;
        v.i = i;
      }
      break;
    }
    case FieldType::Double: {
      std::string s(text);
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() + s.size()) {
        v.kind = FieldValue::Kind::Double;
        v.d = d;
      }
      break;
    }
    case FieldType::Bool:
      v.kind = FieldValue::Kind::Bool;
      v.b = text == "true";
      break;
  }
}

}  // namespace

DerivedReads::DerivedReads(const PipelineSpec& spec, const FeaturePlan& plan,
                           const OnlineStore& base, const DerivedFeatures& derived)
    : spec_(spec), plan_(plan), base_(base), derived_(derived), id_(next_id.fetch_add(1)) {
  const Schema& schema = spec.sources[0].schema;
  const int nfeatures = static_cast<int>(spec.features.size());
  sets_.resize(plan.feature_sets.size());
  for (size_t s = 0; s < plan.feature_sets.size(); ++s) {
    const FeatureSetPlan& set = plan.feature_sets[s];
    SetDerived& sd = sets_[s];
    for (const auto& name : set.key_names) sd.key_fields.push_back(schema.index_of(name));
    if (!spec.derived) continue;
    auto is_key = [&](std::string_view name) {
      for (const auto& k : set.key_names)
        if (k == name) return true;
      return false;
    };
    std::vector<int> pos(nfeatures, -1);  // spec feature -> position in the base vector
    for (size_t i = 0; i < set.features.size(); ++i) pos[set.features[i]] = static_cast<int>(i);
    std::vector<bool> evaluable(nfeatures, false);
    std::vector<std::vector<int>> fresh_of(nfeatures);
    const DerivedFeaturePlan& dp = *spec.derived;
    for (size_t d = 0; d < dp.features.size(); ++d) {
      const auto& f = dp.features[d];
      bool ok = true, reads_set = false;
      std::vector<int> fresh;
      for (const expr::Instr& ins : f.program.code) {
        const int a = static_cast<int>(ins.a);
        switch (ins.op) {
          case expr::Op::Field:
            if (is_key(schema[a].name)) {
              reads_set = true;
            } else {
              ok = false;
            }
            break;
          case expr::Op::Feature:
            if (a >= nfeatures) {  // NOLINT(bugprone-branch-clone): two reasons to refuse
              ok = false;          // prev() / is_new(): relative to the event being scored
            } else if (pos[a] >= 0) {
              reads_set = true;
              fresh.push_back(pos[a]);
            } else if (evaluable[a]) {
              reads_set = true;
              fresh.insert(fresh.end(), fresh_of[a].begin(), fresh_of[a].end());
            } else {
              ok = false;
            }
            break;
          case expr::Op::Lookup:
            ok = ok && derived.table_fed(a);  // a table without its changes would be wrong
            break;
          case expr::Op::Batch:
            for (int k : dp.batches[a].key_fields) ok = ok && is_key(schema[k].name);
            reads_set = true;
            break;
          default:
            break;
        }
      }
      if (!ok || !reads_set) continue;
      evaluable[f.output] = true;
      fresh_of[f.output] = fresh;
      sd.which.push_back(static_cast<int>(d));
      sd.outputs.push_back(f.output);
      sd.fresh_from.push_back(std::move(fresh));
    }
  }
}

DerivedReads::~DerivedReads() = default;

Status DerivedReads::read(int feature_set, std::string_view key, TimeMs at,
                          FeatureVector* out) const {
  if (feature_set < 0 || feature_set >= static_cast<int>(sets_.size()) ||
      sets_[feature_set].which.empty())
    return base_.read(feature_set, key, at, out);
  struct ThreadState {
    uint64_t owner = 0;
    std::unique_ptr<DerivedFeatures::Evaluator> evaluator;
    FeatureVector base;
    std::vector<FeatureValue> values;
    Event event;
  };
  thread_local ThreadState ts;
  if (ts.owner != id_) {
    ts.evaluator = derived_.evaluator();
    ts.owner = id_;
    ts.base = FeatureVector();
  }
  if (Status s = base_.read(feature_set, key, at, &ts.base); !s.ok()) return s;
  const SetDerived& sd = sets_[feature_set];
  const FeatureSetPlan& set = plan_.feature_sets[feature_set];
  ts.values.resize(spec_.feature_slots());
  for (size_t i = 0; i < set.features.size(); ++i) ts.values[set.features[i]] = ts.base.values[i];
  // The event of a read: the key's fields, at t.
  const Schema& schema = spec_.sources[0].schema;
  ts.event.reset(schema.size());
  ts.event.time = at;
  size_t begin = 0;
  for (size_t j = 0; j < sd.key_fields.size(); ++j) {
    size_t end = key.find(kKeySeparator, begin);
    if (end == std::string_view::npos) end = key.size();
    if (sd.key_fields[j] >= 0)
      set_key_field(schema, sd.key_fields[j], key.substr(begin, end - begin), &ts.event);
    begin = std::min(end + 1, key.size());
  }
  ts.evaluator->evaluate(ts.event, ts.values.data(), sd.which);

  const size_t nbase = ts.base.values.size(), n = nbase + sd.outputs.size();
  if (out->names_of != this || out->names_set != feature_set || out->names.size() != n) {
    out->names = ts.base.names;
    for (int f : sd.outputs) out->names.push_back(spec_.features[f].name);
    out->names_of = this;
    out->names_set = feature_set;
  }
  out->values.resize(n);
  out->freshness.resize(n);
  for (size_t i = 0; i < nbase; ++i) {
    out->values[i] = ts.base.values[i];
    out->freshness[i] = ts.base.freshness[i];
  }
  for (size_t d = 0; d < sd.outputs.size(); ++d) {
    out->values[nbase + d] = ts.values[sd.outputs[d]];
    TimeMs fresh = kMinTime;
    for (int p : sd.fresh_from[d]) fresh = std::max(fresh, ts.base.freshness[p]);
    out->freshness[nbase + d] = fresh;
  }
  return Status::Ok();
}

}  // namespace millrace
