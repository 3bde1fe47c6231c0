#include "millrace/features/record_file.h"

#include <charconv>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <simdjson.h>

#include "millrace/core/event_parser.h"
#include "millrace/model/csv_table.h"

namespace millrace {
namespace {

bool is_json_lines(const std::string& path) {
  auto ends_with = [&](const char* ext) {
    std::string_view p = path, e = ext;
    return p.size() >= e.size() && p.substr(p.size() - e.size()) == e;
  };
  return ends_with(".jsonl") || ends_with(".ndjson") || ends_with(".json");
}

// Sets field i of `e` from a CSV cell; false with *expected set when it does not fit.
bool set_cell(Event& e, int i, const FieldDef& def, bool is_time, std::string_view cell,
              const char** expected) {
  FieldValue& v = e.values[i];
  if (cell.empty()) {
    *expected = "a value (the column is required)";
    return def.optional && !is_time;
  }
  const char* b = cell.data();
  const char* end = b + cell.size();
  if (is_time || def.type == FieldType::Timestamp) {
    int64_t t;
    auto r = std::from_chars(b, end, t);
    if (r.ec != std::errc() || r.ptr != end) {
      auto p = parse_rfc3339_ms(cell);
      if (!p) {
        *expected = "epoch milliseconds or an RFC 3339 timestamp";
        return false;
      }
      t = *p;
    }
    v.kind = FieldValue::Kind::Int;
    v.i = t;
    if (is_time) e.time = t;
    return true;
  }
  switch (def.type) {
    case FieldType::String:
      e.set_string(i, cell);
      return true;
    case FieldType::Int64: {
      auto r = std::from_chars(b, end, v.i);
      if (r.ec != std::errc() || r.ptr != end) {
        *expected = "an integer";
        return false;
      }
      v.kind = FieldValue::Kind::Int;
      return true;
    }
    case FieldType::Double: {
      auto r = std::from_chars(b, end, v.d);
      if (r.ec != std::errc() || r.ptr != end || !std::isfinite(v.d)) {
        *expected = "a number";
        return false;
      }
      v.kind = FieldValue::Kind::Double;
      return true;
    }
    case FieldType::Bool:
      if (cell == "true" || cell == "1") {
        v.b = true;
      } else if (cell == "false" || cell == "0") {
        v.b = false;
      } else {
        *expected = "true or false";
        return false;
      }
      v.kind = FieldValue::Kind::Bool;
      return true;
    default:
      return false;
  }
}

Status read_csv_records(const std::string& path, const Schema& schema, int time_field,
                        const std::function<Status(const Event&, int line)>& on_record) {
  std::vector<int> column_of(schema.size(), -1);
  Event e;
  return model::for_each_csv_row(
      path,
      [&](const std::vector<std::string_view>& header) {
        std::string expected_columns;
        for (size_t i = 0; i < schema.size(); ++i) {
          for (size_t c = 0; c < header.size() && column_of[i] < 0; ++c)
            if (header[c] == schema[i].name) column_of[i] = static_cast<int>(c);
          expected_columns += (i ? ", " : "") + schema[i].name;
        }
        for (size_t i = 0; i < schema.size(); ++i) {
          if (column_of[i] < 0 && (!schema[i].optional || static_cast<int>(i) == time_field))
            return Status::Error(
                fmt::format("{}:1: the header has no column '{}' (expected columns: {})", path,
                            schema[i].name, expected_columns));
        }
        return Status::Ok();
      },
      [&](const std::vector<std::string_view>& cells, size_t row_line) {
        const int line = static_cast<int>(row_line);
        e.reset(schema.size());
        for (size_t i = 0; i < schema.size(); ++i) {
          if (column_of[i] < 0) continue;
          const std::string_view cell = cells[column_of[i]];
          const char* expected = "";
          if (!set_cell(e, static_cast<int>(i), schema[i], static_cast<int>(i) == time_field, cell,
                        &expected))
            return Status::Error(fmt::format("{}:{}: column '{}': expected {}, got \"{}\"", path,
                                             line, schema[i].name, expected, cell));
        }
        return on_record(e, line);
      });
}

Status read_json_records(const std::string& path, const Schema& schema, int time_field,
                         const std::function<Status(const Event&, int line)>& on_record) {
  std::ifstream in(path);
  if (!in) return Status::Error(fmt::format("{}: cannot read the file", path));
  EventParser parser(schema, time_field);
  Event e;
  std::string line, error;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const size_t len = line.size();
    line.resize(len + simdjson::SIMDJSON_PADDING);
    if (!parser.parse(line.data(), len, line.size(), &e, &error))
      return Status::Error(fmt::format("{}:{}: {}", path, n, error));
    if (auto s = on_record(e, n); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

Status read_record_file(const std::string& path, const Schema& schema, int time_field,
                        const std::function<Status(const Event&, int line)>& on_record) {
  if (is_json_lines(path)) return read_json_records(path, schema, time_field, on_record);
  return read_csv_records(path, schema, time_field, on_record);
}

}  // namespace millrace
