// Runs a window data-file case (spec.yaml, input.jsonl) through WindowOperator
// under the single-partition watermark model of the data-file harness, and
// compares result records the way the harness does: per window instance
// (window, key, start, end) in order, doubles to a relative 1e-9, quantile
// aggregates within the sketch's 1% relative error.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "millrace/core/status.h"
#include "millrace/stream/spec.h"

namespace millrace::testing {

struct WindowCaseOutput {
  std::vector<std::string> results;  // one JSON record per element
  std::vector<std::string> late;
  size_t max_open_windows = 0;
};

struct WindowRunOptions {
  bool count_open = true;          // track max_open_windows (a walk over all state per event)
  size_t batch = 1;                // > 1: events go to on_events in batches of up to this many
  size_t restore_every = 0;        // > 0: after every this many events, each operator is
                                   // snapshotted and replaced by a new one restored from it
  bool watermark_entries = false;  // batches: an event's watermark_after comes in an
                                   // entry of its own with no event (as the runtime sends
                                   // messages for other windows' keys)
};

// Feeds JSON lines (malformed ones skipped; events late at the source
// dropped) to one operator per window of `spec`, then ends the input.
Result<WindowCaseOutput> run_window_lines(const PipelineSpec& spec,
                                          const std::vector<std::string>& lines,
                                          const WindowRunOptions& options = {});

// Feeds input.jsonl of `dir` (malformed lines skipped; events late at the
// source dropped) to one operator per `windows:` entry of spec.yaml.
Result<WindowCaseOutput> run_window_case(const std::string& dir);

// Reads a JSON-lines file (missing: empty).
std::vector<std::string> read_lines(const std::string& path);

// Compares result records per window instance; late records as multisets.
::testing::AssertionResult same_window_results(const PipelineSpec& spec,
                                               const std::vector<std::string>& expected,
                                               const std::vector<std::string>& actual);
::testing::AssertionResult same_late_records(const std::vector<std::string>& expected,
                                             const std::vector<std::string>& actual);

}  // namespace millrace::testing
