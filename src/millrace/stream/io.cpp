#include "millrace/stream/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "millrace/log/group_offsets.h"
#include "millrace/log/reader.h"
#include "millrace/log/topic.h"

namespace millrace {
namespace {

constexpr std::string_view kLogScheme = "log:";

// Lines of a file or stdin, read in large chunks.
class LineFileReader : public RecordReader {
 public:
  LineFileReader(int fd, std::string name, uint64_t skip_lines = 0)
      : fd_(fd), name_(std::move(name)), seekable_(fd != 0), skip_(skip_lines) {
    buf_.resize(1 << 20);
    struct stat st;
    regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  }
  ~LineFileReader() override {
    if (fd_ > 0) ::close(fd_);
  }

  Result<bool> next(RecordRef* rec) override {
    for (;;) {
      if (pos_ < end_) {
        const char* start = buf_.data() + pos_;
        const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
        if (nl || eof_) {
          size_t len = nl ? static_cast<size_t>(nl - start) : end_ - pos_;
          pos_ += len + (nl ? 1 : 0);
          std::string_view line(start, len);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          uint64_t number = line_no_++;
          if (number < skip_) continue;  // before the resume position
          if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank
          rec->data = line;
          rec->partition = 0;
          rec->offset = number;
          return true;
        }
      } else if (eof_) {
        done_ = true;
        return false;
      }
      // Move the partial line to the front and read more.
      size_t rest = end_ - pos_;
      if (rest == buf_.size()) buf_.resize(buf_.size() * 2);
      std::memmove(buf_.data(), buf_.data() + pos_, rest);
      pos_ = 0;
      end_ = rest;
      ssize_t n;
      do {
        n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      } while (n < 0 && errno == EINTR);
      if (n < 0)
        return Status::Error(fmt::format("{}: read failed: {}", name_, std::strerror(errno)));
      if (n == 0) eof_ = true;
      end_ += static_cast<size_t>(n);
    }
  }
  bool partition_finished(uint32_t) const override { return done_; }
  bool finished() const override { return done_; }
  bool may_block() const override {
    // A regular file never keeps a reader waiting; a pipe may.
    return !regular_ && !eof_ && std::memchr(buf_.data() + pos_, '\n', end_ - pos_) == nullptr;
  }
  std::optional<ReaderPosition> position() const override {
    if (!seekable_) return std::nullopt;
    ReaderPosition p;
    p.next_offsets.push_back(std::max(line_no_, skip_));  // lines to skip count as read
    return p;
  }

 private:
  int fd_;
  std::string name_;
  bool seekable_;
  bool regular_ = false;  // a regular file: reads never wait
  uint64_t skip_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false, done_ = false;
  uint64_t line_no_ = 0;
};

// All partitions of a log topic, read round robin in runs of up to 64 records.
class LogTopicReader : public RecordReader {
 public:
  static Result<std::unique_ptr<RecordReader>> Open(const std::string& path,
                                                    const ReaderOptions& opts) {
    // Readers take no writer lock: a producer may append while this runs.
    auto info = log::DescribeTopic(path);
    if (!info.ok()) return info.status();
    auto r = std::unique_ptr<LogTopicReader>(new LogTopicReader());
    r->path_ = path;
    r->opts_ = opts;
    const uint32_t n = static_cast<uint32_t>(info->partitions.size());
    std::map<uint32_t, uint64_t> start;
    if (!opts.group.empty()) {
      if (!log::IsValidGroupName(opts.group))
        return Status::Error(
            fmt::format("consumer group '{}': use 1-100 characters of "
                        "[A-Za-z0-9._-]",
                        opts.group));
      auto g = log::ReadGroupOffsets(path, opts.group);
      if (!g.ok()) return g.status();
      start = g.value();
    }
    bool restore_finished = false;
    if (opts.resume) {
      if (opts.resume->next_offsets.size() != n)
        return Status::Error(
            fmt::format("{}: the checkpoint has {} partitions of this input, the topic has {}",
                        path, opts.resume->next_offsets.size(), n));
      for (uint32_t p = 0; p < n; ++p) start[p] = opts.resume->next_offsets[p];
      r->cur_ = opts.resume->cursor % n;
      r->run_ = opts.resume->run;
      restore_finished = !opts.follow && opts.resume->finished.size() == n;
    }
    for (uint32_t p = 0; p < n; ++p) {
      uint64_t from =
          start.count(p) ? start[p] : (opts.from_beginning ? 0 : info->partitions[p].end_offset);
      auto reader = log::PartitionReader::Open(path, p, from);
      if (!reader.ok()) return reader.status();
      r->readers_.push_back(std::move(reader.value()));
      r->finished_.push_back(restore_finished && opts.resume->finished[p]);
    }
    return std::unique_ptr<RecordReader>(std::move(r));
  }

