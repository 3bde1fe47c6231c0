// Derived features in store reads: which expressions a read of a feature set
// evaluates (and which it cannot), and, on a randomized out-of-order stream,
// that a read right after each event, as of the event's time, gives every
// derived feature of the event's keys the value the online path gave that
// event (same sliding state, batch values, table rows as of t).
#include "millrace/store/derived_reads.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "millrace/core/entity_key.h"
#include "millrace/core/event_parser.h"
#include "millrace/store/embedded_store.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

std::string spec_text(const TempDir& dir) {
  return fmt::format(R"SPEC(
source:
  time: ts
  allowed_lateness: 1h
  schema: {{id: string, card_id: string, merchant_id: string, amount: double?, ts: int64}}
batch:
  - {{name: card_stats, path: {0}/card_stats.csv, key: card_id, as_of: as_of,
     columns: {{avg_amount: double?}}, poll: 0}}
tables:
  - {{name: merchants, path: {0}/merchants.csv, key: merchant_id, columns: {{risk: double?}},
     changes: {0}/changes.jsonl, time: ts}}
features:
  - {{name: card_n_5m, key: card_id, agg: count, window: 5m}}
  - {{name: card_avg_1h, key: card_id, agg: avg, field: amount, window: 1h}}
  - {{name: card_max_10m, key: card_id, agg: max, field: amount, window: 10m}}
  - {{name: merchant_n_5m, key: merchant_id, agg: count, window: 5m}}
  - {{name: card_ratio, expr: "card_avg_1h / coalesce(batch.card_stats.avg_amount, card_avg_1h)"}}
  - {{name: card_busy, expr: "card_n_5m >= 3"}}
  - {{name: card_is_c1, expr: "card_id == 'c1'"}}
  - {{name: card_score, expr: "if(card_busy, 1, 0) + coalesce(card_max_10m, 0)"}}
  - {{name: merchant_load, expr: "coalesce(lookup(merchants, merchant_id).risk, 0.5) * merchant_n_5m"}}
  - {{name: amount_ratio, expr: "amount / card_avg_1h"}}
  - {{name: mixed, expr: "card_n_5m + merchant_n_5m"}}
  - {{name: jump, key: card_id, expr: "amount - coalesce(prev(amount), 0)"}}
  - {{name: night, expr: "hour_of_day(ts) < 6"}}
)SPEC",
                     dir.path());
}

const TimeMs kStart = 1'767'225'600'000;

void write_files(const TempDir& dir, std::mt19937_64& rng) {
  std::ofstream batch(dir.file("card_stats.csv"));
  batch << "card_id,as_of,avg_amount\n";
  for (int c = 0; c < 10; ++c)
    for (int v = 0; v < 3; ++v)
      batch << fmt::format("c{},{},{}\n", c,
                           kStart + v * 600'000 + static_cast<TimeMs>(rng() % 600'000),
                           static_cast<double>(1 + rng() % 50000) / 100);
  std::ofstream merchants(dir.file("merchants.csv"));
  merchants << "merchant_id,risk\nm0,0.1\nm1,0.9\n";
  std::ofstream changes(dir.file("changes.jsonl"));
  TimeMs t = kStart;
  for (int i = 0; i < 30; ++i) {
    t += static_cast<TimeMs>(rng() % 120'000);
    if (rng() % 4 == 0) {
      changes << fmt::format(R"({{"op": "delete", "ts": {}, "merchant_id": "m{}"}})", t, rng() % 4)
              << "\n";
    } else {
      changes << fmt::format(R"({{"op": "upsert", "ts": {}, "merchant_id": "m{}", "risk": {}}})", t,
                             rng() % 4, static_cast<double>(rng() % 100) / 100)
              << "\n";
    }
  }
}

std::string json_of(const FeatureValue& v) {
  std::string s;
  v.append_json(s);
  return s;
}

