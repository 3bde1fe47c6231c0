#include "millrace/log/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "millrace/log/layout.h"

namespace millrace::log {

namespace {
constexpr size_t kReadChunk = 1 << 20;
}

SegmentCursor::~SegmentCursor() {
  if (fd_ >= 0) ::close(fd_);
}

Status SegmentCursor::Open(const std::string& path, uint64_t expected_base) {
  if (fd_ >= 0) ::close(fd_);
  path_ = path;
  base_ = expected_base;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return ErrnoError("cannot open segment", path);
  char header[kSegmentHeaderBytes];
  ssize_t n = ::pread(fd_, header, sizeof(header), 0);
  uint64_t base = 0;
  if (n != static_cast<ssize_t>(sizeof(header)) ||
      !ParseSegmentHeader(header, sizeof(header), &base)) {
    return Status::Error("segment " + path + " has a missing or damaged header");
  }
  if (base != expected_base) {
    return Status::Error("segment " + path + " says its base offset is " + std::to_string(base));
  }
  if (buf_.size() < kReadChunk) buf_.resize(kReadChunk);
  file_pos_ = kSegmentHeaderBytes;
  begin_ = end_ = 0;
  return Status::Ok();
}

bool SegmentCursor::deleted() const {
  struct stat st;
  return fd_ >= 0 && ::fstat(fd_, &st) == 0 && st.st_nlink == 0;
}

bool SegmentCursor::Refill(size_t need, std::string* why) {
  if (begin_ > 0) {  // keep the partial frame, drop what was consumed
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    file_pos_ += begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  if (need > buf_.size()) buf_.resize(need);
  while (true) {
    ssize_t n =
        ::pread(fd_, buf_.data() + end_, buf_.size() - end_, static_cast<off_t>(file_pos_ + end_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = std::string("read error: ") + std::strerror(errno);
      return false;
    }
    end_ += static_cast<size_t>(n);
    return n > 0;
  }
}

SegmentCursor::Step SegmentCursor::Next(Frame* frame, std::string* why) {
  while (true) {
    FrameStatus s = DecodeFrame(buf_.data() + begin_, end_ - begin_, frame, why);
    if (s == FrameStatus::kOk) {
      begin_ += frame->size;
      return Step::kRecord;
    }
    if (s == FrameStatus::kCorrupt) {
      *why += " at byte " + std::to_string(position()) + " of " + path_;
      return Step::kCorrupt;
    }
    size_t need =
        end_ - begin_ < 4 ? kFrameHeaderBytes : kFrameHeaderBytes + load_u32(buf_.data() + begin_);
    why->clear();
    if (!Refill(need, why)) {
      if (!why->empty()) {
        *why += " in " + path_;
        return Step::kCorrupt;
      }
      return Step::kEnd;
    }
  }
}

Result<SegmentScan> ScanSegment(const std::string& path, uint64_t base_offset) {
  SegmentScan scan;
  scan.next_offset = base_offset;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("cannot stat", path);
  scan.file_bytes = static_cast<uint64_t>(st.st_size);
  int probe = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (probe < 0) return ErrnoError("cannot open segment", path);
  ::close(probe);
  SegmentCursor cursor;
  Status opened = cursor.Open(path, base_offset);
  if (!opened.ok()) {
    scan.problem = opened.message();
    return scan;
  }
  scan.valid_bytes = kSegmentHeaderBytes;
  Frame frame;
  std::string why;
  while (true) {
    SegmentCursor::Step step = cursor.Next(&frame, &why);
    if (step == SegmentCursor::Step::kCorrupt) {
      scan.problem = why;
      break;
    }
    if (step == SegmentCursor::Step::kEnd) {
      if (cursor.has_partial()) {
        scan.problem = "incomplete record (torn write) at byte " +
                       std::to_string(cursor.position()) + " of " + path;
      }
      break;
    }
    if (frame.offset != scan.next_offset) {
      scan.problem = "record at byte " + std::to_string(cursor.position() - frame.size) + " of " +
                     path + " has offset " + std::to_string(frame.offset) + ", expected " +
                     std::to_string(scan.next_offset);
      break;
    }
    ++scan.records;
    ++scan.next_offset;
    scan.valid_bytes = cursor.position();
    if (frame.timestamp_ms > scan.max_timestamp_ms) scan.max_timestamp_ms = frame.timestamp_ms;
  }
  return scan;
}

}  // namespace millrace::log
