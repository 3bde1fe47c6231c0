#include "millrace/features/reference_table.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "millrace/core/entity_key.h"
#include "millrace/core/hash.h"
#include "millrace/features/record_file.h"

namespace millrace {

ReferenceTable::ReferenceTable(TableSpec spec, const Schema* change_schema, int time_field)
    : spec_(std::move(spec)), shards_(new Shard[kShards]), horizon_(kMinTime), retired_(0) {
  for (size_t i = 0; i < spec_.columns.size(); ++i) {
    FieldDef f = spec_.columns[i];
    f.optional = static_cast<int>(i) != spec_.key_column;
    change_schema_.add(f);
    identity_.push_back(static_cast<int>(i));
  }
  change_schema_.add({spec_.op, FieldType::String, false});
  change_schema_.add({spec_.time, FieldType::Timestamp, false});
  change_time_field_ = static_cast<int>(spec_.columns.size()) + 1;
  if (change_schema) {
    change_schema_ = *change_schema;
    change_time_field_ = time_field;
  }
  // Fields by name (the spec checked that the key and the op are there).
  for (size_t i = 0; i < spec_.columns.size(); ++i)
    change_columns_.push_back(change_schema_.index_of(spec_.columns[i].name));
  change_op_ = change_schema_.index_of(spec_.op);
}

Result<std::unique_ptr<ReferenceTable>> ReferenceTable::Open(TableSpec spec,
                                                             const Schema* change_schema,
                                                             int time_field) {
  std::unique_ptr<ReferenceTable> t(new ReferenceTable(std::move(spec), change_schema, time_field));
  if (t->spec_.path.empty()) return t;
  std::string key;
  const std::vector<int> key_fields{t->spec_.key_column};
  absl::flat_hash_map<std::string, int> first_line;
  auto st = read_record_file(
      t->spec_.path, t->spec_.columns, -1, [&](const Event& e, int line) -> Status {
        build_entity_key(e, key_fields, &key);
        auto [it, fresh] = first_line.try_emplace(key, line);
        if (!fresh)
          return Status::Error(
              fmt::format("{}:{}: key '{}' again (first on line {}); expected one row "
                          "per key",
                          t->spec_.path, line, key, it->second));
        t->upsert(key, kMinTime, e);
        return Status::Ok();
      });
  if (!st.ok()) return st;
  return t;
}

ReferenceTable::Shard& ReferenceTable::shard_of(std::string_view key) const {
  return shards_[hash_string(key) % kShards];
}

namespace {

expr::Value cell_value(const FieldValue& c, const std::string& arena, std::string* scratch) {
  switch (c.kind) {
    case FieldValue::Kind::Null:
      return expr::Value::null();
    case FieldValue::Kind::Int:
      return expr::Value::integer(c.i);
    case FieldValue::Kind::Double:
      return expr::Value::number(c.d);
    case FieldValue::Kind::Bool:
      return expr::Value::boolean(c.b);
    case FieldValue::Kind::String:
      scratch->assign(arena.data() + c.s.off, c.s.len);
      return expr::Value::string(*scratch);
  }
  return expr::Value::null();
}

}  // namespace

const ReferenceTable::Version* ReferenceTable::find_version(const Shard& sh, std::string_view key,
                                                            TimeMs t, uint64_t stamp) const {
  auto it = sh.rows.find(absl::string_view(key.data(), key.size()));
  if (it == sh.rows.end()) return nullptr;
  const auto& versions = it->second;
  auto after = std::upper_bound(versions.begin(), versions.end(), t,
                                [](TimeMs x, const Version& v) { return x < v.t; });
  // The newest version at or before t that this read may see.
  while (after != versions.begin() && (after - 1)->stamp > stamp) --after;
  if (after == versions.begin()) return nullptr;
  const Version& v = *(after - 1);
  return v.deleted ? nullptr : &v;
}

expr::Value ReferenceTable::get(std::string_view key, TimeMs t, int column, std::string* scratch,
                                uint64_t stamp) const {
  const Shard& sh = shard_of(key);
  std::shared_lock<std::shared_mutex> lock(sh.mu);
  const Version* v = find_version(sh, key, t, stamp);
  return v ? cell_value(v->cells[column], v->arena, scratch) : expr::Value::null();
}

void ReferenceTable::get_row(std::string_view key, TimeMs t, Row* row, uint64_t stamp) const {
  const Shard& sh = shard_of(key);
  std::shared_lock<std::shared_mutex> lock(sh.mu);
  const Version* v = find_version(sh, key, t, stamp);
  row->found = v != nullptr;
  if (!v) return;
  row->cells.assign(v->cells.begin(), v->cells.end());
  row->arena.assign(v->arena);
}

expr::Value ReferenceTable::Row::value(int column, std::string* scratch) const {
  return found ? cell_value(cells[column], arena, scratch) : expr::Value::null();
}

void ReferenceTable::put(std::string_view key, Version v) {
  Shard& sh = shard_of(key);
  std::unique_lock<std::shared_mutex> lock(sh.mu);
  auto& versions = sh.rows[absl::string_view(key.data(), key.size())];
  // After the versions of the same time: of two changes at one time, the later applied wins.
  auto pos = std::upper_bound(versions.begin(), versions.end(), v.t,
                              [](TimeMs x, const Version& e) { return x < e.t; });
  versions.insert(pos, std::move(v));
  // Every read to come is at a time >= horizon with a stamp >= retired: the
  // newest version at or before the horizon that all of them see hides every
  // older one. Keep it and what follows.
  const TimeMs horizon = horizon_.load(std::memory_order_relaxed);
  const uint64_t retired = retired_.load(std::memory_order_relaxed);
  auto keep = std::upper_bound(versions.begin(), versions.end(), horizon,
                               [](TimeMs x, const Version& e) { return x < e.t; });
  while (keep != versions.begin() && (keep - 1)->stamp > retired) --keep;
  if (keep == versions.begin()) return;
  --keep;
  versions.erase(versions.begin(), keep);
  if (versions.size() == 1 && versions[0].deleted)
    sh.rows.erase(absl::string_view(key.data(), key.size()));
}

void ReferenceTable::put_row(std::string_view key, TimeMs t, const Event& row,
                             const std::vector<int>& map, uint64_t stamp) {
  Version v{t, stamp, false, {}, {}};
  const size_t n = spec_.columns.size();
  v.cells.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (map[i] < 0) continue;  // null
    FieldValue c = row.values[map[i]];
    if (c.kind == FieldValue::Kind::String) {
      std::string_view s = row.str(c);
      c.s.off = static_cast<uint32_t>(v.arena.size());
      v.arena.append(s);
    }
    v.cells[i] = c;
  }
  put(key, std::move(v));
}

