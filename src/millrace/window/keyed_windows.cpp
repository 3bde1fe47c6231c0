#include "millrace/window/keyed_windows.h"

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
  ++out->results_emitted;
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
