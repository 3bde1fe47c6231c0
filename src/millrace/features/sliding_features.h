// Per-event sliding features of one key (e.g. every feature keyed by card_id):
// for an accepted event e of key k at time t, each feature's value is its
// aggregate over the key's accepted events with time in (t - window, t],
// e included, computed when e arrives (DESIGN.md, "Semantics").
//
// State per key: the key's recent events in time order (ties by arrival), one
// column per field the features read, and the running aggregates of the
// "head windows" (max time - window, max time]. Features whose head state
// evolves identically share it (one 64-byte line per head state): sum, avg
// and stddev of one field and window share their sums; count, first and last
// need only where their window starts and join any head state of their
// window; prev and time_since_last keep none. A card with counts, averages
// and extremes over four windows keeps 7 head states for 14 features.
//  - An in-order event (t >= the key's max time) is appended; every feature
//    adds it and evicts what left its window: O(1) amortized for count, sum,
//    avg, stddev, min and max (min/max through a monotonic deque), O(1)
//    expected for count_distinct, O(buckets) reads for quantile.
//  - An out-of-order event is inserted at its time (so later events see it)
//    and folded into the head aggregates; its own value is computed over
//    (t - window, t]: count/sum/avg/stddev from the head aggregate corrected
//    by the events between the two windows (cost bounded by the disorder, not
//    the window), min/max/count_distinct/quantile by a scan of its window.
//  - Buffered events older than watermark - allowed_lateness - longest window
//    can no longer fall in any window and are dropped; a key whose newest
//    event is that old is freed entirely (TTL).
// Not thread-safe: each worker owns the SlidingFeatureGroup of its key groups.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <xxhash.h>

#include "millrace/core/block_pool.h"
#include "millrace/core/bytes.h"
#include "millrace/core/epoch.h"
#include "millrace/core/event.h"
#include "millrace/core/published_index.h"
#include "millrace/core/ring_buffer.h"
#include "millrace/core/schema.h"
#include "millrace/features/feature_value.h"
#include "millrace/features/key_table.h"
#include "millrace/stream/spec.h"
#include "millrace/window/quantile_sketch.h"

namespace millrace {

class RocksKeyedState;

class SlidingFeatureGroup {
 public:
  struct KeyState;  // one key's state (sliding_features.cpp)
  class RowPools;   // where event rows on the heap come from (sliding_features.cpp)
  struct RowArray {
    uint64_t* data;
    size_t bytes;
  };

  // `features` all share `key_fields`; `outputs[i]` is where feature i's value
  // goes in the event's output array.
  SlidingFeatureGroup(const Schema& schema, std::vector<FeatureSpec> features,
                      std::vector<int> outputs, TimeMs allowed_lateness);
  ~SlidingFeatureGroup();

  // Processes an accepted event of `key`; writes each feature's value to
  // out[outputs[i]]. `watermark` is the worker's watermark before the event.
  void on_event(std::string_view key, const Event& event, TimeMs watermark, FeatureValue* out) {
    on_event(key, key_hash(key), event, watermark, out);
  }
  // The same with the key's hash (key_hash(key)), when the caller has it.
  void on_event(std::string_view key, uint64_t hash, const Event& event, TimeMs watermark,
                FeatureValue* out);

  // The hash keys are looked up by: hash_string() (core/hash.h), the same the
  // runtime routes by.
  static uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

  // Hints that on_event() will soon be called for a key, in three stages a
  // batch of events goes through one after the other, so that the cache
  // misses of the batch overlap: the key's slot in the key table (by its
  // hash); once that is cached, the key's state (returns it, nullptr for a
  // new key); once that is cached, its event rows and feature structures
  // (with `event`, the entries of its values in the key's count_distinct and
  // is_new tables). Changes nothing; the state returned is valid until the
  // group changes.
  void prefetch_slot(uint64_t hash) const { keys_.prefetch(hash); }
  const KeyState* prefetch_state(std::string_view key, uint64_t hash) const;
  void prefetch_rows(const KeyState* ks, const Event* event = nullptr) const;

