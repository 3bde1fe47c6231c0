// KeyedWindows: what the tumbling/hopping and the session operators share:
// the key table, the pool of window nodes, timers, and the writing of result
// and late records.
//
// A node is a block of the pool: a header, then the aggregate state laid out
// by AccumulatorLayout. Header word 0 is the node's start time, word 1 its
// key id (low 32 bits) and the next node of the same key (high 32 bits); a
// key's nodes form a list sorted by start, headed in the key table. Session
// nodes add word 2 (end) and word 3 (timer time and fired flag).
//
// Lateness is judged against the operator's watermark after on_event's own
// advance(watermark_before): the larger of the two when a caller advanced the
// operator further, so that no state already dropped can come back.
//
// Timers: a node with something due at time T (a window end to fire, a time
// past which its state is dropped) has an entry at T; advance(wm) runs the
// entries with T <= wm in time order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/btree_map.h>

#include "millrace/window/accumulator.h"
#include "millrace/window/node_pool.h"
#include "millrace/window/window_key.h"
#include "millrace/window/window_operator.h"

namespace millrace {

class KeyedWindows : public WindowOperator {
 public:
  size_t state_bytes() const override;
  size_t open_windows() const override { return pool_.live(); }
  size_t keys() const override { return keys_.size(); }
  void snapshot(ByteWriter& w) const override;
  bool restore(ByteReader& r) override;

 protected:
  static constexpr uint32_t kNone = KeyTable::kNone;

  KeyedWindows(const WindowSpec& spec, const Schema& schema, size_t header_words);
  ~KeyedWindows() override;

  // The key of `event` in key_buf_ and its id, or kNone when not yet interned.
  uint32_t find_key(const Event& event);

  uint64_t* node(uint32_t id) { return pool_.at(id); }
  uint64_t* acc(uint32_t id) { return pool_.at(id) + header_words_; }
  static TimeMs start_of(const uint64_t* n) { return static_cast<TimeMs>(n[0]); }
  static uint32_t key_of(const uint64_t* n) { return static_cast<uint32_t>(n[1]); }
  static uint32_t next_of(const uint64_t* n) { return static_cast<uint32_t>(n[1] >> 32); }
  static void set_next(uint64_t* n, uint32_t next) {
    n[1] = (n[1] & 0xffffffffu) | (static_cast<uint64_t>(next) << 32);
  }

  // A new node of `key` starting at `start`, linked into the key's sorted list.
  uint32_t new_node(uint32_t key, TimeMs start);
  // Unlinks and frees a node; frees the key when it has no node left.
  void free_node(uint32_t id);
  // Re-sorts a node whose start moved earlier (sessions).
  void relink(uint32_t id);
  void link_sorted(uint32_t id);
  void unlink(uint32_t id);

  // Adds a timer entry. Buckets grow by an eighth, not by doubling, so that
  // timers cost about 4 bytes per node.
  void schedule(TimeMs t, uint32_t id) {
    std::vector<uint32_t>& ids = timers_[t];
    if (ids.size() == ids.capacity()) ids.reserve(ids.size() + std::max<size_t>(8, ids.size() / 8));
    ids.push_back(id);
  }

  // Whether timer entry (t, id) is the node's current one (sessions leave
  // stale entries behind and skip them when they run).
  virtual bool timer_is_current(uint32_t id, TimeMs t) const {
    (void)id;
    (void)t;
    return true;
  }
  // Frees every node and key.
  void clear_state();

  // Appends one result record.
  void write_record(WindowOutput* out, uint32_t key, TimeMs start, TimeMs end, const uint64_t* acc,
                    const char* kind);
  // The event joined no window: drop it or write it to the late output.
  void on_late(WindowOutput* out, std::string_view raw, TimeMs watermark);

  WindowSpec spec_;
  AccumulatorLayout layout_;
  size_t header_words_;
  std::vector<std::string> key_names_;
  std::string prefix_;  // {"window": NAME
  KeyTable keys_;
  NodePool pool_;
  absl::btree_map<TimeMs, std::vector<uint32_t>> timers_;
  TimeMs wm_ = kMinTime;
  uint64_t seq_ = 0;  // arrival number of the next event
  std::string key_buf_;
  std::vector<uint64_t> scratch_;
};

}  // namespace millrace

namespace millrace {

// Tumbling and hopping windows (pane_windows.cpp) and session windows
// (session_windows.cpp); WindowOperator::Create picks one.
std::unique_ptr<WindowOperator> make_pane_windows(const WindowSpec& spec, const Schema& schema);
std::unique_ptr<WindowOperator> make_session_windows(const WindowSpec& spec, const Schema& schema);

}  // namespace millrace
