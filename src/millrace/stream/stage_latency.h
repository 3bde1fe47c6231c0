// Per-stage latency of events inside the pipeline (RunOptions::stage_latency),
// in the shape of the streaming fraud design's budget:
//
//   ingest      the record is due (read starts, or its paced arrival time) ->
//               a worker starts on it: read, parse, late check, watermark,
//               routing, and the hand-off to the worker
//   features    the sliding features of the event's own source (every key it
//               updates) and the derived (expr:) features, with their batch
//               values and table rows
//   retrieval   reads of features owned by other sources as of the event's
//               time (the online store: e.g. a terminal's fraud labels)
//   inference   the model's score
//   decision    the decision rules
//   total       due -> decision made (includes waiting in queues, so under
//               load it is more than the sum of the stages)
//
// Timestamps are StageClock ticks kept in the event's slot; each thread
// records into its own histograms, merged at the end. With several workers an
// event's features and retrieval are the sum over the workers that held its
// keys. Only the scored source's events that reach the model are measured.
#pragma once

#include <array>
#include <string>

#include "millrace/core/latency_histogram.h"

namespace millrace {

struct StageLatency {
  enum Stage { kIngest, kFeatures, kRetrieval, kInference, kDecision, kTotal, kStages };
  static const char* name(int stage);
  std::array<LatencyHistogram, kStages> stages;

  void merge(const StageLatency& other) {
    for (int i = 0; i < kStages; ++i) stages[i].merge(other.stages[i]);
  }
  // A table: stage, p50, p99, p99.9, max in microseconds.
  std::string table() const;
};

}  // namespace millrace
