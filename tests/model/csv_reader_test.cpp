// CsvReader against a brute-force reference: the CSV syntax applied one byte
// at a time (quotes anywhere, doubled quotes, newlines in quotes, a '\r'
// ending a record), on random text made mostly of the bytes that matter.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "millrace/model/csv_table.h"
#include "tests/support/temp_dir.h"

namespace millrace::model {
namespace {

struct Record {
  std::vector<std::string> cells;
  size_t line;
  bool operator==(const Record& o) const { return cells == o.cells && line == o.line; }
};

// The records of `s`, byte by byte; false when a quoted cell is unterminated.
bool reference_records(const std::string& s, std::vector<Record>* out) {
  std::vector<std::string> record;
  std::string cell;
  size_t line = 1, record_line = 1;
  bool quoted = false, any = false;
  auto end_record = [&] {
    record.push_back(cell);
    cell.clear();
    out->push_back({record, record_line});
    record.clear();
    any = false;
  };
  for (size_t i = 0; i < s.size(); ++i) {
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
      record.push_back(cell);
      cell.clear();
    } else if (c == '\n') {
      if (!cell.empty() && cell.back() == '\r') cell.pop_back();
      end_record();
      ++line;
      record_line = line;
    } else {
      cell += c;
    }
  }
  if (quoted) return false;
  if (any || !record.empty() || !cell.empty()) end_record();
  return true;
}

std::string describe(const Record& r) {
  std::string out = "line " + std::to_string(r.line) + ":";
  for (const auto& c : r.cells) out += " [" + c + "]";
  return out;
}

TEST(CsvReader, MatchesByteByByteReferenceOnRandomText) {
  const char alphabet[] = {'a', 'b', '1', ',', ',', '"', '"', '\n', '\n', '\r', ' '};
  size_t records = 0, errors = 0;
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    std::mt19937_64 rng(seed);
    std::string text;
    const size_t n = rng() % 60;
    for (size_t i = 0; i < n; ++i) text += alphabet[rng() % sizeof alphabet];
    std::vector<Record> want;
    const bool ok = reference_records(text, &want);
    CsvReader reader("f.csv", text);
    std::vector<Record> got;
    std::vector<std::string_view> cells;
    size_t line = 0;
    bool failed = false;
    for (;;) {
      auto more = reader.next(&cells, &line);
      if (!more.ok()) {
        failed = true;
        EXPECT_NE(more.status().message().find("f.csv:"), std::string::npos);
        EXPECT_NE(more.status().message().find("unterminated quoted cell"), std::string::npos);
        break;
      }
      if (!more.value()) break;
      got.push_back({std::vector<std::string>(cells.begin(), cells.end()), line});
    }
    ASSERT_EQ(failed, !ok) << "seed " << seed << " text '" << text << "'";
    if (!ok) {
      ++errors;
      continue;
    }
    records += want.size();
    ASSERT_EQ(got.size(), want.size()) << "seed " << seed << " text '" << text << "'";
    for (size_t r = 0; r < want.size(); ++r)
      ASSERT_TRUE(got[r] == want[r])
          << "seed " << seed << " record " << r << " text '" << text << "' got " << describe(got[r])
          << " want " << describe(want[r]);
  }
  // The random texts reach both outcomes and many records.
  EXPECT_GT(records, 3000u);
  EXPECT_GT(errors, 100u);
}

TEST(CsvReader, ReadCsvSkipsBlankLinesAndChecksCellCounts) {
  millrace::testing::TempDir dir;
  const std::string path = dir.file("t.csv");
  std::ofstream(path) << "a,b\r\n1,\"x,\"\"y\"\"\"\r\n\n2,\"multi\nline\"\n";
  auto t = read_csv(path);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->header, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[0], (std::vector<std::string>{"1", "x,\"y\""}));
  EXPECT_EQ(t->rows[1], (std::vector<std::string>{"2", "multi\nline"}));
  EXPECT_EQ(t->row_lines, (std::vector<size_t>{2, 4}));

  std::ofstream(path) << "a,b\n1,2\n3\n";
  auto bad = read_csv(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("t.csv:3: expected 2 cells (as in the header), got 1"),
            std::string::npos)
      << bad.status().message();

  std::ofstream(path) << "";
  auto empty = read_csv(path);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty file"), std::string::npos);
}

}  // namespace
}  // namespace millrace::model
