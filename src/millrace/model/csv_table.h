// CsvTable: a CSV file with a header row, read whole into memory, for batch
// scoring and training. Fields may be quoted ("a,b", "say ""hi"""); an empty
// cell is a missing value.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::model {

struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // each has header.size() cells
  std::vector<size_t> row_lines;               // the file line where each row starts

  // Index of the named column, or -1.
  int column(const std::string& name) const;
  // The column as floats: empty cell -> NaN; anything not a number is an error
  // naming the file, line and column.
  Result<std::vector<float>> numeric_column(size_t col) const;
};

Result<CsvTable> read_csv(const std::string& path);

// Reads CSV text record by record, without copying cells that need no
// unquoting: each record's cells are views into `text` (or into the reader,
// for a cell with quotes), valid until the next call. The
// same syntax as read_csv: a '"' anywhere opens a quoted part, ',' and
// newlines in it are text, "" is a quote; a '\r' before the newline that ends a
// record is dropped. `path` names the file in errors.
class CsvReader {
 public:
  CsvReader(std::string path, std::string_view text) : path_(std::move(path)), text_(text) {}
  // The next record into *cells (a blank line is one empty cell) and the
  // file line it starts on into *line; false at the end of the text. An
  // unterminated quoted cell is an error naming the file and line.
  Result<bool> next(std::vector<std::string_view>* cells, size_t* line);

 private:
  struct Cell {
    size_t begin, size;  // in text_, or in unquoted_ when unquoted
    bool unquoted;
  };
  std::string path_;
  std::string_view text_;
  size_t pos_ = 0, line_ = 1;
  std::vector<Cell> cells_;
  std::string unquoted_;
};

// Reads a CSV file with a header row: on_header(cells), then
// on_row(cells, line) for every row that is not blank. A row whose cell count
// differs from the header's is an error naming the file and line, as is an
// empty file.
Status for_each_csv_row(
    const std::string& path,
    const std::function<Status(const std::vector<std::string_view>& header)>& on_header,
    const std::function<Status(const std::vector<std::string_view>& cells, size_t line)>& on_row);

// Quotes a cell if it holds a comma, quote or newline.
std::string csv_escape(const std::string& cell);

}  // namespace millrace::model
