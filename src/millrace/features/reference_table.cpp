#include "millrace/features/reference_table.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "millrace/core/entity_key.h"
#include "millrace/core/hash.h"
#include "millrace/features/record_file.h"

namespace millrace {

ReferenceTable::ReferenceTable(TableSpec spec)
    : spec_(std::move(spec)), shards_(new Shard[kShards]), horizon_(kMinTime) {
  for (size_t i = 0; i < spec_.columns.size(); ++i) {
    FieldDef f = spec_.columns[i];
    f.optional = static_cast<int>(i) != spec_.key_column;
    change_schema_.add(f);
  }
  change_schema_.add({spec_.op, FieldType::String, false});
  change_schema_.add({spec_.time, FieldType::Timestamp, false});
}

Result<std::unique_ptr<ReferenceTable>> ReferenceTable::Open(TableSpec spec) {
  std::unique_ptr<ReferenceTable> t(new ReferenceTable(std::move(spec)));
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

expr::Value ReferenceTable::get(std::string_view key, TimeMs t, int column,
                                std::string* scratch) const {
  const Shard& sh = shard_of(key);
  std::shared_lock<std::shared_mutex> lock(sh.mu);
  auto it = sh.rows.find(absl::string_view(key.data(), key.size()));
  if (it == sh.rows.end()) return expr::Value::null();
  const auto& versions = it->second;
  auto after = std::upper_bound(versions.begin(), versions.end(), t,
                                [](TimeMs x, const Version& v) { return x < v.t; });
  if (after == versions.begin()) return expr::Value::null();
  const Version& v = *(after - 1);
  if (v.deleted) return expr::Value::null();
  const FieldValue& c = v.cells[column];
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
      scratch->assign(v.arena.data() + c.s.off, c.s.len);
      return expr::Value::string(*scratch);
  }
  return expr::Value::null();
}

void ReferenceTable::put(std::string_view key, Version v) {
  Shard& sh = shard_of(key);
  std::unique_lock<std::shared_mutex> lock(sh.mu);
  auto& versions = sh.rows[absl::string_view(key.data(), key.size())];
  // After the versions of the same time: of two changes at one time, the later applied wins.
  auto pos = std::upper_bound(versions.begin(), versions.end(), v.t,
                              [](TimeMs x, const Version& e) { return x < e.t; });
  versions.insert(pos, std::move(v));
  // Keep the newest version at or before the horizon and everything after it.
  const TimeMs horizon = horizon_.load(std::memory_order_relaxed);
  auto keep = std::upper_bound(versions.begin(), versions.end(), horizon,
                               [](TimeMs x, const Version& e) { return x < e.t; });
  if (keep != versions.begin()) --keep;
  versions.erase(versions.begin(), keep);
  if (versions.size() == 1 && versions[0].deleted && versions[0].t <= horizon)
    sh.rows.erase(absl::string_view(key.data(), key.size()));
}

void ReferenceTable::upsert(std::string_view key, TimeMs t, const Event& row) {
  Version v{t, false, {}, {}};
  const size_t n = spec_.columns.size();
  v.cells.resize(n);
  for (size_t i = 0; i < n; ++i) {
    FieldValue c = row.values[i];
    if (c.kind == FieldValue::Kind::String) {
      std::string_view s = row.str(c);
      c.s.off = static_cast<uint32_t>(v.arena.size());
      v.arena.append(s);
    }
    v.cells[i] = c;
  }
  put(key, std::move(v));
}

void ReferenceTable::remove(std::string_view key, TimeMs t) {
  put(key, Version{t, true, {}, {}});
}

Status ReferenceTable::apply_change(const Event& change) {
  const int op_field = static_cast<int>(spec_.columns.size());
  std::string_view op = change.str(op_field);
  std::string key;
  build_entity_key(change, {spec_.key_column}, &key);
  if (op == "upsert") {
    upsert(key, change.time, change);
  } else if (op == "delete") {
    remove(key, change.time);
  } else {
    return Status::Error(fmt::format("field '{}': '{}' (expected upsert or delete)", spec_.op, op));
  }
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
