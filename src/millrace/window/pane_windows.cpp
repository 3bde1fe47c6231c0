// Tumbling and hopping windows over panes. Time is cut into panes of width
// g = gcd(size, slide); every window boundary is a pane boundary, so a window
// [nH, nH + S) is the union of its S/g panes, and an event updates one pane of
// its key whatever the number of windows covering it. A window's result is
// its panes merged when it is emitted. (Tumbling: one pane per window.)
//
// Invariant after every advance(wm): every window with end <= wm that holds
// an event has fired. So, when an event arrives, a window it joins has
// already fired iff it ends at or before the watermark and holds another
// event; a window ending at or before the watermark that it makes non-empty
// fires its final result at once.
//
// Timers, tumbling (one pane per window): each pane has one timer entry, at
// its window's end, then at the time its state is dropped (end +
// allowed_lateness).
//
// Timers, hopping: one entry per key, not per pane, held by the key's first
// (latest) node, whose header word 4 holds the entry's time (entries whose
// time is not their node's are stale and skipped). It is at the next time
// something is due for any of the key's panes: a window end, or the time a
// pane is dropped. When it runs, advance(W) does all of the key's work up to
// W in one walk of its panes: every window ending in (previous watermark, W]
// that holds a pane fires, with its panes merged; panes past their last
// window's lateness are dropped; the entry moves to the next due time after
// W. So a key costs one entry per window end, whatever the number of its
// panes, and the end of the input (W = +infinity) takes each key once.
#include <algorithm>
#include <limits>
#include <numeric>

#include "millrace/window/keyed_windows.h"

