#include "millrace/model/csv_table.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "millrace/model/model.h"

namespace millrace::model {

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

Result<std::vector<float>> CsvTable::numeric_column(size_t col) const {
  std::vector<float> out;
  out.reserve(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::string& cell = rows[r][col];
    if (cell.empty()) {
      out.push_back(std::nanf(""));
      continue;
    }
    char* end = nullptr;
    const float v = std::strtof(cell.c_str(), &end);
    if (end != cell.c_str() + cell.size())
      return Status::Error(fmt::format("{}:{}: column \"{}\": expected a number, got \"{}\"", path,
                                       r + 2, header[col], cell));
    out.push_back(v);
  }
  return out;
}

Result<CsvTable> read_csv(const std::string& path) {
  auto text = read_file_to_string(path);
  if (!text.ok()) return text.status();
  const std::string& s = *text;
  CsvTable t;
  t.path = path;
  std::vector<std::string> record;
  std::string cell;
  size_t line = 1, record_line = 1, i = 0;
  bool quoted = false, any = false;
  auto end_record = [&]() -> Status {
    record.push_back(std::move(cell));
    cell.clear();
    if (t.header.empty()) {
      t.header = std::move(record);
    } else if (record.size() == 1 && record[0].empty()) {
      // blank line
    } else if (record.size() != t.header.size()) {
      return Status::Error(fmt::format("{}:{}: expected {} cells (as in the header), got {}", path,
                                       line, t.header.size(), record.size()));
    } else {
      t.rows.push_back(std::move(record));
      t.row_lines.push_back(record_line);
    }
    record.clear();
    any = false;
    return Status::Ok();
  };
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    any = true;
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      record.push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n') {
      if (!cell.empty() && cell.back() == '\r') cell.pop_back();
      Status st = end_record();
      if (!st.ok()) return st;
      ++line;
      record_line = line;
    } else {
      cell += c;
    }
  }
  if (quoted) return Status::Error(fmt::format("{}:{}: unterminated quoted cell", path, line));
  if (any || !record.empty() || !cell.empty()) {
    Status st = end_record();
    if (!st.ok()) return st;
  }
  if (t.header.empty()) return Status::Error(path + ": empty file; expected a header row");
  return t;
}

std::string csv_escape(const std::string& cell) {
  if (cell.find_first_of(",\"\n\r") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace millrace::model
