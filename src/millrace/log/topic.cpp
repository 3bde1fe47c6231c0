#include "millrace/log/topic.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "millrace/log/format.h"
#include "millrace/log/group_offsets.h"
#include "millrace/log/segment.h"
#include "millrace/log/transaction_state.h"

namespace millrace::log {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kMaxPartitions = 65536;
constexpr uint64_t kMinSegmentBytes = 1024;

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoError("cannot write", path);
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("cannot stat", path);
  return static_cast<uint64_t>(st.st_size);
}

Status ValidateOptions(const TopicOptions& o) {
  if (o.partitions == 0 || o.partitions > kMaxPartitions) {
    return Status::Error("partitions must be between 1 and " + std::to_string(kMaxPartitions));
  }
  if (o.segment_bytes < kMinSegmentBytes) {
    return Status::Error("segment_bytes must be at least " + std::to_string(kMinSegmentBytes));
  }
  if (o.retention_ms < 0) return Status::Error("retention_ms must not be negative");
  return Status::Ok();
}

// Removes temp files a crash left behind (segments being created, offsets
// being committed); they were never visible under their final names.
void RemoveTempFiles(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      fs::remove(entry.path(), ec);
    }
  }
}

// True if `path` holds only what Topic::Create writes before topic.meta:
// partition-N directories whose files are segment headers without records
// (or temporary files), an empty groups directory, the lock file.
bool IsUnfinishedCreate(const std::string& path) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    const bool tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
    if (tmp || name == ".lock") continue;
    if (name == "groups") {
      if (!fs::is_directory(entry.path(), ec) || !fs::is_empty(entry.path(), ec)) return false;
      continue;
    }
    if (name.rfind("partition-", 0) != 0 || !fs::is_directory(entry.path(), ec)) return false;
    for (const auto& file : fs::directory_iterator(entry.path(), ec)) {
      const std::string f = file.path().filename().string();
      const bool ftmp = f.size() > 4 && f.compare(f.size() - 4, 4, ".tmp") == 0;
      if (ftmp) continue;
      if (!fs::is_regular_file(file.path(), ec) ||
          fs::file_size(file.path(), ec) > kSegmentHeaderBytes) {
        return false;
      }
    }
    if (ec) return false;
  }
  return !ec;
}

}  // namespace

Topic::~Topic() {
  if (txn_open_ && !txn_prepared_) (void)AbortTransaction();
  (void)Flush();
  for (auto& part : parts_) {
    for (int fd : part.unsynced_fds) ::close(fd);
    if (part.fd >= 0) ::close(part.fd);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<Topic>> Topic::Create(const std::string& path, const TopicOptions& options) {
  if (Status s = ValidateOptions(options); !s.ok()) return s;
  std::error_code ec;
  if (fs::exists(path, ec)) return Status::Error("topic " + path + " already exists");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    if (Status s = MakeDirs(parent.string()); !s.ok()) return s;
  }
  if (::mkdir(path.c_str(), 0755) != 0) {
    if (errno == EEXIST) return Status::Error("topic " + path + " already exists");
    return ErrnoError("cannot create topic directory", path);
  }
  for (uint32_t p = 0; p < options.partitions; ++p) {
    const std::string dir = PartitionDir(path, p);
    if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoError("cannot create", dir);
    std::string header;
    AppendSegmentHeader(&header, 0);
    if (Status s =
            WriteFileAtomically(dir, fs::path(SegmentPath(dir, 0)).filename().string(), header);
        !s.ok()) {
      return s;
    }
  }
  const std::string groups = GroupsDir(path);
  if (::mkdir(groups.c_str(), 0755) != 0) return ErrnoError("cannot create", groups);
  // topic.meta last: a directory without it is a create that did not finish.
  if (Status s = WriteTopicMeta(path, options); !s.ok()) return s;
  if (!parent.empty()) (void)SyncDir(parent.string());
  return Open(path);
}

Result<std::unique_ptr<Topic>> Topic::OpenOrCreate(const std::string& path,
                                                   const TopicOptions& options) {
  std::error_code ec;
  if (fs::exists(MetaPath(path), ec)) return Open(path);
  if (fs::exists(path, ec)) {
    // A directory without topic.meta is a create that did not finish (the
    // process died part-way): if it holds only what Create writes before
    // topic.meta (empty partitions, the groups directory, temporary files),
    // it is removed and the topic created again; anything else is left alone.
    if (!IsUnfinishedCreate(path)) {
      return Status::Error("topic " + path + " has no " + MetaPath(path) +
                           " but holds other files: not a millrace topic, or a damaged one; "
                           "move it away or name another topic");
    }
    fs::remove_all(path, ec);
    if (ec)
      return Status::Error("cannot remove the unfinished topic " + path + ": " + ec.message());
  }
  return Create(path, options);
}

Result<std::unique_ptr<Topic>> Topic::Open(const std::string& path) {
  std::unique_ptr<Topic> topic(new Topic(path));
  if (Status s = topic->Load(); !s.ok()) return s;
  return topic;
}

Status Topic::Load() {
  auto options = ReadTopicMeta(path_);
  if (!options.ok()) return options.status();
  options_ = *options;
  if (Status s = ValidateOptions(options_); !s.ok()) {
    return Status::Error(MetaPath(path_) + ": " + s.message());
  }
  const std::string lock_path = path_ + "/.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return ErrnoError("cannot open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Error("topic " + path_ +
                           " is already open for writing (by this or another process)");
    }
    return ErrnoError("cannot lock", lock_path);
  }
  RemoveTempFiles(path_);  // an interrupted txn.state or topic.meta replace
  RemoveTempFiles(GroupsDir(path_));
  parts_.resize(options_.partitions);
  for (uint32_t p = 0; p < options_.partitions; ++p) {
    if (Status s = RecoverPartition(p); !s.ok()) return s;
  }
  txn_touched_.assign(options_.partitions, false);
  return RecoverTransaction();
}