namespace millrace {

namespace {

TimeMs floor_div(TimeMs a, TimeMs b) {
  TimeMs q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

class PaneWindows final : public KeyedWindows {
 public:
  PaneWindows(const WindowSpec& spec, const Schema& schema)
      : KeyedWindows(spec, schema, hopping(spec) ? 1 : 0),
        size_(spec.size),
        slide_(spec.slide > 0 ? spec.slide : spec.size),
        pane_(std::gcd(size_, slide_)),
        lateness_(spec.allowed_lateness),
        one_pane_(pane_ == size_) {}
  ~PaneWindows() override {
    if (scratch_live_) layout_.destroy(scratch_.data());
  }

  void advance(TimeMs watermark, WindowOutput* out) override;
  size_t open_windows() const override;

 protected:
  void on_keyed_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                      const KeyRef& key, WindowOutput* out) override;
  bool timer_is_current(uint32_t id, TimeMs t) const override {
    return one_pane_ || key_timer(node(id)) == t;
  }

 private:
  static bool hopping(const WindowSpec& spec) {
    const TimeMs slide = spec.slide > 0 ? spec.slide : spec.size;
    return std::gcd(spec.size, slide) != spec.size;
  }
  // Hopping: the key's timer time, in its first node (kNoTimer elsewhere).
  static constexpr TimeMs kNoTimer = kMinTime;
  static TimeMs key_timer(const uint64_t* n) { return static_cast<TimeMs>(n[kKeyWords]); }
  static void set_key_timer(uint64_t* n, TimeMs t) { n[kKeyWords] = static_cast<uint64_t>(t); }
  // Hopping: a new pane `id` of a key (already linked): the key's timer moves
  // to its first node and to the pane's next due time if that is earlier.
  void schedule_new_pane(uint32_t id, TimeMs p, TimeMs wm);
  // Hopping: all of the key whose first node is `head` up to watermark w.
  void run_key(uint32_t head, TimeMs w, WindowOutput* out);
  void advance_tumbling(TimeMs watermark, WindowOutput* out);
  void advance_hopping(TimeMs watermark, WindowOutput* out);

  TimeMs pane_of(TimeMs t) {
    // Consecutive events mostly fall into the same pane: no division then.
    if (static_cast<uint64_t>(t) - static_cast<uint64_t>(last_pane_) >=
        static_cast<uint64_t>(pane_))
      last_pane_ = floor_div(t, pane_) * pane_;
    return last_pane_;
  }
  // The windows containing pane p are n * slide for n in [first_n(p), last_n(p)].
  int64_t first_n(TimeMs p) const { return floor_div(p - size_, slide_) + 1; }
  int64_t last_n(TimeMs p) const { return floor_div(p, slide_); }
  TimeMs last_end(TimeMs p) const { return last_n(p) * slide_ + size_; }
  // The next time pane p has something due after x: the end of a window
  // containing it, else the time its state is dropped.
  TimeMs next_due(TimeMs p, TimeMs x) const {
    int64_t n = std::max(first_n(p), floor_div(x - size_, slide_) + 1);
    return n <= last_n(p) ? n * slide_ + size_ : last_end(p) + lateness_;
  }
  // The earliest pane in [s, e) of the key whose list starts at `head`, or kNone.
  uint32_t first_pane(uint32_t head, TimeMs s, TimeMs e) {
    uint32_t found = kNone;
    for (uint32_t id = head; id != kNone; id = next_of(node(id))) {
      TimeMs p = start_of(node(id));
      if (p < s) break;
      if (p < e) found = id;
    }
    return found;
  }
  // Aggregates of the window [s, s + size) of the key whose list starts at
  // `head`; valid until the next call.
  const uint64_t* window_acc(uint32_t head, TimeMs s);
  void emit(WindowOutput* out, const KeyRef& key, uint32_t head, TimeMs s, const char* kind) {
    write_record(out, key.bytes, s, s + size_, window_acc(head, s), kind);
  }

  TimeMs size_, slide_, pane_, lateness_;
  bool one_pane_;
  TimeMs last_pane_ = 0;
  std::vector<TimeMs> corrections_, created_;
  std::vector<uint32_t> panes_, cursor_;  // run_key: a key's panes; advance: prefetch cursors
  bool scratch_live_ = false;
  TimeMs open_from_ = kMaxTime;  // panes >= this have no window ended at wm_
};

const uint64_t* PaneWindows::window_acc(uint32_t head, TimeMs s) {
  if (one_pane_) return acc(first_pane(head, s, s + size_));
  if (scratch_live_) layout_.destroy(scratch_.data());
  std::fill(scratch_.begin(), scratch_.end(), 0);
  layout_.init(scratch_.data());
  scratch_live_ = true;
  for (uint32_t id = head; id != kNone; id = next_of(node(id))) {
    TimeMs p = start_of(node(id));
    if (p < s) break;
    if (p < s + size_) layout_.merge(scratch_.data(), acc(id));
  }
  return scratch_.data();
}

void PaneWindows::on_keyed_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                                 const KeyRef& key, WindowOutput* out) {
  advance(watermark_before, out);
  const TimeMs wm = wm_;
  const uint64_t seq = seq_++;
  const TimeMs p = pane_of(event.time);
  // Fast path: every window of the pane ends after the watermark (first_end
  // grows with p, so this holds for every pane from open_from_ on).
  bool open = p >= open_from_;
  if (!open && first_n(p) * slide_ + size_ > wm) {
    open_from_ = p;
    open = true;
  }
  if (!open && last_end(p) + lateness_ <= wm) {
    on_late(out, raw, wm);
    return;
  }
  uint32_t head = head_of(key);

  // Windows of this event that ended but are still within their lateness.
  corrections_.clear();
  created_.clear();
  if (!open) {
    int64_t last = last_n(p);
    for (int64_t n = std::max(first_n(p), floor_div(wm - lateness_ - size_, slide_) + 1); n <= last;
         ++n) {
      TimeMs s = n * slide_;
      if (s + size_ > wm) break;
      (first_pane(head, s, s + size_) != kNone ? corrections_ : created_).push_back(s);
    }
  }
  if (spec_.retract)
    for (TimeMs s : corrections_) emit(out, key, head, s, "retract");

  uint32_t pane = kNone;
  for (uint32_t id = head; id != kNone; id = next_of(node(id))) {
    TimeMs ps = start_of(node(id));
    if (ps <= p) {
      if (ps == p) pane = id;
      break;
    }
  }
  if (pane == kNone) {
    pane = new_node(key, p);
    if (one_pane_)
      schedule(next_due(p, wm), pane);
    else
      schedule_new_pane(pane, p, wm);
    if (!open) head = head_of(key);
  }
  layout_.add(acc(pane), event, seq);

  for (TimeMs s : corrections_) emit(out, key, head, s, "update");
  for (TimeMs s : created_) emit(out, key, head, s, "final");
}

void PaneWindows::schedule_new_pane(uint32_t id, TimeMs p, TimeMs wm) {
  uint64_t* n = node(id);
  set_key_timer(n, kNoTimer);
  const TimeMs due = next_due(p, wm);
  const uint32_t next = next_of(n);
  const uint32_t head = head_of(key_of(n));
  if (head == id) {
    // The new first node takes the key's timer over.
    TimeMs t = due;
    if (next != kNone) {
      uint64_t* old = node(next);
      t = std::min(t, key_timer(old));
      set_key_timer(old, kNoTimer);
    }
    set_key_timer(n, t);
    schedule(t, id);
    return;
  }
  uint64_t* h = node(head);
  if (due < key_timer(h)) {
    set_key_timer(h, due);
    schedule(due, head);
  }
}

void PaneWindows::run_key(uint32_t head, TimeMs w, WindowOutput* out) {
  // The key's panes, earliest first.
  panes_.clear();
  for (uint32_t id = head; id != kNone; id = next_of(node(id))) panes_.push_back(id);
  std::reverse(panes_.begin(), panes_.end());
  const KeyRef key = key_of(node(head));
  const size_t np = panes_.size();
  const TimeMs first_pane = start_of(node(panes_[0])), last_pane = start_of(node(panes_[np - 1]));
  // Windows [s, s + size) ending in (wm_, w] that hold a pane: s from the
  // first multiple of slide above max(wm_, first pane) - size, to at most
  // min(w - size, last pane).
  const TimeMs lo = std::max(wm_, first_pane) - size_;
  TimeMs s = (floor_div(lo, slide_) + 1) * slide_;
  const TimeMs hi = w == kMaxTime ? last_pane : std::min(w - size_, last_pane);
  size_t from = 0;  // first pane at or after s
  while (s <= hi) {
    while (from < np && start_of(node(panes_[from])) < s) ++from;
    if (from == np) break;
    const TimeMs p = start_of(node(panes_[from]));
    if (p >= s + size_) {
      // No pane in this window: on to the first window holding pane p.
      s = std::max(s + slide_, first_n(p) * slide_);
      continue;
    }
    if (scratch_live_) layout_.destroy(scratch_.data());
    std::fill(scratch_.begin(), scratch_.end(), 0);
    layout_.init(scratch_.data());
    scratch_live_ = true;
    for (size_t i = from; i < np && start_of(node(panes_[i])) < s + size_; ++i)
      layout_.merge(scratch_.data(), acc(panes_[i]));
    write_record(out, key.bytes, s, s + size_, scratch_.data(), "final");
    s += slide_;
  }
  // Drop what is past its lateness (earliest first: the key's first node goes last).
  TimeMs due = kMaxTime;
  uint32_t first = kNone;
  for (size_t i = 0; i < np; ++i) {
    const uint32_t id = panes_[i];
    const TimeMs p = start_of(node(id));
    if (w >= last_end(p) + lateness_) {
      set_key_timer(node(id), kNoTimer);
      free_node(id);
    } else {
      due = std::min(due, next_due(p, w));
      first = id;
    }
  }
  if (first != kNone) {  // the latest pane left is the key's first node
    set_key_timer(node(first), due);
    schedule(due, first);
  }
}

void PaneWindows::advance(TimeMs watermark, WindowOutput* out) {
  if (watermark <= wm_) return;
  if (one_pane_)
    advance_tumbling(watermark, out);
  else
    advance_hopping(watermark, out);
  if (scratch_live_) {
    layout_.destroy(scratch_.data());
    scratch_live_ = false;
  }
  wm_ = watermark;
  open_from_ = kMaxTime;
}

void PaneWindows::advance_hopping(TimeMs watermark, WindowOutput* out) {
  std::vector<uint32_t> ids;
  while (!timers_.empty() && timers_.begin()->first <= watermark) {
    auto it = timers_.begin();
    const TimeMs t = it->first;
    ids.swap(it->second);
    timers_.erase(it);
    // In groups: the first nodes, then each key's panes one list step at a
    // time for all the group's keys, so that the walks' cache misses overlap.
    constexpr size_t kGroup = 16, kDepth = 6;
    for (size_t g = 0; g < ids.size(); g += kGroup) {
      const size_t end = std::min(ids.size(), g + kGroup);
      for (size_t i = g; i < end; ++i) __builtin_prefetch(node(ids[i]));
      cursor_.assign(ids.begin() + static_cast<std::ptrdiff_t>(g),
                     ids.begin() + static_cast<std::ptrdiff_t>(end));
      for (size_t d = 0; d < kDepth; ++d) {
        bool any = false;
        for (uint32_t& c : cursor_) {
          if (c == kNone) continue;
          c = next_of(node(c));
          if (c != kNone) {
            __builtin_prefetch(node(c));
            any = true;
          }
        }
        if (!any) break;
      }
      for (size_t i = g; i < end; ++i) {
        const uint32_t id = ids[i];
        if (key_timer(node(id)) != t) continue;  // stale: moved, or the node was freed
        run_key(id, watermark, out);
      }
    }
    ids.clear();
  }
}

void PaneWindows::advance_tumbling(TimeMs watermark, WindowOutput* out) {
  std::vector<uint32_t> ids;
  while (!timers_.empty() && timers_.begin()->first <= watermark) {
    auto it = timers_.begin();
    const TimeMs t = it->first;
    ids.swap(it->second);
    timers_.erase(it);
    // Phase 1: fire the window ending at t (its one pane).
    for (size_t i = 0; i < ids.size(); ++i) {
      prefetch_timers(ids, i, false);
      const uint32_t id = ids[i];
      const uint64_t* n = node(id);
      TimeMs p = start_of(n), s = t - size_;
      if (floor_div(s, slide_) * slide_ != s || s > p || t <= p) continue;
      write_record(out, key_of(n).bytes, s, t, acc(id), "final");
    }
    // Phase 2: drop panes past their last window's lateness, reschedule the rest.
    for (size_t i = 0; i < ids.size(); ++i) {
      prefetch_timers(ids, i, true);
      const uint32_t id = ids[i];
      TimeMs p = start_of(node(id));
      if (t >= last_end(p) + lateness_)
        free_node(id);
      else
        schedule(next_due(p, t), id);
    }
    ids.clear();
  }
}

size_t PaneWindows::open_windows() const {
  const int64_t alive = floor_div(wm_ - lateness_ - size_, slide_) + 1;
  size_t count = 0;
  index_.for_each([&](uint32_t head) {
    // Panes latest first: the windows of each pane not counted for a later one.
    int64_t counted_from = std::numeric_limits<int64_t>::max();
    for (uint32_t id = head; id != kNone; id = next_of(node(id))) {
      TimeMs p = start_of(node(id));
      int64_t lo = std::max(first_n(p), alive), hi = std::min(last_n(p), counted_from - 1);
      if (hi >= lo) count += static_cast<size_t>(hi - lo + 1);
      counted_from = std::min(counted_from, first_n(p));
    }
  });
  return count;
}

}  // namespace

std::unique_ptr<WindowOperator> make_pane_windows(const WindowSpec& spec, const Schema& schema) {
  return std::make_unique<PaneWindows>(spec, schema);
}

}  // namespace millrace
