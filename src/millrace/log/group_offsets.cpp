#include "millrace/log/group_offsets.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>

#include "millrace/core/crc32c.h"
#include "millrace/log/layout.h"

namespace millrace::log {

namespace {

constexpr char kSuffix[] = ".offsets";

std::string FileName(const std::string& group) {
  return group + kSuffix;
}

std::string Serialize(const std::map<uint32_t, uint64_t>& offsets) {
  std::string body = "millrace-offsets 1\n";
  for (const auto& [p, off] : offsets) {
    body += std::to_string(p) + " " + std::to_string(off) + "\n";
  }
  char crc[32];
  std::snprintf(crc, sizeof(crc), "crc %08x\n", crc32c(body.data(), body.size()));
  return body + crc;
}

Result<std::map<uint32_t, uint64_t>> Parse(const std::string& text, const std::string& path) {
  auto bad = [&](const std::string& why) -> Status {
    return Status::Error("damaged group offsets file " + path + ": " + why);
  };
  size_t crc_at = text.rfind("crc ");
  if (crc_at == std::string::npos || (crc_at > 0 && text[crc_at - 1] != '\n')) {
    return bad("no crc line");
  }
  uint32_t want = 0;
  auto [e, ec] = std::from_chars(text.data() + crc_at + 4, text.data() + text.size(), want, 16);
  if (ec != std::errc()) return bad("unreadable crc");
  if (crc32c(text.data(), crc_at) != want) return bad("crc mismatch");
  const std::string header = "millrace-offsets 1\n";
  if (text.compare(0, header.size(), header) != 0) return bad("unknown header");
  std::map<uint32_t, uint64_t> out;
  const char* p = text.data() + header.size();
  const char* end = text.data() + crc_at;
  while (p < end) {
    uint32_t partition = 0;
    uint64_t offset = 0;
    auto r1 = std::from_chars(p, end, partition);
    if (r1.ec != std::errc() || r1.ptr >= end || *r1.ptr != ' ') return bad("bad line");
    auto r2 = std::from_chars(r1.ptr + 1, end, offset);
    if (r2.ec != std::errc() || r2.ptr >= end || *r2.ptr != '\n') return bad("bad line");
    out[partition] = offset;
    p = r2.ptr + 1;
  }
  return out;
}

// Holds an exclusive flock on the groups directory for its lifetime.
class GroupsLock {
 public:
  explicit GroupsLock(const std::string& dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~GroupsLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace

bool IsValidGroupName(const std::string& g) {
  if (g.empty() || g.size() > 100 || g[0] == '.') return false;
  return std::all_of(g.begin(), g.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Status CommitGroupOffsets(const std::string& topic_path, const std::string& group,
                          const std::map<uint32_t, uint64_t>& next_offsets) {
  if (!IsValidGroupName(group)) {
    return Status::Error("invalid group name '" + group +
                         "'; use letters, digits, '.', '_' and '-'");
  }
  const std::string dir = GroupsDir(topic_path);
  GroupsLock lock(dir);
  if (!lock.ok()) return ErrnoError("cannot open groups directory", dir);
  auto current = ReadGroupOffsets(topic_path, group);
  if (!current.ok()) return current.status();
  std::map<uint32_t, uint64_t> merged = std::move(current.value());
  for (const auto& [p, off] : next_offsets) merged[p] = off;
  return WriteFileAtomically(dir, FileName(group), Serialize(merged));
}

Result<std::map<uint32_t, uint64_t>> ReadGroupOffsets(const std::string& topic_path,
                                                      const std::string& group) {
  if (!IsValidGroupName(group)) return Status::Error("invalid group name '" + group + "'");
  const std::string path = GroupsDir(topic_path) + "/" + FileName(group);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::map<uint32_t, uint64_t>{};
    return ErrnoError("cannot open", path);
  }
  ::close(fd);
  auto text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

Result<std::vector<std::string>> ListGroups(const std::string& topic_path) {
  std::vector<std::string> groups;
  std::error_code ec;
  const size_t suffix = sizeof(kSuffix) - 1;
  for (const auto& entry : std::filesystem::directory_iterator(GroupsDir(topic_path), ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kSuffix) != 0) continue;
    name.resize(name.size() - suffix);
    if (IsValidGroupName(name)) groups.push_back(name);
  }
  if (ec) return Status::Error("cannot list groups of " + topic_path + ": " + ec.message());
  std::sort(groups.begin(), groups.end());
  return groups;
}

}  // namespace millrace::log