// Decides a transaction that was open or committing when the last writer
// stopped; see txn.state in format.h.
Status Topic::RecoverTransaction() {
  auto state = ReadTransactionState(path_);
  if (!state.ok()) return state.status();
  if (!state->has_value()) return Status::Ok();
  const TransactionState& txn = **state;
  if (txn.prepared) {
    txn_id_ = txn.id;
    txn_open_ = txn_prepared_ = true;
    for (uint32_t p : txn.partitions)
      if (p < parts_.size()) txn_touched_[p] = true;
    warnings_.push_back("transaction " + std::to_string(txn.id) +
                        " is prepared: left for its writer to commit or abort");
    return Status::Ok();
  }
  std::vector<uint32_t> partitions;
  if (txn.committing) {
    for (uint32_t p : txn.partitions) {
      if (p < parts_.size()) partitions.push_back(p);
    }
  } else {
    for (uint32_t p = 0; p < parts_.size(); ++p) partitions.push_back(p);
  }
  if (Status s = WriteMarkers(txn.committing ? kControlCommit : kControlAbort, txn.id, partitions);
      !s.ok()) {
    return s;
  }
  warnings_.push_back("transaction " + std::to_string(txn.id) +
                      (txn.committing ? " was committing at shutdown: commit completed"
                                      : " was open at shutdown: aborted, its records discarded"));
  return RemoveTransactionState(path_);
}

