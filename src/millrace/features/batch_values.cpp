#include "millrace/features/batch_values.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "millrace/core/entity_key.h"
#include "millrace/features/record_file.h"

namespace millrace {
namespace {

bool file_stamp(const std::string& path, int64_t* mtime_ns, int64_t* size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  *mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  *size = st.st_size;
  return true;
}

}  // namespace

Result<std::shared_ptr<const BatchTable>> BatchTable::Load(const BatchSpec& spec) {
  struct Row {
    std::string key;
    TimeMs as_of;
    int line;
    size_t cells;  // index of the first cell in `cells`
  };
  std::vector<Row> rows;
  std::vector<FieldValue> cells;
  std::string arena;
  std::vector<int> key_columns;
  for (size_t i = 0; i < spec.key_fields.size(); ++i) key_columns.push_back(static_cast<int>(i));
  const size_t nvalues = spec.value_count();
  std::string key;
  auto st = read_record_file(spec.path, spec.columns, spec.as_of_column,
                             [&](const Event& e, int line) -> Status {
                               build_entity_key(e, key_columns, &key);
                               rows.push_back(Row{key, e.time, line, cells.size()});
                               for (size_t c = 0; c < nvalues; ++c) {
                                 FieldValue v = e.values[spec.first_value + c];
                                 if (v.kind == FieldValue::Kind::String) {
                                   std::string_view s = e.str(v);
                                   v.s.off = static_cast<uint32_t>(arena.size());
                                   arena.append(s);
                                 }
                                 cells.push_back(v);
                               }
                               return Status::Ok();
                             });
  if (!st.ok()) return st;
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.key, a.as_of) < std::tie(b.key, b.as_of);
  });
  auto table = std::make_shared<BatchTable>();
  table->values_ = nvalues;
  table->arena_ = std::move(arena);
  table->as_of_.reserve(rows.size());
  table->cells_.reserve(cells.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    if (i > 0 && rows[i - 1].key == r.key && rows[i - 1].as_of == r.as_of)
      return Status::Error(fmt::format(
          "{}:{}: a second row for key '{}' with as_of {} (the first is on line {}); expected one "
          "row per key and as_of",
          spec.path, std::max(r.line, rows[i - 1].line), r.key, r.as_of,
          std::min(r.line, rows[i - 1].line)));
    auto [it, fresh] = table->index_.try_emplace(r.key, Span{static_cast<uint32_t>(i), 0});
    (void)fresh;
    ++it->second.count;
    table->as_of_.push_back(r.as_of);
    for (size_t c = 0; c < nvalues; ++c) table->cells_.push_back(cells[r.cells + c]);
  }
  return std::shared_ptr<const BatchTable>(std::move(table));
}

const FieldValue* BatchTable::find(std::string_view key, TimeMs t) const {
  auto it = index_.find(absl::string_view(key.data(), key.size()));
  if (it == index_.end()) return nullptr;
  const TimeMs* begin = as_of_.data() + it->second.first;
  const TimeMs* end = begin + it->second.count;
  const TimeMs* after = std::upper_bound(begin, end, t);  // first as_of > t
  if (after == begin) return nullptr;
  return cells_.data() + (after - 1 - as_of_.data()) * values_;
}

void BatchTable::prefetch_times(std::string_view key) const {
  auto it = index_.find(absl::string_view(key.data(), key.size()));
  if (it == index_.end()) return;
  const char* begin = reinterpret_cast<const char*>(as_of_.data() + it->second.first);
  const char* end =
      reinterpret_cast<const char*>(as_of_.data() + it->second.first + it->second.count);
  for (const char* p = begin; p < end && p < begin + 8 * 64; p += 64) __builtin_prefetch(p);
}

Result<std::unique_ptr<BatchValues>> BatchValues::Open(BatchSpec spec) {
  std::unique_ptr<BatchValues> b(new BatchValues(std::move(spec)));
  file_stamp(b->spec_.path, &b->mtime_ns_, &b->size_);
  auto t = BatchTable::Load(b->spec_);
  if (!t.ok()) return t.status();
  b->table_ = std::move(t.value());
  b->generation_.store(1);
  if (b->spec_.poll_interval > 0) b->poller_ = std::thread([p = b.get()] { p->poll_loop(); });
  return b;
}

BatchValues::~BatchValues() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

std::shared_ptr<const BatchTable> BatchValues::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

Status BatchValues::reload_if_changed() {
  int64_t mtime = 0, size = 0;
  if (!file_stamp(spec_.path, &mtime, &size)) return Status::Ok();  // being replaced: next poll
  if (mtime == mtime_ns_ && size == size_) return Status::Ok();
  mtime_ns_ = mtime;
  size_ = size;
  auto t = BatchTable::Load(spec_);
  if (!t.ok()) {
    ++reload_errors_;
    return Status::Error(
        fmt::format("batch '{}': reload failed, keeping the table loaded before: "
                    "{}",
                    spec_.name, t.status().message()));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    table_ = std::move(t.value());
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  ++reloads_;
  return Status::Ok();
}

void BatchValues::poll_loop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(spec_.poll_interval),
                            [this] { return stop_; })) {
    lock.unlock();
    if (auto s = reload_if_changed(); !s.ok())
      std::fprintf(stderr, "millrace: %s\n", s.message().c_str());
    lock.lock();
  }
}

}  // namespace millrace
