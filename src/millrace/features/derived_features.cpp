#include "millrace/features/derived_features.h"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <simdjson.h>

#include "millrace/core/entity_key.h"
#include "millrace/core/event_parser.h"
#include "millrace/core/json_writer.h"
#include "millrace/expr/compiler.h"
#include "millrace/stream/io.h"

namespace millrace {
namespace {

struct Where {
  const std::string& file;
  std::string at(const YAML::Node& n) const {
    if (n.Mark().line >= 0) return fmt::format("{}:{}", file, n.Mark().line + 1);
    return file;
  }
  Status error(const YAML::Node& n, const std::string& msg) const {
    return Status::Error(fmt::format("{}: {}", at(n), msg));
  }
};

Status check_keys(const Where& w, const YAML::Node& n, const std::string& what,
                  std::initializer_list<const char*> allowed) {
  if (!n.IsMap()) return w.error(n, what + ": expected a mapping");
  for (auto it : n) {
    std::string k = it.first.as<std::string>();
    bool ok = false;
    std::string list;
    for (const char* a : allowed) {
      ok |= k == a;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    if (!ok)
      return w.error(it.first,
                     fmt::format("{}: unknown key '{}' (expected one of: {})", what, k, list));
  }
  return Status::Ok();
}

// A path relative to the spec file's directory.
std::string resolve_path(const std::string& spec_file, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || path.rfind("log:", 0) == 0 || path == "-") return path;
  std::filesystem::path dir = std::filesystem::path(spec_file).parent_path();
  return dir.empty() ? path : (dir / p).string();
}

Status add_columns(const Where& w, const YAML::Node& entry, const std::string& what, Schema* out) {
  const YAML::Node n = entry["columns"];
  if (!n || !n.IsMap() || n.size() == 0)
    return w.error(n ? n : entry, what +
                                      ": 'columns' must map column names to types, e.g. "
                                      "{risk: double?, country: string?}");
  for (auto it : n) {
    std::string name = it.first.as<std::string>();
    if (out->index_of(name) >= 0)
      return w.error(it.first, fmt::format("{}: column '{}' twice", what, name));
    auto f = Schema::parse_field(name, it.second.as<std::string>());
    if (!f.ok()) return w.error(it.second, what + ": " + f.status().message());
    out->add(std::move(f.value()));
  }
  return Status::Ok();
}

Result<std::vector<int>> key_fields(const Where& w, const YAML::Node& n, const Schema& schema,
                                    const std::string& what) {
  std::vector<std::string> names;
  if (n.IsScalar()) {
    names.push_back(n.Scalar());
  } else if (n.IsSequence() && n.size() > 0) {
    for (const auto& k : n) names.push_back(k.as<std::string>());
  } else {
    return w.error(n, what + ": key: expected a field name or a list of them");
  }
  std::vector<int> out;
  for (const auto& name : names) {
    int idx = schema.index_of(name);
    if (idx < 0)
      return w.error(n, fmt::format("{}: key field '{}' is not in the source schema", what, name));
    out.push_back(idx);
  }
  return out;
}

Result<BatchSpec> parse_batch(const Where& w, const YAML::Node& n, const PipelineSpec& spec) {
  if (!n.IsMap() || !n["name"]) return w.error(n, "batch: each entry needs a 'name'");
  BatchSpec b;
  b.name = n["name"].as<std::string>();
  b.line = n.Mark().line + 1;
  const std::string what = fmt::format("batch '{}'", b.name);
  if (auto s = check_keys(w, n, what, {"name", "path", "key", "as_of", "columns", "poll"}); !s.ok())
    return s;
  if (!n["path"]) return w.error(n, what + ": missing 'path' (a CSV or JSON-lines file)");
  b.path = resolve_path(spec.file, n["path"].as<std::string>());
  if (!n["key"]) return w.error(n, what + ": missing 'key' (the event field(s) to match)");
  MR_TRY_ASSIGN(keys, key_fields(w, n["key"], spec.source.schema, what));
  b.key_fields = keys;
  for (int k : b.key_fields) {
    FieldDef f = spec.source.schema[k];
    f.optional = false;
    b.columns.add(f);
  }
  std::string as_of = n["as_of"] ? n["as_of"].as<std::string>() : "as_of";
  if (b.columns.index_of(as_of) >= 0)
    return w.error(n["as_of"], fmt::format("{}: as_of column '{}' is also a key", what, as_of));
  b.as_of_column = b.columns.add({as_of, FieldType::Timestamp, false});
  b.first_value = static_cast<int>(b.columns.size());
  if (auto s = add_columns(w, n, what, &b.columns); !s.ok()) return s;
  if (n["poll"]) {
    auto d = parse_duration_ms(n["poll"].Scalar());
    if (!d.ok()) return w.error(n["poll"], what + ": poll: " + d.status().message());
    b.poll_interval = d.value();
  }
  return b;
}

// The table's change records are a spec source's events (`source:`): its
// schema must hold the key, the op field and the columns, with their types.
Status check_table_source(const Where& w, const YAML::Node& n, const PipelineSpec& spec,
                          const std::string& what, const std::string& key, TableSpec* t) {
  const std::string name = n["source"].IsScalar() ? n["source"].Scalar() : "";
  t->source = name;
  t->source_index = table_source_index(spec, name);
  if (t->source_index < 0) {
    std::string list;
    for (const auto& src : spec.sources) list += (list.empty() ? "" : ", ") + src.name;
    return w.error(n["source"],
                   fmt::format("{}: source '{}' is not defined (expected an entry of 'sources:' "
                               "whose events are the change records; sources: {})",
                               what, name, list));
  }
  const SourceSpec& src = spec.table_sources[t->source_index];
  const Schema& schema = src.schema;
  const std::string in = fmt::format("source '{}'", name);
  t->time = schema[src.time_field].name;
  if (!n["columns"]) {  // every field of the source but the op and the time
    for (const FieldDef& f : schema.fields())
      if (f.name != t->op && f.name != t->time) t->columns.add(f);
  } else if (auto s = add_columns(w, n, what, &t->columns); !s.ok()) {
    return s;
  }
  const int key_field = schema.index_of(key);
  if (key_field < 0)
    return w.error(n["key"], fmt::format("{}: {} has no field '{}' (the table's key); expected "
                                         "its schema to hold the key, the op field and the columns",
                                         what, in, key));
  t->key_column = t->columns.index_of(key);
  if (t->key_column < 0) t->key_column = t->columns.add(schema[key_field]);
  const int op_field = schema.index_of(t->op);
  if (op_field < 0 || schema[op_field].type != FieldType::String)
    return w.error(n["op"] ? n["op"] : n["source"],
                   fmt::format("{}: {} has no string field '{}' (the op field: upsert or delete); "
                               "add it to the source's schema, or name another with 'op:'",
                               what, in, t->op));
  for (const FieldDef& c : t->columns.fields()) {
    const int f = schema.index_of(c.name);
    if (f < 0)
      return w.error(n["columns"],
                     fmt::format("{}: column '{}' is not a field of {} (expected every column in "
                                 "the source's schema)",
                                 what, c.name, in));
    if (schema[f].type != c.type)
      return w.error(n["columns"],
                     fmt::format("{}: column '{}' is {} here but {} in {}'s schema", what, c.name,
                                 field_type_name(c.type), field_type_name(schema[f].type), in));
  }
  return Status::Ok();
}

Result<TableSpec> parse_table(const Where& w, const YAML::Node& n, const PipelineSpec& spec) {
  if (!n.IsMap() || !n["name"]) return w.error(n, "tables: each entry needs a 'name'");
  TableSpec t;
  t.name = n["name"].as<std::string>();
  t.line = n.Mark().line + 1;
  const std::string what = fmt::format("table '{}'", t.name);
  if (auto s = check_keys(w, n, what,
                          {"name", "path", "key", "columns", "source", "changes", "time", "op"});
      !s.ok())
    return s;
  if (!n["key"] || !n["key"].IsScalar())
    return w.error(n, what + ": missing 'key' (the column rows are keyed by)");
  const std::string key = n["key"].as<std::string>();
  if (n["op"]) t.op = n["op"].as<std::string>();
  if (n["path"]) t.path = resolve_path(spec.file, n["path"].as<std::string>());
  if (n["source"]) {
    if (n["changes"])
      return w.error(n["changes"],
                     what +
                         ": give either 'source' (an entry of 'sources:' whose events are the "
                         "change records) or 'changes' (a file or log of them), not both");
    if (n["time"])
      return w.error(n["time"], what +
                                    ": 'time' comes from the source (its time field); remove "
                                    "it");
    if (auto s = check_table_source(w, n, spec, what, key, &t); !s.ok()) return s;
  } else {
    if (auto s = add_columns(w, n, what, &t.columns); !s.ok()) return s;
    t.key_column = t.columns.index_of(key);
    if (t.key_column < 0) t.key_column = t.columns.add({key, FieldType::String, false});
    if (n["changes"]) {
      t.changes = resolve_path(spec.file, n["changes"].as<std::string>());
      if (!n["time"])
        return w.error(n, what +
                              ": 'changes' needs 'time' (the field of a change record holding "
                              "its event time)");
    }
    if (t.path.empty() && t.changes.empty())
      return w.error(n, what +
                            ": needs 'path' (initial rows), change records ('source': an entry "
                            "of 'sources:', or 'changes': a file of them) or both");
    if (n["time"]) t.time = n["time"].as<std::string>();
  }
  t.columns.mutable_field(t.key_column).optional = false;
  for (const std::string* f : {&t.time, &t.op})
    if (t.columns.index_of(*f) >= 0)
      return w.error(
          n, fmt::format("{}: '{}' names both a column and a field of change records", what, *f));
  return t;
}

}  // namespace

expr::Type sliding_feature_type(const FeatureSpec& f, const Schema& schema) {
  switch (f.agg) {
    case AggKind::Count:
    case AggKind::CountDistinct:
    case AggKind::TimeSinceLast:
      return expr::Type::Int;
    case AggKind::IsNew:
      return expr::Type::Bool;
    case AggKind::First:
    case AggKind::Last:
    case AggKind::Prev:
      return expr::type_of_field(schema[f.field].type);
    default:
      return expr::Type::Double;
  }
}

Status plan_derived_features(PipelineSpec* spec) {
  const YAML::Node& root = spec->root;
  Where w{spec->file};
  auto plan = std::make_shared<DerivedFeaturePlan>();
  std::set<std::string> names;
  if (const YAML::Node batches = root["batch"]) {
    if (!batches.IsSequence()) return w.error(batches, "batch: expected a list");
    for (const auto& n : batches) {
      MR_TRY_ASSIGN(b, parse_batch(w, n, *spec));
      if (!names.insert(b.name).second)
        return w.error(n, fmt::format("batch '{}': duplicate name", b.name));
      plan->batches.push_back(std::move(b));
    }
  }
  names.clear();
  if (const YAML::Node tables = root["tables"]) {
    if (!tables.IsSequence()) return w.error(tables, "tables: expected a list");
    for (const auto& n : tables) {
      MR_TRY_ASSIGN(t, parse_table(w, n, *spec));
      if (!names.insert(t.name).second)
        return w.error(n, fmt::format("table '{}': duplicate name", t.name));
      for (const TableSpec& o : plan->tables)
        if (!t.source.empty() && o.source == t.source)
          return w.error(n["source"], fmt::format("table '{}': source '{}' already feeds table "
                                                  "'{}' (expected one table per source)",
                                                  t.name, t.source, o.name));
      plan->tables.push_back(std::move(t));
    }
  }

  expr::Environment env;
  env.schema = &spec->source.schema;
  for (const auto& b : plan->batches) {
    expr::Environment::Source s{b.name, {}};
    for (size_t c = b.first_value; c < b.columns.size(); ++c)
      s.columns.emplace_back(b.columns[c].name, expr::type_of_field(b.columns[c].type));
    env.batches.push_back(std::move(s));
  }
  for (const auto& t : plan->tables) {
    expr::Environment::Source s{t.name, {}};
    for (size_t c = 0; c < t.columns.size(); ++c)
      s.columns.emplace_back(t.columns[c].name, expr::type_of_field(t.columns[c].type));
    env.tables.push_back(std::move(s));
  }
  const int nfeatures = static_cast<int>(spec->features.size());
  for (int i = 0; i < nfeatures; ++i) env.later.push_back(spec->features[i].name);
  const YAML::Node features = root["features"];
  for (int i = 0; i < nfeatures; ++i) {
    const FeatureSpec& f = spec->features[i];
    env.later.erase(env.later.begin());
    if (f.expr.empty()) {
      env.features.push_back({f.name, sliding_feature_type(f, spec->sources[f.source].schema), i});
      continue;
    }
    env.helper = [&](const expr::KeyedHelper& h) -> Result<int> {
      if (f.key_fields.empty())
        return Status::Error(
            "prev() and is_new() keep state per key: give the feature a 'key:' (e.g. key: "
            "card_id)");
      FeatureSpec hs;
      hs.source = 0;
      hs.key_fields = f.key_fields;
      hs.key_names = f.key_names;
      hs.agg = h.kind == expr::KeyedHelper::Kind::Prev ? AggKind::Prev : AggKind::IsNew;
      hs.field = h.field;
      hs.window = h.window;
      hs.line = f.line;
      for (size_t j = 0; j < spec->helper_features.size(); ++j) {
        const FeatureSpec& o = spec->helper_features[j];
        if (o.key_fields == hs.key_fields && o.agg == hs.agg && o.field == hs.field &&
            o.window == hs.window)
          return nfeatures + static_cast<int>(j);
      }
      hs.name = fmt::format("{}({}, {}) by {}", agg_kind_name(hs.agg),
                            spec->source.schema[h.field].name, format_duration(h.window), f.name);
      spec->helper_features.push_back(std::move(hs));
      return nfeatures + static_cast<int>(spec->helper_features.size()) - 1;
    };
    auto program = expr::compile(f.expr, env);
    if (!program.ok()) {
      YAML::Node at = features && features.IsSequence() ? YAML::Node(features[i]["expr"]) : root;
      return Status::Error(
          fmt::format("{}: feature '{}': expr {}", w.at(at), f.name, program.status().message()));
    }
    env.features.push_back({f.name, program->type, i});
    plan->features.push_back({f.name, i, std::move(program.value())});
  }
  if (!plan->features.empty() || !plan->batches.empty() || !plan->tables.empty())
    spec->derived = std::move(plan);
  return Status::Ok();
}

// ---- run time ----

DerivedFeatures::~DerivedFeatures() = default;

Result<std::unique_ptr<DerivedFeatures>> DerivedFeatures::Open(
    const PipelineSpec& spec, const Options& options,
    const std::vector<std::pair<std::string, std::string>>& inputs) {
  if (!spec.derived) return std::unique_ptr<DerivedFeatures>();
  std::unique_ptr<DerivedFeatures> d(new DerivedFeatures());
  d->plan_ = spec.derived.get();
  for (BatchSpec b : d->plan_->batches) {
    if (!options.watch_batch_files) b.poll_interval = 0;
    auto v = BatchValues::Open(std::move(b));
    if (!v.ok()) return v.status();
    d->batches_.push_back(std::move(v.value()));
  }
  for (const TableSpec& t : d->plan_->tables) {
    const SourceSpec* src = t.source_index >= 0 ? &spec.table_sources[t.source_index] : nullptr;
    auto table =
        src ? ReferenceTable::Open(t, &src->schema, src->time_field) : ReferenceTable::Open(t);
    if (!table.ok()) return table.status();
    d->tables_.push_back(std::move(table.value()));
    d->fed_.push_back(true);
    ChangeFeed feed;
    feed.table = d->tables_.back().get();
    feed.source = src;
    feed.uri = t.changes;
    if (src) {
      feed.uri = src->uri;
      for (const auto& [name, uri] : inputs)
        if (name == src->name) feed.uri = uri;
      if (feed.uri.empty() && options.unfed_tables_ok) {
        d->fed_.back() = false;
        continue;
      }
      if (feed.uri.empty())
        return Status::Error(fmt::format(
            "{}: table '{}': source '{}' has no uri; give it one in the spec (uri: FILE or "
            "log:DIR/TOPIC) or on the command line (--input {}=URI)",
            spec.file, t.name, src->name, src->name));
    }
    if (feed.uri.empty()) continue;
    ReaderOptions ro;
    ro.follow = options.follow_changes;
    auto reader = open_reader(feed.uri, ro);
    if (!reader.ok())
      return Status::Error(fmt::format("table '{}': {}: {}", t.name,
                                       src ? "source '" + src->name + "'" : std::string("changes"),
                                       reader.status().message()));
    feed.reader = std::move(reader.value());
    if (src) {
      feed.parser = std::make_unique<EventParser>(src->schema, src->time_field);
      feed.watermarks = std::make_unique<WatermarkTracker>(
          feed.reader->partitions(), src->max_out_of_orderness, src->idle_timeout);
    } else {
      feed.parser = std::make_unique<EventParser>(feed.table->change_schema(),
                                                  feed.table->change_time_field());
    }
    d->feeds_.push_back(std::move(feed));
  }
  return d;
}

void DerivedFeatures::reject(ChangeFeed& f, Reject kind, const RecordRef& rec,
                             std::string_view reason, TimeMs watermark, const RejectFn& on_reject) {
  kind == Reject::Malformed ? ++f.rejected : ++f.late;
  if (kind == Reject::LateDropped && on_reject) {
    on_reject(kind, {}, rec.partition);
    return;
  }
  // The events' formats: {"error", "raw", origin} and {"reason", origin, "watermark", "event"}.
  std::string out;
  if (kind == Reject::Malformed) {
    out = "{\"error\": ";
    append_json_string(out, reason);
    append_json_key(out, "raw");
    append_json_string(out, rec.data);
  } else {
    out = "{\"reason\": ";
    append_json_string(out, reason);
  }
  // The origin: the source's name, or the `changes:` input's uri.
  append_json_key(out, "source");
  append_json_string(out, f.source ? f.source->name : f.uri);
  append_json_key(out, "table");
  append_json_string(out, f.table->spec().name);
  append_json_key(out, "partition");
  append_json_int(out, rec.partition);
  append_json_key(out, "offset");
  append_json_int(out, static_cast<int64_t>(rec.offset));
  if (kind != Reject::Malformed) {
    append_json_key(out, "watermark");
    append_json_int(out, watermark);
    out += ", \"event\": ";
    out.append(rec.data);
  }
  out += "}\n";
  if (on_reject) {
    on_reject(kind, out, rec.partition);
  } else if (f.rejected + f.late <= 5) {
    std::fprintf(stderr, "millrace: table '%s': change record not applied: %s",
                 f.table->spec().name.c_str(), out.c_str());
  }
}

Status DerivedFeatures::advance_to(TimeMs t, TimeMs horizon, const RejectFn& on_reject,
                                   uint64_t stamp, uint64_t retired) {
  for (auto& table : tables_) table->set_horizon(horizon, retired);
  std::string error;
  for (ChangeFeed& f : feeds_) {
    for (;;) {
      if (!f.has_pending) {
        RecordRef rec;
        auto got = f.reader->next(&rec);
        if (!got.ok())
          return Status::Error(
              fmt::format("table '{}': {}: {}", f.table->spec().name,
                          f.source ? "source '" + f.source->name + "'" : std::string("changes"),
                          got.status().message()));
        if (!got.value()) break;
        f.line.assign(rec.data.data(), rec.data.size());
        const size_t len = f.line.size();
        f.line.resize(len + simdjson::SIMDJSON_PADDING);
        rec.data = std::string_view(f.line.data(), len);
        if (!f.parser->parse(f.line.data(), len, f.line.size(), &f.pending, &error)) {
          reject(f, Reject::Malformed, rec, error, kMinTime, on_reject);
          continue;
        }
        if (f.source) {
          // Lateness as for any source's event: against its partition's watermark.
          const TimeMs pwm = f.watermarks->partition_watermark(rec.partition);
          if (pwm != kMinTime && f.pending.time < pwm - f.source->allowed_lateness) {
            reject(f,
                   f.source->late == LatePolicy::SideOutput ? Reject::LateSideOutput
                                                            : Reject::LateDropped,
                   rec,
                   fmt::format("late: event time {} is older than watermark {} - allowed "
                               "lateness {}",
                               f.pending.time, pwm, format_duration(f.source->allowed_lateness)),
                   pwm, on_reject);
            continue;
          }
        }
        // A record without a key or with an unknown op is malformed: judged now, in
        // the input's order, so its dead letter does not wait for the event time.
        if (Status s = f.table->check_change(f.pending); !s.ok()) {
          reject(f, Reject::Malformed, rec, s.message(), kMinTime, on_reject);
          continue;
        }
        if (f.source) f.watermarks->observe(rec.partition, f.pending.time, 0);
        f.has_pending = true;
      }
      if (f.pending.time > t) break;
      f.has_pending = false;
      // Checked when read: cannot fail.
      if (f.table->apply_change(f.pending, stamp).ok()) ++f.applied;
    }
  }
  return Status::Ok();
}

std::unique_ptr<DerivedFeatures::Evaluator> DerivedFeatures::evaluator() const {
  return std::unique_ptr<Evaluator>(new Evaluator(*this));
}

std::string DerivedFeatures::summary() const {
  std::string out;
  for (const auto& b : batches_)
    out += fmt::format("{}batch {}: {} reloads, {} failed", out.empty() ? "" : "; ", b->spec().name,
                       b->reloads(), b->reload_errors());
  for (const auto& f : feeds_) {
    out += fmt::format("{}table {}: {} changes applied, {} rejected", out.empty() ? "" : "; ",
                       f.table->spec().name, f.applied, f.rejected);
    if (f.source) out += fmt::format(", {} late", f.late);
  }
  return out;
}

DerivedFeatures::Evaluator::Evaluator(const DerivedFeatures& owner)
    : owner_(owner), batch_views_(owner.batches_.size()), table_views_(owner.tables_.size()) {
  for (const auto& f : owner_.plan_->features) scratch_.fit(f.program);
}

void DerivedFeatures::Evaluator::evaluate(const Event& event, FeatureValue* values) {
  expr::Input in{&event, values, this};
  ++evaluation_;
  for (const auto& f : owner_.plan_->features) {
    expr::Value v = f.program.run(in, scratch_);
    expr::store(v, f.program.type, &values[f.output]);
  }
}

void DerivedFeatures::Evaluator::evaluate(const Event& event, FeatureValue* values,
                                          const std::vector<int>& which) {
  expr::Input in{&event, values, this};
  ++evaluation_;
  for (int i : which) {
    const auto& f = owner_.plan_->features[i];
    expr::Value v = f.program.run(in, scratch_);
    expr::store(v, f.program.type, &values[f.output]);
  }
}

void DerivedFeatures::Evaluator::prefetch(const Event& event, int step) {
  LocatedKeys& lk = located_;
  if (step == 0) {
    if (lk.last_step != 0) lk.count = lk.step[1] = lk.step[2] = lk.next = 0;  // a new batch
    lk.last_step = 0;
    for (size_t i = 0; i < batch_views_.size(); ++i) {
      const BatchView& view = batch_views_[i];
      const BatchValues& b = *owner_.batches_[i];
      // The table of the last evaluation: a newer one is not worth a lock here.
      if (!view.table || view.generation != b.generation()) continue;
      if (lk.count == lk.entries.size()) lk.entries.emplace_back();
      Located& e = lk.entries[lk.count++];
      e.event = &event;
      e.source = static_cast<int>(i);
      e.table = view.table.get();
      e.located = e.has_row = false;
      build_entity_key(event, b.spec().key_fields, &e.key);
      e.hash = BatchTable::hash_key(e.key);
      e.table->prefetch_slot(e.hash);
    }
    return;
  }
  if (step != 1 && step != 2) return;
  lk.last_step = step;
  // This event's entries: next in line (further on when an earlier event had none).
  size_t i = lk.step[step];
  while (i < lk.count && lk.entries[i].event != &event) ++i;
  if (i == lk.count) return;
  for (; i < lk.count && lk.entries[i].event == &event; ++i) {
    Located& e = lk.entries[i];
    if (step == 1) {
      e.ref = e.table->locate(e.key, e.hash);
      e.located = true;
      e.table->prefetch_rows(e.ref);
    } else if (e.located) {
      e.row = e.table->find_at(e.ref, event.time);
      e.has_row = true;
      if (e.row) e.table->prefetch_cells(e.row);
    }
  }
  lk.step[step] = i;
}

const DerivedFeatures::Evaluator::Located* DerivedFeatures::Evaluator::located(
    const Event& event, int source, const BatchTable* table) {
  LocatedKeys& lk = located_;
  for (size_t i = lk.next; i < lk.count; ++i) {
    const Located& e = lk.entries[i];
    if (e.event != &event || e.source != source) continue;
    lk.next = i + 1;
    return e.table == table ? &e : nullptr;
  }
  return nullptr;
}

expr::Value DerivedFeatures::Evaluator::batch(int source, int column, const Event& event,
                                              std::string* /*scratch*/) {
  BatchView& view = batch_views_[source];
  const BatchValues& b = *owner_.batches_[source];
  if (view.row_of != evaluation_) {
    const uint64_t gen = b.generation();
    if (gen != view.generation) {
      view.table = b.snapshot();
      view.generation = gen;
    }
    const Located* e = located(event, source, view.table.get());
    if (e) {
      view.row = e->has_row   ? e->row
                 : e->located ? view.table->find_at(e->ref, event.time)
                              : view.table->find(e->key, e->hash, event.time);
    } else {
      build_entity_key(event, b.spec().key_fields, &view.key);
      view.row = view.table->find(view.key, event.time);
    }
    view.row_of = evaluation_;
  }
  const FieldValue* row = view.row;
  if (!row) return expr::Value::null();
  const FieldValue& c = row[column];
  switch (c.kind) {
    case FieldValue::Kind::Int:
      return expr::Value::integer(c.i);
    case FieldValue::Kind::Double:
      return expr::Value::number(c.d);
    case FieldValue::Kind::Bool:
      return expr::Value::boolean(c.b);
    case FieldValue::Kind::String:
      return expr::Value::string(view.table->str(c));  // the snapshot outlives the evaluation
    default:
      return expr::Value::null();
  }
}

expr::Value DerivedFeatures::Evaluator::table(int table, int column, const expr::Value& key,
                                              TimeMs t, std::string* scratch) {
  std::string_view k;
  if (key.kind == expr::Value::Kind::String) {
    k = key.s();
  } else {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, key.i);
    key_text_.assign(buf, r.ptr);
    k = key_text_;
  }
  TableView& view = table_views_[table];
  if (view.row_of != evaluation_ || view.t != t || view.stamp != stamp_ || view.key != k) {
    owner_.tables_[table]->get_row(k, t, &view.row, stamp_);
    view.row_of = evaluation_;
    view.t = t;
    view.stamp = stamp_;
    view.key.assign(k);
  }
  return view.row.value(column, scratch);
}

}  // namespace millrace
