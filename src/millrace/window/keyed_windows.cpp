#include "millrace/window/keyed_windows.h"

#include <charconv>
#include <cstring>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "millrace/core/json_writer.h"

namespace millrace {

KeyedWindows::KeyedWindows(const WindowSpec& spec, const Schema& schema, size_t extra_header_words,
                           bool hash_in_node)
    : spec_(spec),
      layout_(spec.aggs, schema),
      header_words_(kKeyWords + extra_header_words),
      hash_in_node_(hash_in_node),
      pool_(header_words_ + layout_.words()) {
  for (int f : spec.key_fields) {
    key_prefixes_.emplace_back();
    append_json_key(key_prefixes_.back(), schema[f].name);
  }
  prefix_ = "{";
  append_json_key(prefix_, "window", true);
  append_json_string(prefix_, spec.name);
  scratch_.resize(layout_.words());
  // write_record's text beside the key's bytes: the window's and the key
  // fields' names, two times, the values, the kind.
  record_bound_ = prefix_.size() + 2 * (24 + 20) + layout_.text_bound() + 32;
  for (const std::string& k : key_prefixes_) record_bound_ += k.size() + kKeyFieldChars;
}

KeyedWindows::~KeyedWindows() {
  clear_state();
}

void KeyedWindows::on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                            WindowOutput* out) {
  key_buf_.clear();
  encode_window_key(event, spec_.key_fields, &key_buf_);
  on_keyed_event(event, raw, watermark_before, KeyRef{key_buf_, window_key_hash(key_buf_)}, out);
}

void KeyedWindows::on_events(const WindowEvent* events, size_t n, WindowOutput* out) {
  // Keys first, each index slot loading while the next keys are encoded.
  batch_keys_.clear();
  batch_hash_.resize(n);
  batch_end_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t from = batch_keys_.size();
    if (!events[i].event) {
      batch_end_[i] = static_cast<uint32_t>(from);
      continue;
    }
    encode_window_key(*events[i].event, spec_.key_fields, &batch_keys_);
    batch_end_[i] = static_cast<uint32_t>(batch_keys_.size());
    batch_hash_[i] =
        window_key_hash(std::string_view(batch_keys_).substr(from, batch_keys_.size() - from));
    index_.prefetch(batch_hash_[i]);
  }
  // In groups of kGroup events: the nodes of all, then the events in order,
  // so that the group's cache misses overlap whatever the size of the batch.
  constexpr size_t kGroup = 32;
  const size_t node_bytes = pool_.words_per_node() * sizeof(uint64_t);
  for (size_t g = 0; g < n; g += kGroup) {
    const size_t end = std::min(n, g + kGroup);
    for (size_t i = g; i < end; ++i) {
      if (!events[i].event) continue;
      uint32_t head = index_.guess(batch_hash_[i]);
      if (head != kNone) {
        const char* p = reinterpret_cast<const char*>(node(head));
        __builtin_prefetch(p);
        __builtin_prefetch(p + node_bytes - 1);
      }
    }
    for (size_t i = g; i < end; ++i) {
      const size_t from = i == 0 ? 0 : batch_end_[i - 1];
      const KeyRef key{std::string_view(batch_keys_).substr(from, batch_end_[i] - from),
                       batch_hash_[i]};
      const WindowEvent& e = events[i];
      WindowOutput* o = e.out ? e.out : out;
      advance(e.watermark_before, o);
      if (e.event) on_keyed_event(*e.event, e.raw, e.watermark_before, key, o);
      advance(e.watermark_after, o);
    }
  }
}

void KeyedWindows::clear_state() {
  std::vector<uint32_t> ids;
  index_.for_each([&](uint32_t head) {
    for (uint32_t id = head; id != kNone; id = next_of(node(id))) ids.push_back(id);
  });
  for (uint32_t id : ids) release_node(id);
  index_.clear();
  timers_.clear();
}

namespace {

const char* type_name(WindowType t) {
  switch (t) {
    case WindowType::Tumbling:
      return "tumbling";
    case WindowType::Hopping:
      return "hopping";
    case WindowType::Session:
      return "session";
  }
  return "unknown";
}

}  // namespace

