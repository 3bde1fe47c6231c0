// Exactly-once outputs of a pipeline with checkpoints (docs/fault_tolerance.md).
//
// What a pipeline writes between two checkpoints is one epoch. An EpochWriter
// keeps an epoch invisible to readers until the checkpoint that covers it is
// durable, in two phases:
//   prepare(id)  the epoch's records are made durable but stay invisible; the
//                returned OutputCommit goes into checkpoint id's manifest
//   commit()     after the manifest is durable: the records become visible
// On restart, open_exactly_once_writer() is given what the resumed manifest
// recorded and settles what a crash left in between: an epoch prepared for
// that checkpoint is committed (the manifest is the commit point), anything
// later that was not committed is discarded. Records of epochs committed
// after the resumed checkpoint (possible only when a newer checkpoint was
// found damaged and skipped) are not written twice: the pipeline replays
// deterministically, so the writer drops as many records as were committed
// past the resumed checkpoint, per partition.
//
//   log:DIR/TOPIC  one log transaction per epoch (Topic::PrepareTransaction);
//                  `millrace log consume --committed` shows committed epochs only
//   PATH           one file per epoch: written as PATH.pending, renamed to
//                  PATH.<checkpoint>.pending at prepare and to
//                  PATH.<checkpoint> (10 digits) at commit
// stdout ("-") and "" are not exactly-once: they get plain writers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/stream/io.h"

namespace millrace {

// What a checkpoint's manifest records of one output.
struct OutputCommit {
  std::string uri;
  uint64_t checkpoint = 0;            // the checkpoint this was prepared for
  uint64_t txn = 0;                   // log: the prepared transaction
  std::vector<uint64_t> end_offsets;  // log: each partition's end after it
  bool has_file = false;              // file: an epoch file was prepared
  uint64_t records = 0;               // records in the epoch
  // Records of the replay still to drop when this was prepared, per log
  // partition (one entry for a file): they were committed before it.
  std::vector<uint64_t> skip;
};

class EpochWriter : public RecordWriter {
 public:
  virtual Result<OutputCommit> prepare(uint64_t checkpoint) = 0;
  virtual Status commit() = 0;
};

struct ExactlyOnceOpen {
  std::unique_ptr<RecordWriter> writer;  // an EpochWriter unless stdout or ""
  uint64_t max_epoch = 0;                // highest checkpoint id seen in the output
  std::vector<std::string> notes;        // what recovery settled, for the log
};

// `resumed`: what the manifest being resumed recorded of this output, or
// nullptr when starting from no checkpoint.
Result<ExactlyOnceOpen> open_exactly_once_writer(const std::string& uri,
                                                 const OutputCommit* resumed);

}  // namespace millrace
