// AccumulatorLayout: the state of one window's aggregates as a flat block of
// 64-bit words, laid out for exactly the aggregates a spec configures (count
// and sum take one word each; nothing is carried for aggregates not asked
// for). Windows only grow: events are added and blocks merged (panes into a
// hopping window, sessions into one), never removed, so min, max, first and
// last need no history.
//
// Words per aggregate: count 1 (int64); sum 1 (double); avg 2 (sum, n);
// min, max 1 (+inf / -inf while empty); stddev 3 (n, mean, M2: Welford, merged
// with Chan's formula); count_distinct 1 (owning pointer to the set of encoded
// values); first, last 4 (event time, arrival sequence, value kind, value or
// owning pointer to a string); quantile 1 (owning pointer to a QuantileSketch).
// A block is zero-filled, then init(); blocks with owning pointers must be
// destroy()ed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "millrace/core/bytes.h"
#include "millrace/core/event.h"
#include "millrace/core/schema.h"
#include "millrace/stream/spec.h"

namespace millrace {

class AccumulatorLayout {
 public:
  AccumulatorLayout(const std::vector<WindowAggSpec>& aggs, const Schema& schema);

  size_t words() const { return words_; }
  // True when some aggregate owns heap memory (count_distinct, first/last of
  // strings, quantile): such blocks need destroy().
  bool owns_heap() const { return owns_heap_; }

  void init(uint64_t* acc) const;
  // Adds one event; `seq` is its arrival number (ties of first/last).
  void add(uint64_t* acc, const Event& event, uint64_t seq) const;
  // Adds everything in `from` (left unchanged) to `into`.
  void merge(uint64_t* into, const uint64_t* from) const;
  void destroy(uint64_t* acc) const;
  size_t heap_bytes(const uint64_t* acc) const;

  // Snapshot encoding (checkpoints): plain words as they are; a distinct set
  // as its values, a sketch as its counters, a first/last string as its text.
  void save(ByteWriter& w, const uint64_t* acc) const;
  // Fills an init()ed block from save()'s output; false on damaged input (the
  // block may then hold part of it and still needs destroy()).
  bool load(ByteReader& r, uint64_t* acc) const;

  // Appends `, "name": value` for every aggregate.
  void append_values(std::string& out, const uint64_t* acc) const;
  // Writes the same text at p and returns its end, unless a value is a
  // string (first/last of a string field): nullptr then, and append_values
  // must be used. Takes at most text_bound() bytes.
  char* write_values(char* p, const uint64_t* acc) const;
  size_t text_bound() const { return text_bound_; }

 private:
  struct Slot {
    AggKind kind;
    int field;        // -1: count of events
    double q;         // quantile
    uint32_t word;    // first word of the slot's state
    std::string key;  // `, "name": ` already formatted
  };
  // The value of slot s at p (at most kValueChars), or nullptr for a string.
  static constexpr size_t kValueChars = 32;
  char* write_value(char* p, const Slot& s, const uint64_t* w) const;

  std::vector<Slot> slots_;
  size_t words_ = 0;
  size_t text_bound_ = 0;
  bool owns_heap_ = false;
};

}  // namespace millrace
