// CsvTable: a CSV file with a header row, read whole into memory, for batch
// scoring and training. Fields may be quoted ("a,b", "say ""hi"""); an empty
// cell is a missing value.
#pragma once

#include <cstddef>
#include <string>
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

// Quotes a cell if it holds a comma, quote or newline.
std::string csv_escape(const std::string& cell);

}  // namespace millrace::model