  Result<bool> next(RecordRef* rec) override {
    const uint32_t n = static_cast<uint32_t>(readers_.size());
    for (uint32_t tries = 0; tries <= n; ++tries) {
      if (run_ >= 64 || finished_[cur_]) {
        cur_ = (cur_ + 1) % n;
        run_ = 0;
        if (finished_[cur_]) continue;
      }
      std::string_view data;
      uint64_t offset;
      auto got = readers_[cur_]->Next(&data, &offset);
      if (!got.ok())
        return Status::Error(
            fmt::format("{} partition {}: {}", path_, cur_, got.status().message()));
      if (got.value()) {
        ++run_;
        rec->data = data;
        rec->partition = cur_;
        rec->offset = offset;
        return true;
      }
      if (!opts_.follow) finished_[cur_] = true;
      run_ = 64;  // move on to the next partition
    }
    return false;
  }
  uint32_t partitions() const override { return static_cast<uint32_t>(readers_.size()); }
  bool partition_finished(uint32_t p) const override { return finished_[p]; }
  bool finished() const override {
    for (bool f : finished_)
      if (!f) return false;
    return true;
  }
  std::optional<ReaderPosition> position() const override {
    ReaderPosition p;
    for (const auto& r : readers_) p.next_offsets.push_back(r->position());
    p.cursor = cur_;
    p.run = run_;
    for (bool f : finished_) p.finished.push_back(f ? 1 : 0);
    return p;
  }
  Status commit(const std::vector<uint64_t>& next_offsets) override {
    if (opts_.group.empty()) return Status::Ok();
    std::map<uint32_t, uint64_t> m;
    for (uint32_t p = 0; p < next_offsets.size(); ++p)
      if (next_offsets[p] != UINT64_MAX) m[p] = next_offsets[p];
    if (m.empty()) return Status::Ok();
    return log::CommitGroupOffsets(path_, opts_.group, m);
  }

 private:
  LogTopicReader() = default;
  std::string path_;
  ReaderOptions opts_;
  std::vector<std::unique_ptr<log::PartitionReader>> readers_;
  std::vector<bool> finished_;
  uint32_t cur_ = 0;
  uint32_t run_ = 0;
};

class FileWriter : public RecordWriter {
 public:
  FileWriter(FILE* f, std::string name, bool owned)
      : f_(f), name_(std::move(name)), owned_(owned) {}
  ~FileWriter() override {
    (void)flush();
    if (owned_) std::fclose(f_);
  }
  Status write(std::string_view lines, uint32_t) override {
    buf_.append(lines);
    if (buf_.size() >= (1 << 20)) return flush();
    return Status::Ok();
  }
  Status flush() override {
    if (!buf_.empty()) {
      if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
        return Status::Error(fmt::format("{}: write failed: {}", name_, std::strerror(errno)));
      buf_.clear();
    }
    if (std::fflush(f_) != 0)
      return Status::Error(fmt::format("{}: write failed: {}", name_, std::strerror(errno)));
    return Status::Ok();
  }

 private:
  FILE* f_;
  std::string name_;
  bool owned_;
  std::string buf_;
};

class NullWriter : public RecordWriter {
 public:
  Status write(std::string_view, uint32_t) override { return Status::Ok(); }
  Status flush() override { return Status::Ok(); }
};

class LogWriter : public RecordWriter {
 public:
  explicit LogWriter(std::unique_ptr<log::Topic> topic) : topic_(std::move(topic)) {
    pending_.resize(topic_->partitions());
  }
  ~LogWriter() override { (void)flush(); }
  uint32_t partitions() const override { return topic_->partitions(); }
  Status write(std::string_view lines, uint32_t hint) override {
    uint32_t p = hint % topic_->partitions();
    pending_[p].append(lines);
    if (pending_[p].size() >= (256 << 10)) return flush_partition(p);
    return Status::Ok();
  }
  Status flush() override {
    for (uint32_t p = 0; p < pending_.size(); ++p)
      if (auto s = flush_partition(p); !s.ok()) return s;
    return topic_->Flush();
  }

 private:
  Status flush_partition(uint32_t p) {
    std::string& text = pending_[p];
    if (text.empty()) return Status::Ok();
    records_.clear();
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      if (nl > start) records_.emplace_back(text.data() + start, nl - start);
      start = nl + 1;
    }
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto r = topic_->Append(p, records_, now);
    text.clear();
    if (!r.ok()) return r.status();
    // Size retention is applied by Append; age retention needs a call now and then.
    if (now - last_retention_ms_ >= 10'000) {
      last_retention_ms_ = now;
      return topic_->ApplyRetention(now);
    }
    return Status::Ok();
  }
  std::unique_ptr<log::Topic> topic_;
  std::vector<std::string> pending_;
  std::vector<std::string_view> records_;
  int64_t last_retention_ms_ = 0;
};

}  // namespace

Result<std::unique_ptr<RecordReader>> open_reader(const std::string& uri,
                                                  const ReaderOptions& opts) {
  if (uri.rfind(kLogScheme, 0) == 0)
    return LogTopicReader::Open(uri.substr(kLogScheme.size()), opts);
  if (uri == "-") return std::unique_ptr<RecordReader>(new LineFileReader(0, "stdin"));
  int fd = ::open(uri.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::Error(fmt::format("{}: cannot open input: {}", uri, std::strerror(errno)));
  return std::unique_ptr<RecordReader>(new LineFileReader(
      fd, uri,
      opts.resume && !opts.resume->next_offsets.empty() ? opts.resume->next_offsets[0] : 0));
}

Result<std::unique_ptr<RecordWriter>> open_writer(const std::string& uri) {
  if (uri.empty()) return std::unique_ptr<RecordWriter>(new NullWriter());
  if (uri.rfind(kLogScheme, 0) == 0) {
    log::TopicOptions topts;
    auto topic = log::Topic::OpenOrCreate(uri.substr(kLogScheme.size()), topts);
    if (!topic.ok()) return topic.status();
    topic.value()->set_write_buffer_bytes(256 << 10);
    return std::unique_ptr<RecordWriter>(new LogWriter(std::move(topic.value())));
  }
  if (uri == "-") return std::unique_ptr<RecordWriter>(new FileWriter(stdout, "stdout", false));
  FILE* f = std::fopen(uri.c_str(), "wb");
  if (!f)
    return Status::Error(fmt::format("{}: cannot open output: {}", uri, std::strerror(errno)));
  return std::unique_ptr<RecordWriter>(new FileWriter(f, uri, true));
}

}  // namespace millrace
