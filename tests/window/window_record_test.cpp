// The text of window result records: written into a buffer at once for most
// keys and values, piece by piece for strings that need escaping and for
// first/last of a string; either way it is what the JSON writers of
// core/json_writer.h make of each field.
#include <sstream>

#include <gtest/gtest.h>

#include "millrace/core/json_writer.h"
#include "millrace/window/window_operator.h"

namespace millrace::testing {
namespace {

struct Key {
  FieldValue::Kind kind;
  std::string s;
  int64_t i = 0;
  double d = 0;
  bool b = false;
};

TEST(WindowRecords, TextIsWhatTheJsonWritersMake) {
  Schema schema;
  schema.add({"name", FieldType::String, true});
  schema.add({"id", FieldType::Int64, true});
  schema.add({"score", FieldType::Double, true});
  schema.add({"flag", FieldType::Bool, true});
  schema.add({"v", FieldType::Double, true});
  schema.add({"tag", FieldType::String, true});
  using K = FieldValue::Kind;
  auto str = [](std::string v) { return Key{K::String, std::move(v), 0, 0, false}; };
  auto num = [](int64_t v) { return Key{K::Int, "", v, 0, false}; };
  auto dbl = [](double v) { return Key{K::Double, "", 0, v, false}; };
  auto boolean = [](bool v) { return Key{K::Bool, "", 0, 0, v}; };
  const Key null{K::Null, "", 0, 0, false};
  const std::vector<std::vector<Key>> keys = {
      {str("plain"), num(-42), dbl(0.1), boolean(true)},
      {str("quote\" and \\ and \n"), num(1), dbl(-0.0), boolean(false)},
      {str("\xc3\xbcnicode \x7f"), null, dbl(1e300), null},
      {null, num(INT64_MIN), dbl(123456.78125), boolean(false)},
      {str(std::string(300, 'x')), num(0), null, boolean(true)},
  };
  for (bool string_agg : {false, true}) {
    WindowSpec spec;
    spec.name = "w\"1";
    spec.key_fields = {0, 1, 2, 3};
    spec.type = WindowType::Tumbling;
    spec.size = spec.slide = 1000;
    std::vector<std::pair<const char*, AggKind>> aggs = {
        {"n", AggKind::Count}, {"total", AggKind::Sum}, {"mean", AggKind::Avg},
        {"lo", AggKind::Min},  {"sd", AggKind::Stddev}, {"fv", AggKind::First}};
    for (const auto& [name, kind] : aggs) {
      WindowAggSpec a;
      a.name = name;
      a.agg = kind;
      a.field = kind == AggKind::Count ? -1 : 4;
      spec.aggs.push_back(a);
    }
    if (string_agg) {
      WindowAggSpec a;
      a.name = "lt";
      a.agg = AggKind::Last;
      a.field = 5;
      spec.aggs.push_back(a);
    }
    auto op = WindowOperator::Create(spec, schema);
    WindowOutput out;
    std::string expected;
    for (size_t k = 0; k < keys.size(); ++k) {
      Event e;
      e.reset(schema.size());
      e.time = 5000 + static_cast<TimeMs>(k);
      for (size_t f = 0; f < 4; ++f) {
        const Key& key = keys[k][f];
        FieldValue& v = e.values[f];
        if (key.kind == K::String) {
          e.set_string(static_cast<int>(f), key.s);
          continue;
        }
        v.kind = key.kind;
        if (key.kind == K::Int) v.i = key.i;
        if (key.kind == K::Double) v.d = key.d;
        if (key.kind == K::Bool) v.b = key.b;
      }
      const double value = k == 2 ? 0.30000000000000004 : 2.5 * static_cast<double>(k);
      e.values[4].kind = K::Double;
      e.values[4].d = value;
      e.set_string(5, k == 1 ? "tab\there" : "t");
      op->on_event(e, "{}", kMinTime, &out);

      std::string r = "{";
      append_json_key(r, "window", true);
      append_json_string(r, spec.name);
      const char* names[] = {"name", "id", "score", "flag"};
      for (size_t f = 0; f < 4; ++f) {
        append_json_key(r, names[f]);
        const Key& key = keys[k][f];
        switch (key.kind) {
          case K::String:
            append_json_string(r, key.s);
            break;
          case K::Int:
            append_json_int(r, key.i);
            break;
          case K::Double:
            append_json_double(r, key.d);
            break;
          case K::Bool:
            r += key.b ? "true" : "false";
            break;
          default:
            r += "null";
        }
      }
      r += R"(, "window_start": 5000, "window_end": 6000, "n": 1, "total": )";
      append_json_double(r, value);
      r += R"(, "mean": )";
      append_json_double(r, value);
      r += R"(, "lo": )";
      append_json_double(r, value);
      r += R"(, "sd": )";
      append_json_double(r, 0.0);
      r += R"(, "fv": )";
      append_json_double(r, value);
      if (string_agg) {
        r += R"(, "lt": )";
        append_json_string(r, k == 1 ? "tab\there" : "t");
      }
      r += ", \"kind\": \"final\"}\n";
      expected += r;
    }
    op->advance(kMaxTime, &out);
    EXPECT_EQ(out.results_emitted, keys.size());
    EXPECT_EQ(out.results, expected) << "string aggregate: " << string_agg;
  }
}

}  // namespace
}  // namespace millrace::testing
