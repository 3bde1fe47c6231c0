#include "millrace/state/rocks_state.h"

#include <cstring>
#include <filesystem>

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>

namespace millrace {
namespace {

namespace fs = std::filesystem;

TimeMs expiry_of(const rocksdb::Slice& v) {
  TimeMs t = kMaxTime;
  if (v.size() >= sizeof t) std::memcpy(&t, v.data(), sizeof t);
  return t;
}

class ExpiryFilter : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryFilter(std::shared_ptr<std::atomic<TimeMs>> wm) : wm_(std::move(wm)) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    return expiry_of(value) <= wm_->load(std::memory_order_relaxed);
  }
  const char* Name() const override { return "millrace.ExpiryFilter"; }

 private:
  std::shared_ptr<std::atomic<TimeMs>> wm_;
};

class ExpiryFilterFactory : public rocksdb::CompactionFilterFactory {
 public:
  explicit ExpiryFilterFactory(std::shared_ptr<std::atomic<TimeMs>> wm) : wm_(std::move(wm)) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context&) override {
    return std::make_unique<ExpiryFilter>(wm_);
  }
  const char* Name() const override { return "millrace.ExpiryFilterFactory"; }

 private:
  std::shared_ptr<std::atomic<TimeMs>> wm_;
};

Status to_status(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  return Status::Error("rocksdb: " + what + ": " + s.ToString());
}

}  // namespace

Result<std::unique_ptr<RocksKeyedState>> RocksKeyedState::Open(const std::string& work_dir,
                                                               const std::string& from) {
  std::error_code ec;
  fs::remove_all(work_dir, ec);
  fs::create_directories(work_dir, ec);
  if (ec) return Status::Error(work_dir + ": cannot create: " + ec.message());
  if (!from.empty()) {
    // SSTs are immutable: link them; copy the small files RocksDB rewrites.
    for (const auto& e : fs::directory_iterator(from, ec)) {
      const fs::path to = fs::path(work_dir) / e.path().filename();
      std::error_code fe;
      if (e.path().extension() == ".sst") {
        fs::create_hard_link(e.path(), to, fe);
        if (fe) fs::copy_file(e.path(), to, fe = {});
      } else {
        fs::copy_file(e.path(), to, fe);
      }
      if (fe) return Status::Error(e.path().string() + ": cannot restore: " + fe.message());
    }
    if (ec) return Status::Error(from + ": cannot read the state checkpoint: " + ec.message());
  }
  std::unique_ptr<RocksKeyedState> st(new RocksKeyedState());
  st->watermark_ = std::make_shared<std::atomic<TimeMs>>(kMinTime);
  rocksdb::Options o;
  o.create_if_missing = true;
  o.compaction_filter_factory = std::make_shared<ExpiryFilterFactory>(st->watermark_);
  o.write_buffer_size = 32 << 20;
  o.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(32 << 20);
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  rocksdb::DB* db = nullptr;
  if (auto s = to_status(rocksdb::DB::Open(o, work_dir, &db), "open " + work_dir); !s.ok())
    return s;
  st->db_.reset(db);
  return st;
}

RocksKeyedState::~RocksKeyedState() = default;

bool RocksKeyedState::get(std::string_view key, TimeMs watermark, std::string* value) {
  ++gets_;
  rocksdb::PinnableSlice v;
  auto s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(),
                    rocksdb::Slice(key.data(), key.size()), &v);
  if (s.IsNotFound()) return false;
  if (!s.ok()) {
    if (error_.ok()) error_ = to_status(s, "get");
    return false;
  }
  if (v.size() < sizeof(TimeMs) || expiry_of(v) <= watermark) return false;
  value->assign(v.data() + sizeof(TimeMs), v.size() - sizeof(TimeMs));
  return true;
}

void RocksKeyedState::put(std::string_view key, TimeMs expiry, std::string_view value) {
  ++puts_;
  buf_.resize(sizeof expiry);
  std::memcpy(buf_.data(), &expiry, sizeof expiry);
  buf_.append(value);
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // scratch: rebuilt from a checkpoint at every start
  auto s = db_->Put(wo, rocksdb::Slice(key.data(), key.size()), buf_);
  if (!s.ok() && error_.ok()) error_ = to_status(s, "put");
}

Status RocksKeyedState::checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* cp = nullptr;
  if (auto s = to_status(rocksdb::Checkpoint::Create(db_.get(), &cp), "checkpoint"); !s.ok())
    return s;
  std::unique_ptr<rocksdb::Checkpoint> owned(cp);
  // log_size_for_flush 0: always flush, as the working database has no WAL.
  return to_status(owned->CreateCheckpoint(dir, 0), "checkpoint to " + dir);
}

uint64_t RocksKeyedState::estimated_bytes() const {
  uint64_t live = 0, mem = 0;
  db_->GetIntProperty("rocksdb.estimate-live-data-size", &live);
  db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &mem);
  return live + mem;
}

void RocksKeyedState::compact() {
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  (void)db_->CompactRange(o, nullptr, nullptr);
}

}  // namespace millrace
