// A reference table for stream-table joins: rows keyed by one column, loaded
// from a CSV or JSON-lines file and kept current by change records
//
//   {"op": "upsert", "ts": 1767225600000, "merchant_id": "m7", "risk": 0.8, "country": "FR"}
//   {"op": "delete", "ts": 1767312000000, "merchant_id": "m7"}
//
// Reads are point-in-time: the row of key k as of time t is the one set by
// k's latest change with time <= t (rows of the initial file hold from the
// beginning of time); a deleted or missing row is null. An upsert replaces
// the whole row (a column it leaves out is null). Changes may arrive out of
// order: each is placed at its time. Versions that no read can need (older
// than the newest one at or before the horizon the caller sets) are dropped.
//
// Thread-safe: readers (workers) and the writer (the thread applying changes)
// work at once; rows are spread over shards, each behind a reader-writer lock.
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "millrace/core/event.h"
#include "millrace/core/schema.h"
#include "millrace/core/status.h"
#include "millrace/expr/value.h"

namespace millrace {

struct TableSpec {
  std::string name;
  std::string path;       // initial rows ("" : the table starts empty)
  Schema columns;         // every column, the key among them
  int key_column = -1;    // index in `columns`
  std::string changes;    // change records: a JSON-lines file or log:DIR/TOPIC ("" : none)
  std::string time;       // field of a change record holding its event time
  std::string op = "op";  // field of a change record holding upsert or delete
  int line = 0;           // in the spec
};

class ReferenceTable {
 public:
  // Loads spec.path, if any; an error names the file, line and column.
  static Result<std::unique_ptr<ReferenceTable>> Open(TableSpec spec);

  const TableSpec& spec() const { return spec_; }

  // Column `column` of key's row as of time t; null when there is none.
  // Strings are copied into *scratch (the result views it).
  expr::Value get(std::string_view key, TimeMs t, int column, std::string* scratch) const;

  // Sets key's row from time t on; `row` holds the columns by index.
  void upsert(std::string_view key, TimeMs t, const Event& row);
  // Deletes key's row from time t on.
  void remove(std::string_view key, TimeMs t);
  // Applies a parsed change record (of change_schema()); an error says why
  // it was not applied (unknown op, missing key).
  Status apply_change(const Event& change);
  // Change records: the columns (all optional but the key), then the op and
  // time fields.
  const Schema& change_schema() const { return change_schema_; }
  int change_time_field() const { return static_cast<int>(spec_.columns.size()) + 1; }

  // Reads will only ask for times >= horizon: older versions may go.
  void set_horizon(TimeMs horizon) { horizon_.store(horizon, std::memory_order_relaxed); }

  size_t rows() const;  // keys with a live row now (at the latest version)

 private:
  explicit ReferenceTable(TableSpec spec);
  struct Version {
    TimeMs t;
    bool deleted;
    std::vector<FieldValue> cells;
    std::string arena;
  };
  struct Shard {
    mutable std::shared_mutex mu;
    absl::flat_hash_map<std::string, std::vector<Version>> rows;  // versions in time order
  };
  static constexpr size_t kShards = 16;
  Shard& shard_of(std::string_view key) const;
  void put(std::string_view key, Version v);

  TableSpec spec_;
  Schema change_schema_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<TimeMs> horizon_;
};

}  // namespace millrace
