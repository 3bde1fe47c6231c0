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

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "millrace/core/status.h"
#include "millrace/log/segment.h"

namespace millrace::log {

class PartitionReader {
 public:
  // Positions the reader at from_offset. An offset below the partition's
  // start (removed by retention) starts at the oldest record kept; an offset
  // at or past the end waits for the writer to get there.
  static Result<std::unique_ptr<PartitionReader>> Open(const std::string& topic_path,
                                                       uint32_t partition, uint64_t from_offset);

  // Stores the next record in *record (valid until the next call) and its
  // offset; returns false at the current end of the partition (call again
  // later to follow the writer), or an error on damage.
  Result<bool> Next(std::string_view* record, uint64_t* offset, int64_t* timestamp_ms = nullptr);

  // Offset of the record the next successful Next() returns.
  uint64_t position() const { return next_offset_; }

 private:
  PartitionReader() = default;
  Status OpenSegmentFor(uint64_t offset);
  // The base of the segment after the current one, or 0 if there is none yet.
  Result<uint64_t> NextSegmentBase() const;

  std::string dir_;
  SegmentCursor cursor_;
  uint64_t next_offset_ = 0;  // offset expected of the next frame
  uint64_t target_ = 0;       // frames below this offset are skipped
};

}  // namespace millrace::log
