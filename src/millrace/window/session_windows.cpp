// Session windows: each event covers [t, t + gap); a key's intervals that
// overlap merge, and a session is [first event, last event + gap). A node is
// one session; a key's sessions are disjoint, so in its list (latest start
// first) ends fall too. Header: word 0 the start; word 1 the next node (low
// 32 bits), end - start (30 bits; longer sessions keep their end in a side
// table), the fired flag and the zombie flag; words 2-3 the key. The key's
// hash is not kept (it is computed from the key when a node is unlinked), so
// that for count+sum a session is 48 bytes, as a pane is.
//
// A session is late for an event only if the event touches no session still
// held and its own interval [t, t + gap) ended allowed_lateness before the
// watermark. A session's state is dropped once watermark >= end +
// allowed_lateness; a later event that would have touched it starts a new
// session. A session that fired stays fired when it grows: each change emits
// an update at once, never a second final.
//
// Timers: each node has exactly one timer entry. Sessions only grow, so its
// time is never later than what is due (the end, or end + allowed_lateness
// once fired): when the entry runs early it moves itself to the due time. A
// session merged into another is unlinked from its key at once but its node
// stays, as a zombie, until its entry runs and frees it: no entry ever points
// to a node freed and reused, so the entry's time need not be kept.
#include <algorithm>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "millrace/window/keyed_windows.h"

namespace millrace {

namespace {

class SessionWindows final : public KeyedWindows {
 public:
  SessionWindows(const WindowSpec& spec, const Schema& schema)
      : KeyedWindows(spec, schema, 0, false), gap_(spec.gap), lateness_(spec.allowed_lateness) {}
  ~SessionWindows() override { release_zombies(); }

  void advance(TimeMs watermark, WindowOutput* out) override;
  size_t open_windows() const override { return pool_.live() - zombies_.size(); }
  size_t state_bytes() const override {
    return KeyedWindows::state_bytes() + long_end_.capacity() * 16 + zombies_.capacity() * 4;
  }
  Status restore(ByteReader& r) override {
    release_zombies();
    long_end_.clear();
    return KeyedWindows::restore(r);
  }

 protected:
  void on_keyed_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                      const KeyRef& key, WindowOutput* out) override;
  // Checkpoints keep the layout of 64-bit end and timer words: the end, then
  // the due time shifted left by one with the fired flag in the low bit.
  void save_header(ByteWriter& w, const uint64_t* n) const override {
    const TimeMs end = end_of(n);
    const TimeMs due = fired(n) ? end + lateness_ : end;
    w.u64(static_cast<uint64_t>(end));
    w.u64((static_cast<uint64_t>(due) << 1) | (fired(n) ? 1 : 0));
  }
  void load_header(ByteReader& r, uint32_t id) override {
    const TimeMs end = static_cast<TimeMs>(r.u64());
    const bool was_fired = (r.u64() & 1) != 0;
    uint64_t* n = node(id);
    set_end(n, end);
    if (was_fired) n[1] |= kFired;
  }

 private:
  static constexpr int kDeltaShift = 32;
  // end - start, 30 bits; kLongEnd: the end is in long_end_.
  static constexpr uint64_t kLongEnd = (uint64_t{1} << 30) - 1;
  static constexpr uint64_t kFired = uint64_t{1} << 62, kZombie = uint64_t{1} << 63;
  TimeMs end_of(const uint64_t* n) const {
    const uint64_t delta = (n[1] >> kDeltaShift) & kLongEnd;
    if (delta != kLongEnd) return start_of(n) + static_cast<TimeMs>(delta);
    return long_end_.at(n);
  }
  // Sets the end of a node whose start is set.
  void set_end(uint64_t* n, TimeMs end) {
    const uint64_t delta = static_cast<uint64_t>(end - start_of(n));
    if (delta < kLongEnd) {
      if ((n[1] >> kDeltaShift & kLongEnd) == kLongEnd) long_end_.erase(n);
      n[1] = (n[1] & ~(kLongEnd << kDeltaShift)) | (delta << kDeltaShift);
    } else {
      n[1] |= kLongEnd << kDeltaShift;
      long_end_[n] = end;
    }
  }
  static bool fired(const uint64_t* n) { return (n[1] & kFired) != 0; }
  static bool zombie(const uint64_t* n) { return (n[1] & kZombie) != 0; }
  void emit(WindowOutput* out, uint32_t id, const char* kind) {
    const uint64_t* n = node(id);
    write_record(out, key_of(n).bytes, start_of(n), end_of(n), n + header_words_, kind);
  }
  void forget_end(uint64_t* n) {
    if ((n[1] >> kDeltaShift & kLongEnd) == kLongEnd) long_end_.erase(n);
  }
  void drop(uint32_t id) {
    forget_end(node(id));
    free_node(id);
  }
  // A session merged into another: out of its key's list now, freed when its
  // timer entry runs.
  void bury(uint32_t id) {
    forget_end(node(id));
    unlink_node(id);
    release_state(id);
    node(id)[1] |= kZombie;
    zombies_.insert(id);
  }
  void release_zombies() {
    for (uint32_t id : zombies_) pool_.free(id);
    zombies_.clear();
  }

  TimeMs gap_, lateness_;
  std::vector<uint32_t> touched_;
  absl::flat_hash_map<const uint64_t*, TimeMs> long_end_;
  absl::flat_hash_set<uint32_t> zombies_;
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
      n[1] |= kFired;
      schedule(t + gap_ + lateness_, id);
    } else {
      schedule(t + gap_, id);
    }
    return;
  }

  // The latest session absorbs the others; its timer is at or before the
  // merged session's due time, as that is at least its own. The others
  // become zombies until their own entries run.
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
    bury(touched_[i]);
    n = node(target);
  }
  layout_.add(n + header_words_, event, seq);
  forget_end(n);
  n[0] = static_cast<uint64_t>(start);
  set_end(n, end);
  if (start != old_start) relink(target);
  if (any_fired) {
    // The timer stays where it is (at or before what is now due) and moves on when it runs.
    n[1] |= kFired;
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
      if (zombie(n)) {  // merged into another session
        zombies_.erase(id);
        pool_.free(id);
        continue;
      }
      bool done = fired(n);
      if (!done && end_of(n) <= t) {
        emit(out, id, "final");
        n[1] |= kFired;
        done = true;
      }
      TimeMs due = done ? end_of(n) + lateness_ : end_of(n);
      if (due <= t)
        drop(id);
      else
        schedule(due, id);
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
