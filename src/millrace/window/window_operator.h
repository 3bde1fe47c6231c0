// WindowOperator: one `windows:` entry of a spec (tumbling, hopping or session
// windows over one key), run by one worker over the keys that worker owns.
//
// The worker calls, for every accepted event of its keys, in partition order:
//   advance(event's watermark_before)   -- fires what the watermark passed
//   on_event(event, watermark_before)   -- late check, add, corrections
//   advance(event's watermark_after)
// and advance(wm) alone when only the watermark moves (broadcasts, end of
// input with kMaxTime). Semantics (docs/semantics.md, DESIGN.md):
//  - An event is late for a window if window end + allowed_lateness <= the
//    watermark before the event; late events are dropped (counted) or written
//    to the late output with the window name and reason (spec `late:`).
//  - Otherwise it joins its windows; joining a window that already fired emits
//    a correction at once: {"kind":"update"}, preceded by {"kind":"retract"}
//    with the previous values when `retract: true`. A session merge that
//    involves fired sessions retracts each fired one (if enabled) and emits the
//    merged session as an update.
//  - advance(wm): every window with end <= wm that has not fired emits
//    {"kind":"final"}; a window's state is dropped once wm >= end + allowed_lateness.
// Result record: {"window": NAME, <key fields>, "window_start": ms,
// "window_end": ms, <agg names>: values, "kind": "final" | "update" | "retract"}.
// Not thread-safe: each worker owns its own operator instance.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/bytes.h"
#include "millrace/core/event.h"
#include "millrace/core/hash.h"
#include "millrace/core/schema.h"
#include "millrace/core/status.h"
#include "millrace/stream/spec.h"

namespace millrace {

// Where an operator writes: JSON lines appended to strings, flushed by the caller.
// A caller that wants results in bounded chunks sets `spill`: once a results
// string holds spill_at bytes or more (checked after each record), the
// operator calls spill(*this), which takes the text and leaves the strings
// empty. A watermark that fires millions of windows then streams its results
// instead of holding them all.
//
// An output of several partitions (a log topic) sets `partitions`: results
// then go to by_partition[p], p picked by a hash of the record's key, so that
// all the records of a key (and so of a window) go to one partition, in order.
struct WindowOutput {
  std::string results;  // result records, one JSON object per line ('\n'-terminated)
  std::string late;     // late events (side_output policy), one JSON object per line
  uint32_t partitions = 1;
  std::vector<std::string> by_partition;  // partitions > 1: results per output partition
  uint64_t results_emitted = 0;
  uint64_t late_dropped = 0;
  uint64_t late_side_output = 0;
  size_t spill_at = 1 << 20;
  std::function<void(WindowOutput&)> spill;

  // Where the results of a key go (its encoded window key).
  std::string& results_for(std::string_view encoded_key) {
    if (partitions <= 1) return results;
    if (by_partition.size() != partitions) by_partition.resize(partitions);
    return by_partition[partition_of(hash_string(encoded_key), partitions)];
  }
  bool has_results() const {
    if (!results.empty()) return true;
    for (const std::string& s : by_partition)
      if (!s.empty()) return true;
    return false;
  }
  // Called by operators after appending a result record to `into`.
  void wrote_result(const std::string& into) {
    ++results_emitted;
    if (into.size() >= spill_at && spill) spill(*this);
  }
};

// One event of a batch, with the watermarks around it (see on_events), and
// where what it causes is written (nullptr: on_events' `out`). The runtime
// gives each event its own slot's output, so that results come out in the
// slots they would have with one call per event. A null `event` only moves
// the watermark (watermark_before, then watermark_after).
struct WindowEvent {
  const Event* event;
  std::string_view raw;
  TimeMs watermark_before, watermark_after;
  WindowOutput* out = nullptr;
};

class WindowOperator {
 public:
  static std::unique_ptr<WindowOperator> Create(const WindowSpec& spec, const Schema& schema);
  virtual ~WindowOperator() = default;

  // An accepted event of a key this worker owns. `raw` is the event's original
  // JSON line (for the late output).
  virtual void on_event(const Event& event, std::string_view raw, TimeMs watermark_before,
                        WindowOutput* out) = 0;
  // Moves the watermark forward (never backwards: smaller values are ignored).
  virtual void advance(TimeMs watermark, WindowOutput* out) = 0;
  // The same as, for each event in order: advance(watermark_before),
  // on_event(event, raw, watermark_before), advance(watermark_after), each
  // writing to the event's `out` (or `out` when that is null); faster, as the
  // memory of events further on is loaded while one is processed.
  virtual void on_events(const WindowEvent* events, size_t n, WindowOutput* out);

  // Checkpoints: appends the whole state (keys, open windows and their
  // aggregates, timers in firing order, watermark) / replaces the state with
  // a saved one, after which every later result is the same as without the
  // save and restore. The state starts with a format version (kSnapshotVersion
  // in keyed_windows.h): restore() refuses, naming the window and what to do,
  // state of another version or window type, and damaged input.
  virtual void snapshot(ByteWriter& w) const = 0;
  virtual Status restore(ByteReader& r) = 0;

  // Bytes of state held now (keys, open windows, aggregates), for metrics and benchmarks.
  virtual size_t state_bytes() const = 0;
  virtual size_t open_windows() const = 0;
  virtual size_t keys() const = 0;
};

}  // namespace millrace
