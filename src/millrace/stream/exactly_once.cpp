#include "millrace/stream/exactly_once.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "millrace/log/layout.h"
#include "millrace/log/reader.h"
#include "millrace/log/topic.h"

namespace millrace {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kLogScheme = "log:";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Drops the first `skip` lines of `text` (counting down `skip`); returns the rest.
std::string_view skip_lines(std::string_view text, uint64_t* skip) {
  while (*skip > 0 && !text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      text = {};
      break;
    }
    text.remove_prefix(nl + 1);
    --*skip;
  }
  return text;
}

// One log transaction per epoch.
class TransactionalLogWriter final : public EpochWriter {
 public:
  TransactionalLogWriter(std::unique_ptr<log::Topic> topic, std::vector<uint64_t> skip)
      : topic_(std::move(topic)), skip_(std::move(skip)) {
    pending_.resize(topic_->partitions());
    skip_.resize(topic_->partitions(), 0);
  }
  ~TransactionalLogWriter() override = default;  // an open transaction is aborted by the topic

  Status begin() { return topic_->BeginTransaction(); }
  uint32_t partitions() const override { return topic_->partitions(); }

  Status write(std::string_view lines, uint32_t hint) override {
    uint32_t p = hint % topic_->partitions();
    if (skip_[p] > 0) lines = skip_lines(lines, &skip_[p]);
    pending_[p].append(lines);
    if (pending_[p].size() >= (256 << 10)) return flush_partition(p);
    return Status::Ok();
  }
  // Appends what is buffered; the records stay in the open transaction.
  Status flush() override {
    for (uint32_t p = 0; p < pending_.size(); ++p)
      if (auto s = flush_partition(p); !s.ok()) return s;
    return topic_->Flush();
  }
  Result<OutputCommit> prepare(uint64_t checkpoint) override {
    if (auto s = flush(); !s.ok()) return s;
    auto id = topic_->PrepareTransaction();
    if (!id.ok()) return id.status();
    OutputCommit c;
    c.checkpoint = checkpoint;
    c.txn = id.value();
    for (uint32_t p = 0; p < topic_->partitions(); ++p)
      c.end_offsets.push_back(topic_->end_offset(p));
    c.records = records_;
    c.skip = skip_;
    records_ = 0;
    return c;
  }
  Status commit() override {
    if (auto s = topic_->CommitTransaction(); !s.ok()) return s;
    return topic_->BeginTransaction();
  }

 private:
  Status flush_partition(uint32_t p) {
    std::string& text = pending_[p];
    if (text.empty()) return Status::Ok();
    records_view_.clear();
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      if (nl > start) records_view_.emplace_back(text.data() + start, nl - start);
      start = nl + 1;
    }
    auto r = topic_->Append(p, records_view_, wall_ms());
    records_ += records_view_.size();
    text.clear();
    return r.ok() ? Status::Ok() : r.status();
  }

  std::unique_ptr<log::Topic> topic_;
  std::vector<uint64_t> skip_;
  std::vector<std::string> pending_;
  std::vector<std::string_view> records_view_;
  uint64_t records_ = 0;
};

std::string epoch_name(const std::string& path, uint64_t id) {
  return fmt::format("{}.{:010d}", path, id);
}

Status rename_durably(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) return log::ErrnoError("cannot rename", from);
  std::string dir = fs::path(to).parent_path().string();
  return log::SyncDir(dir.empty() ? "." : dir);
}

// One file per epoch.
class EpochFileWriter final : public EpochWriter {
 public:
  EpochFileWriter(std::string path, uint64_t skip) : path_(std::move(path)), skip_(skip) {}
  ~EpochFileWriter() override {
    if (f_) std::fclose(f_);
  }
  Status write(std::string_view lines, uint32_t) override {
    if (skip_ > 0) lines = skip_lines(lines, &skip_);
    if (lines.empty()) return Status::Ok();
    buf_.append(lines);
    if (buf_.size() >= (1 << 20)) return flush();
    return Status::Ok();
  }
  Status flush() override {
    if (buf_.empty()) return Status::Ok();
    if (!f_) {
      f_ = std::fopen(pending().c_str(), "wb");
      if (!f_) return log::ErrnoError("cannot create", pending());
    }
    for (char c : buf_) records_ += c == '\n';
    if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size() || std::fflush(f_) != 0)
      return log::ErrnoError("cannot write", pending());
    buf_.clear();
    return Status::Ok();
  }
  Result<OutputCommit> prepare(uint64_t checkpoint) override {
    if (auto s = flush(); !s.ok()) return s;
    OutputCommit c;
    c.checkpoint = checkpoint;
    c.records = records_;
    c.skip = {skip_};
    prepared_.clear();
    if (f_) {
      int rc = ::fsync(::fileno(f_));
      std::fclose(f_);
      f_ = nullptr;
      if (rc != 0) return log::ErrnoError("cannot fsync", pending());
      prepared_ = epoch_name(path_, checkpoint) + ".pending";
      if (auto s = rename_durably(pending(), prepared_); !s.ok()) return s;
      c.has_file = true;
    }
    records_ = 0;
    return c;
  }
  Status commit() override {
    if (prepared_.empty()) return Status::Ok();
    std::string final_name = prepared_.substr(0, prepared_.size() - 8);  // drop ".pending"
    prepared_.clear();
    return rename_durably(final_name + ".pending", final_name);
  }

 private:
  std::string pending() const { return path_ + ".pending"; }
  std::string path_;
  uint64_t skip_;
  std::string buf_;
  FILE* f_ = nullptr;
  uint64_t records_ = 0;
  std::string prepared_;
};

