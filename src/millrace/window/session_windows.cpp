// Session windows: each event covers [t, t + gap); a key's intervals that
// overlap merge, and a session is [first event, last event + gap). A node is
// one session (header: start, key/next, end, flags).
//
// A session is late for an event only if the event touches no session still
// held and its own interval [t, t + gap) ended allowed_lateness before the
// watermark. A session's state is dropped once watermark >= end +
// allowed_lateness; a later event that would have touched it starts a new
// session. A session that fired stays fired when it grows: each change emits
// an update at once, never a second final.
//
// Timers: an entry at the session's end (fire) or end + allowed_lateness
// (drop); a session that grows or merges gets a new entry and the old one
// goes stale. Running an entry is idempotent (it acts only on what is due for
// the node it names, if that node is alive), so stale and repeated entries
// are harmless.
#include <algorithm>

#include "millrace/window/keyed_windows.h"

namespace millrace {

namespace {

constexpr uint64_t kAlive = 1, kFired = 2;

class SessionWindows final : public KeyedWindows {
 public:
  SessionWindows(const WindowSpec& spec, const Schema& schema)
      : KeyedWindows(spec, schema, 4), gap_(spec.gap), lateness_(spec.allowed_lateness) {}

  void on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                WindowOutput* out) override;
  void advance(TimeMs watermark, WindowOutput* out) override;

 private:
  static TimeMs end_of(const uint64_t* n) { return static_cast<TimeMs>(n[2]); }
  void emit(WindowOutput* out, uint32_t id, const char* kind) {
    const uint64_t* n = node(id);
    write_record(out, key_of(n), start_of(n), end_of(n), n + header_words_, kind);
  }
  void drop(uint32_t id) {
    node(id)[3] = 0;
    free_node(id);
  }

  TimeMs gap_, lateness_;
  std::vector<uint32_t> touched_;
};

void SessionWindows::on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                              WindowOutput* out) {
  advance(watermark_before, out);
  const TimeMs wm = wm_;
  const uint64_t seq = seq_++;
  const TimeMs t = event.time;
  uint32_t key = find_key(event);
  touched_.clear();
  if (key != kNone) {
    for (uint32_t id = keys_.head(key); id != kNone; id = next_of(node(id))) {
      const uint64_t* n = node(id);
      if (start_of(n) >= t + gap_) break;
      if (t < end_of(n)) touched_.push_back(id);
    }
  }
  if (touched_.empty() && t + gap_ + lateness_ <= wm) {
    on_late(out, raw, wm);
    return;
  }
  if (key == kNone) key = keys_.intern(key_buf_);

  if (touched_.empty()) {
    uint32_t id = new_node(key, t);
    uint64_t* n = node(id);
    n[2] = static_cast<uint64_t>(t + gap_);
    n[3] = kAlive;
    layout_.add(n + header_words_, event, seq);
    if (t + gap_ <= wm) {  // a session that ended before it began: final at once
      n[3] |= kFired;
      emit(out, id, "final");
      schedule(t + gap_ + lateness_, id);
    } else {
      schedule(t + gap_, id);
    }
    return;
  }

  const uint32_t target = touched_[0];
  bool any_fired = false;
  for (uint32_t id : touched_) any_fired |= (node(id)[3] & kFired) != 0;
  if (any_fired && spec_.retract)
    for (uint32_t id : touched_)
      if (node(id)[3] & kFired) emit(out, id, "retract");

  uint64_t* n = node(target);
  const TimeMs old_start = start_of(n), old_end = end_of(n);
  const bool was_fired = (n[3] & kFired) != 0;
  TimeMs start = std::min(old_start, t), end = std::max(old_end, t + gap_);
  for (size_t i = 1; i < touched_.size(); ++i) {
    const uint64_t* m = node(touched_[i]);
    end = std::max(end, end_of(m));
    layout_.merge(n + header_words_, m + header_words_);
    drop(touched_[i]);
    n = node(target);
  }
  layout_.add(n + header_words_, event, seq);
  n[0] = static_cast<uint64_t>(start);
  n[2] = static_cast<uint64_t>(end);
  if (start != old_start) relink(target);
  if (any_fired) {
    n[3] |= kFired;
    emit(out, target, "update");
    if (!was_fired || end != old_end) schedule(end + lateness_, target);
  } else if (end != old_end) {
    schedule(end, target);
  }
}

void SessionWindows::advance(TimeMs watermark, WindowOutput* out) {
  if (watermark <= wm_) return;
  std::vector<uint32_t> ids;
  while (!timers_.empty() && timers_.begin()->first <= watermark) {
    auto it = timers_.begin();
    const TimeMs t = it->first;
    ids.swap(it->second);
    timers_.erase(it);
    for (uint32_t id : ids) {
      uint64_t* n = node(id);
      if (!(n[3] & kAlive)) continue;
      if (!(n[3] & kFired)) {
        if (end_of(n) > t) continue;
        n[3] |= kFired;
        emit(out, id, "final");
        if (end_of(n) + lateness_ > t) {
          schedule(end_of(n) + lateness_, id);
          continue;
        }
      }
      if (end_of(n) + lateness_ <= t) drop(id);
    }
    ids.clear();
  }
  wm_ = watermark;
}

}  // namespace

std::unique_ptr<WindowOperator> make_session_windows(const WindowSpec& spec, const Schema& schema) {
  return std::make_unique<SessionWindows>(spec, schema);
}

}  // namespace millrace
