// SourceMerger: reads the sources of a spec and yields their records as one
// stream, merged by event time.
//
// Merge rule: within a source, records keep the reader's order (a file's
// lines; a log's partitions as its reader interleaves them). Across sources,
// the next record is the head with the smallest event time, ties going to the
// source listed first in the spec. A record that does not parse has no time:
// it is yielded as soon as it is read, as a dead letter. With bounded inputs
// the merged order depends on the inputs only, so a run and a backfill over
// the same files see the same sequence.
//
// When following (log inputs), a source with nothing to read holds the merge
// back for at most its `idle_timeout` of processing time (1 s when unset);
// then the others go on without it, and its records join when they come.
//
// With one source there is no look-ahead: records are parsed straight into
// the caller's buffers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "millrace/core/event.h"
#include "millrace/core/event_parser.h"
#include "millrace/core/status.h"
#include "millrace/stream/io.h"
#include "millrace/stream/spec.h"
#include "millrace/stream/watermark.h"

namespace millrace {

struct MergedRecord {
  int source = 0;
  uint32_t partition = 0;  // within the source
  uint64_t offset = 0;
  bool ok = true;  // false: a dead letter, `error` says why
  std::string error;
};

class SourceMerger {
 public:
  // Opens every source of `spec`; uris[i] is source i's input (its `uri` when empty).
  static Result<std::unique_ptr<SourceMerger>> Open(const PipelineSpec& spec,
                                                    const std::vector<std::string>& uris,
                                                    const ReaderOptions& opts);

  // The next record: its raw text in *line (with simdjson padding after it),
  // and, when rec->ok, the parsed event. Buffers are swapped, not copied:
  // pass the same strings and events back each time. False when nothing is
  // there: the end of every bounded input (finished()), or, when following,
  // nothing to read right now.
  Result<bool> next(std::string* line, Event* event, MergedRecord* rec, TimeMs now_ms);

  bool finished() const;
  // True when next() may wait for input (RecordReader::may_block).
  bool may_block() const;
  int sources() const { return static_cast<int>(inputs_.size()); }
  RecordReader& reader(int source) { return *inputs_[source].reader; }

 private:
  struct Input {
    std::unique_ptr<RecordReader> reader;
    std::unique_ptr<EventParser> parser;
    bool has_head = false;
    std::string line;
    Event event;
    MergedRecord rec;
    TimeMs empty_since = kMinTime;  // following: processing time it ran dry
    TimeMs idle_timeout = 1000;
  };
  // Reads and parses input i's next record into the given buffers.
  Result<bool> read_into(Input& in, int i, std::string* line, Event* event, MergedRecord* rec);

  std::vector<Input> inputs_;
  bool follow_ = false;
};

// How far table changes may be applied, merged by event time with the
// events: no partition of any source will accept an event older than this
// (its newest time less the source's max out-of-orderness and allowed
// lateness). `wms` holds one tracker per source of `spec`, in its order.
inline TimeMs table_change_horizon(const PipelineSpec& spec,
                                   const std::vector<WatermarkTracker>& wms) {
  TimeMs horizon = kMaxTime;
  for (size_t i = 0; i < wms.size(); ++i)
    for (TimeMs max_t : wms[i].max_times())
      horizon = std::min(horizon, max_t == kMinTime ? kMinTime
                                                    : max_t - spec.sources[i].max_out_of_orderness -
                                                          spec.sources[i].allowed_lateness);
  return horizon;
}

}  // namespace millrace
