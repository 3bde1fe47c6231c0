#include "millrace/stream/spec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace millrace {
namespace {

const char* kHeader = R"(source:
  time: ts
  schema: {id: string, card: string, amount: double?, ts: int64}
)";

std::string error_of(const std::string& text) {
  auto spec = parse_spec(text, "s.yaml");
  return spec.ok() ? "" : spec.status().message();
}

TEST(Spec, ParsesTheExample) {
  auto spec = parse_spec(std::string(kHeader) + R"(  max_out_of_orderness: 2s
  allowed_lateness: 1m
  late: side_output
features:
  - {name: c5, key: [card], agg: count, window: 5m}
  - {name: a, key: card, agg: quantile, q: 0.9, field: amount, window: 1h}
  - {name: p, key: [card, id], agg: prev, field: amount}
)",
                         "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->source.max_out_of_orderness, 2000);
  EXPECT_EQ(spec->source.allowed_lateness, 60'000);
  EXPECT_EQ(spec->source.late, LatePolicy::SideOutput);
  EXPECT_TRUE(spec->source.schema[2].optional);
  ASSERT_EQ(spec->features.size(), 3u);
  EXPECT_EQ(spec->features[0].window, 300'000);
  EXPECT_EQ(spec->features[1].agg, AggKind::Quantile);
  EXPECT_DOUBLE_EQ(spec->features[1].q, 0.9);
  EXPECT_EQ(spec->features[2].key_fields.size(), 2u);
  EXPECT_EQ(spec->features[2].window, 86'400'000);  // prev looks back a day by default
}

TEST(Spec, ErrorsNameTheLineAndTheField) {
  std::string h = kHeader;
  EXPECT_EQ(error_of(h + "features:\n  - {name: x, key: [card], agg: cnt, window: 5m}\n"),
            "s.yaml:5: feature 'x': unknown agg 'cnt' (expected count, sum, avg, min, max, "
            "stddev, count_distinct, first, last, quantile, prev, time_since_last or is_new)");
  EXPECT_EQ(error_of(h + "features:\n  - {name: x, key: [cardd], agg: count, window: 5m}\n"),
            "s.yaml:5: feature 'x': key field 'cardd' is not in the source schema");
  EXPECT_EQ(error_of(h + "features:\n  - {name: x, key: [card], agg: sum, window: 5m}\n"),
            "s.yaml:5: feature 'x': sum needs a 'field'");
  EXPECT_EQ(
      error_of(h + "features:\n  - {name: x, key: [card], agg: sum, field: id, window: 5m}\n"),
      "s.yaml:5: feature 'x': sum needs a numeric field, 'id' is string");
  EXPECT_EQ(
      error_of(h + "features:\n  - {name: x, key: [card], agg: count, window: 5q}\n"),
      "s.yaml:5: feature 'x': window: bad duration '5q': unknown unit 'q' (use ms, s, m, h or d)");
  EXPECT_EQ(error_of(h + "features:\n  - {name: x, key: [card], agg: count}\n"),
            "s.yaml:5: feature 'x': missing 'window' (e.g. 5m)");
  EXPECT_EQ(error_of(h + "features:\n  - {name: x, key: [card], agg: count, windw: 5m}\n"),
            "s.yaml:5: feature 'x': unknown key 'windw' (expected one of: name, source, key, agg, "
            "field, window, q, ttl, slice, expr)");
  EXPECT_EQ(error_of(h + "features:\n  - {name: amount, key: [card], agg: count, window: 1m}\n"),
            "s.yaml:5: feature 'amount': the name is already used by a field or another feature");
  EXPECT_EQ(error_of("source:\n  time: when\n  schema: {id: string}\n"),
            "s.yaml:2: source.time: field 'when' is not in the schema");
  EXPECT_EQ(error_of("source:\n  time: ts\n  schema: {ts: integer}\n"),
            "s.yaml:3: source.schema: field 'ts': unknown type 'integer' (expected string, int64, "
            "double, bool or timestamp, with '?' for optional)");
  EXPECT_EQ(error_of(h + "  late: maybe\n"),
            "s.yaml:4: source.late: late policy 'maybe' (expected drop or side_output)");
  EXPECT_NE(error_of("source: [unclosed\n").find("s.yaml:"), std::string::npos);
  std::string many = h + "features:\n";
  for (int i = 0; i <= 10'000; ++i)
    many += fmt::format("  - {{name: f{}, key: [card], agg: count, window: 5m}}\n", i);
  EXPECT_EQ(error_of(many),
            "s.yaml:5: features: 10001 entries, at most 10000 in one spec (split it into specs of "
            "fewer features)");
  EXPECT_EQ(error_of("features: []\n"),
            "s.yaml: missing 'source:' section (or 'sources:', by name)");
}

TEST(Spec, WindowErrors) {
  std::string h = std::string(kHeader) + "windows:\n";
  EXPECT_EQ(
      error_of(
          h + "  - {name: w, key: card, type: hopping, size: 1m, aggs: [{name: n, agg: count}]}\n"),
      "s.yaml:5: window 'w': hopping window needs 'slide'");
  EXPECT_EQ(
      error_of(
          h + "  - {name: w, key: card, type: rolling, size: 1m, aggs: [{name: n, agg: count}]}\n"),
      "s.yaml:5: window 'w': type 'rolling' (expected tumbling, hopping or session)");
  EXPECT_EQ(error_of(h + "  - {name: w, key: card, type: session, gap: 1m, aggs: []}\n"),
            "s.yaml:5: window 'w': 'aggs' must list at least one aggregate");
}

}  // namespace
}  // namespace millrace
