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
  std::string time;       // field of a change record holding its event time (`changes`)
  std::string op = "op";  // field of a change record holding upsert or delete
  // Or the change records are the events of a spec source (`source:`): its
  // schema holds the key, the op field and the columns, by name.
  std::string source;     // its name ("" : none)
  int source_index = -1;  // into PipelineSpec::table_sources
  int line = 0;           // in the spec
};

class ReferenceTable {
 public:
  // Loads spec.path, if any; an error names the file, line and column.
  // Change records are of `change_schema` (with its time at `time_field`)
  // when given, else of the schema change_schema() describes.
  static Result<std::unique_ptr<ReferenceTable>> Open(TableSpec spec,
                                                      const Schema* change_schema = nullptr,
                                                      int time_field = -1);

  const TableSpec& spec() const { return spec_; }

  // Stamps order the changes against the reads when changes are applied
  // while readers run: a change applied with stamp s is seen by the reads
  // with a stamp >= s. The pipeline stamps a change with the sequence number
  // of the event it was applied before, and that event's reads carry it, so a
  // read sees exactly the changes that came before its event in the merged
  // stream, however late its worker runs. Rows of the initial file have stamp 0.
  static constexpr uint64_t kSeesAll = ~uint64_t{0};

  // Column `column` of key's row as of time t (among the changes with a stamp
  // <= `stamp`); null when there is none. Strings are copied into *scratch
  // (the result views it).
  expr::Value get(std::string_view key, TimeMs t, int column, std::string* scratch,
                  uint64_t stamp = kSeesAll) const;

  // A copy of key's whole row as of time t (what get() reads column by
  // column): its cells by column and the bytes their strings view.
  struct Row {
    bool found = false;  // false: no row (missing or deleted); the cells are then unset
    std::vector<FieldValue> cells;
    std::string arena;
    // Column `column` as get() gives it; strings are copied into *scratch.
    expr::Value value(int column, std::string* scratch) const;
  };
  // Reads key's row into *row (reusing its memory): one search for all the
  // columns an event reads.
  void get_row(std::string_view key, TimeMs t, Row* row, uint64_t stamp = kSeesAll) const;

  // Sets key's row from time t on; `row` holds the columns by index.
  void upsert(std::string_view key, TimeMs t, const Event& row, uint64_t stamp = 0);
  // Deletes key's row from time t on.
  void remove(std::string_view key, TimeMs t, uint64_t stamp = 0);
  // Applies a parsed change record (of the change schema); an error says why
  // it was not applied (unknown op).
  Status apply_change(const Event& change, uint64_t stamp = 0);
  // Why apply_change would reject `change` (no key, an unknown op), or Ok.
  Status check_change(const Event& change) const;
  // Change records of `changes:`: the columns (all optional but the key),
  // then the op and time fields.
  const Schema& change_schema() const { return change_schema_; }
  int change_time_field() const { return change_time_field_; }

  // Reads will only ask for times >= horizon, and with stamps >= `retired`:
  // older versions may go.
  void set_horizon(TimeMs horizon, uint64_t retired = 0) {
    horizon_.store(horizon, std::memory_order_relaxed);
    retired_.store(retired, std::memory_order_relaxed);
  }

  size_t rows() const;  // keys with a live row now (at the latest version)

 private:
  ReferenceTable(TableSpec spec, const Schema* change_schema, int time_field);
  struct Version {
    TimeMs t;
    uint64_t stamp;
    bool deleted;
    std::vector<FieldValue> cells;
    std::string arena;
  };
  // `row`'s fields of the columns: columns[i] is at row.values[map[i]] (-1: null).
  void put_row(std::string_view key, TimeMs t, const Event& row, const std::vector<int>& map,
               uint64_t stamp);
  struct Shard {
    mutable std::shared_mutex mu;
    absl::flat_hash_map<std::string, std::vector<Version>> rows;  // versions in time order
  };
  static constexpr size_t kShards = 16;
  Shard& shard_of(std::string_view key) const;
  // The version of key a read at t with `stamp` sees; nullptr for none or a
  // deletion. The caller holds sh.mu.
  const Version* find_version(const Shard& sh, std::string_view key, TimeMs t,
                              uint64_t stamp) const;
  void put(std::string_view key, Version v);

  TableSpec spec_;
  Schema change_schema_;
  int change_time_field_ = -1;
  std::vector<int> identity_;        // the columns of a row of the initial file
  std::vector<int> change_columns_;  // the columns of a change record
  int change_op_ = -1;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<TimeMs> horizon_;
  std::atomic<uint64_t> retired_;
};

}  // namespace millrace
