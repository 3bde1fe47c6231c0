// Batch values: a file of per-entity values computed by a batch job (e.g. a
// card's 30-day average amount, written nightly), read point-in-time. Each
// row holds the entity key column(s), an `as_of` time and value columns:
//
//   card_id,as_of,avg_amount_30d,lifetime_count
//   c1,2026-01-01T00:00:00Z,42.5,310
//   c1,2026-01-02T00:00:00Z,40.0,321
//
// For an event of key k at time t, a column's value is that of k's row with
// the latest as_of <= t; none (no row, or every row's as_of is after t) is
// null. So an event never sees a value computed after it happened.
//
// The file is polled (mtime and size); a changed file is loaded to the side
// and swapped in whole, so readers see the old table or the new one, never a
// mix. A file that fails to load is rejected with file:line and what was
// expected; on a reload the old table stays in service and the error is
// logged and counted.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "millrace/core/event.h"
#include "millrace/core/hash.h"
#include "millrace/core/schema.h"
#include "millrace/core/status.h"

namespace millrace {

struct BatchSpec {
  std::string name;
  std::string path;
  std::vector<int> key_fields;  // event schema indexes; the file's key columns have their names
  Schema columns;               // the file: key columns, then as_of, then value columns
  int as_of_column = -1;        // index in `columns`
  int first_value = 0;          // value column c is columns[first_value + c]
  TimeMs poll_interval = 1000;  // how often to check the file; 0: never reload
  int line = 0;                 // in the spec

  size_t value_count() const { return columns.size() - first_value; }
};

// One loaded file: immutable, shared by every reader until replaced.
//
// Its keys are found by their hash (hash_string, XXH3) in an open-addressing
// table of 32-byte slots, at most half full, each holding the key's hash, its
// rows and its length and first 8 bytes (a key of up to 8 bytes is compared
// in the slot; a longer one against the table's key bytes). A caller that
// hashes an event's key once may look it up several times with the hash.
class BatchTable {
 public:
  // Loads the file; an error names the file, line and column.
  static Result<std::shared_ptr<const BatchTable>> Load(const BatchSpec& spec);

  static uint64_t hash_key(std::string_view key) { return hash_string(key); }

  // The value cells of key's row with the latest as_of <= t (value_count()
  // cells), or nullptr. Strings are read with str(). `hash` is hash_key(key).
  const FieldValue* find(std::string_view key, uint64_t hash, TimeMs t) const;
  const FieldValue* find(std::string_view key, TimeMs t) const {
    return find(key, hash_key(key), t);
  }
  // Hints that find(key, hash, ...) comes soon, in two steps that a batch of
  // events goes through one after the other, so that their cache misses
  // overlap: the key's index slot; once that is cached, the key's as_of
  // times and its latest row's cells.
  void prefetch_slot(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }
  void prefetch_times(std::string_view key, uint64_t hash) const {
    prefetch_rows(locate(key, hash));
  }

  // A key's entry in the index, located once (after prefetch_slot(), when its
  // slot is cached) and then read without searching again: find_at() is
  // find() of the located key. Valid as long as the table.
  class KeyRef {
   public:
    bool found() const { return slot_ != nullptr; }

   private:
    friend class BatchTable;
    const void* slot_ = nullptr;
  };
  KeyRef locate(std::string_view key, uint64_t hash) const {
    KeyRef r;
    r.slot_ = find_slot(key, hash);
    return r;
  }
  const FieldValue* find_at(KeyRef key, TimeMs t) const;
  // The second step of prefetch_times() for a located key.
  void prefetch_rows(KeyRef key) const;
  // The cells of a row find_at() returned.
  void prefetch_cells(const FieldValue* row) const {
    __builtin_prefetch(row);
    __builtin_prefetch(row + values_ - 1);
  }

  std::string_view str(const FieldValue& v) const {
    return std::string_view(arena_.data() + v.s.off, v.s.len);
  }
  size_t rows() const { return as_of_.size(); }
  size_t keys() const { return keys_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t first = 0, count = 0;  // rows of one key, in as_of order; count 0: empty
    uint32_t key_offset = 0;        // in key_bytes_
    uint32_t key_size = 0;
    char prefix[8] = {};  // the key's first bytes, zero-padded
  };
  static_assert(sizeof(Slot) == 32);
  static void set_prefix(std::string_view key, char* prefix) {
    std::memset(prefix, 0, 8);
    std::memcpy(prefix, key.data(), std::min<size_t>(key.size(), 8));
  }
  const Slot* find_slot(std::string_view key, uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    char prefix[8];
    set_prefix(key, prefix);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.count == 0) return nullptr;
      if (s.hash == hash && s.key_size == key.size() && std::memcmp(s.prefix, prefix, 8) == 0 &&
          (key.size() <= 8 ||
           std::memcmp(key_bytes_.data() + s.key_offset + 8, key.data() + 8, key.size() - 8) == 0))
        return &s;
    }
  }

  std::vector<Slot> slots_;  // power-of-two many
  size_t mask_ = 0;
  size_t keys_ = 0;
  std::string key_bytes_;
  std::vector<TimeMs> as_of_;
  std::vector<FieldValue> cells_;  // rows x values
  std::string arena_;              // bytes of string cells
  size_t values_ = 0;
};

// A batch source in service: the current table, reloaded when its file changes.
// Thread-safe.
class BatchValues {
 public:
  // Loads the file now (an error fails the spec) and starts polling it.
  static Result<std::unique_ptr<BatchValues>> Open(BatchSpec spec);
  ~BatchValues();

  const BatchSpec& spec() const { return spec_; }
  // The table in service; readers may keep it as long as they like.
  std::shared_ptr<const BatchTable> snapshot() const;
  // Increases each time a new table is swapped in: readers compare it with
  // the one of their snapshot to know when to take a new one.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Loads the file if its mtime or size changed since the last load. On an
  // error the current table stays, the error is counted and returned.
  Status reload_if_changed();

  uint64_t reloads() const { return reloads_.load(); }
  uint64_t reload_errors() const { return reload_errors_.load(); }

 private:
  explicit BatchValues(BatchSpec spec) : spec_(std::move(spec)) {}
  void poll_loop();

  BatchSpec spec_;
  mutable std::mutex mu_;  // guards table_
  std::shared_ptr<const BatchTable> table_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> reloads_{0}, reload_errors_{0};
  int64_t mtime_ns_ = 0;  // of the file loaded last (poll thread only)
  int64_t size_ = -1;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread poller_;
};

}  // namespace millrace