Result<ExactlyOnceOpen> open_log(const std::string& uri, const OutputCommit* resumed) {
  const std::string path = uri.substr(kLogScheme.size());
  log::TopicOptions topts;
  auto topic = log::Topic::OpenOrCreate(path, topts);
  if (!topic.ok()) return topic.status();
  ExactlyOnceOpen r;
  log::Topic& t = *topic.value();
  if (uint64_t prepared = t.prepared_transaction()) {
    if (resumed && resumed->txn == prepared) {
      if (auto s = t.CommitTransaction(); !s.ok()) return s;
      r.notes.push_back(fmt::format("{}: committed transaction {} of checkpoint {}", uri, prepared,
                                    resumed->checkpoint));
    } else {
      if (auto s = t.AbortTransaction(); !s.ok()) return s;
      r.notes.push_back(fmt::format("{}: discarded uncommitted transaction {}", uri, prepared));
    }
  }
  t.set_write_buffer_bytes(256 << 10);
  std::vector<uint64_t> skip(t.partitions(), 0);
  if (resumed) {
    for (uint32_t p = 0; p < t.partitions() && p < resumed->skip.size(); ++p)
      skip[p] = resumed->skip[p];  // still to drop when the checkpoint was taken
    for (uint32_t p = 0; p < t.partitions() && p < resumed->end_offsets.size(); ++p) {
      auto reader = log::PartitionReader::Open(path, p, resumed->end_offsets[p],
                                               log::Isolation::kReadCommitted);
      if (!reader.ok()) return reader.status();
      std::string_view rec;
      uint64_t off;
      for (;;) {
        auto got = reader.value()->Next(&rec, &off);
        if (!got.ok()) return got.status();
        if (!got.value()) break;
        ++skip[p];
      }
      if (skip[p])
        r.notes.push_back(fmt::format(
            "{} partition {}: {} records were committed after checkpoint {}; their replay is "
            "not written again",
            uri, p, skip[p], resumed->checkpoint));
    }
  }
  auto w = std::make_unique<TransactionalLogWriter>(std::move(topic.value()), std::move(skip));
  if (auto s = w->begin(); !s.ok()) return s;
  r.writer = std::move(w);
  return r;
}

// Counts the records ('\n'-terminated lines) of a file.
Result<uint64_t> count_lines(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return log::ErrnoError("cannot open", path);
  char buf[1 << 16];
  uint64_t n = 0;
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0)
    for (size_t i = 0; i < got; ++i) n += buf[i] == '\n';
  std::fclose(f);
  return n;
}

Result<ExactlyOnceOpen> open_file(const std::string& path, const OutputCommit* resumed) {
  ExactlyOnceOpen r;
  fs::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  const std::string base = p.filename().string();
  // Roll forward the epoch the resumed manifest committed, if its rename did not happen.
  if (resumed && resumed->has_file) {
    std::string final_name = epoch_name(path, resumed->checkpoint);
    std::error_code ec;
    if (fs::exists(final_name + ".pending", ec)) {
      if (auto s = rename_durably(final_name + ".pending", final_name); !s.ok()) return s;
      r.notes.push_back(fmt::format("{}: committed the epoch file of checkpoint {}", final_name,
                                    resumed->checkpoint));
    } else if (!fs::exists(final_name, ec)) {
      return Status::Error(fmt::format(
          "{}: missing: checkpoint {} committed this epoch file; was the output moved or deleted?",
          final_name, resumed->checkpoint));
    }
  }
  uint64_t skip = resumed && !resumed->skip.empty() ? resumed->skip[0] : 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= base.size() + 1 || name.compare(0, base.size() + 1, base + ".") != 0)
      continue;
    std::string rest = name.substr(base.size() + 1);
    bool pending = rest.size() > 8 && rest.compare(rest.size() - 8, 8, ".pending") == 0;
    if (pending) rest.resize(rest.size() - 8);
    if (rest == "pending") {  // PATH.pending: an epoch never prepared
      fs::remove(entry.path(), ec);
      continue;
    }
    if (rest.size() != 10 || rest.find_first_not_of("0123456789") != std::string::npos) continue;
    const uint64_t id = std::stoull(rest);
    r.max_epoch = std::max(r.max_epoch, id);
    if (pending) {
      fs::remove(entry.path(), ec);
      r.notes.push_back(fmt::format("{}: discarded an uncommitted epoch file", name));
    } else if (resumed && id > resumed->checkpoint) {
      auto n = count_lines(entry.path().string());
      if (!n.ok()) return n.status();
      skip += n.value();
    }
  }
  if (skip)
    r.notes.push_back(fmt::format(
        "{}: {} records were committed after checkpoint {}; their replay is not written again",
        path, skip, resumed->checkpoint));
  (void)log::SyncDir(dir);
  r.writer = std::make_unique<EpochFileWriter>(path, skip);
  return r;
}

}  // namespace

Result<ExactlyOnceOpen> open_exactly_once_writer(const std::string& uri,
                                                 const OutputCommit* resumed) {
  if (uri.empty() || uri == "-") {
    auto w = open_writer(uri);
    if (!w.ok()) return w.status();
    ExactlyOnceOpen r;
    r.writer = std::move(w.value());
    return r;
  }
  if (uri.rfind(kLogScheme, 0) == 0) return open_log(uri, resumed);
  return open_file(uri, resumed);
}

}  // namespace millrace
