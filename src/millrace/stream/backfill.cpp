#include "millrace/stream/backfill.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include "millrace/core/entity_key.h"
#include "millrace/core/hash.h"
#include "millrace/core/json_writer.h"
#include "millrace/core/shortest_double.h"
#include "millrace/features/derived_features.h"
#include "millrace/features/feature_plan.h"
#include "millrace/store/embedded_store.h"
#include "millrace/stream/io.h"
#include "millrace/stream/multi_source.h"
#include "millrace/stream/watermark.h"

namespace millrace {
namespace {

using Clock = std::chrono::steady_clock;

TimeMs now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

bool csv_needs_quotes(std::string_view s) {
  for (char c : s)
    if (c == ',' || c == '"' || c == '\r' || c == '\n') return true;
  return false;
}

void append_csv_text(std::string& out, std::string_view s) {
  if (!csv_needs_quotes(s)) {
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

// A row is written into a buffer with room for its longest form, then
// appended to the output at once.
// The most a cell of n characters of text takes: every one a quote, doubled,
// between two quotes.
size_t csv_text_bound(size_t n) {
  return 2 * n + 2;
}
// The most a number or bool takes: an int64 (20), a shortest double (24), "null".
constexpr size_t kNumberBound = 32;

char* write_csv_text(char* p, std::string_view s) {
  if (!csv_needs_quotes(s)) {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
  }
  *p++ = '"';
  for (char c : s) {
    if (c == '"') *p++ = '"';
    *p++ = c;
  }
  *p++ = '"';
  return p;
}

// As append_json_int() / append_json_double() write them. The words are copied
// into the row without their terminating NUL: a row is bytes, not a C string.
char* write_int(char* p, int64_t v) {
  return write_int64(p, v);
}
char* write_double(char* p, double v) {
  if (!std::isfinite(v)) {
    std::memcpy(p, "null", 4);  // NOLINT(bugprone-not-null-terminated-result)
    return p + 4;
  }
  return write_shortest_double(p, v);
}
char* write_bool(char* p, bool b) {
  if (b) {
    std::memcpy(p, "true", 4);  // NOLINT(bugprone-not-null-terminated-result)
    return p + 4;
  }
  std::memcpy(p, "false", 5);  // NOLINT(bugprone-not-null-terminated-result)
  return p + 5;
}

// The doubles last written in a row, with where their text is: a row
// repeats many of its doubles (an amount, and its card's averages and
// maxima over windows holding that one event), whose text is then copied
// instead of written again. The same bits give the same text.
class RowDoubles {
 public:
  static constexpr size_t kEntries = 4;
  // A new row (the text of the last one may have moved).
  void clear() { n_ = 0; }
  // Writes v at p, as write_double(); p must have room for kNumberBound.
  char* write(char* p, double v) {
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    for (size_t i = 0; i < n_; ++i)
      if (bits_[i] == bits) {
        // 32 bytes loaded before any is stored: right even where the text
        // overlaps p; the bytes past its length are scratch.
        char text[32];
        std::memcpy(text, at_[i], sizeof text);
        std::memcpy(p, text, sizeof text);
        return p + len_[i];
      }
    char* end = write_double(p, v);
    const size_t slot = n_ < kEntries ? n_++ : next_++ % kEntries;
    bits_[slot] = bits;
    at_[slot] = p;
    len_[slot] = static_cast<uint8_t>(end - p);
    return end;
  }

 private:
  uint64_t bits_[kEntries];
  const char* at_[kEntries];
  uint8_t len_[kEntries];
  size_t n_ = 0, next_ = 0;
};
static_assert(kNumberBound >= 32);

char* write_csv_field(char* p, const Event& e, const FieldValue& v, RowDoubles& doubles) {
  switch (v.kind) {
    case FieldValue::Kind::Null:
      return p;
    case FieldValue::Kind::Int:
      return write_int(p, v.i);
    case FieldValue::Kind::Double:
      return doubles.write(p, v.d);
    case FieldValue::Kind::Bool:
      return write_bool(p, v.b);
    case FieldValue::Kind::String:
      return write_csv_text(p, e.str(v));
  }
  return p;
}

// As FeatureValue::append_json() writes it, text as CSV text, null as nothing.
char* write_csv_value(char* p, const FeatureValue& v, RowDoubles& doubles) {
  switch (v.kind) {
    case FeatureValue::Kind::Null:
      return p;
    case FeatureValue::Kind::Int:
      return write_int(p, v.i);
    case FeatureValue::Kind::Double:
      return doubles.write(p, v.d);
    case FeatureValue::Kind::Bool:
      return write_bool(p, v.i != 0);
    case FeatureValue::Kind::String:
      return write_csv_text(p, v.s);
  }
  return p;
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

// Output buffered in blocks of about 64 KB: small enough to stay in the
// core's L2 while rows are written into it (a 1 MB block streamed through
// memory: 14% more L2 misses over a backfill), large enough that a write
// per block costs nothing.
constexpr size_t kWriteBlock = 64 << 10;

// The CSV text on its way out: rows are written straight into the block
// (room() gives space for a row's longest form, commit() keeps what was
// written), and the block goes to the writer once it holds kWriteBlock bytes.
class OutputBlock {
 public:
  explicit OutputBlock(RecordWriter& out) : out_(out), data_(kWriteBlock + (kWriteBlock >> 2)) {}

  // At least n bytes to write at; valid until commit().
  char* room(size_t n) {
    if (size_ + n > data_.size()) data_.resize(std::max(2 * data_.size(), size_ + n));
    return data_.data() + size_;
  }
  void commit(const char* end) { size_ = static_cast<size_t>(end - data_.data()); }
  void append(std::string_view s) {
    char* p = room(s.size());
    std::memcpy(p, s.data(), s.size());
    commit(p + s.size());
  }
  // Writes the block once it is full; flush() writes what it holds.
  Status write_if_full() { return size_ < kWriteBlock ? Status::Ok() : flush(); }
  Status flush() {
    Status s = out_.write(std::string_view(data_.data(), size_));
    size_ = 0;
    return s;
  }

 private:
  RecordWriter& out_;
  std::vector<char> data_;
  size_t size_ = 0;
};

// The rows of the training set: the scored source's fields, its features
// (plan.source_features[0]), then the label joined by id.
class CsvRows {
 public:
  CsvRows(const PipelineSpec& spec, const FeaturePlan& plan, const BackfillOptions& opts,
          const absl::flat_hash_map<std::string, std::string>* labels, int id_field)
      : schema_(spec.sources[0].schema),
        features_(plan.source_features[0]),
        labels_(labels),
        id_field_(id_field) {
    for (size_t i = 0; i < schema_.size(); ++i) {
      if (i) header_ += ',';
      append_csv_text(header_, schema_[i].name);
    }
    for (int f : features_) {
      header_ += ',';
      append_csv_text(header_, spec.features[f].name);
    }
    if (labels_) {
      header_ += ',';
      append_csv_text(header_, opts.label_field);
    }
    header_ += '\n';
  }

  const std::string& header() const { return header_; }

  // Writes the row of scored event e; true when it has a label.
  bool append(const Event& e, const FeatureValue* values, OutputBlock& out) {
    const size_t nfields = schema_.size();
    // Room for the row with its numbers and the event's and label's text;
    // a feature's text (rare: prev/first/last of a string, expressions)
    // asks for more when it comes.
    size_t bound = 2 + (nfields + features_.size()) * (kNumberBound + 1);
    for (size_t i = 0; i < nfields; ++i)
      if (e.values[i].kind == FieldValue::Kind::String) bound += csv_text_bound(e.values[i].s.len);
    const std::string* label = nullptr;
    if (labels_) {
      const FieldValue& v = e.values[id_field_];
      id_.clear();
      if (v.kind == FieldValue::Kind::String) {
        id_.assign(e.str(v));
      } else if (v.kind == FieldValue::Kind::Int) {
        append_json_int(id_, v.i);
      } else if (!v.is_null()) {
        append_json_double(id_, v.as_double());
      }
      auto it = labels_->find(id_);
      if (it != labels_->end()) {
        label = &it->second;
        bound += 1 + csv_text_bound(label->size());
      } else {
        bound += 1;
      }
    }
    char* p = out.room(bound);
    doubles_.clear();
    for (size_t i = 0; i < nfields; ++i) {
      if (i) *p++ = ',';
      p = write_csv_field(p, e, e.values[i], doubles_);
    }
    for (int f : features_) {
      if (values[f].kind == FeatureValue::Kind::String) {
        out.commit(p);
        p = out.room(bound + csv_text_bound(values[f].s.size()));
        doubles_.clear();  // the row's text may have moved
      }
      *p++ = ',';
      p = write_csv_value(p, values[f], doubles_);
    }
    if (labels_) {
      *p++ = ',';
      if (label) p = write_csv_text(p, *label);
    }
    *p++ = '\n';
    out.commit(p);
    return label != nullptr;
  }

 private:
  const Schema& schema_;
  const std::vector<int>& features_;
  const absl::flat_hash_map<std::string, std::string>* labels_;
  int id_field_;
  std::string header_, id_;
  RowDoubles doubles_;
};

// The backfill through the runtime (run_pipeline with one worker and a sink
// thread): for specs whose state lives in RocksDB, and as the reference the
// direct loop is tested against.
Result<RunStats> backfill_through_runtime(const PipelineSpec& spec, const BackfillOptions& opts,
                                          CsvRows& rows, OutputBlock& out, BackfillStats* stats) {
  Status write_error;
  RunOptions ro;
  ro.input = opts.input.empty() ? "-" : opts.input;
  ro.source_inputs = opts.inputs;
  ro.output = "";
  ro.write_events = false;
  ro.dead_letter = opts.dead_letter;
  ro.workers = 1;
  ro.progress = opts.progress;
  ro.on_vector = [&](const Event& e, const FeatureValue* values) {
    stats->labeled += rows.append(e, values, out);
    ++stats->rows;
    if (Status s = out.write_if_full(); !s.ok() && write_error.ok()) write_error = s;
  };
  auto run = run_pipeline(spec, ro);
  if (!run.ok()) return run.status();
  if (!write_error.ok()) return write_error;
  return std::move(run.value());
}

// The backfill as one loop on the calling thread: read and merge the
// sources, check lateness and watermarks, compute each event's features and
// write its row, with no queue, no other thread and no copy of the event.
// Every decision the runtime makes per event (SourceMerger's order, late
// events by their partition's watermark, the watermark before and after an
// event, table changes up to its time, expiry) is made here the same way, and
// the features are computed by the same SlidingFeatureGroup and
// DerivedFeatures code, so the rows equal the runtime's byte for byte.
// Events are handled in batches of kBatch, whose key states are prefetched in
// three stages (as the runtime's workers do) so that their cache misses overlap.
class DirectBackfill {
 public:
  DirectBackfill(const PipelineSpec& spec, const BackfillOptions& opts, CsvRows& rows,
                 OutputBlock& out, BackfillStats* stats)
      : spec_(spec),
        opts_(opts),
        plan_(plan_features(spec)),
        rows_(rows),
        out_(out),
        stats_(stats),
        run_(stats->run) {}

  Status run();

 private:
  static constexpr size_t kBatch = 32;
  struct Pending {
    std::string line;
    Event event;
    MergedRecord rec;
    std::vector<std::string> keys;  // per plan group touched
    std::vector<uint64_t> hashes;
    uint32_t mask = 0;  // plan groups the event updates or reads
    TimeMs wm_before = kMinTime, wm_after = kMinTime;
    uint64_t stamp = 0;  // table changes stamped <= this are seen by its lookups
  };

  Status open();
  void dead_letter(const Pending& p);
  void process_batch(size_t n);
  void advance(TimeMs wm);

  const PipelineSpec& spec_;
  const BackfillOptions& opts_;
  const FeaturePlan plan_;
  CsvRows& rows_;
  OutputBlock& out_;
  BackfillStats* stats_;
  RunStats& run_;

  std::unique_ptr<EmbeddedStore> store_;
  std::vector<SlidingFeatureGroup*> groups_;  // per plan group, nullptr without features
  std::unique_ptr<DerivedFeatures> derived_;
  std::unique_ptr<DerivedFeatures::Evaluator> evaluator_;
  std::unique_ptr<SourceMerger> sources_;
  std::unique_ptr<RecordWriter> dead_;
  std::vector<int> unread_features_;  // features the scored source's events do not carry
  std::vector<Pending> batch_;
  std::vector<FeatureValue> values_;
  SlidingFeatureGroup::ReadScratch scratch_;
  TimeMs watermark_ = kMinTime;  // the state's: expiry has run up to here
  Status error_;
  std::string text_;
  // Table change records not applied: to the dead letters, counted as late.
  const DerivedFeatures::RejectFn on_reject_ = [this](DerivedFeatures::Reject kind,
                                                      std::string_view record, uint32_t part) {
    if (kind == DerivedFeatures::Reject::Malformed) {
      ++run_.dead_letters;
      if (Status s = dead_->write(record, part); !s.ok() && error_.ok()) error_ = s;
      if (opts_.dead_letter.empty() && run_.dead_letters <= 5)
        std::fprintf(stderr, "millrace: dead letter: %.*s", static_cast<int>(record.size()),
                     record.data());
    } else {
      ++(kind == DerivedFeatures::Reject::LateSideOutput ? run_.late_side_output
                                                         : run_.late_dropped);
    }
  };
};

Status DirectBackfill::open() {
  std::vector<std::string> uris(spec_.sources.size());
  if (spec_.sources.size() == 1) uris[0] = opts_.input.empty() ? "-" : opts_.input;
  for (const auto& [name, uri] : opts_.inputs) {
    int i = source_index(spec_, name);
    if (i < 0 && table_source_index(spec_, name) >= 0) continue;  // read by its table
    if (i < 0) {
      std::string list;
      for (const auto& src : spec_.sources) list += (list.empty() ? "" : ", ") + src.name;
      return Status::Error(fmt::format("--input {}={}: the spec has no source '{}' (sources: {})",
                                       name, uri, name, list));
    }
    uris[i] = uri;
  }
  DerivedFeatures::Options dopts;
  auto derived = DerivedFeatures::Open(spec_, dopts, opts_.inputs);
  if (!derived.ok()) return derived.status();
  derived_ = std::move(derived.value());
  if (derived_) evaluator_ = derived_->evaluator();
  auto r = SourceMerger::Open(spec_, uris, ReaderOptions{});
  if (!r.ok()) return r.status();
  sources_ = std::move(r.value());
  auto d = open_writer(opts_.dead_letter);
  if (!d.ok()) return d.status();
  dead_ = std::move(d.value());

  store_ = std::make_unique<EmbeddedStore>(spec_, plan_, 1);
  // One pass over a bounded input in its own process: each state page is
  // touched once, and on 4 KB pages that costs less than fresh 2 MB pages
  // where the machine backs new memory afresh (docs/feature_store.md).
  store_->set_huge_pages(false);
  for (size_t g = 0; g < plan_.groups.size(); ++g)
    groups_.push_back(store_->group(0, static_cast<int>(g)));
  std::vector<bool> read(spec_.features.size(), false);
  for (int f : plan_.source_features[0]) read[f] = true;
  for (size_t f = 0; f < read.size(); ++f)
    if (!read[f]) unread_features_.push_back(static_cast<int>(f));
  batch_.resize(kBatch);
  for (Pending& p : batch_) {
    p.keys.resize(plan_.groups.size());
    p.hashes.resize(plan_.groups.size());
  }
  values_.resize(spec_.feature_slots());
  return Status::Ok();
}

// As the runtime writes a record that does not parse.
void DirectBackfill::dead_letter(const Pending& p) {
  ++run_.dead_letters;
  std::string& out = text_;
  out = "{\"error\": ";
  append_json_string(out, p.rec.error);
  append_json_key(out, "raw");
  append_json_string(out, p.line);
  append_json_key(out, "source");
  append_json_string(out, spec_.sources[p.rec.source].name);
  append_json_key(out, "partition");
  append_json_int(out, p.rec.partition);
  append_json_key(out, "offset");
  append_json_int(out, static_cast<int64_t>(p.rec.offset));
  out += "}\n";
  if (Status s = dead_->write(out, p.rec.partition); !s.ok() && error_.ok()) error_ = s;
  if (opts_.dead_letter.empty() && run_.dead_letters <= 5)
    std::fprintf(stderr, "millrace: dead letter: %s", out.c_str());
}

void DirectBackfill::advance(TimeMs wm) {
  if (wm <= watermark_) return;
  watermark_ = wm;
  for (SlidingFeatureGroup* sg : groups_)
    if (sg) sg->expire(wm);
}

void DirectBackfill::process_batch(size_t n) {
  struct Prefetch {
    SlidingFeatureGroup* sg;
    const SlidingFeatureGroup::KeyState* ks;
  };
  Prefetch pf[kBatch * 4];
  size_t np = 0;
  // Stage 1: the key table slots of the keys the events update.
  for (size_t i = 0; i < n; ++i) {
    const Pending& p = batch_[i];
    for (uint32_t mask = p.mask; mask; mask &= mask - 1) {
      const int g = __builtin_ctz(mask);
      if (plan_.groups[g].source != p.rec.source || !groups_[g]) continue;
      groups_[g]->prefetch_slot(p.hashes[g]);
      if (np < std::size(pf)) pf[np++] = {groups_[g], nullptr};
    }
  }
  // Stage 2: the key states; stage 3: their rows.
  size_t k = 0;
  for (size_t i = 0; i < n && k < np; ++i) {
    const Pending& p = batch_[i];
    for (uint32_t mask = p.mask; mask && k < np; mask &= mask - 1) {
      const int g = __builtin_ctz(mask);
      if (plan_.groups[g].source != p.rec.source || !groups_[g]) continue;
      pf[k].ks = pf[k].sg->prefetch_state(p.keys[g], p.hashes[g]);
      ++k;
    }
  }
  for (size_t j = 0; j < np; ++j)
    if (pf[j].ks) pf[j].sg->prefetch_rows(pf[j].ks);

  FeatureValue* values = values_.data();
  for (size_t i = 0; i < n; ++i) {
    const Pending& p = batch_[i];
    const int source = p.rec.source;
    if (p.mask) {
      advance(p.wm_before);
      for (uint32_t mask = p.mask; mask; mask &= mask - 1) {
        const int g = __builtin_ctz(mask);
        SlidingFeatureGroup* sg = groups_[g];
        if (plan_.groups[g].source == source) {
          if (sg) sg->on_event(p.keys[g], p.hashes[g], p.event, p.wm_before, values);
        } else {
          // Another source's features, as of this event's time.
          sg->read_at(p.keys[g], p.event.time, &scratch_, values, nullptr);
        }
      }
      advance(p.wm_after);
    }
    if (source != 0) {
      ++run_.other_source_events;
      continue;
    }
    for (int f : unread_features_) values[f].set_null();
    if (evaluator_) {
      evaluator_->set_stamp(p.stamp);
      evaluator_->evaluate(p.event, values);
    }
    stats_->labeled += rows_.append(p.event, values, out_);
    ++stats_->rows;
    if (Status s = out_.write_if_full(); !s.ok() && error_.ok()) error_ = s;
  }
}

Status DirectBackfill::run() {
  if (Status s = open(); !s.ok()) return s;
  const auto started = Clock::now();
  auto last_progress = started;
  const size_t nsrc = spec_.sources.size();
  std::vector<WatermarkTracker> wms;
  for (size_t i = 0; i < nsrc; ++i) {
    const SourceSpec& src = spec_.sources[i];
    wms.emplace_back(sources_->reader(static_cast<int>(i)).partitions(), src.max_out_of_orderness,
                     src.idle_timeout);
  }
  // The watermark: the minimum over the sources, never going backwards.
  TimeMs combined_wm = kMinTime;
  auto combined = [&](TimeMs now) {
    TimeMs c = kMaxTime;
    for (auto& t : wms) c = std::min(c, t.combined(now));
    combined_wm = std::max(combined_wm, c);
    return combined_wm;
  };
  TimeMs now = now_ms();
  TimeMs table_horizon = kMinTime;
  size_t n = 0;
  for (;;) {
    Pending& p = batch_[n];
    if ((run_.records & 255) == 0) {
      now = now_ms();  // processing time, for idle partitions
      // A source read to its end no longer holds the watermark back.
      for (size_t i = 0; nsrc > 1 && i < nsrc; ++i) {
        RecordReader& r = sources_->reader(static_cast<int>(i));
        for (uint32_t part = 0; part < r.partitions(); ++part)
          if (r.partition_finished(part)) wms[i].finish(part);
      }
    }
    auto got = sources_->next(&p.line, &p.event, &p.rec, now);
    if (!got.ok()) return got.status();
    if (!got.value()) {
      if (sources_->finished()) break;
      now = now_ms();  // a pipe with nothing yet
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    ++run_.records;
    if (!p.rec.ok) {
      dead_letter(p);
      continue;
    }
    const SourceSpec& src = spec_.sources[p.rec.source];
    WatermarkTracker& wm = wms[p.rec.source];
    const TimeMs pwm = wm.partition_watermark(p.rec.partition);
    if (pwm != kMinTime && p.event.time < pwm - src.allowed_lateness) {
      // A backfill has no late output: late events are counted, as dropped.
      ++(src.late == LatePolicy::SideOutput ? run_.late_side_output : run_.late_dropped);
      continue;
    }
    ++run_.accepted;
    if (derived_) {
      // Table changes up to this event's time first (as the runtime does).
      if ((run_.accepted & 255) == 1) table_horizon = table_change_horizon(spec_, wms);
      // Stamped as the runtime stamps them: the changes read before an event
      // are seen by it and the later ones, not by the batch's earlier events.
      p.stamp = run_.records;
      const uint64_t retired = n > 0 ? batch_[0].stamp : p.stamp;
      if (Status s =
              derived_->advance_to(p.event.time, table_horizon, on_reject_, p.stamp, retired);
          !s.ok())
        return s;
    }
    p.wm_before = combined(now);
    wm.observe(p.rec.partition, p.event.time, now);
    p.wm_after = combined(now);
    p.mask = 0;
    for (size_t g = 0; g < plan_.groups.size(); ++g) {
      const FeatureGroupPlan& gp = plan_.groups[g];
      const std::vector<int>* fields = &gp.key_fields;
      if (gp.source != p.rec.source) {
        if (p.rec.source != 0) continue;  // only the scored source's events make rows
        fields = &gp.read_fields[p.rec.source];
        if (fields->empty() || gp.features.empty()) continue;
      } else if (!groups_[g]) {
        continue;  // windows only: nothing of theirs goes into a row
      }
      build_entity_key(p.event, *fields, &p.keys[g]);
      p.hashes[g] = hash_string(p.keys[g]);
      p.mask |= 1u << g;
    }
    if (++n == kBatch) {
      process_batch(n);
      n = 0;
      if (!error_.ok()) return error_;
    }
    if (opts_.progress && (run_.records & 0xffff) == 0) {
      auto t = Clock::now();
      if (t - last_progress > std::chrono::milliseconds(500)) {
        double secs = std::chrono::duration<double>(t - started).count();
        std::fprintf(stderr, "\r%llu events, %.0f events/s   ",
                     static_cast<unsigned long long>(run_.records), run_.records / secs);
        last_progress = t;
      }
    }
  }
  process_batch(n);
  // The change records after the last event are read too (as the runtime
  // does at the end of its input): their bad records go to the dead letters.
  if (derived_ && error_.ok())
    if (Status s = derived_->advance_to(kMaxTime, table_horizon, on_reject_, run_.records + 1,
                                        run_.records + 1);
        !s.ok())
      return s;
  if (opts_.progress) std::fprintf(stderr, "\r%*s\r", 40, "");
  if (!error_.ok()) return error_;
  if (Status s = dead_->flush(); !s.ok()) return s;
  for (SlidingFeatureGroup* sg : groups_)
    if (sg) {
      run_.keys += sg->keys();
      run_.state_bytes += sg->state_bytes();
    }
  run_.watermark = combined_wm;
  run_.workers = 1;
  run_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (derived_) run_.derived = derived_->summary();
  return Status::Ok();
}

// True when the spec keeps per-key state in RocksDB (`state: rocksdb`).
bool state_in_rocksdb(const PipelineSpec& spec) {
  const YAML::Node state = spec.root["state"];
  try {
    if (state && state.IsScalar()) return state.as<std::string>() == "rocksdb";
    if (state && state.IsMap() && state["backend"])
      return state["backend"].as<std::string>() == "rocksdb";
  } catch (const YAML::Exception&) {
  }
  return false;
}

}  // namespace

Result<BackfillStats> run_backfill(const PipelineSpec& spec_in, const BackfillOptions& opts) {
  // The same features, without the model: a backfill writes vectors only.
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
  CsvRows rows(spec, plan, opts, with_labels ? &labels : nullptr, id_field);
  OutputBlock block(out);
  block.append(rows.header());
  if (opts.through_runtime || state_in_rocksdb(spec)) {
    auto run = backfill_through_runtime(spec, opts, rows, block, &stats);
    if (!run.ok()) return run.status();
    stats.run = std::move(run.value());
  } else {
    DirectBackfill direct(spec, opts, rows, block, &stats);
    if (Status s = direct.run(); !s.ok()) return s;
  }
  if (Status s = block.flush(); !s.ok()) return s;
  if (Status s = out.flush(); !s.ok()) return s;
  return stats;
}

}  // namespace millrace