  // Scratch space of one reading thread, reused between reads.
  struct ReadScratch {
    QuantileSketch sketch;
    absl::flat_hash_map<uint64_t, uint32_t> set;
    std::vector<uint64_t> copy;  // read_at_concurrent(): the key's state, copied
  };

  // Evaluates every feature for `key` as of time `at` without changing any
  // state: the aggregate over the key's buffered events with time in
  // (at - window, at] (prev: the newest such event's field; time_since_last:
  // at minus its time). Writes each value to out[outputs[i]] and, when
  // `freshness` is given, the event time of the newest contributing event to
  // freshness[outputs[i]] (kMinTime when none). A feature's `ttl` applies: a
  // value whose newest event is older than at - ttl reads as null. Exact for
  // at >= watermark - allowed_lateness (older events may be pruned). Safe to
  // run concurrently with other reads, not with on_event() or expire().
  void read_at(std::string_view key, TimeMs at, ReadScratch* scratch, FeatureValue* out,
               TimeMs* freshness) const;

  // Reads from other threads while the owning worker writes (a run that
  // serves reads). Call before the group holds keys and before any reader
  // starts. From then on, the worker marks each key's state as changing
  // while it processes an event of that key (a per-key sequence number: odd
  // while it changes), publishes keys in an index that readers search
  // without locks, and retires the memory readers may be reading (key
  // states, grown event rows, index arrays) instead of freeing it: it is
  // freed once no reader can hold it (core/epoch.h).
  void enable_concurrent_reads();

  // Whether the key states and event rows are kept on huge pages (the
  // default; core/block_pool.h). A run that reads a bounded input once in a
  // fresh process (a backfill) may do better on 4 KB pages: each page is
  // touched once, and where the machine must back fresh memory afresh (a VM
  // whose free memory goes back to its host) a fresh 2 MB page costs far
  // more than the TLB misses it saves (docs/feature_store.md). Call before
  // the group holds keys.
  void set_huge_pages(bool on);
  // Whether read_at_concurrent() may be used: concurrent reads are enabled,
  // no RocksDB store is attached (such reads load keys) and no feature keeps
  // text values (strings are not copied without the worker's help). Else
  // readers and the worker must exclude each other (EmbeddedStore's lock).
  bool lock_free_reads() const { return concurrent_ && !store_ && !has_text_; }

  // read_at() from any thread, while the worker processes events, without
  // waiting for it: copies the key's state (a few rows and the head sums of
  // count/sum/avg/stddev) while its sequence number is even and unchanged,
  // then evaluates the copy. The result is exactly what read_at() gives
  // between two events of the worker. Waits only while the worker is in the
  // middle of an event of this very key. Requires lock_free_reads().
  void read_at_concurrent(std::string_view key, TimeMs at, ReadScratch* scratch, FeatureValue* out,
                          TimeMs* freshness) const;

  // Partial aggregate of one feature over the events of one time slice
  // (lo, hi]: what the Redis store keeps per slice (docs/feature_store.md).
  struct SliceAggregate {
    int64_t n = 0;  // events with a value (count: all events)
    double sum = 0, sumsq = 0, min = 0, max = 0;
    TimeMs first_t = kMinTime, last_t = kMinTime;  // first/newest contributing event
    FeatureValue first, last;        // first/last: their field; prev: the newest event's field
    std::vector<uint64_t> distinct;  // count_distinct: value hashes, sorted
  };
  // Aggregates feature i of `key` over its buffered events with time in
  // (lo, hi]. Not concurrent with on_event() or expire().
  void slice_aggregate(std::string_view key, size_t i, TimeMs lo, TimeMs hi,
                       SliceAggregate* out) const;

  // Frees the keys that no event at or after `watermark` can use.
  void expire(TimeMs watermark);

