// Committed consumer-group offsets of a topic: one small file per group,
// replaced atomically (format in format.h). These functions need no writer
// lock, so a consumer process commits while a producer appends.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::log {

// Group names are 1-100 characters of [A-Za-z0-9._-], not starting with '.'.
bool IsValidGroupName(const std::string& group);

// Merges next_offsets (partition -> offset of the next record to consume) into
// the group's committed offsets, atomically: a concurrent reader or a crash at
// any point sees the old or the new set, never a mix. Concurrent commits of
// the same group from several processes are serialized by a lock.
Status CommitGroupOffsets(const std::string& topic_path, const std::string& group,
                          const std::map<uint32_t, uint64_t>& next_offsets);

// The group's committed offsets; an empty map for a group that never committed.
// A damaged offsets file is an error, never a guess.
Result<std::map<uint32_t, uint64_t>> ReadGroupOffsets(const std::string& topic_path,
                                                      const std::string& group);

// Names of the groups that have committed offsets, sorted.
Result<std::vector<std::string>> ListGroups(const std::string& topic_path);

}  // namespace millrace::log
