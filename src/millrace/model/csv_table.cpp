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

Result<bool> CsvReader::next(std::vector<std::string_view>* cells, size_t* line) {
  const char* s = text_.data();
  const size_t n = text_.size();
  if (pos_ >= n) return false;
  cells_.clear();
  unquoted_.clear();
  *line = line_;
  size_t i = pos_;
  for (;;) {
    // One cell: a run of plain bytes, or, once a quote is seen, built in unquoted_.
    const size_t begin = i;
    while (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '"') ++i;
    Cell cell{begin, i - begin, false};
    if (i < n && s[i] == '"') {
      cell = Cell{unquoted_.size(), 0, true};
      unquoted_.append(s + begin, i - begin);
      bool quoted = false;
      for (; i < n; ++i) {
        const char c = s[i];
        if (quoted) {
          if (c == '"' && i + 1 < n && s[i + 1] == '"') {
            unquoted_ += '"';
            ++i;
          } else if (c == '"') {
            quoted = false;
          } else {
            if (c == '\n') ++line_;
            unquoted_ += c;
          }
        } else if (c == '"') {
          quoted = true;
        } else if (c == ',' || c == '\n') {
          break;
        } else {
          unquoted_ += c;
        }
      }
      if (quoted)
        return Status::Error(fmt::format("{}:{}: unterminated quoted cell", path_, line_));
      cell.size = unquoted_.size() - cell.begin;
    }
    const bool last = i >= n || s[i] == '\n';
    if (i < n && s[i] == '\n' && cell.size > 0) {
      const char back =
          cell.unquoted ? unquoted_[cell.begin + cell.size - 1] : s[cell.begin + cell.size - 1];
      if (back == '\r') --cell.size;
    }
    cells_.push_back(cell);
    if (last) {
      if (i < n) ++line_;
      pos_ = i + 1;
      break;
    }
    ++i;  // past the comma
  }
  cells->clear();
  for (const Cell& c : cells_)
    cells->emplace_back((c.unquoted ? unquoted_.data() : s) + c.begin, c.size);
  return true;
}

Status for_each_csv_row(
    const std::string& path,
    const std::function<Status(const std::vector<std::string_view>& header)>& on_header,
    const std::function<Status(const std::vector<std::string_view>& cells, size_t line)>& on_row) {
  auto text = read_file_to_string(path);
  if (!text.ok()) return text.status();
  CsvReader reader(path, *text);
  std::vector<std::string_view> cells;
  size_t line = 0, columns = 0;
  bool header = true;
  for (;;) {
    MR_TRY_ASSIGN(more, reader.next(&cells, &line));
    if (!more) break;
    if (header) {
      header = false;
      columns = cells.size();
      if (Status st = on_header(cells); !st.ok()) return st;
    } else if (cells.size() == 1 && cells[0].empty()) {
      // blank line
    } else if (cells.size() != columns) {
      return Status::Error(fmt::format("{}:{}: expected {} cells (as in the header), got {}", path,
                                       line, columns, cells.size()));
    } else if (Status st = on_row(cells, line); !st.ok()) {
      return st;
    }
  }
  if (header) return Status::Error(path + ": empty file; expected a header row");
  return Status::Ok();
}

Result<CsvTable> read_csv(const std::string& path) {
  CsvTable t;
  t.path = path;
  Status st = for_each_csv_row(
      path,
      [&](const std::vector<std::string_view>& header) {
        t.header.assign(header.begin(), header.end());
        return Status::Ok();
      },
      [&](const std::vector<std::string_view>& cells, size_t line) {
        t.rows.emplace_back(cells.begin(), cells.end());
        t.row_lines.push_back(line);
        return Status::Ok();
      });
  if (!st.ok()) return st;
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
