#include "millrace/log/reader.h"

#include <algorithm>

#include "millrace/log/layout.h"

namespace millrace::log {

Result<std::unique_ptr<PartitionReader>> PartitionReader::Open(const std::string& topic_path,
                                                               uint32_t partition,
                                                               uint64_t from_offset,
                                                               Isolation isolation) {
  auto options = ReadTopicMeta(topic_path);
  if (!options.ok()) return options.status();
  if (partition >= options->partitions) {
    return Status::Error("partition " + std::to_string(partition) + " out of range; topic " +
                         topic_path + " has " + std::to_string(options->partitions));
  }
  std::unique_ptr<PartitionReader> reader(new PartitionReader());
  reader->dir_ = PartitionDir(topic_path, partition);
  reader->isolation_ = isolation;
  if (Status s = reader->OpenSegmentFor(from_offset); !s.ok()) return s;
  return reader;
}

Status PartitionReader::OpenSegmentFor(uint64_t offset) {
  // Retention may delete the segment between listing and opening: list again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto bases = ListSegments(dir_);
    if (!bases.ok()) return bases.status();
    if (bases->empty()) return Status::Error("partition directory " + dir_ + " has no segments");
    uint64_t base = bases->front();
    if (offset > base) {
      auto it = std::upper_bound(bases->begin(), bases->end(), offset);
      base = *(it - 1);
    }
    Status s = cursor_.Open(SegmentPath(dir_, base), base);
    if (s.ok()) {
      next_offset_ = base;
      target_ = std::max(offset, base);
      return s;
    }
    auto again = ListSegments(dir_);
    if (again.ok() && std::find(again->begin(), again->end(), base) != again->end()) return s;
  }
  return Status::Error("segments of " + dir_ + " keep disappearing while opening a reader");
}

Result<uint64_t> PartitionReader::NextSegmentBase() const {
  auto bases = ListSegments(dir_);
  if (!bases.ok()) return bases.status();
  auto it = std::upper_bound(bases->begin(), bases->end(), cursor_.base_offset());
  return it == bases->end() ? 0 : *it;
}

Result<bool> PartitionReader::NextFrame(Frame* frame) {
  std::string why;
  bool successor_seen = false;
  while (true) {
    SegmentCursor::Step step = cursor_.Next(frame, &why);
    if (step == SegmentCursor::Step::kCorrupt) return Status::Error("corrupt log: " + why);
    if (step == SegmentCursor::Step::kRecord) {
      if (frame->offset != next_offset_) {
        return Status::Error("corrupt log: record at byte " +
                             std::to_string(cursor_.position() - frame->size) + " of " +
                             cursor_.path() + " has offset " + std::to_string(frame->offset) +
                             ", expected " + std::to_string(next_offset_));
      }
      ++next_offset_;
      return true;
    }
    // At the end of what the current segment holds. If a successor exists,
    // this segment was complete before the successor was created, and the
    // read above (done after a first sighting) saw all of it.
    if (!successor_seen) {
      auto next = NextSegmentBase();
      if (!next.ok()) return next.status();
      if (*next == 0) return false;
      successor_seen = true;
      continue;  // read once more: the writer may have finished this segment meanwhile
    }
    if (cursor_.has_partial()) {
      return Status::Error("corrupt log: " + cursor_.path() +
                           " ends with an incomplete record but is followed by another segment");
    }
    auto next = NextSegmentBase();
    if (!next.ok()) return next.status();
    if (*next != next_offset_) {
      if (!cursor_.deleted()) {
        return Status::Error("corrupt log: " + cursor_.path() + " ends at offset " +
                             std::to_string(next_offset_) + " but the next segment starts at " +
                             std::to_string(*next));
      }
      // Retention removed what came after us; continue with the oldest record kept.
      if (pending_) return Status::Error("retention removed an undecided transaction in " + dir_);
      if (Status s = OpenSegmentFor(std::max(target_, next_offset_)); !s.ok()) return s;
      successor_seen = false;
      continue;
    }
    if (Status s = cursor_.Open(SegmentPath(dir_, *next), *next); !s.ok()) return s;
    successor_seen = false;
  }
}

Result<bool> PartitionReader::Next(std::string_view* record, uint64_t* offset,
                                   int64_t* timestamp_ms) {
  Frame frame;
  while (true) {
    auto more = isolation_ == Isolation::kReadCommitted ? NextCommitted(&frame) : NextFrame(&frame);
    if (!more.ok() || !*more) return more;
    if (frame.offset < target_ || (frame.flags & kFlagControl)) continue;
    *record = frame.payload;
    *offset = frame.offset;
    if (timestamp_ms) *timestamp_ms = frame.timestamp_ms;
    return true;
  }
}

// Returns the frames a read-committed reader may see, in offset order; the
// caller still drops control records and those below target_.
Result<bool> PartitionReader::NextCommitted(Frame* frame) {
  while (true) {
    auto more = NextFrame(frame);
    if (!more.ok() || !*more) return more;
    const uint64_t segment = cursor_.base_offset();
    const uint64_t position = cursor_.position() - frame->size;
    if (releasing_) {
      if (frame->offset < release_until_) return true;
      releasing_ = false;  // this is the commit marker itself
      continue;
    }
    const bool control = frame->flags & kFlagControl;
    const bool transactional = frame->flags & kFlagTransactional;
    if (!pending_) {
      if (!transactional || control) return true;  // plain records; stray markers are dropped
      pending_ = true;
      pending_offset_ = frame->offset;
      pending_segment_ = segment;
      pending_position_ = position;
      continue;
    }
    if (!control) {
      if (transactional) continue;  // inside the undecided transaction: look further
      // A plain record after undecided ones cannot come from a writer (recovery
      // aborts an open transaction first); never expose the undecided records.
      pending_ = false;
      return true;
    }
    char type = 0;
    uint64_t id = 0;
    if (!ParseControlPayload(frame->payload, &type, &id)) {
      return Status::Error("corrupt log: malformed transaction marker at offset " +
                           std::to_string(frame->offset) + " in " + dir_);
    }
    pending_ = false;
    if (type == kControlAbort) continue;  // skip the aborted records
    // Committed: go back to the first record of the transaction.
    releasing_ = true;
    release_until_ = frame->offset;
    if (segment != pending_segment_) {
      if (Status s = cursor_.Open(SegmentPath(dir_, pending_segment_), pending_segment_); !s.ok()) {
        return s;
      }
    }
    cursor_.Seek(pending_position_);
    next_offset_ = pending_offset_;
  }
}

}  // namespace millrace::log
