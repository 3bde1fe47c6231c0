#include "millrace/stream/spec.h"

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "millrace/features/derived_features.h"

namespace millrace {
namespace {

// Collects the context of an error: file and line of the offending node.
struct SpecReader {
  std::string file;

  std::string where(const YAML::Node& n) const {
    if (n.Mark().line >= 0) return fmt::format("{}:{}", file, n.Mark().line + 1);
    return file;
  }
  Status error(const YAML::Node& n, const std::string& msg) const {
    return Status::Error(fmt::format("{}: {}", where(n), msg));
  }

  Status check_keys(const YAML::Node& n, const std::string& what,
                    std::initializer_list<const char*> allowed) const {
    if (!n.IsMap()) return error(n, fmt::format("{}: expected a mapping", what));
    for (auto it : n) {
      std::string k = it.first.as<std::string>();
      bool ok = false;
      for (const char* a : allowed) ok |= (k == a);
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return error(it.first,
                     fmt::format("{}: unknown key '{}' (expected one of: {})", what, k, list));
      }
    }
    return Status::Ok();
  }

  Result<TimeMs> duration(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return error(n, fmt::format("{}: expected a duration like 5s", what));
    auto d = parse_duration_ms(n.Scalar());
    if (!d.ok()) return error(n, fmt::format("{}: {}", what, d.status().message()));
    return d.value();
  }

  Result<LatePolicy> late_policy(const YAML::Node& n, const std::string& what) const {
    std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "drop") return LatePolicy::Drop;
    if (s == "side_output") return LatePolicy::SideOutput;
    return error(n, fmt::format("{}: late policy '{}' (expected drop or side_output)", what, s));
  }

  Result<std::vector<int>> key_fields(const YAML::Node& n, const Schema& schema,
                                      const std::string& what) const {
    std::vector<std::string> names;
    if (n.IsScalar()) {
      names.push_back(n.Scalar());
    } else if (n.IsSequence() && n.size() > 0) {
      for (const auto& k : n) names.push_back(k.as<std::string>());
    } else {
      return error(n, fmt::format("{}: key: expected a field name or a list of them", what));
    }
    std::vector<int> out;
    for (const auto& name : names) {
      int idx = schema.index_of(name);
      if (idx < 0)
        return error(n, fmt::format("{}: key field '{}' is not in the source schema", what, name));
      out.push_back(idx);
    }
    return out;
  }

  // Parses agg/field/q of a feature or a window aggregate.
  Status aggregate(const YAML::Node& n, const Schema& schema, const std::string& what, AggKind* agg,
                   int* field, double* q) const {
    const YAML::Node a = n["agg"];
    if (!a) return error(n, fmt::format("{}: missing 'agg'", what));
    auto kind = parse_agg_kind(a.Scalar());
    if (!kind) {
      return error(a, fmt::format("{}: unknown agg '{}' (expected count, sum, avg, min, max, "
                                  "stddev, count_distinct, first, last, quantile, prev, "
                                  "time_since_last or is_new)",
                                  what, a.Scalar()));
    }
    *agg = *kind;
    *field = -1;
    if (const YAML::Node f = n["field"]) {
      *field = schema.index_of(f.Scalar());
      if (*field < 0)
        return error(f,
                     fmt::format("{}: field '{}' is not in the source schema", what, f.Scalar()));
      FieldType t = schema[*field].type;
      bool numeric = t == FieldType::Int64 || t == FieldType::Double || t == FieldType::Bool ||
                     t == FieldType::Timestamp;
      if (agg_needs_number(*agg) && !numeric)
        return error(f, fmt::format("{}: {} needs a numeric field, '{}' is {}", what,
                                    agg_kind_name(*agg), f.Scalar(), field_type_name(t)));
    } else if (agg_needs_field(*agg)) {
      return error(n, fmt::format("{}: {} needs a 'field'", what, agg_kind_name(*agg)));
    }
    if (*agg == AggKind::Quantile) {
      const YAML::Node qn = n["q"];
      if (!qn) return error(n, fmt::format("{}: quantile needs 'q' in (0, 1)", what));
      *q = qn.as<double>();
      if (!(*q > 0 && *q < 1))
        return error(qn, fmt::format("{}: q = {} is outside (0, 1)", what, *q));
    }
    return Status::Ok();
  }
};

