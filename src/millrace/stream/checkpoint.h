// Checkpoints of a running pipeline (docs/fault_tolerance.md).
//
// A checkpoint is a consistent cut: the source injects a barrier between two
// records; every worker saves its state when the barrier reaches it (each
// worker's queue carries it once, after every earlier event: aligned); the
// sink, which sees the barrier after every earlier result, prepares the
// outputs' epoch (exactly_once.h); once every part is durable the manifest is
// written (the commit point), then the outputs are committed.
//
// Layout of a checkpoint directory:
//   DIR/chk-<id, 10 digits>/worker-<w>.state   one worker's state
//   DIR/chk-<id>/manifest                      written last, atomically
// worker-<w>.state: "MRSTATE1", u64 checkpoint id, u32 worker, u64 n, n bytes
// of state (the worker's feature groups, then its window operators, each in
// its snapshot() encoding), u32 CRC32C of everything before it.
// manifest: one JSON object (id, spec fingerprint, workers, the source's
// position and watermarks, each part's file, size and CRC, what each output
// prepared), a newline, then "crc32c <8 hex digits of the JSON>\n". File
// names in it are relative, so a checkpoint directory can be moved whole.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/stream/exactly_once.h"
#include "millrace/stream/io.h"

namespace millrace {

// What the source saves: where to read from, and its event-time progress.
struct SourceCheckpoint {
  ReaderPosition reader;
  std::vector<TimeMs> partition_max;  // per partition, max event time seen
  TimeMs watermark = kMinTime;
  TimeMs last_broadcast = kMinTime;
  uint64_t since_broadcast = 0;
  // Taken after the end of a bounded input: the tables' change inputs were
  // read to their end (a restart rebuilds the tables from all of them).
  bool tables_read_to_end = false;
};

struct CheckpointManifest {
  struct Part {
    std::string file;
    uint64_t bytes = 0;
    uint32_t crc = 0;
  };
  uint64_t id = 0;
  int64_t created_ms = 0;  // wall clock
  std::string spec;        // fingerprint of the spec that wrote it
  int workers = 0;
  std::string state = "memory";  // backend: memory | rocksdb (DIR/chk-<id>/rocksdb-<w>/)
  SourceCheckpoint source;
  std::vector<Part> parts;  // per worker
  std::vector<OutputCommit> outputs;
};

// A checkpoint read back: its manifest and each worker's state.
struct RestoredCheckpoint {
  CheckpointManifest manifest;
  std::vector<std::string> parts;
};

// The files of a checkpoint directory. Thread-safe for write_part from any
// thread; the rest is called from one thread.
class CheckpointStore {
 public:
  // Creates DIR if missing. `keep`: complete checkpoints kept (K >= 1).
  static Result<std::unique_ptr<CheckpointStore>> Open(const std::string& dir, int keep);

  // The newest checkpoint whose manifest and parts all verify. A damaged or
  // partial newer one is skipped, with a line in `warnings`; nullopt when
  // there is none. Every checkpoint newer than the one returned is then
  // marked rejected (a file `rejected` in its directory, written durably) and
  // never loaded again: the caller settles the outputs for the one returned,
  // so a later start must not resume from a newer one even if it reads back
  // whole by then.
  Result<std::optional<RestoredCheckpoint>> load_latest(std::vector<std::string>* warnings);
  // The highest checkpoint id with a directory, complete or not.
  uint64_t max_id() const;
  const std::string& dir() const { return dir_; }
  std::string chk_dir(uint64_t id) const;

  // Writes one worker's part durably (written, fsynced, directory fsynced).
  Result<CheckpointManifest::Part> write_part(uint64_t id, int worker, const std::string& state);
  // Writes the manifest atomically: from then on the checkpoint is complete.
  Status write_manifest(const CheckpointManifest& m);
  // Removes complete checkpoints older than the newest `keep`, and incomplete
  // or rejected ones older than `newest`.
  Status prune(uint64_t newest);

 private:
  CheckpointStore(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {}
  std::vector<uint64_t> list_ids() const;
  Result<RestoredCheckpoint> load(uint64_t id) const;

  std::string dir_;
  int keep_;
};

// Writes worker parts on a background thread, so that a worker's pause is
// only the time to copy its state into a buffer.
class CheckpointPartWriter {
 public:
  CheckpointPartWriter(CheckpointStore* store, int workers);
  ~CheckpointPartWriter();
  void submit(uint64_t id, int worker, std::string state);
  // Blocks until every worker's part of checkpoint `id` is durable.
  Result<std::vector<CheckpointManifest::Part>> wait(uint64_t id);

 private:
  void run();
  struct Job {
    uint64_t id;
    int worker;
    std::string state;
  };
  struct Done {
    std::vector<std::optional<CheckpointManifest::Part>> parts;
    Status error;
    int count = 0;
  };
  CheckpointStore* store_;
  int workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::map<uint64_t, Done> done_;
  bool stop_ = false;
  std::thread thread_;
};

std::string encode_manifest(const CheckpointManifest& m);
Result<CheckpointManifest> decode_manifest(const std::string& text, const std::string& path);

// Fingerprint of a spec's text, stored in manifests: a checkpoint is only
// restored into the spec that wrote it.
std::string spec_fingerprint(const std::string& spec_text);

}  // namespace millrace
