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
      : KeyedWindows(spec, schema, 2),
        size_(spec.size),
        slide_(spec.slide > 0 ? spec.slide : spec.size),
        pane_(std::gcd(size_, slide_)),
        lateness_(spec.allowed_lateness),
        one_pane_(pane_ == size_) {}
  ~PaneWindows() override {
    if (scratch_live_) layout_.destroy(scratch_.data());
  }

  void on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                WindowOutput* out) override;
  void advance(TimeMs watermark, WindowOutput* out) override;
  size_t open_windows() const override;

 private:
  TimeMs pane_of(TimeMs t) const { return floor_div(t, pane_) * pane_; }
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
  // The first pane of `key` in [s, e), or kNone.
  uint32_t first_pane(uint32_t key, TimeMs s, TimeMs e) {
    for (uint32_t id = keys_.head(key); id != kNone; id = next_of(node(id))) {
      TimeMs p = start_of(node(id));
      if (p >= e) break;
      if (p >= s) return id;
    }
    return kNone;
  }
  // Aggregates of `key`'s window [s, s + size); valid until the next call.
  const uint64_t* window_acc(uint32_t key, TimeMs s);
  void emit(WindowOutput* out, uint32_t key, TimeMs s, const char* kind) {
    write_record(out, key, s, s + size_, window_acc(key, s), kind);
  }

  TimeMs size_, slide_, pane_, lateness_;
  bool one_pane_;
  std::vector<TimeMs> corrections_, created_;
  bool scratch_live_ = false;
  TimeMs open_from_ = kMaxTime;  // panes >= this have no window ended at wm_
};

const uint64_t* PaneWindows::window_acc(uint32_t key, TimeMs s) {
  if (one_pane_) return acc(first_pane(key, s, s + size_));
  if (scratch_live_) layout_.destroy(scratch_.data());
  std::fill(scratch_.begin(), scratch_.end(), 0);
  layout_.init(scratch_.data());
  scratch_live_ = true;
  for (uint32_t id = keys_.head(key); id != kNone; id = next_of(node(id))) {
    TimeMs p = start_of(node(id));
    if (p >= s + size_) break;
    if (p >= s) layout_.merge(scratch_.data(), acc(id));
  }
  return scratch_.data();
}

void PaneWindows::on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                           WindowOutput* out) {
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
  uint32_t key = find_key(event);
  if (key == kNone) key = keys_.intern(key_buf_);

  // Windows of this event that ended but are still within their lateness.
  corrections_.clear();
  created_.clear();
  if (!open) {
    int64_t last = last_n(p);
    for (int64_t n = std::max(first_n(p), floor_div(wm - lateness_ - size_, slide_) + 1); n <= last;
         ++n) {
      TimeMs s = n * slide_;
      if (s + size_ > wm) break;
      (first_pane(key, s, s + size_) != kNone ? corrections_ : created_).push_back(s);
    }
  }
  if (spec_.retract)
    for (TimeMs s : corrections_) emit(out, key, s, "retract");

  uint32_t pane = kNone;
  for (uint32_t id = keys_.head(key); id != kNone; id = next_of(node(id))) {
    TimeMs ps = start_of(node(id));
    if (ps == p) pane = id;
    if (ps >= p) break;
  }
  if (pane == kNone) {
    pane = new_node(key, p);
    schedule(next_due(p, wm), pane);
  }
  layout_.add(acc(pane), event, seq);

  for (TimeMs s : corrections_) emit(out, key, s, "update");
  for (TimeMs s : created_) emit(out, key, s, "final");
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
    for (uint32_t id : ids) {
      const uint64_t* n = node(id);
      TimeMs p = start_of(n), s = t - size_;
      if (floor_div(s, slide_) * slide_ != s || s > p || t <= p) continue;
      if (first_pane(key_of(n), s, t) == id) emit(out, key_of(n), s, "final");
    }
    // Phase 2: drop panes past their last window's lateness, reschedule the rest.
    for (uint32_t id : ids) {
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
  auto& self = const_cast<PaneWindows&>(*this);
  const int64_t alive = floor_div(wm_ - lateness_ - size_, slide_) + 1;
  size_t count = 0;
  keys_.for_each([&](uint32_t key) {
    int64_t covered = std::numeric_limits<int64_t>::min();
    for (uint32_t id = self.keys_.head(key); id != kNone; id = next_of(self.node(id))) {
      TimeMs p = start_of(self.node(id));
      int64_t lo = std::max({first_n(p), alive, covered + 1}), hi = last_n(p);
      if (hi >= lo) count += static_cast<size_t>(hi - lo + 1);
      covered = std::max(covered, hi);
    }
  });
  return count;
}

}  // namespace

std::unique_ptr<WindowOperator> make_pane_windows(const WindowSpec& spec, const Schema& schema) {
  return std::make_unique<PaneWindows>(spec, schema);
}

}  // namespace millrace