Status Topic::RecoverPartition(uint32_t p) {
  Partition& part = parts_[p];
  part.dir = PartitionDir(path_, p);
  RemoveTempFiles(part.dir);
  auto bases = ListSegments(part.dir);
  if (!bases.ok()) return bases.status();
  for (uint64_t base : *bases) {
    auto size = FileSize(SegmentPath(part.dir, base));
    if (!size.ok()) return size.status();
    part.segments.push_back(Segment{base, *size, INT64_MIN, false});
    part.total_bytes += *size;
  }
  if (part.segments.empty()) {
    // Every segment is gone (removed by hand, or a crash during create).
    warnings_.push_back("partition " + std::to_string(p) + ": no segment files; starting at 0");
    return NewSegment(part);
  }
  Segment& last = part.segments.back();
  const std::string seg_path = SegmentPath(part.dir, last.base);
  auto scan = ScanSegment(seg_path, last.base);
  if (!scan.ok()) return scan.status();
  if (!scan->problem.empty()) {
    int fd = ::open(seg_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return ErrnoError("cannot open for repair", seg_path);
    uint64_t keep = scan->valid_bytes;
    bool ok = ::ftruncate(fd, static_cast<off_t>(keep)) == 0;
    if (ok && keep < kSegmentHeaderBytes) {  // the header itself was damaged: rewrite it
      std::string header;
      AppendSegmentHeader(&header, last.base);
      ok = ::pwrite(fd, header.data(), header.size(), 0) == static_cast<ssize_t>(header.size());
      keep = kSegmentHeaderBytes;
    }
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return ErrnoError("cannot repair", seg_path);
    warnings_.push_back("partition " + std::to_string(p) + ": cut " +
                        std::to_string(scan->file_bytes - scan->valid_bytes) +
                        " bytes from the tail of " + seg_path + " (" + scan->problem + "); " +
                        std::to_string(scan->records) + " records kept in that segment");
    part.total_bytes = part.total_bytes - last.bytes + keep;
    last.bytes = keep;
  }
  last.max_timestamp_ms = scan->max_timestamp_ms;
  last.max_timestamp_known = true;
  part.next_offset = scan->next_offset;
  part.fd = ::open(seg_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (part.fd < 0) return ErrnoError("cannot open for append", seg_path);
  return Status::Ok();
}

// Starts a segment at part.next_offset. It appears under its final name only
// once its header is written, so readers never see a headerless segment.
Status Topic::NewSegment(Partition& part) {
  const uint64_t base = part.next_offset;
  const std::string final_path = SegmentPath(part.dir, base);
  const std::string tmp_path = final_path + ".tmp";
  int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create segment", tmp_path);
  std::string header;
  AppendSegmentHeader(&header, base);
  Status s = WriteAll(fd, header.data(), header.size(), tmp_path);
  if (s.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    s = ErrnoError("cannot rename segment into place", final_path);
  }
  if (!s.ok()) {
    ::close(fd);
    ::unlink(tmp_path.c_str());
    return s;
  }
  if (part.fd >= 0) part.unsynced_fds.push_back(part.fd);
  part.fd = fd;
  part.segments.push_back(Segment{base, header.size(), INT64_MIN, true});
  part.total_bytes += header.size();
  part.dir_dirty = true;
  return Status::Ok();
}

Status Topic::WritePending(Partition& part) {
  if (part.pending.empty()) return Status::Ok();
  Segment& seg = part.segments.back();
  const std::string path = SegmentPath(part.dir, seg.base);
  Status s = WriteAll(part.fd, part.pending.data(), part.pending.size(), path);
  if (!s.ok()) {
    // Undo a partial write so the segment ends on a frame boundary again.
    if (::ftruncate(part.fd, static_cast<off_t>(seg.bytes)) != 0) {
      failed_ = Status::Error("topic " + path_ + " is unusable after a failed write to " + path +
                              "; reopen it to repair the tail");
    }
    part.next_offset -= part.pending_records;
    part.pending.clear();
    part.pending_records = 0;
    return s;
  }
  seg.bytes += part.pending.size();
  part.total_bytes += part.pending.size();
  part.pending.clear();
  part.pending_records = 0;
  return Status::Ok();
}

Result<uint64_t> Topic::Append(uint32_t partition, std::span<const std::string_view> records,
                               int64_t timestamp_ms) {
  if (!failed_.ok()) return failed_;
  if (partition >= parts_.size()) {
    return Status::Error("partition " + std::to_string(partition) + " out of range; topic " +
                         path_ + " has " + std::to_string(parts_.size()));
  }
  for (std::string_view r : records) {
    if (r.size() > kMaxRecordBytes) {
      return Status::Error("record of " + std::to_string(r.size()) + " bytes exceeds the " +
                           std::to_string(kMaxRecordBytes) + "-byte limit");
    }
  }
  if (txn_prepared_) {
    return Status::Error("topic " + path_ + " has prepared transaction " + std::to_string(txn_id_) +
                         " awaiting its writer's decision; run that writer (millrace run with its "
                         "--checkpoint-dir) again to decide it");
  }
  Partition& part = parts_[partition];
  const uint64_t first = part.next_offset;
  const uint8_t flags = txn_open_ ? kFlagTransactional : 0;
  if (txn_open_ && !records.empty()) txn_touched_[partition] = true;
  for (std::string_view r : records) {
    const uint64_t in_segment = part.segments.back().bytes + part.pending.size();
    if (in_segment > kSegmentHeaderBytes &&
        in_segment + frame_bytes(r.size()) > options_.segment_bytes) {
      if (Status s = WritePending(part); !s.ok()) return s;
      if (Status s = NewSegment(part); !s.ok()) return s;
    }
    AppendFrame(&part.pending, part.next_offset, timestamp_ms, flags, r);
    ++part.next_offset;
    ++part.pending_records;
    Segment& seg = part.segments.back();
    if (timestamp_ms > seg.max_timestamp_ms) seg.max_timestamp_ms = timestamp_ms;
  }
  if (part.pending.size() >= write_buffer_bytes_) {
    if (Status s = WritePending(part); !s.ok()) return s;
  }
  if (Status s = EnforceSize(part); !s.ok()) return s;
  return first;
}

Status Topic::Flush() {
  for (auto& part : parts_) {
    if (Status s = WritePending(part); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Topic::Sync() {
  if (Status s = Flush(); !s.ok()) return s;
  for (auto& part : parts_) {
    for (int fd : part.unsynced_fds) {
      if (::fdatasync(fd) != 0) return ErrnoError("cannot fsync a segment of", part.dir);
      ::close(fd);
    }
    part.unsynced_fds.clear();
    if (::fdatasync(part.fd) != 0) return ErrnoError("cannot fsync a segment of", part.dir);
    if (part.dir_dirty) {
      if (Status s = SyncDir(part.dir); !s.ok()) return s;
      part.dir_dirty = false;
    }
  }
  return Status::Ok();
}

uint64_t Topic::start_offset(uint32_t p) const {
  return p < parts_.size() ? parts_[p].segments.front().base : 0;
}
uint64_t Topic::end_offset(uint32_t p) const {
  return p < parts_.size() ? parts_[p].next_offset : 0;
}
uint64_t Topic::bytes(uint32_t p) const {
  return p < parts_.size() ? parts_[p].total_bytes + parts_[p].pending.size() : 0;
}

Status Topic::DeleteOldestSegment(Partition& part) {
  const Segment& seg = part.segments.front();
  const std::string path = SegmentPath(part.dir, seg.base);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("cannot delete", path);
  part.total_bytes -= seg.bytes;
  part.segments.erase(part.segments.begin());
  part.dir_dirty = true;
  return Status::Ok();
}

Status Topic::EnforceSize(Partition& part) {
  if (options_.retention_bytes == 0) return Status::Ok();
  while (part.segments.size() > 1 &&
         part.total_bytes + part.pending.size() > options_.retention_bytes) {
    if (Status s = DeleteOldestSegment(part); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Topic::ApplyRetention(int64_t now_ms) {
  for (auto& part : parts_) {
    if (Status s = EnforceSize(part); !s.ok()) return s;
    if (options_.retention_ms == 0) continue;
    const int64_t cutoff = now_ms - options_.retention_ms;
    while (part.segments.size() > 1) {
      Segment& oldest = part.segments.front();
      if (!oldest.max_timestamp_known) {
        auto scan = ScanSegment(SegmentPath(part.dir, oldest.base), oldest.base);
        if (!scan.ok()) return scan.status();
        oldest.max_timestamp_ms = scan->max_timestamp_ms;
        oldest.max_timestamp_known = true;
      }
      if (oldest.max_timestamp_ms >= cutoff) break;
      if (Status s = DeleteOldestSegment(part); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

Status Topic::WriteMarkers(char type, uint64_t id, const std::vector<uint32_t>& partitions) {
  const std::string payload = ControlPayload(type, id);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (uint32_t p : partitions) {
    Partition& part = parts_[p];
    const uint64_t in_segment = part.segments.back().bytes + part.pending.size();
    if (in_segment > kSegmentHeaderBytes &&
        in_segment + frame_bytes(payload.size()) > options_.segment_bytes) {
      if (Status s = WritePending(part); !s.ok()) return s;
      if (Status s = NewSegment(part); !s.ok()) return s;
    }
    AppendFrame(&part.pending, part.next_offset, now, kFlagControl | kFlagTransactional, payload);
    ++part.next_offset;
    ++part.pending_records;
  }
  return Sync();
}

Status Topic::BeginTransaction() {
  if (!failed_.ok()) return failed_;
  if (txn_open_) return Status::Error("a transaction is already open on " + path_);
  if (Status s = Flush(); !s.ok()) return s;  // earlier plain records stay outside it
  const uint64_t id = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  if (Status s = WriteTransactionState(path_, TransactionState{id, false, false, {}}); !s.ok())
    return s;
  txn_id_ = id;
  txn_open_ = true;
  txn_touched_.assign(parts_.size(), false);
  return Status::Ok();
}

Result<uint64_t> Topic::PrepareTransaction() {
  if (!txn_open_) return Status::Error("no transaction is open on " + path_);
  if (txn_prepared_) return txn_id_;
  if (Status s = Sync(); !s.ok()) return s;
  TransactionState state{txn_id_, false, true, {}};
  for (uint32_t p = 0; p < parts_.size(); ++p) {
    if (txn_touched_[p]) state.partitions.push_back(p);
  }
  if (Status s = WriteTransactionState(path_, state); !s.ok()) return s;
  txn_prepared_ = true;
  return txn_id_;
}

Status Topic::CommitTransaction() {
  if (!txn_open_) return Status::Error("no transaction is open on " + path_);
  // The records must be durable before the commit point (txn.state saying
  // "commit"), or a power loss could commit records that are gone.
  if (Status s = Sync(); !s.ok()) return s;
  TransactionState state{txn_id_, true, false, {}};
  for (uint32_t p = 0; p < parts_.size(); ++p) {
    if (txn_touched_[p]) state.partitions.push_back(p);
  }
  if (Status s = WriteTransactionState(path_, state); !s.ok()) return s;
  // From here on the transaction is committed: if writing the markers fails,
  // the next Open() writes them.
  txn_open_ = txn_prepared_ = false;
  if (Status s = WriteMarkers(kControlCommit, txn_id_, state.partitions); !s.ok()) return s;
  return RemoveTransactionState(path_);
}

Status Topic::AbortTransaction() {
  if (!txn_open_) return Status::Error("no transaction is open on " + path_);
  txn_open_ = txn_prepared_ = false;
  std::vector<uint32_t> partitions;
  for (uint32_t p = 0; p < parts_.size(); ++p) {
    if (txn_touched_[p]) partitions.push_back(p);
  }
  if (Status s = WriteMarkers(kControlAbort, txn_id_, partitions); !s.ok()) return s;
  return RemoveTransactionState(path_);
}

Status Topic::CommitGroupOffsets(const std::string& group,
                                 const std::map<uint32_t, uint64_t>& next_offsets) {
  for (const auto& [p, off] : next_offsets) {
    if (p >= parts_.size()) {
      return Status::Error("cannot commit offsets of group " + group + ": partition " +
                           std::to_string(p) + " out of range");
    }
    if (off > parts_[p].next_offset) {
      return Status::Error("cannot commit offset " + std::to_string(off) + " for partition " +
                           std::to_string(p) + ": the partition ends at " +
                           std::to_string(parts_[p].next_offset));
    }
  }
  return log::CommitGroupOffsets(path_, group, next_offsets);
}

Result<std::map<uint32_t, uint64_t>> Topic::GroupOffsets(const std::string& group) const {
  return ReadGroupOffsets(path_, group);
}

std::vector<std::string> Topic::Groups() const {
  auto groups = ListGroups(path_);
  return groups.ok() ? *groups : std::vector<std::string>{};
}

Result<PartitionInfo> DescribePartition(const std::string& path, uint32_t partition) {
  PartitionInfo pi;
  const std::string dir = PartitionDir(path, partition);
  auto bases = ListSegments(dir);
  if (!bases.ok()) return bases.status();
  pi.segments = bases->size();
  for (uint64_t base : *bases) {
    auto size = FileSize(SegmentPath(dir, base));
    if (size.ok()) pi.bytes += *size;  // retention may delete a segment meanwhile
  }
  if (!bases->empty()) {
    pi.start_offset = bases->front();
    auto scan = ScanSegment(SegmentPath(dir, bases->back()), bases->back());
    if (!scan.ok()) return scan.status();
    pi.end_offset = scan->next_offset;
    pi.problem = scan->problem;
  }
  return pi;
}

Result<TopicInfo> DescribeTopic(const std::string& path) {
  TopicInfo info;
  auto options = ReadTopicMeta(path);
  if (!options.ok()) return options.status();
  info.options = *options;
  for (uint32_t p = 0; p < info.options.partitions; ++p) {
    auto pi = DescribePartition(path, p);
    if (!pi.ok()) return pi.status();
    info.partitions.push_back(*pi);
  }
  auto groups = ListGroups(path);
  if (!groups.ok()) return groups.status();
  for (const auto& g : *groups) {
    auto offsets = ReadGroupOffsets(path, g);
    if (!offsets.ok()) return offsets.status();
    info.groups[g] = *offsets;
  }
  return info;
}

}  // namespace millrace::log
