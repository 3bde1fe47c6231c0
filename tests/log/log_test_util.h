// Helpers shared by the log tests: a temp directory removed at scope exit,
// reading a whole partition, and byte-level file surgery for fault tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "millrace/log/reader.h"
#include "millrace/log/topic.h"

namespace millrace::log::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/millrace-log-test-XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    EXPECT_NE(dir, nullptr);
    path_ = dir ? dir : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ReadRecord {
  uint64_t offset;
  std::string data;
  int64_t timestamp_ms;
};

// Reads a partition from `from` to its current end; fails the test on error.
inline std::vector<ReadRecord> ReadAll(const std::string& topic, uint32_t partition,
                                       uint64_t from = 0) {
  std::vector<ReadRecord> out;
  auto reader = PartitionReader::Open(topic, partition, from);
  EXPECT_TRUE(reader.ok()) << reader.status().message();
  if (!reader.ok()) return out;
  std::string_view rec;
  uint64_t off = 0;
  int64_t ts = 0;
  while (true) {
    auto more = (*reader)->Next(&rec, &off, &ts);
    EXPECT_TRUE(more.ok()) << more.status().message();
    if (!more.ok() || !*more) break;
    out.push_back({off, std::string(rec), ts});
  }
  return out;
}

inline std::string Record(uint32_t partition, uint64_t i) {
  return "{\"p\":" + std::to_string(partition) + ",\"i\":" + std::to_string(i) + "}";
}

inline uint64_t FileSize(const std::string& path) {
  return std::filesystem::file_size(path);
}

inline void FlipByte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

inline void AppendBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::app | std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline void Truncate(const std::string& path, uint64_t size) {
  std::filesystem::resize_file(path, size);
}

}  // namespace millrace::log::testing
