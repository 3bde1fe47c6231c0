// KeyedWindows: what the tumbling/hopping and the session operators share:
// the key index, the pool of window nodes, timers, and the writing of result
// and late records.
//
// A node is a block of the pool: a header, then the aggregate state laid out
// by AccumulatorLayout. Header word 0 is the node's start time, word 1 the
// next node of the same key (low 32 bits) and the key's hash (high 32 bits),
// words 2-3 the key (stored_key). A key's nodes form a list sorted by start,
// latest first (events mostly join a key's latest window), headed in the
// KeyIndex; a key exists while it has a node. Session nodes add word 4 (end)
// and word 5 (timer time and fired flag). With the key and the aggregates in
// one block, an event costs one probe of the index and one node (for
// count+sum, 48 bytes).
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
  void on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                WindowOutput* out) final;
  // Encodes and hashes the batch's keys first, then processes each event
  // while the index slots and nodes of the events a few places ahead load.
  void on_events(const WindowEvent* events, size_t n, WindowOutput* out) final;
  size_t state_bytes() const override;
  size_t open_windows() const override { return pool_.live(); }
  size_t keys() const override { return index_.size(); }
  void snapshot(ByteWriter& w) const override;
  Status restore(ByteReader& r) override;

  // The format of the state snapshot() writes. Version 2 is the first with a
  // version; the snapshots before it began with the watermark and are refused:
  // their hopping layout (a timer per pane, no key timer word) cannot be told
  // apart from the later one. Bump it whenever what snapshot() writes changes.
  static constexpr uint32_t kSnapshotVersion = 2;
  // The high half of the snapshot's first word (the low half is the version):
  // read as a watermark it is past kMaxTime, so no unversioned snapshot starts with it.
  static constexpr uint64_t kSnapshotTag = 0x4d52'5753'0000'0000;

 protected:
  static constexpr uint32_t kNone = KeyIndex::kNone;
  static constexpr size_t kKeyWords = 4;  // header words before the type's own

  // `hash_in_node`: word 1's high 32 bits hold the key's hash; else they are
  // the type's own, and the hash is computed from the key when needed.
  KeyedWindows(const WindowSpec& spec, const Schema& schema, size_t extra_header_words,
               bool hash_in_node = true);
  ~KeyedWindows() override;

  // on_event with the event's key encoded and hashed.
  virtual void on_keyed_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                              const KeyRef& key, WindowOutput* out) = 0;

  uint64_t* node(uint32_t id) { return pool_.at(id); }
  const uint64_t* node(uint32_t id) const { return pool_.at(id); }
  uint64_t* acc(uint32_t id) { return pool_.at(id) + header_words_; }
  static TimeMs start_of(const uint64_t* n) { return static_cast<TimeMs>(n[0]); }
  static uint32_t next_of(const uint64_t* n) { return static_cast<uint32_t>(n[1]); }
  static void set_next(uint64_t* n, uint32_t next) {
    n[1] = (n[1] & ~uint64_t{0xffffffffu}) | next;
  }
  KeyRef key_of(const uint64_t* n) const {
    const std::string_view bytes = stored_key::view(n + 2);
    return KeyRef{bytes,
                  hash_in_node_ ? static_cast<uint32_t>(n[1] >> 32) : window_key_hash(bytes)};
  }
  // Checkpoints: the type's own header state of a node (default: its extra
  // header words), written after word 0, and read back into a node made by
  // new_node (start and key set).
  virtual void save_header(ByteWriter& w, const uint64_t* n) const {
    for (size_t h = kKeyWords; h < header_words_; ++h) w.u64(n[h]);
  }
  virtual void load_header(ByteReader& r, uint32_t id) {
    uint64_t* n = node(id);
    for (size_t h = kKeyWords; h < header_words_; ++h) n[h] = r.u64();
  }

  // The first (latest) node of `key`, or kNone.
  uint32_t head_of(const KeyRef& key) {
    KeyIndex::Slot* s = slot_of(key);
    return s ? s->head : kNone;
  }
  // A new node of `key` starting at `start`, linked into the key's list.
  uint32_t new_node(const KeyRef& key, TimeMs start);
  // Unlinks and frees a node; the key goes with its last node.
  void free_node(uint32_t id);
  // Re-sorts a node whose start moved earlier (sessions).
  void relink(uint32_t id);
  // Takes a node out of its key's list (the key goes with its last node),
  // keeping the node itself: release_state() then frees its key copy and
  // aggregates, and pool_.free() the block (what free_node does at once).
  void unlink_node(uint32_t id) { unlink(id); }
  void release_state(uint32_t id);

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
  // While running timer entry ids[i]: loads the nodes of the entries further
  // on and, when `index` is set, their index slots and key heads, so that a
  // bucket of timers costs no dependent cache misses per entry.
  void prefetch_timers(const std::vector<uint32_t>& ids, size_t i, bool index) const {
    constexpr size_t kNodeAhead = 16, kSlotAhead = 8, kHeadAhead = 4;
    if (i + kNodeAhead < ids.size()) __builtin_prefetch(node(ids[i + kNodeAhead]));
    if (!index) return;
    if (i + kSlotAhead < ids.size()) index_.prefetch(key_of(node(ids[i + kSlotAhead])).hash);
    if (i + kHeadAhead < ids.size()) {
      uint32_t head = index_.guess(key_of(node(ids[i + kHeadAhead])).hash);
      if (head != kNone) __builtin_prefetch(node(head));
    }
  }
  // Frees every node and key.
  void clear_state();

  // Appends one result record.
  void write_record(WindowOutput* out, std::string_view key, TimeMs start, TimeMs end,
                    const uint64_t* acc, const char* kind);
  // The event joined no window: drop it or write it to the late output.
  void on_late(WindowOutput* out, std::string_view raw, TimeMs watermark);

  WindowSpec spec_;
  AccumulatorLayout layout_;
  size_t header_words_;
  bool hash_in_node_;
  std::vector<std::string> key_prefixes_;  // `, "name": ` per key field
  std::string prefix_;                     // {"window": NAME
  KeyIndex index_;
  NodePool pool_;
  absl::btree_map<TimeMs, std::vector<uint32_t>> timers_;
  TimeMs wm_ = kMinTime;
  uint64_t seq_ = 0;  // arrival number of the next event
  std::vector<uint64_t> scratch_;

 private:
  KeyIndex::Slot* slot_of(const KeyRef& key) {
    return index_.find(
        key.hash, [&](uint32_t head) { return stored_key::view(node(head) + 2) == key.bytes; });
  }
  void link_sorted(uint32_t id);
  void unlink(uint32_t id);
  void release_node(uint32_t id);  // its key copy and aggregates, back to the pool

  static constexpr size_t kRecordBuffer = 1024;
  size_t record_bound_ = 0;    // write_record's text beside the key's bytes
  size_t key_heap_bytes_ = 0;  // keys longer than stored_key's inline 15 bytes
  std::string key_buf_;
  std::string batch_keys_;
  std::vector<uint32_t> batch_hash_, batch_end_;
};

}  // namespace millrace

namespace millrace {

// Tumbling and hopping windows (pane_windows.cpp) and session windows
// (session_windows.cpp); WindowOperator::Create picks one.
std::unique_ptr<WindowOperator> make_pane_windows(const WindowSpec& spec, const Schema& schema);
std::unique_ptr<WindowOperator> make_session_windows(const WindowSpec& spec, const Schema& schema);

}  // namespace millrace