  // Checkpoints: appends the whole state (every key, in expiry order, with
  // its buffered events and running aggregates, bit for bit) / replaces the
  // state with a saved one, after which every later result is the same as
  // without the save and restore. restore() returns false on damaged input
  // (the group is then empty).
  void snapshot(ByteWriter& w) const;
  bool restore(ByteReader& r);

  // State larger than memory: keeps at most `cache_keys` keys in memory and
  // moves the others to `store` (under `prefix` + key), choosing by second
  // chance over arrival order (a key used since it was last considered stays).
  // Results are the same as with everything in memory. snapshot() then holds
  // the keys in memory; the store is checkpointed beside it.
  void attach_store(RocksKeyedState* store, std::string prefix, size_t cache_keys) {
    store_ = store;
    prefix_ = std::move(prefix);
    cache_keys_ = std::max<size_t>(1, cache_keys);
  }

  // Whether reads may load keys from a RocksDB store (attach_store()): such
  // reads change the group's caches and must not run concurrently.
  bool reads_load_keys() const { return store_ != nullptr; }

  size_t keys() const { return keys_.size(); }
  size_t features() const { return features_.size(); }
  const FeatureSpec& feature(size_t i) const { return features_[i].spec; }
  size_t state_bytes() const;

 private:
  enum class ColumnKind { Number, Hash, Text };
  struct Column {
    int field;
    ColumnKind kind;
  };
  struct Feature {
    FeatureSpec spec;
    int column;  // index into columns_, -1 when the feature reads no field
    int output;
    FieldType field_type;
    bool has_head;   // keeps a head window (all but prev/time_since_last)
    int head;        // index into heads_, -1 without a head window
    bool owns_head;  // the first feature of its head: restores it from a snapshot
  };
  // A head state of a key, shared by features of one window length: where
  // the window starts, and the aggregate of `kind` over `column`'s values.
  enum class HeadKind : uint8_t { Start, Count, Sums, Max, Min, Distinct, Sketch };
  struct Head {
    TimeMs window;
    HeadKind kind;
    int column;  // -1 for Start (the head keeps only where its window starts)
  };

  void compute_in_order(KeyState& ks, size_t pos, const Feature& f, size_t fi, FeatureValue& v);
  void compute_out_of_order(KeyState& ks, size_t pos, const Feature& f, size_t fi, FeatureValue& v);
  void write_field_value(const KeyState& ks, size_t pos, const Feature& f, FeatureValue& v) const;
  // The cell of feature f's field at ring position pos: its bits and, for a
  // number, its value. False when the value is null (the event is skipped).
  bool read_cell(const KeyState& ks, const Feature& f, size_t pos, uint64_t* bits,
                 double* x) const {
    return read_column(ks, f.column, pos, bits, x);
  }
  bool read_column(const KeyState& ks, int column, size_t pos, uint64_t* bits, double* x) const;
  // The cell an event's row holds in column c.
  uint64_t column_bits(const Event& event, size_t c) const;
  // Head state h: the event at pos enters / the event at pos (its start) leaves.
  void add_to_head(KeyState& ks, size_t h, size_t pos, bool in_order);
  void remove_from_head(KeyState& ks, size_t h, size_t pos);
  // An in-order event at pos (the newest): head h adds it and evicts what left.
  void advance_head(KeyState& ks, size_t h, size_t pos);
  // Events in feature fi's head window: all of them (count), or with a value.
  int64_t head_count(const KeyState& ks, size_t fi) const;
  // count_distinct / is_new: the head window's distinct values (see DistinctState).
  template <typename F>
  void for_each_distinct(const KeyState& ks, size_t h, F&& f) const;
  size_t distinct_size(const KeyState& ks, size_t h) const;
  uint32_t distinct_count(const KeyState& ks, size_t h, uint64_t bits) const;
  void prune(KeyState& ks, TimeMs watermark);
  struct KeyStateDeleter {
    void operator()(KeyState* ks) const;
  };
  using KeyStatePtr = std::unique_ptr<KeyState, KeyStateDeleter>;
  KeyStatePtr new_key_state();
  void save_key(ByteWriter& w, const KeyState& ks) const;
  // Moves keys to the store until there is room for one more in memory.
  void evict(TimeMs watermark);
  void free_key(KeyState* ks);
  // nullptr on damaged input.
  KeyStatePtr load_key(ByteReader& r);
  // The state of `key`: in memory, or, with a RocksDB store attached, loaded
  // into *loaded (the cache is left as it is). nullptr when the key has none.
  // Callers hold the shard's lock (or are its worker): loading uses the store.
  const KeyState* lookup(std::string_view key, KeyStatePtr* loaded) const;
  void evaluate_range(const KeyState& ks, size_t fi, size_t lo, size_t hi, TimeMs at,
                      ReadScratch* scratch, FeatureValue& v, TimeMs* freshness) const;
  // read_at() of a key's state (nullptr: the key has none).
  void evaluate_at(const KeyState* ks, TimeMs at, ReadScratch* scratch, FeatureValue* out,
                   TimeMs* freshness) const;
  // Copies `src` into scratch->copy as a KeyState; false when the worker
  // changed it meanwhile (the copy is then not used).
  const KeyState* copy_for_read(const KeyState& src, ReadScratch* scratch) const;
  void publish(KeyState* ks);
  void retire_key(KeyState* ks);