// Parses a source; `what` names it in errors ("source" or "sources.labels").
Status parse_source(const SpecReader& r, const YAML::Node& n, SourceSpec* src,
                    const std::string& what = "source") {
  if (auto s = r.check_keys(n, what,
                            {"name", "uri", "time", "max_out_of_orderness", "allowed_lateness",
                             "late", "idle_timeout", "schema"});
      !s.ok())
    return s;
  if (n["name"]) src->name = n["name"].as<std::string>();
  if (n["uri"]) src->uri = n["uri"].as<std::string>();
  const YAML::Node schema = n["schema"];
  if (!schema || !schema.IsMap() || schema.size() == 0)
    return r.error(n, what + ": missing 'schema' (a mapping of field name to type)");
  for (auto it : schema) {
    auto f = Schema::parse_field(it.first.as<std::string>(), it.second.as<std::string>());
    if (!f.ok()) return r.error(it.second, what + ".schema: " + f.status().message());
    src->schema.add(std::move(f.value()));
  }
  const YAML::Node time = n["time"];
  if (!time) return r.error(n, what + ": missing 'time' (the field holding event time)");
  src->time_field = src->schema.index_of(time.Scalar());
  if (src->time_field < 0)
    return r.error(time,
                   fmt::format("{}.time: field '{}' is not in the schema", what, time.Scalar()));
  FieldType tt = src->schema[src->time_field].type;
  if (tt == FieldType::Double || tt == FieldType::Bool)
    return r.error(time, fmt::format("{}.time: field '{}' is {}; expected int64 (epoch ms), "
                                     "string or timestamp (RFC 3339)",
                                     what, time.Scalar(), field_type_name(tt)));
  src->schema.mutable_field(src->time_field).optional = false;
  if (n["max_out_of_orderness"]) {
    auto d = r.duration(n["max_out_of_orderness"], what + ".max_out_of_orderness");
    if (!d.ok()) return d.status();
    src->max_out_of_orderness = d.value();
  }
  if (n["allowed_lateness"]) {
    auto d = r.duration(n["allowed_lateness"], what + ".allowed_lateness");
    if (!d.ok()) return d.status();
    src->allowed_lateness = d.value();
  }
  if (n["idle_timeout"]) {
    auto d = r.duration(n["idle_timeout"], what + ".idle_timeout");
    if (!d.ok()) return d.status();
    src->idle_timeout = d.value();
  }
  if (n["late"]) {
    auto p = r.late_policy(n["late"], what + ".late");
    if (!p.ok()) return p.status();
    src->late = p.value();
  }
  return Status::Ok();
}

// Reads a feature's or a window's `source:` (default: the first source).
Result<int> source_of(const SpecReader& r, const YAML::Node& n, const PipelineSpec& spec,
                      const std::string& what) {
  const YAML::Node sn = n["source"];
  if (!sn) return 0;
  int i = source_index(spec, sn.IsScalar() ? sn.Scalar() : "");
  if (i < 0 && table_source_index(spec, sn.Scalar()) >= 0)
    return r.error(sn, fmt::format("{}: source '{}' feeds a table (its records are the table's "
                                   "change records); features and windows are defined on the "
                                   "other sources",
                                   what, sn.Scalar()));
  if (i < 0) {
    std::string list;
    for (const auto& s : spec.sources) list += (list.empty() ? "" : ", ") + s.name;
    return r.error(sn, fmt::format("{}: source '{}' is not defined (sources: {})", what,
                                   sn.IsScalar() ? sn.Scalar() : "", list));
  }
  return i;
}

