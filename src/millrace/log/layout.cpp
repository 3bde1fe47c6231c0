#include "millrace/log/layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace millrace::log {

namespace fs = std::filesystem;

Status ErrnoError(const std::string& what, const std::string& path) {
  return Status::Error(what + " " + path + ": " + std::strerror(errno));
}

std::string PartitionDir(const std::string& topic_path, uint32_t partition) {
  return topic_path + "/partition-" + std::to_string(partition);
}

std::string SegmentPath(const std::string& partition_dir, uint64_t base_offset) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.log", static_cast<unsigned long long>(base_offset));
  return partition_dir + "/" + name;
}

std::string GroupsDir(const std::string& topic_path) {
  return topic_path + "/groups";
}
std::string MetaPath(const std::string& topic_path) {
  return topic_path + "/topic.meta";
}

Status WriteTopicMeta(const std::string& topic_path, const TopicOptions& o) {
  std::string text = "millrace-topic 1\npartitions " + std::to_string(o.partitions) +
                     "\nsegment_bytes " + std::to_string(o.segment_bytes) + "\nretention_bytes " +
                     std::to_string(o.retention_bytes) + "\nretention_ms " +
                     std::to_string(o.retention_ms) + "\n";
  return WriteFileAtomically(topic_path, "topic.meta", text);
}

Result<TopicOptions> ReadTopicMeta(const std::string& topic_path) {
  const std::string path = MetaPath(topic_path);
  auto text = ReadWholeFile(path);
  if (!text.ok()) {
    return Status::Error(topic_path + " is not a millrace topic (no readable topic.meta)");
  }
  std::istringstream in(*text);
  std::string key;
  std::string value;
  TopicOptions o;
  bool seen_version = false;
  bool seen_partitions = false;
  int line = 0;
  while (in >> key >> value) {
    ++line;
    long long v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size() || v < 0) {
      return Status::Error(path + " line " + std::to_string(line) + ": bad value '" + value + "'");
    }
    if (key == "millrace-topic") {
      if (v != 1) return Status::Error(path + ": unsupported format version " + value);
      seen_version = true;
    } else if (key == "partitions") {
      o.partitions = static_cast<uint32_t>(v);
      seen_partitions = true;
    } else if (key == "segment_bytes") {
      o.segment_bytes = static_cast<uint64_t>(v);
    } else if (key == "retention_bytes") {
      o.retention_bytes = static_cast<uint64_t>(v);
    } else if (key == "retention_ms") {
      o.retention_ms = v;
    }  // unknown keys are left for newer versions
  }
  if (!seen_version || !seen_partitions || o.partitions == 0) {
    return Status::Error(path + ": missing version or partitions");
  }
  return o;
}

Result<std::vector<uint64_t>> ListSegments(const std::string& partition_dir) {
  std::error_code ec;
  std::vector<uint64_t> bases;
  for (const auto& entry : fs::directory_iterator(partition_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 24 || name.compare(20, 4, ".log") != 0) continue;
    uint64_t base = 0;
    auto [end, perr] = std::from_chars(name.data(), name.data() + 20, base);
    if (perr != std::errc() || end != name.data() + 20) continue;
    bases.push_back(base);
  }
  if (ec) return Status::Error("cannot list " + partition_dir + ": " + ec.message());
  std::sort(bases.begin(), bases.end());
  return bases;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("cannot fsync directory", dir);
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& dir, const std::string& name,
                           const std::string& contents) {
  const std::string tmp = dir + "/." + name + ".tmp";
  const std::string dest = dir + "/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = ErrnoError("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = ErrnoError("cannot fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    Status s = ErrnoError("cannot rename into place", dest);
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Error("cannot create directory " + path + ": " + ec.message());
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = ErrnoError("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace millrace::log
