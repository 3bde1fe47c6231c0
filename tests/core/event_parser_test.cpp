#include "millrace/core/event_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "millrace/core/json_writer.h"

namespace millrace {
namespace {

class EventParserTest : public ::testing::Test {
 protected:
  EventParserTest() {
    schema_.add({"id", FieldType::String, false});
    schema_.add({"amount", FieldType::Double, true});
    schema_.add({"n", FieldType::Int64, true});
    schema_.add({"ok", FieldType::Bool, true});
    schema_.add({"ts", FieldType::Int64, false});
  }
  bool parse(const std::string& text) {
    line_ = text;
    line_.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    EventParser parser(schema_, 4);
    return parser.parse(line_.data(), line_.size(), line_.capacity(), &event_, &error_);
  }
  Schema schema_;
  std::string line_;
  Event event_;
  std::string error_;
};

TEST_F(EventParserTest, ParsesTypedFields) {
  ASSERT_TRUE(parse(R"({"id": "a\"b", "amount": 12, "n": 7, "ok": true, "ts": 1000, "x": [1]})"))
      << error_;
  EXPECT_EQ(event_.str(0), "a\"b");
  EXPECT_EQ(event_.values[1].kind, FieldValue::Kind::Double);
  EXPECT_EQ(event_.values[1].d, 12.0);
  EXPECT_EQ(event_.values[2].i, 7);
  EXPECT_TRUE(event_.values[3].b);
  EXPECT_EQ(event_.time, 1000);
}

TEST_F(EventParserTest, OptionalFieldsMayBeMissingOrNull) {
  ASSERT_TRUE(parse(R"({"id": "a", "amount": null, "ts": 5})")) << error_;
  EXPECT_TRUE(event_.values[1].is_null());
  EXPECT_TRUE(event_.values[2].is_null());
}

TEST_F(EventParserTest, TimeAsRfc3339) {
  ASSERT_TRUE(parse(R"({"id": "a", "ts": "2026-01-01T00:00:01Z"})")) << error_;
  EXPECT_EQ(event_.time, 1767225601000);
  EXPECT_FALSE(parse(R"({"id": "a", "ts": "soon"})"));
  EXPECT_EQ(error_, "field 'ts': 'soon' is not an RFC 3339 timestamp");
}

TEST_F(EventParserTest, RejectsWithReasons) {
  struct Case {
    const char* line;
    const char* error;
  } cases[] = {
      {R"({"amount": 1, "ts": 5})", "missing required field 'id'"},
      {R"({"id": "a", "amount": "ten", "ts": 5})", "field 'amount': expected number, got string"},
      {R"({"id": "a", "n": 1.5, "ts": 5})", "field 'n': expected integer, got number"},
      {R"({"id": 3, "ts": 5})", "field 'id': expected string, got number"},
      {R"({"id": "a", "ok": 1, "ts": 5})", "field 'ok': expected boolean, got number"},
      {R"({"id": null, "ts": 5})", "field 'id' is null but required"},
      {R"({"id": "a", "ts": null})", "field 'ts' is null but required"},
      {R"({"id": "a"})", "missing required field 'ts'"},
      {R"([1, 2])", "not a JSON object"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(parse(c.line)) << c.line;
    EXPECT_EQ(error_, c.error) << c.line;
  }
  for (const char* bad : {R"({"id": "a", "ts": 5)", "not json", R"({"id": "a", "ts": 5} x)", "",
                          R"({"id": "a" "ts": 5})"}) {
    EXPECT_FALSE(parse(bad)) << bad;
    EXPECT_FALSE(error_.empty());
  }
}

TEST(JsonWriter, EscapesAndFormats) {
  std::string out;
  append_json_string(out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
  out.clear();
  append_json_double(out, 0.1);
  out += ' ';
  append_json_double(out, 1.0 / 0.0);
  out += ' ';
  append_json_int(out, -42);
  EXPECT_EQ(out, "0.1 null -42");
}

}  // namespace
}  // namespace millrace