Status parse_feature(const SpecReader& r, const YAML::Node& n, const PipelineSpec& spec,
                     FeatureSpec* f) {
  if (!n.IsMap()) return r.error(n, "features: each entry must be a mapping");
  if (!n["name"]) return r.error(n, "feature: missing 'name'");
  f->name = n["name"].as<std::string>();
  f->line = n.Mark().line + 1;
  std::string what = fmt::format("feature '{}'", f->name);
  if (n["expr"]) {  // derived: compiled by plan_derived_features once all features are read
    if (auto s = r.check_keys(n, what, {"name", "expr", "key"}); !s.ok()) return s;
    f->expr = n["expr"].as<std::string>();
    f->source = 0;  // derived features are computed for the scored source's events
    if (!n["key"]) return Status::Ok();
    auto keys = r.key_fields(n["key"], spec.sources[0].schema, what);
    if (!keys.ok()) return keys.status();
    f->key_fields = keys.value();
    for (int k : f->key_fields) f->key_names.push_back(spec.sources[0].schema[k].name);
    return Status::Ok();
  }
  if (auto s = r.check_keys(
          n, what,
          {"name", "source", "key", "agg", "field", "window", "q", "ttl", "slice", "expr"});
      !s.ok())
    return s;
  auto src = source_of(r, n, spec, what);
  if (!src.ok()) return src.status();
  f->source = src.value();
  const Schema& schema = spec.sources[f->source].schema;
  if (!n["key"]) return r.error(n, what + ": missing 'key'");
  auto keys = r.key_fields(n["key"], schema, what);
  if (!keys.ok()) return keys.status();
  f->key_fields = keys.value();
  for (int k : f->key_fields) f->key_names.push_back(schema[k].name);
  for (const char* opt : {"ttl", "slice"}) {
    if (const YAML::Node d = n[opt]) {
      auto v = r.duration(d, what + ": " + opt);
      if (!v.ok()) return v.status();
      if (v.value() <= 0) return r.error(d, fmt::format("{}: {} must be positive", what, opt));
      (std::string(opt) == "ttl" ? f->ttl : f->slice) = v.value();
    }
  }
  if (auto s = r.aggregate(n, schema, what, &f->agg, &f->field, &f->q); !s.ok()) return s;
  bool helper = f->agg == AggKind::Prev || f->agg == AggKind::TimeSinceLast;
  if (const YAML::Node w = n["window"]) {
    auto d = r.duration(w, what + ": window");
    if (!d.ok()) return d.status();
    f->window = d.value();
    if (f->window <= 0) return r.error(w, what + ": window must be positive");
  } else if (helper) {
    f->window = 86'400'000;  // look back one day for the previous event by default
  } else {
    return r.error(n, what + ": missing 'window' (e.g. 5m)");
  }
  return Status::Ok();
}

Status parse_window(const SpecReader& r, const YAML::Node& n, const PipelineSpec& spec,
                    WindowSpec* w) {
  if (!n.IsMap()) return r.error(n, "windows: each entry must be a mapping");
  if (!n["name"]) return r.error(n, "window: missing 'name'");
  w->name = n["name"].as<std::string>();
  w->line = n.Mark().line + 1;
  std::string what = fmt::format("window '{}'", w->name);
  if (auto s = r.check_keys(n, what,
                            {"name", "source", "key", "type", "size", "slide", "gap", "aggs",
                             "allowed_lateness", "late", "retract", "output"});
      !s.ok())
    return s;
  auto src = source_of(r, n, spec, what);
  if (!src.ok()) return src.status();
  w->source = src.value();
  const Schema& schema = spec.sources[w->source].schema;
  if (!n["key"]) return r.error(n, what + ": missing 'key'");
  auto keys = r.key_fields(n["key"], schema, what);
  if (!keys.ok()) return keys.status();
  w->key_fields = keys.value();
  std::string type = n["type"] ? n["type"].Scalar() : "";
  auto need = [&](const char* key, TimeMs* out) -> Status {
    if (!n[key]) return r.error(n, fmt::format("{}: {} window needs '{}'", what, type, key));
    auto d = r.duration(n[key], what + ": " + key);
    if (!d.ok()) return d.status();
    if (d.value() <= 0) return r.error(n[key], fmt::format("{}: {} must be positive", what, key));
    *out = d.value();
    return Status::Ok();
  };
  if (type == "tumbling") {
    w->type = WindowType::Tumbling;
    if (auto s = need("size", &w->size); !s.ok()) return s;
    w->slide = w->size;
  } else if (type == "hopping" || type == "sliding") {
    w->type = WindowType::Hopping;
    if (auto s = need("size", &w->size); !s.ok()) return s;
    if (auto s = need("slide", &w->slide); !s.ok()) return s;
    if (w->slide > w->size) return r.error(n["slide"], what + ": slide must not exceed size");
  } else if (type == "session") {
    w->type = WindowType::Session;
    if (auto s = need("gap", &w->gap); !s.ok()) return s;
  } else {
    return r.error(
        n["type"] ? n["type"] : n,
        fmt::format("{}: type '{}' (expected tumbling, hopping or session)", what, type));
  }
  const YAML::Node aggs = n["aggs"];
  if (!aggs || !aggs.IsSequence() || aggs.size() == 0)
    return r.error(n, what + ": 'aggs' must list at least one aggregate");
  std::set<std::string> names;
  for (const auto& a : aggs) {
    WindowAggSpec spec;
    if (!a.IsMap() || !a["name"]) return r.error(a, what + ": each aggregate needs a 'name'");
    spec.name = a["name"].as<std::string>();
    std::string awhat = fmt::format("{} aggregate '{}'", what, spec.name);
    if (auto s = r.check_keys(a, awhat, {"name", "agg", "field", "q"}); !s.ok()) return s;
    if (auto s = r.aggregate(a, schema, awhat, &spec.agg, &spec.field, &spec.q); !s.ok()) return s;
    if (spec.agg == AggKind::Prev || spec.agg == AggKind::TimeSinceLast ||
        spec.agg == AggKind::IsNew)
      return r.error(a, awhat + ": prev, time_since_last and is_new are per-event features only");
    if (!names.insert(spec.name).second) return r.error(a, awhat + ": duplicate name");
    w->aggs.push_back(std::move(spec));
  }
  if (n["allowed_lateness"]) {
    auto d = r.duration(n["allowed_lateness"], what + ": allowed_lateness");
    if (!d.ok()) return d.status();
    w->allowed_lateness = d.value();
  }
  if (n["late"]) {
    auto p = r.late_policy(n["late"], what + ": late");
    if (!p.ok()) return p.status();
    w->late = p.value();
  }
  if (n["retract"]) w->retract = n["retract"].as<bool>();
  if (n["output"]) w->output = n["output"].as<std::string>();
  return Status::Ok();
}

}  // namespace