  // Reads as of a time evaluate the features that share a field and a window
  // length in one pass over the window's events (read_at()).
  struct ReadPass {
    int column;     // -1: the features read no field
    size_t window;  // index into read_windows_
    bool moments = false, extremes = false, distinct = false;
    std::vector<uint32_t> features;
  };
  void plan_reads();
  void assign_heads();
  // The heads whose state may hold memory outside the key's block (min/max
  // deques, distinct tables, sketches), in order.
  std::vector<uint32_t> heads_holding_memory() const;
  std::vector<TimeMs> read_windows_;  // distinct window lengths
  std::vector<ReadPass> read_passes_;
  // Every feature is a count, sum, avg or stddev: reads at or after a key's
  // newest event start from the head aggregates (evaluate_at()).
  bool head_reads_ = false;

  const Schema& schema_;
  // Where key states and their event rows live (declared first: destroyed
  // after every state that uses them).
  std::unique_ptr<BlockPool> state_pool_;
  std::unique_ptr<RowPools> row_pools_;
  std::vector<Column> columns_;
  std::vector<Feature> features_;
  std::vector<Head> heads_;  // a key's head states, in this order
  TimeMs lateness_;
  TimeMs retention_;  // longest window
  // The keys in memory: one allocation per key (KeyState, its features'
  // states and its first event rows), found by the key's hash, kept in the
  // table beside the pointer (no rehashing to free a key, no second copy of
  // the key, and a probe reads the state only when the hash matches).
  KeyTable<KeyState> keys_;
  void clear_keys();
  // Row capacity kept inside a key's allocation; bytes of the allocation.
  uint32_t inline_rows_ = 1;
  size_t state_alloc_bytes_ = 0;
  bool has_text_ = false;
  // Keys with the watermark at which they expire (re-checked when popped);
  // every key has exactly one entry.
  using Expiry = std::pair<TimeMs, KeyState*>;
  RingBuffer<Expiry> expiry_;
  // States of freed keys, reused for new keys.
  static constexpr size_t kMaxFree = 1024;
  std::vector<KeyStatePtr> free_;
  QuantileSketch scratch_sketch_;
  absl::flat_hash_map<uint64_t, uint32_t> scratch_set_;
  // Concurrent reads (enable_concurrent_reads()).
  bool concurrent_ = false;
  std::unique_ptr<EpochReclaimer> reclaimer_;
  std::unique_ptr<PublishedIndex<KeyState>> published_;
  std::vector<RowArray> grown_;  // event rows replaced by a grown buffer during one event
  RocksKeyedState* store_ = nullptr;
  std::string prefix_;
  size_t cache_keys_ = 0;
  std::string db_key_, io_;
};

}  // namespace millrace
