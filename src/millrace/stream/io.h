// Inputs and outputs of a pipeline, named by URI:
//   PATH        a JSONL file (input: bounded; output: created or truncated)
//   -           stdin / stdout
//   log:DIR/TOPIC  a topic of the embedded log (docs/log.md)
// A RecordReader yields records (one JSON object each) with their partition
// and offset; a RecordWriter takes '\n'-terminated JSONL text.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"

namespace millrace {

struct RecordRef {
  std::string_view data;  // valid until the next call to next()
  uint32_t partition = 0;
  uint64_t offset = 0;  // line number (files) or log offset
};

// Where a reader stands, for checkpoints: reopened at a position, a reader
// returns the same records in the same order as it would have from there.
struct ReaderPosition {
  std::vector<uint64_t> next_offsets;  // per partition
  uint32_t cursor = 0;                 // log: partition being read
  uint32_t run = 0;                    // log: records read from it in the current run
  std::vector<uint8_t> finished;       // log, bounded: partitions read to their end
};

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // The next record; false at the end of a bounded input (or, when following,
  // when nothing is there yet: `finished()` tells the two apart).
  virtual Result<bool> next(RecordRef* rec) = 0;
  virtual uint32_t partitions() const { return 1; }
  // True once a bounded partition has been read to its end.
  virtual bool partition_finished(uint32_t p) const = 0;
  virtual bool finished() const = 0;
  // True when next() may wait for input (a pipe with no complete record
  // buffered): the runtime then first hands on what it has read.
  virtual bool may_block() const { return false; }
  // Commits consumer-group offsets (next offset per partition), if the input has groups.
  virtual Status commit(const std::vector<uint64_t>& /*next_offsets*/) { return Status::Ok(); }
  // The position after the last record returned; nullopt for inputs that
  // cannot be read again (stdin).
  virtual std::optional<ReaderPosition> position() const = 0;
};

struct ReaderOptions {
  bool follow = false;  // log input: keep waiting for new records
  std::string group;    // log input: consumer group (resume from its offsets, commit to it)
  bool from_beginning = true;
  const ReaderPosition* resume = nullptr;  // start here (checkpoints); overrides group offsets
};

Result<std::unique_ptr<RecordReader>> open_reader(const std::string& uri,
                                                  const ReaderOptions& opts);

class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  // Appends JSONL text ('\n'-terminated records). `partition_hint` picks the
  // partition of a log output (modulo its partition count).
  virtual Status write(std::string_view lines, uint32_t partition_hint = 0) = 0;
  virtual Status flush() = 0;
  // Partitions of the output (a log topic's; 1 for files).
  virtual uint32_t partitions() const { return 1; }
};

// "" gives a writer that discards (counting is the caller's business).
Result<std::unique_ptr<RecordWriter>> open_writer(const std::string& uri);

}  // namespace millrace