void ReferenceTable::upsert(std::string_view key, TimeMs t, const Event& row, uint64_t stamp) {
  put_row(key, t, row, identity_, stamp);
}

void ReferenceTable::remove(std::string_view key, TimeMs t, uint64_t stamp) {
  put(key, Version{t, stamp, true, {}, {}});
}

Status ReferenceTable::check_change(const Event& change) const {
  const FieldValue& op = change.values[change_op_];
  if (op.kind != FieldValue::Kind::String)
    return Status::Error(fmt::format("field '{}': missing (expected upsert or delete)", spec_.op));
  if (change.str(op) != "upsert" && change.str(op) != "delete")
    return Status::Error(
        fmt::format("field '{}': '{}' (expected upsert or delete)", spec_.op, change.str(op)));
  if (change.values[change_columns_[spec_.key_column]].is_null())
    return Status::Error(
        fmt::format("field '{}' (the table's key): missing", spec_.columns[spec_.key_column].name));
  return Status::Ok();
}

Status ReferenceTable::apply_change(const Event& change, uint64_t stamp) {
  if (Status s = check_change(change); !s.ok()) return s;
  std::string key;
  build_entity_key(change, {change_columns_[spec_.key_column]}, &key);
  if (change.str(change_op_) == "upsert")
    put_row(key, change.time, change, change_columns_, stamp);
  else
    remove(key, change.time, stamp);
  return Status::Ok();
}

size_t ReferenceTable::rows() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::shared_lock<std::shared_mutex> lock(shards_[i].mu);
    for (const auto& [key, versions] : shards_[i].rows) n += !versions.back().deleted;
  }
  return n;
}

}  // namespace millrace
