// RocksKeyedState: one worker's keyed state in RocksDB, for state larger than
// memory (`state: rocksdb`). Operators keep a bounded cache of hot keys in
// memory and move the others here as values of the form
//   i64 expiry (a watermark), then the operator's encoding of the key's state.
//
// TTL: a compaction filter drops every value whose expiry is at or below the
// worker's watermark (set_watermark), so state of keys that went idle leaves
// the disk as RocksDB compacts, with no scan of ours. A reader treats an
// expired value it meets before compaction as absent.
//
// Checkpoints are incremental: checkpoint(dir) flushes the memtable and
// hard-links the SST files into dir (rocksdb::Checkpoint), so an SST shared by
// successive checkpoints is stored once. Open(work, from) rebuilds the working
// database from such a directory (SSTs linked again, the small files copied),
// so a checkpoint is never modified by the run that resumes it. The working
// database is scratch: it writes no WAL and is rebuilt at every start.
//
// Not thread-safe: used by the worker that owns it (the compaction filter
// reads the watermark atomically from RocksDB's threads).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "millrace/core/status.h"
#include "millrace/core/time.h"

namespace rocksdb {
class DB;
}

namespace millrace {

class RocksKeyedState {
 public:
  // Opens a fresh working database in `work_dir` (removed first), filled
  // from the checkpoint directory `from` unless it is "".
  static Result<std::unique_ptr<RocksKeyedState>> Open(const std::string& work_dir,
                                                       const std::string& from);
  ~RocksKeyedState();

  // The value of `key` (without its expiry stamp) if present and not
  // expired at `watermark`.
  bool get(std::string_view key, TimeMs watermark, std::string* value);
  void put(std::string_view key, TimeMs expiry, std::string_view value);
  void set_watermark(TimeMs wm) { watermark_->store(wm, std::memory_order_relaxed); }

  // Writes an incremental checkpoint into `dir` (must not exist).
  Status checkpoint(const std::string& dir);
  // The first error of a get or put, if any (disk full, damage).
  const Status& status() const { return error_; }
  // RocksDB's estimate of live data on disk and in memtables.
  uint64_t estimated_bytes() const;
  uint64_t puts() const { return puts_; }
  uint64_t gets() const { return gets_; }
  // Compacts everything now (tests: makes the TTL filter run).
  void compact();

 private:
  RocksKeyedState() = default;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<std::atomic<TimeMs>> watermark_;
  Status error_;
  std::string buf_;
  uint64_t puts_ = 0, gets_ = 0;
};

}  // namespace millrace