// yaml-cpp rejects a plain scalar ending in '?' right before a flow
// indicator ("{amount: double?, ...}"), the spelling of optional fields.
// Quote such words; lines and columns stay where they were.
std::string quote_optional_types(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '?' && i > 0 &&
        (std::isalnum(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '_')) {
      size_t j = i + 1;
      while (j < text.size() && text[j] == ' ') ++j;
      if (j < text.size() && (text[j] == ',' || text[j] == '}' || text[j] == ']')) {
        size_t start = out.size();
        while (start > 0 &&
               (std::isalnum(static_cast<unsigned char>(out[start - 1])) || out[start - 1] == '_'))
          --start;
        out.insert(start, 1, '"');
        out += "?\"";
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

Result<PipelineSpec> parse_spec(const std::string& text, const std::string& file) {
  PipelineSpec spec;
  spec.file = file;
  SpecReader r{file};
  try {
    spec.root = YAML::Load(quote_optional_types(text));
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("{}:{}: not valid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  const YAML::Node& root = spec.root;
  if (!root.IsMap())
    return Status::Error(file + ": expected a mapping with 'source:' or 'sources:' at the top");
  try {
    const YAML::Node source = root["source"];
    const YAML::Node sources = root["sources"];
    if (source && sources)
      return r.error(sources,
                     "use either 'source:' (one source) or 'sources:' (by name), not both");
    if (source) {
      SourceSpec src;
      if (auto s = parse_source(r, source, &src); !s.ok()) return s;
      spec.sources.push_back(std::move(src));
    } else if (sources) {
      if (!sources.IsMap() || sources.size() == 0)
        return r.error(sources, "sources: expected a mapping of source name to its settings");
      // Sources that tables name as their change stream (checked in full with the tables).
      std::set<std::string> table_sources;
      if (const YAML::Node tables = root["tables"]; tables && tables.IsSequence())
        for (const auto& t : tables)
          if (t.IsMap() && t["source"] && t["source"].IsScalar())
            table_sources.insert(t["source"].Scalar());
      for (auto it : sources) {
        SourceSpec src;
        src.name = it.first.as<std::string>();
        if (source_index(spec, src.name) >= 0 || table_source_index(spec, src.name) >= 0)
          return r.error(it.first, fmt::format("sources: '{}' is defined twice", src.name));
        if (it.second["name"])
          return r.error(
              it.second["name"],
              fmt::format("source '{}': the name is the mapping key; remove 'name'", src.name));
        if (auto s = parse_source(r, it.second, &src, "sources." + src.name); !s.ok()) return s;
        if (table_sources.count(src.name))
          spec.table_sources.push_back(std::move(src));
        else
          spec.sources.push_back(std::move(src));
      }
      if (spec.sources.empty())
        return r.error(sources,
                       "sources: every source feeds a table; list the events' source too (the "
                       "first one listed that feeds no table is the scored source)");
    } else {
      return Status::Error(file + ": missing 'source:' section (or 'sources:', by name)");
    }
    spec.source = spec.sources[0];
    if (root["workers"]) spec.workers = root["workers"].as<int>();
    if (const YAML::Node st = root["store"]) {
      if (st.IsScalar()) {
        spec.store.uri = st.Scalar();
      } else {
        if (auto s = r.check_keys(st, "store", {"uri", "slice", "prefix"}); !s.ok()) return s;
        if (st["uri"]) spec.store.uri = st["uri"].as<std::string>();
        if (st["prefix"]) spec.store.prefix = st["prefix"].as<std::string>();
        if (st["slice"]) {
          auto d = r.duration(st["slice"], "store: slice");
          if (!d.ok()) return d.status();
          if (d.value() <= 0) return r.error(st["slice"], "store: slice must be positive");
          spec.store.slice = d.value();
        }
      }
      const std::string& u = spec.store.uri;
      if (!u.empty() && u != "embedded" && u.rfind("redis://", 0) != 0)
        return r.error(st, fmt::format("store: '{}' (expected embedded or redis://HOST:PORT)", u));
      if (u == "embedded") spec.store.uri.clear();
    }
    // Feature names must not shadow a field of any source that can output them.
    std::set<std::string> names;
    for (const auto& src : spec.sources)
      for (const auto& fd : src.schema.fields()) names.insert(fd.name);
    if (const YAML::Node features = root["features"]) {
      if (!features.IsSequence()) return r.error(features, "features: expected a list");
      // A key's state has a header per feature (and per helper of prev and
      // is_new) counted in 16 bits: a bound far above any real spec.
      constexpr size_t kMaxFeatures = 10'000;
      if (features.size() > kMaxFeatures)
        return r.error(features, fmt::format("features: {} entries, at most {} in one spec (split "
                                             "it into specs of fewer features)",
                                             features.size(), kMaxFeatures));
      for (const auto& n : features) {
        FeatureSpec f;
        if (auto s = parse_feature(r, n, spec, &f); !s.ok()) return s;
        if (!names.insert(f.name).second)
          return r.error(n, fmt::format("feature '{}': the name is already used by a field or "
                                        "another feature",
                                        f.name));
        spec.features.push_back(std::move(f));
      }
    }
    if (const YAML::Node windows = root["windows"]) {
      if (!windows.IsSequence()) return r.error(windows, "windows: expected a list");
      std::set<std::string> wnames;
      for (const auto& n : windows) {
        WindowSpec w;
        if (auto s = parse_window(r, n, spec, &w); !s.ok()) return s;
        if (!wnames.insert(w.name).second)
          return r.error(n, fmt::format("window '{}': duplicate name", w.name));
        spec.windows.push_back(std::move(w));
      }
    }
    if (auto s = plan_derived_features(&spec); !s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return Status::Error(fmt::format("{}:{}: {}", file, e.mark.line + 1, e.msg));
  }
  return spec;
}

int source_index(const PipelineSpec& spec, std::string_view name) {
  for (size_t i = 0; i < spec.sources.size(); ++i)
    if (spec.sources[i].name == name) return static_cast<int>(i);
  return -1;
}

int table_source_index(const PipelineSpec& spec, std::string_view name) {
  for (size_t i = 0; i < spec.table_sources.size(); ++i)
    if (spec.table_sources[i].name == name) return static_cast<int>(i);
  return -1;
}

Result<PipelineSpec> load_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Error(fmt::format("{}: cannot read the spec file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_spec(ss.str(), path);
}

}  // namespace millrace
