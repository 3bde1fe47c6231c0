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

// Strings are taken as written unless they hold an escape: one parser over
// lines growing longer, escapes anywhere in a value, a bad escape.
TEST_F(EventParserTest, StringsWithEscapesAreUnescaped) {
  EventParser parser(schema_, 4);
  struct Case {
    std::string line;
    std::string id;
  } cases[] = {
      {R"({"id": "plain", "ts": 1})", "plain"},
      {R"({"id": "\\start", "ts": 1})", "\\start"},
      {R"({"id": "end\n", "ts": 1})", "end\n"},
      {R"({"id": "caf\u00e9 \"q\" \ud83d\ude00", "ts": 1})", "caf\xc3\xa9 \"q\" \xf0\x9f\x98\x80"},
      {R"({"id": ")" + std::string(3000, 'x') + R"(\t", "ts": 1})", std::string(3000, 'x') + "\t"},
      {R"({"id": "", "ts": 1})", ""},
      {R"({"id": "after", "ts": 1})", "after"},
  };
  std::string line, error;
  Event event;
  for (const auto& c : cases) {
    line = c.line;
    line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    ASSERT_TRUE(parser.parse(line.data(), line.size(), line.capacity(), &event, &error))
        << c.line << ": " << error;
    EXPECT_EQ(event.str(0), c.id) << c.line;
  }
  line = R"({"id": "bad \x escape", "ts": 1})";
  line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
  EXPECT_FALSE(parser.parse(line.data(), line.size(), line.capacity(), &event, &error));
  EXPECT_EQ(
      error,
      R"(field 'id': bad escape in a string (JSON allows \" \\ \/ \b \f \n \r \t and \uXXXX))");
}

// One parser over lines whose keys come in changing orders, with keys not in
// the schema and escaped keys: the parser guesses each key's field from the
// previous line, and a wrong guess must never give a wrong field.
TEST_F(EventParserTest, KeysInAnyOrderAcrossLinesOfOneParser) {
  EventParser parser(schema_, 4);
  struct Case {
    const char* line;
    const char* id;
    double amount;
    int64_t ts;
  } cases[] = {
      {R"({"id": "a", "amount": 1.5, "ts": 10})", "a", 1.5, 10},
      {R"({"id": "b", "amount": 2.5, "ts": 20})", "b", 2.5, 20},
      {R"({"ts": 30, "id": "c", "amount": 3.5})", "c", 3.5, 30},
      {R"({"amount": 4.5, "x": {"id": "no"}, "ts": 40, "id": "d"})", "d", 4.5, 40},
      {R"({"\u0069d": "e", "amount": 5.5, "ts": 50})", "e", 5.5, 50},
      {R"({"id": "f", "amount": 6.5, "ts": 60, "ts": 61})", "f", 6.5, 61},
      {R"({"idx": "no", "id": "g", "amount": 7, "ts": 70})", "g", 7, 70},
      {R"({"id": "h", "amount": 8.5, "ts": 80})", "h", 8.5, 80},
  };
  std::string line, error;
  Event event;
  for (const auto& c : cases) {
    line = c.line;
    line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    ASSERT_TRUE(parser.parse(line.data(), line.size(), line.capacity(), &event, &error))
        << c.line << ": " << error;
    EXPECT_EQ(event.str(0), c.id) << c.line;
    EXPECT_EQ(event.values[1].kind, FieldValue::Kind::Double) << c.line;
    EXPECT_EQ(event.values[1].d, c.amount) << c.line;
    EXPECT_EQ(event.time, c.ts) << c.line;
    EXPECT_TRUE(event.values[2].is_null()) << c.line;
  }
  // A value of the wrong type after lines that were right still names the field.
  line = R"({"id": "a", "amount": "ten", "ts": 5})";
  line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
  EXPECT_FALSE(parser.parse(line.data(), line.size(), line.capacity(), &event, &error));
  EXPECT_EQ(error, "field 'amount': expected number, got string");
}

// Keys are first compared as written with the name expected at their
// position, 8 bytes at a time: names of one to several words, and keys that
// share all but their last byte or stop short of the name, go to their field.
TEST(EventParser, KeysSharingPrefixesWithLongAndShortNames) {
  Schema schema;
  schema.add({"merchant_category_code", FieldType::String, true});  // 3 words with the quote
  schema.add({"merchant_category_codf", FieldType::String, true});
  schema.add({"a_field_name_longer_than_thirty_one_bytes", FieldType::Int64, true});
  schema.add({"m", FieldType::Int64, true});
  schema.add({"ts", FieldType::Int64, false});
  EventParser parser(schema, 4);
  struct Case {
    const char* line;
    const char* code;  // field 0, "" when null
    const char* codf;  // field 1
    int64_t longer;    // field 2, -1 when null
    int64_t m;         // field 3, -1 when null
  } cases[] = {
      {R"({"merchant_category_code": "a", "merchant_category_codf": "b", "a_field_name_longer_than_thirty_one_bytes": 1, "m": 2, "ts": 1})",
       "a", "b", 1, 2},
      {R"({"merchant_category_codf": "c", "merchant_category_code": "d", "a_field_name_longer_than_thirty_one_bytes": 3, "m": 4, "ts": 2})",
       "d", "c", 3, 4},
      {R"({"merchant_category_cod": "x", "merchant_category_code_": "y", "a_field_name_longer_than_thirty_one_byte": 5, "mm": 6, "ts": 3})",
       "", "", -1, -1},
      {R"({"merchant_category_code": "e", "merchant_category_codf": "f", "a_field_name_longer_than_thirty_one_bytes": 7, "m": 8, "ts": 4})",
       "e", "f", 7, 8},
      {R"({"merchant\u005fcategory_code": "g", "merchant_category_codf": "h", "m": 9, "ts": 5})",
       "g", "h", -1, 9},
  };
  std::string line, error;
  Event event;
  for (const auto& c : cases) {
    line = c.line;
    line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    ASSERT_TRUE(parser.parse(line.data(), line.size(), line.capacity(), &event, &error))
        << c.line << ": " << error;
    EXPECT_EQ(event.values[0].is_null() ? "" : event.str(0), std::string(c.code)) << c.line;
    EXPECT_EQ(event.values[1].is_null() ? "" : event.str(1), std::string(c.codf)) << c.line;
    EXPECT_EQ(event.values[2].is_null() ? -1 : event.values[2].i, c.longer) << c.line;
    EXPECT_EQ(event.values[3].is_null() ? -1 : event.values[3].i, c.m) << c.line;
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
