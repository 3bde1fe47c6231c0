// PartitionReader: reads one partition of a topic in offset order, from any
// offset, across segment files, and keeps following as the writer appends.
//
// Contract with the writer (topic.h): the writer only appends to the last
// segment and creates the next segment, under its final name and with its
// header, only after the previous one is complete. So a reader that finds an
// incomplete frame at the end of the last segment treats it as "not yet
// written" and returns false; it reports as an error an incomplete frame at
// the end of a segment that has a successor, a CRC mismatch, or an offset out
// of sequence. It never returns bytes that failed verification.
//
// Readers take no lock and never modify the topic; any number may run in any
// thread or process beside the writer. One reader object is used by one thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "millrace/core/status.h"
#include "millrace/log/segment.h"

namespace millrace::log {

// Which records of transactions a reader returns (see Topic::BeginTransaction).
enum class Isolation {
  kReadUncommitted,  // every data record, as soon as it is written
  kReadCommitted,    // records of a transaction only once it committed; aborted ones never
};

class PartitionReader {
 public:
  // Positions the reader at from_offset. An offset below the partition's
  // start (removed by retention) starts at the oldest record kept; an offset
  // at or past the end waits for the writer to get there.
  static Result<std::unique_ptr<PartitionReader>> Open(
      const std::string& topic_path, uint32_t partition, uint64_t from_offset,
      Isolation isolation = Isolation::kReadUncommitted);

  // Stores the next record in *record (valid until the next call) and its
  // offset; returns false at the current end of the partition (call again
  // later to follow the writer), or an error on damage. Control records
  // (transaction markers) take offsets but are never returned, so returned
  // offsets may skip numbers.
  Result<bool> Next(std::string_view* record, uint64_t* offset, int64_t* timestamp_ms = nullptr);

  // The offset to resume from to get the records this reader has not
  // returned yet: what a consumer commits as its group offset. In
  // read-committed mode it stays at the first record of an undecided
  // transaction until that transaction is decided.
  // Before the first record it is the offset the reader was opened at (not
  // the base of the segment it scans from).
  uint64_t position() const { return pending_ ? pending_offset_ : std::max(next_offset_, target_); }

 private:
  PartitionReader() = default;
  Status OpenSegmentFor(uint64_t offset);
  // The base of the segment after the current one, or 0 if there is none yet.
  Result<uint64_t> NextSegmentBase() const;
  // The next verified frame in offset order, across segments; false at the end.
  Result<bool> NextFrame(Frame* frame);
  Result<bool> NextCommitted(Frame* frame);

  std::string dir_;
  Isolation isolation_ = Isolation::kReadUncommitted;
  SegmentCursor cursor_;
  uint64_t next_offset_ = 0;  // offset expected of the next frame
  uint64_t target_ = 0;       // frames below this offset are not returned

  // Read-committed: while pending_, the reader scans ahead from the first
  // record of an undecided transaction (at pending_*) for its marker; on a
  // commit it rewinds there and returns records up to release_until_.
  bool pending_ = false;
  uint64_t pending_offset_ = 0;
  uint64_t pending_segment_ = 0;
  uint64_t pending_position_ = 0;
  bool releasing_ = false;
  uint64_t release_until_ = 0;
};

}  // namespace millrace::log
