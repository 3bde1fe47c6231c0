// Sequential reading of one segment file (format in format.h), used by the
// writer's recovery, by PartitionReader and by DescribeTopic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/log/format.h"

namespace millrace::log {

// Reads the frames of one segment file in order with large pread()s. The file
// may still be growing: at the current end Next() returns kEnd, and a later
// call picks up whatever the writer has appended since. Not thread-safe.
class SegmentCursor {
 public:
  enum class Step { kRecord, kEnd, kCorrupt };

  SegmentCursor() = default;
  ~SegmentCursor();
  SegmentCursor(const SegmentCursor&) = delete;
  SegmentCursor& operator=(const SegmentCursor&) = delete;

  // Opens the file and checks its header (magic and base offset).
  Status Open(const std::string& path, uint64_t expected_base);
  // kRecord: *frame is the next verified frame; its payload stays valid until
  // the next call. kEnd: no complete frame yet (has_partial() says whether
  // some bytes of one are there). kCorrupt: *why says what is wrong.
  Step Next(Frame* frame, std::string* why);

  // Continues reading at the given file offset, which must be a frame start.
  void Seek(uint64_t position) {
    file_pos_ = position;
    begin_ = end_ = 0;
  }
  uint64_t position() const { return file_pos_ + begin_; }  // file offset of the next frame
  bool has_partial() const { return end_ > begin_; }
  const std::string& path() const { return path_; }
  uint64_t base_offset() const { return base_; }
  // True once the file has been unlinked (retention deleted it).
  bool deleted() const;

 private:
  // Reads more of the file into the buffer; false if nothing new was read.
  bool Refill(size_t need, std::string* why);

  std::string path_;
  int fd_ = -1;
  uint64_t base_ = 0;
  std::vector<char> buf_;
  uint64_t file_pos_ = 0;  // file offset of buf_[0]
  size_t begin_ = 0;       // next frame in buf_
  size_t end_ = 0;         // bytes of buf_ holding file data
};

// What a full scan of a segment found.
struct SegmentScan {
  uint64_t valid_bytes = 0;  // header + intact frames, from the start of the file
  uint64_t file_bytes = 0;
  uint64_t records = 0;
  uint64_t next_offset = 0;  // offset after the last intact frame
  int64_t max_timestamp_ms = INT64_MIN;
  std::string problem;  // empty if the file is intact to its end
};

// Verifies every frame of a segment file. A bad header or frame is reported in
// problem, not as an error; errors are for files that cannot be read at all.
Result<SegmentScan> ScanSegment(const std::string& path, uint64_t base_offset);

}  // namespace millrace::log
