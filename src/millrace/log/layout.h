// Where a topic keeps its files, the topic.meta file, and the small file-system
// primitives the log relies on (atomic replace, directory fsync). The format of
// every file is described in format.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::log {

// A topic's options, fixed at create time and stored in topic.meta.
struct TopicOptions {
  uint32_t partitions = 1;
  uint64_t segment_bytes = 64 << 20;  // a segment is closed once it would grow past this
  uint64_t retention_bytes = 0;       // per partition; 0 = keep all
  int64_t retention_ms = 0;           // by record timestamp; 0 = keep all
};

std::string PartitionDir(const std::string& topic_path, uint32_t partition);
std::string SegmentPath(const std::string& partition_dir, uint64_t base_offset);
std::string GroupsDir(const std::string& topic_path);
std::string MetaPath(const std::string& topic_path);

Status WriteTopicMeta(const std::string& topic_path, const TopicOptions& options);
// Fails with a message naming the file if it is missing or malformed.
Result<TopicOptions> ReadTopicMeta(const std::string& topic_path);

// Base offsets of the partition's segment files, ascending.
Result<std::vector<uint64_t>> ListSegments(const std::string& partition_dir);

// Replaces dir/name with `contents` so that a reader, or a restart after a
// crash at any point, sees either the old or the new file whole: write a temp
// file, fsync it, rename it over the old one, fsync the directory.
Status WriteFileAtomically(const std::string& dir, const std::string& name,
                           const std::string& contents);
Status SyncDir(const std::string& dir);
// mkdir -p.
Status MakeDirs(const std::string& path);
Result<std::string> ReadWholeFile(const std::string& path);

// "what path: strerror(errno)".
Status ErrnoError(const std::string& what, const std::string& path);

}  // namespace millrace::log
