#include "millrace/window/keyed_windows.h"

#include <absl/container/flat_hash_map.h>

#include "millrace/core/json_writer.h"

namespace millrace {

KeyedWindows::KeyedWindows(const WindowSpec& spec, const Schema& schema, size_t header_words)
    : spec_(spec),
      layout_(spec.aggs, schema),
      header_words_(header_words),
      pool_(header_words + layout_.words()) {
  for (int f : spec.key_fields) key_names_.push_back(schema[f].name);
  prefix_ = "{";
  append_json_key(prefix_, "window", true);
  append_json_string(prefix_, spec.name);
  scratch_.resize(layout_.words());
}

KeyedWindows::~KeyedWindows() {
  if (!layout_.owns_heap()) return;
  keys_.for_each([&](uint32_t key) {
    for (uint32_t id = keys_.head(key); id != kNone; id = next_of(node(id)))
      layout_.destroy(acc(id));
  });
}

void KeyedWindows::clear_state() {
  std::vector<uint32_t> ids;
  keys_.for_each([&](uint32_t key) {
    for (uint32_t id = keys_.head(key); id != kNone; id = next_of(node(id))) ids.push_back(id);
  });
  for (uint32_t id : ids) free_node(id);
  timers_.clear();
}

// Snapshot encoding:
//   i64 watermark, u64 arrival sequence, u32 keys; per key: str encoded key,
//   u32 nodes; per node (in start order): header words 0 and 2.., then the
//   aggregates (AccumulatorLayout::save). Then u32 timer buckets; per bucket
//   in time order: i64 time, u32 n, n node numbers (0-based, in the order
//   the nodes were written).
void KeyedWindows::snapshot(ByteWriter& w) const {
  auto& self = const_cast<KeyedWindows&>(*this);
  w.i64(wm_);
  w.u64(seq_);
  w.u32(static_cast<uint32_t>(keys_.size()));
  absl::flat_hash_map<uint32_t, uint32_t> number;
  number.reserve(pool_.live());
  keys_.for_each([&](uint32_t key) {
    w.str(keys_.key(key));
    uint32_t n = 0;
    for (uint32_t id = self.keys_.head(key); id != kNone; id = next_of(self.node(id))) ++n;
    w.u32(n);
    for (uint32_t id = self.keys_.head(key); id != kNone; id = next_of(self.node(id))) {
      const uint64_t* nd = self.node(id);
      w.u64(nd[0]);
      for (size_t h = 2; h < header_words_; ++h) w.u64(nd[h]);
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

bool KeyedWindows::restore(ByteReader& r) {
  clear_state();
  wm_ = r.i64();
  seq_ = r.u64();
  std::vector<uint32_t> ids;
  const uint32_t nkeys = r.count(8);
  for (uint32_t k = 0; k < nkeys && !r.failed(); ++k) {
    std::string_view encoded = r.str();
    if (keys_.find(encoded) != kNone) return false;
    const uint32_t key = keys_.intern(encoded);
    const uint32_t nodes = r.count(8);
    if (nodes == 0) return false;
    for (uint32_t i = 0; i < nodes && !r.failed(); ++i) {
      const uint32_t id = pool_.alloc();
      uint64_t* nd = node(id);
      nd[0] = r.u64();
      nd[1] = key;
      for (size_t h = 2; h < header_words_; ++h) nd[h] = r.u64();
      layout_.init(nd + header_words_);
      link_sorted(id);
      ids.push_back(id);
      if (!layout_.load(r, nd + header_words_)) return false;
    }
  }
  const uint32_t buckets = r.count(12);
  for (uint32_t b = 0; b < buckets && !r.failed(); ++b) {
    const TimeMs t = r.i64();
    const uint32_t n = r.count(4);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t number = r.u32();
      if (number >= ids.size()) return false;
      schedule(t, ids[number]);
    }
  }
  return !r.failed();
}

uint32_t KeyedWindows::find_key(const Event& event) {
  key_buf_.clear();
  encode_window_key(event, spec_.key_fields, &key_buf_);
  return keys_.find(key_buf_);
}

uint32_t KeyedWindows::new_node(uint32_t key, TimeMs start) {
  uint32_t id = pool_.alloc();
  uint64_t* n = node(id);
  n[0] = static_cast<uint64_t>(start);
  n[1] = key;
  layout_.init(n + header_words_);
  link_sorted(id);
  return id;
}

void KeyedWindows::link_sorted(uint32_t id) {
  uint64_t* n = node(id);
  uint32_t key = key_of(n);
  uint32_t prev = kNone, cur = keys_.head(key);
  while (cur != kNone && start_of(node(cur)) < start_of(n)) {
    prev = cur;
    cur = next_of(node(cur));
  }
  set_next(n, cur);
  if (prev == kNone)
    keys_.head(key) = id;
  else
    set_next(node(prev), id);
}

void KeyedWindows::unlink(uint32_t id) {
  uint64_t* n = node(id);
  uint32_t key = key_of(n);
  uint32_t prev = kNone, cur = keys_.head(key);
  while (cur != id) {
    prev = cur;
    cur = next_of(node(cur));
  }
  if (prev == kNone)
    keys_.head(key) = next_of(n);
  else
    set_next(node(prev), next_of(n));
}

void KeyedWindows::free_node(uint32_t id) {
  uint64_t* n = node(id);
  uint32_t key = key_of(n);
  unlink(id);
  layout_.destroy(n + header_words_);
  pool_.free(id);
  if (keys_.head(key) == kNone) keys_.erase(key);
}

void KeyedWindows::relink(uint32_t id) {
  unlink(id);
  link_sorted(id);
}

void KeyedWindows::write_record(WindowOutput* out, uint32_t key, TimeMs start, TimeMs end,
                                const uint64_t* acc, const char* kind) {
  std::string& s = out->results;
  s += prefix_;
  append_window_key_json(s, keys_.key(key), key_names_);
  append_json_key(s, "window_start");
  append_json_int(s, start);
  append_json_key(s, "window_end");
  append_json_int(s, end);
  layout_.append_values(s, acc);
  append_json_key(s, "kind");
  s += '"';
  s += kind;
  s += "\"}\n";
  out->wrote_result();
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
  size_t bytes = keys_.memory_bytes() + pool_.memory_bytes();
  for (const auto& [t, ids] : timers_) bytes += ids.capacity() * sizeof(uint32_t) + 64;
  if (layout_.owns_heap()) {
    keys_.for_each([&](uint32_t key) {
      auto& self = const_cast<KeyedWindows&>(*this);
      for (uint32_t id = self.keys_.head(key); id != kNone; id = next_of(self.node(id)))
        bytes += layout_.heap_bytes(self.acc(id));
    });
  }
  return bytes;
}

}  // namespace millrace
