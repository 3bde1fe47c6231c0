// Session windows: each event covers [t, t + gap); a key's intervals that
// overlap merge, and a session is [first event, last event + gap). A node is
// one session (header: start, key/next, end, timer).
//
// A session is late for an event only if the event touches no session still
// held and its own interval [t, t + gap) ended allowed_lateness before the
// watermark. A session's state is dropped once watermark >= end +
// allowed_lateness; a later event that would have touched it starts a new
// session. A session that fired stays fired when it grows: each change emits
// an update at once, never a second final.
//
// Timers: each live session has exactly one timer entry, at the time held in
// header word 3 (with the fired flag in its low bit). Sessions only grow, so
// that time is never later than what is due (its end, or end +
// allowed_lateness once fired): when the entry runs early it moves itself to
// the due time. Entries whose time is not their node's (nodes merged away or
// freed and reused) are skipped.
#include <algorithm>

#include "millrace/window/keyed_windows.h"

namespace millrace {

namespace {

class SessionWindows final : public KeyedWindows {
 public:
  SessionWindows(const WindowSpec& spec, const Schema& schema)
      : KeyedWindows(spec, schema, 4), gap_(spec.gap), lateness_(spec.allowed_lateness) {}

  void on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                WindowOutput* out) override;
  void advance(TimeMs watermark, WindowOutput* out) override;

 protected:
  bool timer_is_current(uint32_t id, TimeMs t) const override {
    return timer_of(const_cast<SessionWindows*>(this)->node(id)) == t;
  }

 private:
  static constexpr TimeMs kDead = kMinTime;
  static TimeMs end_of(const uint64_t* n) { return static_cast<TimeMs>(n[2]); }
  static TimeMs timer_of(const uint64_t* n) { return static_cast<int64_t>(n[3]) >> 1; }
  static bool fired(const uint64_t* n) { return (n[3] & 1) != 0; }
  static void set_timer(uint64_t* n, TimeMs t, bool fired) {
    n[3] = (static_cast<uint64_t>(t) << 1) | (fired ? 1 : 0);
  }
  void emit(WindowOutput* out, uint32_t id, const char* kind) {
    const uint64_t* n = node(id);
    write_record(out, key_of(n), start_of(n), end_of(n), n + header_words_, kind);
  }
  void drop(uint32_t id) {
    set_timer(node(id), kDead, false);
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
    layout_.add(n + header_words_, event, seq);
    if (t + gap_ <= wm) {  // a session that ended before it began: final at once
      emit(out, id, "final");
      set_timer(n, t + gap_ + lateness_, true);
    } else {
      set_timer(n, t + gap_, false);
    }
    schedule(timer_of(n), id);
    return;
  }

  const uint32_t target = touched_[0];
  bool any_fired = false;
  for (uint32_t id : touched_) any_fired |= fired(node(id));
  if (any_fired && spec_.retract)
    for (uint32_t id : touched_)
      if (fired(node(id))) emit(out, id, "retract");

  uint64_t* n = node(target);
  const TimeMs old_start = start_of(n);
  TimeMs start = std::min(old_start, t), end = std::max(end_of(n), t + gap_);
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
    // The timer stays where it is (at or before what is now due) and moves on when it runs.
    set_timer(n, timer_of(n), true);
    emit(out, target, "update");
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
      if (timer_of(n) != t) continue;  // stale: merged away, freed, or moved
      bool done = fired(n);
      if (!done && end_of(n) <= t) {
        emit(out, id, "final");
        done = true;
      }
      TimeMs due = done ? end_of(n) + lateness_ : end_of(n);
      if (due <= t) {
        drop(id);
      } else {
        set_timer(n, due, done);
        schedule(due, id);
      }
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