// Snapshot encoding (format kSnapshotVersion):
//   u64 kSnapshotTag | version; u8 window type (WindowType); u32 header words
//   and u32 aggregate words per node (the node layout, checked on restore);
//   i64 watermark, u64 arrival sequence, u32 keys; per key: str encoded key,
//   u32 nodes; per node (latest first): word 0 and the type's header words,
//   then the aggregates (AccumulatorLayout::save). Then u32 timer buckets;
//   per bucket in time order: i64 time, u32 n, n node numbers (0-based, in
//   the order the nodes were written).
void KeyedWindows::snapshot(ByteWriter& w) const {
  w.u64(kSnapshotTag | kSnapshotVersion);
  w.u8(static_cast<uint8_t>(spec_.type));
  w.u32(static_cast<uint32_t>(header_words_));
  w.u32(static_cast<uint32_t>(layout_.words()));
  w.i64(wm_);
  w.u64(seq_);
  w.u32(static_cast<uint32_t>(index_.size()));
  absl::flat_hash_map<uint32_t, uint32_t> number;
  number.reserve(pool_.live());
  index_.for_each([&](uint32_t head) {
    w.str(stored_key::view(node(head) + 2));
    uint32_t n = 0;
    for (uint32_t id = head; id != kNone; id = next_of(node(id))) ++n;
    w.u32(n);
    for (uint32_t id = head; id != kNone; id = next_of(node(id))) {
      const uint64_t* nd = node(id);
      w.u64(nd[0]);
      save_header(w, nd);
      layout_.save(w, nd + header_words_);
      number.emplace(id, static_cast<uint32_t>(number.size()));
    }
  });
  w.u32(static_cast<uint32_t>(timers_.size()));
  absl::flat_hash_map<uint32_t, bool> seen;
  std::vector<uint32_t> live;
  for (const auto& [t, ids] : timers_) {
    live.clear();
    for (uint32_t id : ids) {
      auto it = number.find(id);
      if (it == number.end() || !timer_is_current(id, t) || !seen.emplace(id, true).second)
        continue;
      live.push_back(it->second);
    }
    w.i64(t);
    w.u32(static_cast<uint32_t>(live.size()));
    for (uint32_t n : live) w.u32(n);
  }
}

