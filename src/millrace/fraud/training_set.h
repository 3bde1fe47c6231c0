// The fraud model's training set: the feature vectors as they were served to
// the transactions of a period, with their labels, as CSV. The demo and the
// fraud benchmark build their models from it.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"

namespace millrace::fraud {

// The model's inputs: every feature of the spec but absolute times (names
// ending in _ts), by index and name.
struct ModelInputs {
  std::vector<int> features;
  std::vector<std::string> names;
};
ModelInputs model_inputs(const PipelineSpec& spec);

// One worker over DATA_DIR/transactions.jsonl and labels.jsonl, events not
// written: the caller takes what it needs through the run's callbacks.
RunOptions one_worker_run(const std::string& data_dir);

// A transaction's label: 1 fraud, 0 genuine, -1 unknown (an error).
using LabelOf = std::function<int(std::string_view id)>;

struct TrainingSet {
  uint64_t rows = 0, frauds = 0;
  uint64_t dead_letters = 0;  // records of the inputs that did not parse
};

// Streams DATA_DIR/transactions.jsonl and labels.jsonl through the runtime
// (one worker, as served) and writes to CSV_PATH the header `ts,<inputs>,is_fraud`
// and one row per transaction with time in [from, to); reading stops at `to`.
// ID_FIELD is the transactions' id field in the spec's schema.
Result<TrainingSet> write_training_set(const PipelineSpec& spec, const std::string& data_dir,
                                       TimeMs from, TimeMs to, int id_field,
                                       const ModelInputs& inputs, const LabelOf& label,
                                       const std::string& csv_path);

}  // namespace millrace::fraud
