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
// Timers: each pane has exactly one timer entry, walking the ends of the
// windows that contain it, then the time its state is dropped (the last
// window's end + allowed_lateness). A window is fired by the entry of its
// earliest pane. Each time bucket runs in two phases (fire, then drop and
// reschedule) so that a pane dropped at T still counts as earliest for the
// windows ending at T.
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
      : KeyedWindows(spec, schema, 0),
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

 private:
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
    schedule(next_due(p, wm), pane);
    if (!open) head = head_of(key);
  }
  layout_.add(acc(pane), event, seq);

  for (TimeMs s : corrections_) emit(out, key, head, s, "update");
  for (TimeMs s : created_) emit(out, key, head, s, "final");
}

void PaneWindows::advance(TimeMs watermark, WindowOutput* out) {
  if (watermark <= wm_) return;
  std::vector<uint32_t> ids;
  while (!timers_.empty() && timers_.begin()->first <= watermark) {
    auto it = timers_.begin();
    const TimeMs t = it->first;
    ids.swap(it->second);
    timers_.erase(it);
    // Phase 1: fire the window ending at t, by its earliest pane.
    for (size_t i = 0; i < ids.size(); ++i) {
      prefetch_timers(ids, i, !one_pane_);
      const uint32_t id = ids[i];
      const uint64_t* n = node(id);
      TimeMs p = start_of(n), s = t - size_;
      if (floor_div(s, slide_) * slide_ != s || s > p || t <= p) continue;
      const KeyRef key = key_of(n);
      if (one_pane_) {
        write_record(out, key.bytes, s, t, acc(id), "final");
        continue;
      }
      const uint32_t head = head_of(key);
      if (first_pane(head, s, t) == id)
        write_record(out, key.bytes, s, t, window_acc(head, s), "final");
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
  if (scratch_live_) {
    layout_.destroy(scratch_.data());
    scratch_live_ = false;
  }
  wm_ = watermark;
  open_from_ = kMaxTime;
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
