// Session windows: each event covers [t, t + gap); a key's intervals that
// overlap merge, and a session is [first event, last event + gap). A node is
// one session (header: start, next and hash, key, end, timer); a key's
// sessions are disjoint, so in its list (latest start first) ends fall too.
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
      : KeyedWindows(spec, schema, 2), gap_(spec.gap), lateness_(spec.allowed_lateness) {}

  void advance(TimeMs watermark, WindowOutput* out) override;

 protected:
  void on_keyed_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                      const KeyRef& key, WindowOutput* out) override;
  bool timer_is_current(uint32_t id, TimeMs t) const override {
    return timer_of(const_cast<SessionWindows*>(this)->node(id)) == t;
  }

 private:
  static constexpr TimeMs kDead = kMinTime;
  static TimeMs end_of(const uint64_t* n) { return static_cast<TimeMs>(n[kKeyWords]); }
  static void set_end(uint64_t* n, TimeMs end) { n[kKeyWords] = static_cast<uint64_t>(end); }
  static TimeMs timer_of(const uint64_t* n) { return static_cast<int64_t>(n[kKeyWords + 1]) >> 1; }
  static bool fired(const uint64_t* n) { return (n[kKeyWords + 1] & 1) != 0; }
  static void set_timer(uint64_t* n, TimeMs t, bool fired) {
    n[kKeyWords + 1] = (static_cast<uint64_t>(t) << 1) | (fired ? 1 : 0);
  }
  void emit(WindowOutput* out, uint32_t id, const char* kind) {
    const uint64_t* n = node(id);
    write_record(out, key_of(n).bytes, start_of(n), end_of(n), n + header_words_, kind);
  }
  void drop(uint32_t id) {
    set_timer(node(id), kDead, false);
    free_node(id);
  }

  TimeMs gap_, lateness_;
  std::vector<uint32_t> touched_;
};

void SessionWindows::on_keyed_event(const Event& event, std::string_view raw,
                                    TimeMs watermark_before, const KeyRef& key, WindowOutput* out) {
  advance(watermark_before, out);
  const TimeMs wm = wm_;
  const uint64_t seq = seq_++;
  const TimeMs t = event.time;
  touched_.clear();
  for (uint32_t id = head_of(key); id != kNone; id = next_of(node(id))) {
    const uint64_t* n = node(id);
    if (end_of(n) <= t) break;
    if (start_of(n) < t + gap_) touched_.push_back(id);
  }
  if (touched_.empty() && t + gap_ + lateness_ <= wm) {
    on_late(out, raw, wm);
    return;
  }

  if (touched_.empty()) {
    uint32_t id = new_node(key, t);
    uint64_t* n = node(id);
    set_end(n, t + gap_);
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

  // The latest session absorbs the others; its timer is at or before the
  // merged session's due time, as that is at least its own.
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
    start = std::min(start, start_of(m));
    end = std::max(end, end_of(m));
    layout_.merge(n + header_words_, m + header_words_);
    drop(touched_[i]);
    n = node(target);
  }
  layout_.add(n + header_words_, event, seq);
  n[0] = static_cast<uint64_t>(start);
  set_end(n, end);
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
    for (size_t i = 0; i < ids.size(); ++i) {
      prefetch_timers(ids, i, true);
      const uint32_t id = ids[i];
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
