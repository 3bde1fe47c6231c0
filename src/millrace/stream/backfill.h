// Point-in-time backfill: builds a training set from history with the same
// code that serves online. Every source is replayed merged by event time
// (SourceMerger's rule), and for each accepted event of the scored source (the
// spec's first) one CSV row is written: the event's fields, then its features
// exactly as the online run gave them to that event, then, with a labels file,
// the label joined by id. With the same inputs an online run and a backfill
// give the same vectors, value for value.
//
// It runs as one loop on the calling thread (no queues, no other threads):
// the runtime's per-event decisions (merge order, lateness, watermarks, table
// changes, expiry) made the same way, the features computed by the same
// feature code. Specs with `state: rocksdb` (and `through_runtime`) go
// through run_pipeline with one worker instead; both give the same bytes.
// Neither writes the spec's `store:` nor computes its `windows:`.
//
// CSV: a header row; numbers as in the JSON output (shortest round-trip form);
// null as an empty cell; strings quoted when they hold a comma, a quote or a
// line break (RFC 4180).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"

namespace millrace {

struct BackfillOptions {
  // Inputs by source name; a source not named here reads its spec `uri`
  // (a spec with one source may give `input` instead).
  std::vector<std::pair<std::string, std::string>> inputs;
  std::string input;
  std::string output = "-";  // CSV file or - (stdout)
  std::string labels;        // JSONL with an id and a label per record ("" : none)
  std::string label_field = "is_fraud";
  std::string label_id = "id";  // the id field of the label records
  std::string event_id = "id";  // the id field of the scored events
  std::string dead_letter;      // malformed records ("" : counted)
  bool progress = false;
  bool through_runtime = false;  // run_pipeline instead of the direct loop (tests)
};

struct BackfillStats {
  RunStats run;
  uint64_t rows = 0;
  uint64_t labeled = 0;  // rows with a label
  uint64_t labels = 0;   // label records read
};

Result<BackfillStats> run_backfill(const PipelineSpec& spec, const BackfillOptions& opts);

}  // namespace millrace
