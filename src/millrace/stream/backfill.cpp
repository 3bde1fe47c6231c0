#include "millrace/stream/backfill.h"

#include <cstdio>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>
#include <simdjson.h>

#include "millrace/core/json_writer.h"
#include "millrace/features/feature_plan.h"
#include "millrace/stream/io.h"

namespace millrace {
namespace {

void append_csv_text(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(s);
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

void append_csv_field(std::string& out, const Event& e, const FieldValue& v) {
  switch (v.kind) {
    case FieldValue::Kind::Null:
      break;
    case FieldValue::Kind::Int:
      append_json_int(out, v.i);
      break;
    case FieldValue::Kind::Double:
      append_json_double(out, v.d);
      break;
    case FieldValue::Kind::Bool:
      out += v.b ? "true" : "false";
      break;
    case FieldValue::Kind::String:
      append_csv_text(out, e.str(v));
      break;
  }
}

void append_csv_value(std::string& out, const FeatureValue& v) {
  if (v.kind == FeatureValue::Kind::String) {
    append_csv_text(out, v.s);
  } else if (!v.is_null()) {
    v.append_json(out);
  }
}

// Reads id -> label text from a JSONL file.
Status load_labels(const BackfillOptions& o, absl::flat_hash_map<std::string, std::string>* out,
                   uint64_t* n) {
  auto r = open_reader(o.labels, ReaderOptions{});
  if (!r.ok()) return Status::Error(fmt::format("--labels: {}", r.status().message()));
  simdjson::ondemand::parser parser;
  std::string buf;
  RecordRef rec;
  for (;;) {
    auto got = r.value()->next(&rec);
    if (!got.ok()) return got.status();
    if (!got.value()) break;
    buf.assign(rec.data.data(), rec.data.size());
    buf.reserve(buf.size() + simdjson::SIMDJSON_PADDING);
    simdjson::ondemand::document doc;
    std::string id, label;
    bool has_id = false, has_label = false;
    if (parser.iterate(buf.data(), buf.size(), buf.capacity()).get(doc) == simdjson::SUCCESS) {
      simdjson::ondemand::object obj;
      if (doc.get_object().get(obj) == simdjson::SUCCESS) {
        for (auto field : obj) {
          std::string_view key;
          if (field.unescaped_key().get(key) != simdjson::SUCCESS) break;
          simdjson::ondemand::value v = field.value();
          if (key == o.label_id || key == o.label_field) {
            std::string text;
            std::string_view sv;
            if (v.get_string().get(sv) == simdjson::SUCCESS) {
              text = sv;
            } else {
              std::string_view raw = v.raw_json_token();
              while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t'))
                raw.remove_suffix(1);
              text = raw;
            }
            if (key == o.label_id) {
              id = std::move(text);
              has_id = true;
            } else {
              label = text == "null" ? "" : std::move(text);
              has_label = true;
            }
          }
        }
      }
    }
    if (!has_id || !has_label)
      return Status::Error(fmt::format("{}: line {}: expected an object with '{}' and '{}'",
                                       o.labels, rec.offset + 1, o.label_id, o.label_field));
    (*out)[id] = std::move(label);
    ++*n;
  }
  return Status::Ok();
}

}  // namespace

Result<BackfillStats> run_backfill(const PipelineSpec& spec_in, const BackfillOptions& opts) {
  // The same pipeline, without the model: a backfill writes vectors only.
  PipelineSpec spec = spec_in;
  spec.root = YAML::Clone(spec_in.root);
  if (spec.root["model"]) spec.root.remove("model");
  if (spec.root["decisions"]) spec.root.remove("decisions");
  const FeaturePlan plan = plan_features(spec);
  const Schema& schema = spec.sources[0].schema;

  BackfillStats stats;
  absl::flat_hash_map<std::string, std::string> labels;
  const bool with_labels = !opts.labels.empty();
  int id_field = -1;
  if (with_labels) {
    id_field = schema.index_of(opts.event_id);
    if (id_field < 0)
      return Status::Error(
          fmt::format("--labels: the scored source '{}' has no field '{}' to join "
                      "labels on (--event-id names it)",
                      spec.sources[0].name, opts.event_id));
    if (auto s = load_labels(opts, &labels, &stats.labels); !s.ok()) return s;
  }
  auto w = open_writer(opts.output);
  if (!w.ok()) return w.status();
  RecordWriter& out = *w.value();

  std::string buf;
  for (size_t i = 0; i < schema.size(); ++i) {
    if (i) buf += ',';
    append_csv_text(buf, schema[i].name);
  }
  for (int f : plan.source_features[0]) {
    buf += ',';
    append_csv_text(buf, spec.features[f].name);
  }
  if (with_labels) {
    buf += ',';
    append_csv_text(buf, opts.label_field);
  }
  buf += '\n';
  Status write_error;
  std::string id;
  RunOptions ro;
  ro.input = opts.input.empty() ? "-" : opts.input;
  ro.source_inputs = opts.inputs;
  ro.output = "";
  ro.write_events = false;
  ro.dead_letter = opts.dead_letter;
  ro.workers = 1;
  ro.progress = opts.progress;
  ro.on_vector = [&](const Event& e, const FeatureValue* values) {
    for (size_t i = 0; i < schema.size(); ++i) {
      if (i) buf += ',';
      append_csv_field(buf, e, e.values[i]);
    }
    for (int f : plan.source_features[0]) {
      buf += ',';
      append_csv_value(buf, values[f]);
    }
    if (with_labels) {
      buf += ',';
      const FieldValue& v = e.values[id_field];
      id.clear();
      if (v.kind == FieldValue::Kind::String) {
        id.assign(e.str(v));
      } else if (v.kind == FieldValue::Kind::Int) {
        id = std::to_string(v.i);
      } else if (!v.is_null()) {
        append_json_double(id, v.as_double());
      }
      auto it = labels.find(id);
      if (it != labels.end()) {
        append_csv_text(buf, it->second);
        ++stats.labeled;
      }
    }
    buf += '\n';
    ++stats.rows;
    if (buf.size() >= (1 << 20)) {
      if (write_error.ok()) write_error = out.write(buf);
      buf.clear();
    }
  };
  auto run = run_pipeline(spec, ro);
  if (!run.ok()) return run.status();
  if (write_error.ok()) write_error = out.write(buf);
  if (write_error.ok()) write_error = out.flush();
  if (!write_error.ok()) return write_error;
  stats.run = std::move(run.value());
  return stats;
}

}  // namespace millrace
