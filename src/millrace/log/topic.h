// Topic: the writer side of the embedded partitioned log.
//
// A topic is a directory of N partitions; each partition is an append-only
// sequence of records numbered by offset from 0, kept in segment files
// (format.h). Append() writes a whole batch with one write() call; records
// become visible to readers (PartitionReader, in any thread or process) as
// soon as that write returns, and durable after Sync().
//
// One Topic object per topic at a time: Create/Open take an exclusive lock on
// DIR/TOPIC/.lock, so a second writer, in this process or another, gets an
// error. A Topic is used from one thread; it is not safe for concurrent calls.
//
// Crash safety: Open() verifies the tail of every partition and truncates a
// torn or corrupt tail to its last intact record; warnings() lists each cut.
// Records lost that way are ones that were never Sync()ed, or were damaged
// on disk; no damaged record is ever returned.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/log/layout.h"

namespace millrace::log {

class Topic {
 public:
  // Creates DIR/TOPIC (and DIR if missing); an error if the topic exists.
  static Result<std::unique_ptr<Topic>> Create(const std::string& path, const TopicOptions&);
  // Opens an existing topic for writing, repairing torn or corrupt tails.
  static Result<std::unique_ptr<Topic>> Open(const std::string& path);
  // Opens the topic if it exists (its stored options win), else creates it.
  static Result<std::unique_ptr<Topic>> OpenOrCreate(const std::string& path, const TopicOptions&);

  ~Topic();
  Topic(const Topic&) = delete;
  Topic& operator=(const Topic&) = delete;

  // What Open() repaired, one line per cut tail; empty after a clean shutdown.
  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::string& path() const { return path_; }
  const TopicOptions& options() const { return options_; }
  uint32_t partitions() const { return options_.partitions; }

  // Appends the records to the partition, all with the given timestamp, and
  // returns the offset of the first (the others follow it one by one). One
  // write() per batch, or per segment when the batch fills a segment.
  Result<uint64_t> Append(uint32_t partition, std::span<const std::string_view> records,
                          int64_t timestamp_ms);

  // With a write buffer of n > 0 bytes, Append() keeps frames in memory until
  // a partition has n bytes pending or Flush() is called (fewer syscalls for
  // small batches; readers see the records only once written). Default 0:
  // every Append() writes at once.
  void set_write_buffer_bytes(size_t n) { write_buffer_bytes_ = n; }

  // Writes buffered records. Sync() also fsyncs segments and directories.
  Status Flush();
  Status Sync();

  // First offset still kept, offset the next append gets, and bytes on disk
  // (segment files, headers included, plus anything buffered).
  uint64_t start_offset(uint32_t p) const;
  uint64_t end_offset(uint32_t p) const;
  uint64_t bytes(uint32_t p) const;

  // Deletes a partition's oldest closed segments while they are over
  // retention_bytes, or all their records are older than now_ms - retention_ms.
  // The segment being written is never deleted. Append() applies the size
  // limit by itself, so bytes() stays within it unless the segment being
  // written alone exceeds it; the age limit needs this call.
  Status ApplyRetention(int64_t now_ms);

  // Transactions (format in format.h). Between Begin and Commit, every
  // Append is part of the transaction: readers in read-committed mode see
  // its records only after CommitTransaction() returns, and never if it is
  // aborted, by AbortTransaction(), by destroying the Topic, or by a crash
  // (Open() then aborts it). Plain readers see them as they are appended.
  // CommitTransaction() makes the records durable (fsync) before the commit
  // point, so a committed transaction survives power loss. One transaction
  // at a time; each of Begin/Commit/Abort costs a few fsyncs.
  Status BeginTransaction();
  Status CommitTransaction();
  Status AbortTransaction();
  bool in_transaction() const { return txn_open_; }

  // Two-phase commit, for a writer whose own commit point is elsewhere (a
  // pipeline's checkpoint manifest). PrepareTransaction() makes the open
  // transaction's records durable and records it as prepared; it stays
  // undecided (read-committed readers hold it back) until CommitTransaction()
  // or AbortTransaction(), in this process or, after a crash, in the next
  // one: Open() leaves a prepared transaction as it is, and
  // prepared_transaction() returns its id. While one is prepared the topic
  // takes no appends and no new transaction. Returns the transaction's id.
  Result<uint64_t> PrepareTransaction();
  // The id of the prepared transaction, or 0 when there is none.
  uint64_t prepared_transaction() const { return txn_prepared_ ? txn_id_ : 0; }
  uint64_t transaction_id() const { return txn_open_ ? txn_id_ : 0; }

  // Consumer-group offsets (group_offsets.h). A commit merges the given
  // partitions into the group's stored set, atomically; offsets must not pass
  // end_offset().
  Status CommitGroupOffsets(const std::string& group,
                            const std::map<uint32_t, uint64_t>& next_offsets);
  Result<std::map<uint32_t, uint64_t>> GroupOffsets(const std::string& group) const;
  std::vector<std::string> Groups() const;

 private:
  struct Segment {
    uint64_t base = 0;
    uint64_t bytes = 0;
    int64_t max_timestamp_ms = INT64_MIN;
    bool max_timestamp_known = false;
  };
  struct Partition {
    std::string dir;
    std::vector<Segment> segments;  // ascending; the last one is being written
    int fd = -1;                    // of the last segment
    uint64_t next_offset = 0;
    uint64_t total_bytes = 0;  // on disk
    std::string pending;       // frames not yet written
    uint64_t pending_records = 0;
    std::vector<int> unsynced_fds;  // closed segments awaiting fsync
    bool dir_dirty = false;         // segments created or deleted since the last Sync
  };

  explicit Topic(std::string path) : path_(std::move(path)) {}
  Status Load();
  Status RecoverPartition(uint32_t p);
  Status NewSegment(Partition& part);
  Status WritePending(Partition& part);
  Status DeleteOldestSegment(Partition& part);
  Status EnforceSize(Partition& part);
  Status RecoverTransaction();
  // Appends a commit or abort marker to each partition, then syncs.
  Status WriteMarkers(char type, uint64_t id, const std::vector<uint32_t>& partitions);

  std::string path_;
  TopicOptions options_;
  std::vector<Partition> parts_;
  std::vector<std::string> warnings_;
  int lock_fd_ = -1;
  size_t write_buffer_bytes_ = 0;
  Status failed_;  // set when a failed write could not be undone; Append refuses after it
  bool txn_open_ = false;
  bool txn_prepared_ = false;  // txn_open_ too
  uint64_t txn_id_ = 0;
  std::vector<bool> txn_touched_;  // per partition, written to by the open transaction
};

// A read-only summary of a topic, for `millrace log describe`; takes no lock
// and repairs nothing (a damaged tail shows in `problem`).
struct PartitionInfo {
  uint64_t start_offset = 0;
  uint64_t end_offset = 0;  // after the last intact record
  uint64_t bytes = 0;
  size_t segments = 0;
  std::string problem;
};
struct TopicInfo {
  TopicOptions options;
  std::vector<PartitionInfo> partitions;
  std::map<std::string, std::map<uint32_t, uint64_t>> groups;
};
Result<TopicInfo> DescribeTopic(const std::string& path);
Result<PartitionInfo> DescribePartition(const std::string& path, uint32_t partition);

}  // namespace millrace::log
