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
  // Rows are gathered by key (numbered in the order keys first appear), then
  // each key's rows are ordered by as_of.
  struct Row {
    uint32_t key;
    int line;
    TimeMs as_of;
    size_t cells;  // index of the first cell in `cells`
  };
  auto table = std::make_shared<BatchTable>();
  std::vector<Row> rows;
  std::vector<FieldValue> cells;
  std::vector<uint32_t> key_rows;  // rows per key
  std::vector<uint32_t> slot_of;   // per key: its slot
  std::string arena;
  std::vector<int> key_columns;
  for (size_t i = 0; i < spec.key_fields.size(); ++i) key_columns.push_back(static_cast<int>(i));
  const size_t nvalues = spec.value_count();
  std::string key;
  auto grow = [&] {
    std::vector<Slot> old = std::move(table->slots_);
    table->slots_.assign(std::max<size_t>(16, old.size() * 2), Slot());
    table->mask_ = table->slots_.size() - 1;
    slot_of.clear();
    slot_of.resize(key_rows.size());
    for (const Slot& s : old) {
      if (s.count == 0) continue;
      size_t i = s.hash & table->mask_;
      while (table->slots_[i].count != 0) i = (i + 1) & table->mask_;
      table->slots_[i] = s;
      slot_of[s.first] = static_cast<uint32_t>(i);  // while loading, `first` is the key's number
    }
  };
  grow();
  auto st = read_record_file(spec.path, spec.columns, spec.as_of_column,
                             [&](const Event& e, int line) -> Status {
                               build_entity_key(e, key_columns, &key);
                               const uint64_t hash = hash_key(key);
                               const Slot* found = table->find_slot(key, hash);
                               uint32_t k;
                               if (found) {
                                 k = found->first;
                               } else {
                                 if ((key_rows.size() + 1) * 2 > table->slots_.size()) grow();
                                 k = static_cast<uint32_t>(key_rows.size());
                                 key_rows.push_back(0);
                                 size_t i = hash & table->mask_;
                                 while (table->slots_[i].count != 0) i = (i + 1) & table->mask_;
                                 Slot& s = table->slots_[i];
                                 s.hash = hash;
                                 s.first = k;
                                 s.count = 1;  // set to the key's rows at the end
                                 s.key_offset = static_cast<uint32_t>(table->key_bytes_.size());
                                 s.key_size = static_cast<uint32_t>(key.size());
                                 set_prefix(key, s.prefix);
                                 table->key_bytes_.append(key);
                                 slot_of.push_back(static_cast<uint32_t>(i));
                               }
                               ++key_rows[k];
                               rows.push_back(Row{k, line, e.time, cells.size()});
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
  // Counting sort by key, stable; then each key's rows by as_of.
  std::vector<uint32_t> first(key_rows.size() + 1, 0);
  for (size_t k = 0; k < key_rows.size(); ++k) first[k + 1] = first[k] + key_rows[k];
  std::vector<uint32_t> order(rows.size());
  {
    std::vector<uint32_t> next(first.begin(), first.end() - 1);
    for (size_t r = 0; r < rows.size(); ++r) order[next[rows[r].key]++] = static_cast<uint32_t>(r);
  }
  for (size_t k = 0; k < key_rows.size(); ++k) {
    auto begin = order.begin() + first[k], end = order.begin() + first[k + 1];
    auto by_time = [&](uint32_t a, uint32_t b) { return rows[a].as_of < rows[b].as_of; };
    if (!std::is_sorted(begin, end, by_time)) std::stable_sort(begin, end, by_time);
    for (auto it = begin + 1; it < end; ++it) {
      const Row& a = rows[*(it - 1)];
      const Row& b = rows[*it];
      if (a.as_of != b.as_of) continue;
      const Slot& s = table->slots_[slot_of[k]];
      return Status::Error(fmt::format(
          "{}:{}: a second row for key '{}' with as_of {} (the first is on line {}); expected one "
          "row per key and as_of",
          spec.path, std::max(a.line, b.line), table->key_bytes_.substr(s.key_offset, s.key_size),
          b.as_of, std::min(a.line, b.line)));
    }
    Slot& s = table->slots_[slot_of[k]];
    s.first = first[k];
    s.count = key_rows[k];
  }
  table->keys_ = key_rows.size();
  table->values_ = nvalues;
  table->arena_ = std::move(arena);
  table->as_of_.reserve(rows.size());
  table->cells_.reserve(cells.size());
  for (uint32_t r : order) {
    table->as_of_.push_back(rows[r].as_of);
    table->cells_.insert(table->cells_.end(), cells.begin() + rows[r].cells,
                         cells.begin() + rows[r].cells + nvalues);
  }
  return std::shared_ptr<const BatchTable>(std::move(table));
}

const FieldValue* BatchTable::find(std::string_view key, uint64_t hash, TimeMs t) const {
  return find_at(locate(key, hash), t);
}

const FieldValue* BatchTable::find_at(KeyRef key, TimeMs t) const {
  const auto* s = static_cast<const Slot*>(key.slot_);
  if (!s) return nullptr;
  const TimeMs* begin = as_of_.data() + s->first;
  const TimeMs* end = begin + s->count;
  const TimeMs* after = std::upper_bound(begin, end, t);  // first as_of > t
  if (after == begin) return nullptr;
  return cells_.data() + (after - 1 - as_of_.data()) * values_;
}

void BatchTable::prefetch_rows(KeyRef key) const {
  const auto* s = static_cast<const Slot*>(key.slot_);
  if (!s) return;
  const char* begin = reinterpret_cast<const char*>(as_of_.data() + s->first);
  const char* end = reinterpret_cast<const char*>(as_of_.data() + s->first + s->count);
  for (const char* p = begin; p < end && p < begin + 8 * 64; p += 64) __builtin_prefetch(p);
  // The latest row's cells: the one read once the key's rows are all in force.
  __builtin_prefetch(cells_.data() + (s->first + s->count - 1) * values_);
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