TEST(DerivedReads, FeatureSetsTakeTheExpressionsAReadCanEvaluate) {
  TempDir dir;
  std::mt19937_64 rng(1);
  write_files(dir, rng);
  auto spec = parse_spec(spec_text(dir), dir.file("spec.yaml"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  FeaturePlan plan = plan_features(spec.value());
  EmbeddedStore store(spec.value(), plan, 1);
  auto derived = DerivedFeatures::Open(spec.value(), DerivedFeatures::Options{});
  ASSERT_TRUE(derived.ok()) << derived.status().message();
  DerivedReads reads(spec.value(), plan, store, *derived.value());
  auto names = [&](const char* set) {
    std::vector<std::string> out;
    for (int f : reads.features(plan.feature_set_index(set))) out.push_back(spec->features[f].name);
    return out;
  };
  EXPECT_EQ(names("card_id"),
            (std::vector<std::string>{"card_ratio", "card_busy", "card_is_c1", "card_score"}));
  EXPECT_EQ(names("merchant_id"), std::vector<std::string>{"merchant_load"});
}

TEST(DerivedReads, ReadAtAnEventsTimeGivesWhatTheOnlinePathGaveIt) {
  TempDir dir;
  std::mt19937_64 rng(7);
  write_files(dir, rng);
  auto parsed = parse_spec(spec_text(dir), dir.file("spec.yaml"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const PipelineSpec& spec = parsed.value();
  FeaturePlan plan = plan_features(spec);
  EmbeddedStore store(spec, plan, 1);
  auto opened = DerivedFeatures::Open(spec, DerivedFeatures::Options{});
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  DerivedFeatures& derived = *opened.value();
  auto online = derived.evaluator();
  DerivedReads reads(spec, plan, store, derived);
  EventParser parser(spec.source.schema, spec.source.time_field);
  std::vector<FeatureValue> values(spec.feature_slots());
  std::string line, err, key;
  Event e;
  FeatureVector v;
  TimeMs t = kStart;
  int compared = 0, exact = 0, non_null_ratio = 0;
  for (int i = 0; i < 3000; ++i) {
    t += static_cast<TimeMs>(rng() % 3000);
    const TimeMs ts =
        rng() % 10 == 0 ? t - static_cast<TimeMs>(rng() % 60'000) : t;  // out of order
    std::string amount =
        rng() % 10 == 0 ? "null" : fmt::format("{}", static_cast<double>(1 + rng() % 100000) / 100);
    line = fmt::format(
        R"({{"id": "t{}", "card_id": "c{}", "merchant_id": "m{}", "amount": {}, "ts": {}}})", i,
        rng() % 10, rng() % 4, amount, ts);
    line.reserve(line.size() + 64);
    ASSERT_TRUE(parser.parse(line.data(), line.size(), line.capacity(), &e, &err)) << err;
    // The online path: table changes up to t, sliding features, derived features.
    ASSERT_TRUE(derived.advance_to(e.time, kMinTime).ok());
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      build_entity_key(e, plan.groups[g].key_fields, &key);
      store.group(0, static_cast<int>(g))->on_event(key, e, kMinTime, values.data());
    }
    online->evaluate(e, values.data());
    // The same expressions over the values a read gives (recomputed below
    // from the read's own sliding values): exact.
    std::vector<FeatureValue> reread = values;
    // Reads of the event's keys at its time.
    for (const char* set_name : {"card_id", "merchant_id"}) {
      const int set = plan.feature_set_index(set_name);
      build_entity_key(e, plan.groups[plan.feature_sets[set].groups[0]].key_fields, &key);
      ASSERT_TRUE(reads.read(set, key, e.time, &v).ok());
      const std::vector<int>& outs = reads.features(set);
      for (size_t k = 0; k < plan.feature_sets[set].features.size(); ++k)
        reread[plan.feature_sets[set].features[k]] = v.values[k];
      ASSERT_EQ(v.names.size(), plan.feature_sets[set].features.size() + outs.size());
      for (size_t d = 0; d < outs.size(); ++d) {
        const size_t at = plan.feature_sets[set].features.size() + d;
        ASSERT_EQ(v.names[at], spec.features[outs[d]].name);
        // Sums in a window read at t may round differently from the running
        // aggregate the event was given (last bits): doubles within 1e-9.
        const FeatureValue& got = v.values[at];
        const FeatureValue& want = values[outs[d]];
        if (got.kind == FeatureValue::Kind::Double && want.kind == FeatureValue::Kind::Double) {
          ASSERT_NEAR(got.d, want.d, 1e-9 * std::max(1.0, std::fabs(want.d)))
              << "event " << i << " " << v.names[at];
        } else {
          ASSERT_EQ(json_of(got), json_of(want)) << "event " << i << " " << v.names[at];
        }
        ++compared;
      }
      online->evaluate(e, reread.data());
      for (size_t d = 0; d < outs.size(); ++d) {
        const size_t at = plan.feature_sets[set].features.size() + d;
        ASSERT_EQ(json_of(v.values[at]), json_of(reread[outs[d]]))
            << "event " << i << " " << v.names[at];
        ++exact;
      }
      if (set_name[0] == 'c') {
        non_null_ratio += !v.values[plan.feature_sets[set].features.size()].is_null() &&
                          v.values[plan.feature_sets[set].features.size()].d != 1.0;
        // Freshness: the newest event of the card's features it reads.
        EXPECT_NE(v.freshness.back(), kMinTime);
      }
    }
  }
  EXPECT_EQ(compared, 3000 * 5);
  EXPECT_EQ(exact, 3000 * 5);
  EXPECT_GT(non_null_ratio, 1000);  // batch values were found as of t
}

}  // namespace
}  // namespace millrace