Status KeyedWindows::restore(ByteReader& r) {
  clear_state();
  const std::string what = fmt::format("window '{}'", spec_.name);
  const std::string todo =
      "resume the checkpoint with the millrace that wrote it, or start again from a new "
      "--checkpoint-dir (the input is then read from its start)";
  const uint64_t tag = r.u64();
  if (r.failed()) return Status::Error(what + ": the checkpoint holds no state for this window");
  if ((tag & 0xffff'ffff'0000'0000) != kSnapshotTag)
    return Status::Error(fmt::format(
        "{}: the checkpoint holds window state without a format version, written by an older "
        "millrace; this one reads format {} only: {}",
        what, kSnapshotVersion, todo));
  const uint32_t version = static_cast<uint32_t>(tag);
  if (version != kSnapshotVersion)
    return Status::Error(fmt::format(
        "{}: the checkpoint holds window state in format {}, written by {} millrace; this one "
        "reads format {} only: {}",
        what, version, version < kSnapshotVersion ? "an older" : "a newer", kSnapshotVersion,
        todo));
  const uint8_t type = r.u8();
  const uint32_t header_words = r.u32(), acc_words = r.u32();
  if (r.failed()) return Status::Error(what + ": the checkpoint's window state is cut short");
  if (type != static_cast<uint8_t>(spec_.type) || header_words != header_words_ ||
      acc_words != layout_.words())
    return Status::Error(fmt::format(
        "{}: the checkpoint holds the state of a {} window with {}+{} words per window; the "
        "spec's window is {} with {}+{}: run the checkpoint with the spec that wrote it, or use a "
        "new --checkpoint-dir",
        what, type <= 2 ? type_name(static_cast<WindowType>(type)) : "unknown", header_words,
        acc_words, type_name(spec_.type), header_words_, layout_.words()));
  Status damaged = Status::Error(
      what +
      ": the checkpoint's window state is damaged (it does not decode); use an earlier "
      "checkpoint or a new --checkpoint-dir");
  wm_ = r.i64();
  seq_ = r.u64();
  std::vector<uint32_t> ids;
  const uint32_t nkeys = r.count(8);
  for (uint32_t k = 0; k < nkeys && !r.failed(); ++k) {
    const std::string encoded(r.str());
    const KeyRef key{encoded, window_key_hash(encoded)};
    if (head_of(key) != kNone) return damaged;
    const uint32_t nodes = r.count(8);
    if (nodes == 0) return damaged;
    for (uint32_t i = 0; i < nodes && !r.failed(); ++i) {
      const TimeMs start = static_cast<TimeMs>(r.u64());
      const uint32_t id = new_node(key, start);
      load_header(r, id);
      ids.push_back(id);
      if (!layout_.load(r, node(id) + header_words_)) return damaged;
    }
  }
  const uint32_t buckets = r.count(12);
  for (uint32_t b = 0; b < buckets && !r.failed(); ++b) {
    const TimeMs t = r.i64();
    const uint32_t n = r.count(4);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t number = r.u32();
      if (number >= ids.size()) return damaged;
      schedule(t, ids[number]);
    }
  }
  return r.failed() ? damaged : Status::Ok();
}

uint32_t KeyedWindows::new_node(const KeyRef& key, TimeMs start) {
  uint32_t id = pool_.alloc();
  uint64_t* n = node(id);
  n[0] = static_cast<uint64_t>(start);
  n[1] = hash_in_node_ ? (static_cast<uint64_t>(key.hash) << 32) | kNone : kNone;
  stored_key::store(n + 2, key.bytes);
  key_heap_bytes_ += stored_key::heap_bytes(n + 2);
  layout_.init(n + header_words_);
  link_sorted(id);
  return id;
}

void KeyedWindows::link_sorted(uint32_t id) {
  uint64_t* n = node(id);
  KeyIndex::Slot* s = slot_of(key_of(n));
  if (!s) {
    set_next(n, kNone);
    index_.insert(key_of(n).hash, id);
    return;
  }
  uint32_t prev = kNone, cur = s->head;
  while (cur != kNone && start_of(node(cur)) > start_of(n)) {
    prev = cur;
    cur = next_of(node(cur));
  }
  set_next(n, cur);
  if (prev == kNone)
    s->head = id;
  else
    set_next(node(prev), id);
}

void KeyedWindows::unlink(uint32_t id) {
  uint64_t* n = node(id);
  KeyIndex::Slot* s = slot_of(key_of(n));
  uint32_t prev = kNone, cur = s->head;
  while (cur != id) {
    prev = cur;
    cur = next_of(node(cur));
  }
  if (prev != kNone) {
    set_next(node(prev), next_of(n));
  } else if (next_of(n) != kNone) {
    s->head = next_of(n);
  } else {
    index_.erase(s);
  }
}

void KeyedWindows::release_state(uint32_t id) {
  uint64_t* n = node(id);
  key_heap_bytes_ -= stored_key::heap_bytes(n + 2);
  stored_key::release(n + 2);
  layout_.destroy(n + header_words_);
}

void KeyedWindows::release_node(uint32_t id) {
  release_state(id);
  pool_.free(id);
}

void KeyedWindows::free_node(uint32_t id) {
  unlink(id);
  release_node(id);
}

void KeyedWindows::relink(uint32_t id) {
  unlink(id);
  link_sorted(id);
}

void KeyedWindows::write_record(WindowOutput* out, std::string_view key, TimeMs start, TimeMs end,
                                const uint64_t* acc, const char* kind) {
  std::string& s = out->results_for(key);
  // Usually the record is written into a buffer on the stack and appended
  // once (appending it piece by piece cost more than the numbers' text).
  char buf[kRecordBuffer];
  if (record_bound_ + key.size() <= sizeof buf) {
    auto put = [](char* p, std::string_view text) {
      std::memcpy(p, text.data(), text.size());
      return p + text.size();
    };
    char* p = put(buf, prefix_);
    p = write_window_key_json(p, key, key_prefixes_);
    if (p) {
      p = put(p, R"(, "window_start": )");
      p = std::to_chars(p, p + 24, start).ptr;
      p = put(p, R"(, "window_end": )");
      p = std::to_chars(p, p + 24, end).ptr;
      p = layout_.write_values(p, acc);
    }
    if (p) {
      p = put(p, R"(, "kind": ")");
      p = put(p, kind);
      p = put(p, "\"}\n");
      s.append(buf, p);
      out->wrote_result(s);
      return;
    }
  }
  s += prefix_;
  append_window_key_json(s, key, key_prefixes_);
  s += R"(, "window_start": )";
  append_json_int(s, start);
  s += R"(, "window_end": )";
  append_json_int(s, end);
  layout_.append_values(s, acc);
  s += R"(, "kind": ")";
  s += kind;
  s += "\"}\n";
  out->wrote_result(s);
}

void KeyedWindows::on_late(WindowOutput* out, std::string_view raw, TimeMs watermark) {
  if (spec_.late == LatePolicy::Drop) {
    ++out->late_dropped;
    return;
  }
  while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r' || raw.back() == ' '))
    raw.remove_suffix(1);
  std::string& s = out->late;
  s += prefix_;
  append_json_key(s, "reason");
  append_json_string(s, "window closed: end + allowed_lateness <= watermark");
  append_json_key(s, "watermark");
  append_json_int(s, watermark);
  append_json_key(s, "event");
  s.append(raw);
  s += "}\n";
  ++out->late_side_output;
}

size_t KeyedWindows::state_bytes() const {
  size_t bytes = index_.memory_bytes() + pool_.memory_bytes() + key_heap_bytes_;
  for (const auto& [t, ids] : timers_) bytes += ids.capacity() * sizeof(uint32_t) + 64;
  if (layout_.owns_heap()) {
    index_.for_each([&](uint32_t head) {
      for (uint32_t id = head; id != kNone; id = next_of(node(id)))
        bytes += layout_.heap_bytes(node(id) + header_words_);
    });
  }
  return bytes;
}

}  // namespace millrace
