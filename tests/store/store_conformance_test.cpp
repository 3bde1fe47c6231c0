// The Redis store and the embedded store return the same vectors for the same
// stream, read as of slice boundaries (where the Redis store is exact), for
// every aggregate Redis keeps, with features of two sources in one feature set.
// Redis is a real redis-server on a free loopback port.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "millrace/core/event_parser.h"
#include "millrace/features/derived_features.h"
#include "millrace/features/feature_plan.h"
#include "millrace/store/derived_reads.h"
#include "millrace/store/embedded_store.h"
#include "millrace/store/redis_store.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::RedisServer;
using millrace::testing::TempDir;

std::string spec_text(const std::string& uri) {
  return R"(
sources:
  transactions:
    time: ts
    allowed_lateness: 10m
    schema: {id: string, card_id: string, terminal_id: string, amount: double?, ts: int64}
  labels:
    time: reported_at
    allowed_lateness: 10m
    schema: {terminal_id: string, loss: double, reported_at: int64}
store: {uri: )" +
         uri + R"Y(, slice: 1m, prefix: conf}
features:
  - {name: card_n_5m, key: card_id, agg: count, window: 5m}
  - {name: card_sum_10m, key: card_id, agg: sum, field: amount, window: 10m}
  - {name: card_avg_10m, key: card_id, agg: avg, field: amount, window: 10m}
  - {name: card_sd_10m, key: card_id, agg: stddev, field: amount, window: 10m}
  - {name: card_min_5m, key: card_id, agg: min, field: amount, window: 5m}
  - {name: card_max_5m, key: card_id, agg: max, field: amount, window: 5m}
  - {name: card_terminals_30m, key: card_id, agg: count_distinct, field: terminal_id, window: 30m}
  - {name: card_first_terminal_10m, key: card_id, agg: first, field: terminal_id, window: 10m}
  - {name: card_last_amount, key: card_id, agg: last, field: amount, window: 1h, ttl: 3m}
  - {name: card_prev_terminal, key: card_id, agg: prev, field: terminal_id, window: 1h}
  - {name: card_since, key: card_id, agg: time_since_last, window: 1h}
  - {name: terminal_n_10m, key: terminal_id, agg: count, window: 10m}
  - {name: terminal_frauds_1h, source: labels, key: terminal_id, agg: count, window: 1h}
  - {name: terminal_loss_max_30m, source: labels, key: terminal_id, agg: max, field: loss, window: 30m}
  # Derived features a read evaluates as of t over the set's values (not kept in Redis).
  - {name: card_mean_10m, expr: "card_sum_10m / max(card_n_5m, 1)"}
  - {name: card_busy, expr: "card_n_5m > 3 or coalesce(card_max_5m, 0) > 900"}
  - {name: card_spread, expr: "if(card_n_5m > 1, card_max_5m - card_min_5m, 0.0)"}
  - {name: terminal_risk, expr: "coalesce(terminal_loss_max_30m, 0.0) * log1p(terminal_frauds_1h)"}
)Y";
}

TEST(StoreConformance, RedisAndEmbeddedGiveTheSameVectors) {
  RedisServer redis;
  ASSERT_TRUE(redis.ready()) << "redis-server did not start (scripts/setup.sh installs it)";
  TempDir dir;
  auto parsed = parse_spec(spec_text(redis.uri()), "spec.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const PipelineSpec& spec = parsed.value();
  const TimeMs t0 = 1'767'225'600'000;
  std::mt19937_64 rng(11);
  std::vector<std::string> tx, labels;
  TimeMs t = t0;
  for (int i = 0; i < 3000; ++i) {
    t += static_cast<TimeMs>(rng() % 3000);
    std::string amount = rng() % 10 ? fmt::format("{}", (rng() % 100000) / 100.0) : "null";
    tx.push_back(fmt::format(
        R"({{"id": "t{}", "card_id": "c{}", "terminal_id": "m{}", "amount": {}, "ts": {}}})", i,
        rng() % 30, rng() % 8, amount, t));
    if (rng() % 8 == 0)
      labels.push_back(fmt::format(R"({{"terminal_id": "m{}", "loss": {}, "reported_at": {}}})",
                                   rng() % 8, (rng() % 5000) / 10.0, t));
  }
  const TimeMs end = t;
  {
    std::ofstream a(dir.file("tx.jsonl")), b(dir.file("labels.jsonl"));
    for (auto& l : tx) a << l << "\n";
    for (auto& l : labels) b << l << "\n";
  }
  RunOptions ro;
  ro.source_inputs = {{"transactions", dir.file("tx.jsonl")}, {"labels", dir.file("labels.jsonl")}};
  ro.output = "";
  ro.workers = 2;
  ro.worker_thread = true;
  auto stats = run_pipeline(spec, ro);
  ASSERT_TRUE(stats.ok()) << stats.status().message();

  // The embedded store, fed the same events in the same (merged) order.
  FeaturePlan plan = plan_features(spec);
  EmbeddedStore embedded(spec, plan, 1);
  {
    EventParser ptx(spec.sources[0].schema, spec.sources[0].time_field);
    EventParser plb(spec.sources[1].schema, spec.sources[1].time_field);
    size_t i = 0, j = 0;
    Event e;
    std::string line, err;
    std::vector<FeatureValue> out(spec.features.size());
    while (i < tx.size() || j < labels.size()) {
      // Labels share the transactions' times: ties go to transactions.
      auto ts_of = [](const std::string& l) { return std::stoll(l.substr(l.rfind(':') + 2)); };
      const bool take_tx =
          j == labels.size() || (i < tx.size() && ts_of(tx[i]) <= ts_of(labels[j]));
      line = take_tx ? tx[i++] : labels[j++];
      const int src = take_tx ? 0 : 1;
      line.reserve(line.size() + 64);
      ASSERT_TRUE((src ? plb : ptx).parse(line.data(), line.size(), line.capacity(), &e, &err))
          << err;
      for (size_t g = 0; g < plan.groups.size(); ++g) {
        if (plan.groups[g].source != src) continue;
        std::string key(e.str(plan.groups[g].key_fields[0]));
        embedded.group(0, static_cast<int>(g))->on_event(key, e, kMinTime, out.data());
      }
    }
  }
  auto rs = RedisStore::Open(spec, plan);
  ASSERT_TRUE(rs.ok()) << rs.status().message();
  // Both stores read through the derived features, as `millrace features get`
  // and the HTTP endpoint do.
  auto derived = DerivedFeatures::Open(spec, DerivedFeatures::Options{});
  ASSERT_TRUE(derived.ok() && derived.value()) << derived.status().message();
  DerivedReads from_embedded(spec, plan, embedded, *derived.value());
  DerivedReads from_redis(spec, plan, *rs.value(), *derived.value());
  int compared = 0, nonzero = 0, derived_compared = 0;
  // Reads as of any slice boundary the stores keep: from the end of the
  // stream back by the allowed lateness (older slices may be gone from Redis).
  for (TimeMs at = (end - 540'000) / 60000 * 60000; at <= end + 180'000; at += 60000) {
    for (int set = 0; set < static_cast<int>(plan.feature_sets.size()); ++set) {
      const int nkeys = plan.feature_sets[set].name == "card_id" ? 30 : 8;
      for (int k = 0; k < nkeys; ++k) {
        std::string key = fmt::format("{}{}", set == 0 ? "c" : "m", k);
        FeatureVector a, b;
        ASSERT_TRUE(from_embedded.read(set, key, at, &a).ok());
        Status st = from_redis.read(set, key, at, &b);
        ASSERT_TRUE(st.ok()) << st.message();
        ASSERT_EQ(a.names, b.names);
        for (size_t f = 0; f < a.names.size(); ++f) {
          std::string what = fmt::format("{} {} at {}", a.names[f], key, at);
          const FeatureValue &x = a.values[f], &y = b.values[f];
          ASSERT_EQ(x.is_null(), y.is_null()) << what;
          EXPECT_EQ(a.freshness[f], b.freshness[f]) << what;
          if (x.is_null()) continue;
          if (x.kind == FeatureValue::Kind::String) {
            EXPECT_EQ(x.s, y.s) << what;
          } else {
            double dx = x.as_double(), dy = y.as_double();
            EXPECT_LE(std::fabs(dx - dy), 1e-6 * std::max(1.0, std::fabs(dx))) << what;
            nonzero += dx != 0;
          }
          ++compared;
          derived_compared += f >= plan.feature_sets[set].features.size();
        }
      }
    }
  }
  EXPECT_GT(compared, 3000);
  EXPECT_GT(nonzero, 1000);
  EXPECT_GT(derived_compared, 500);
}

TEST(StoreConformance, QuantileIsRejectedForRedis) {
  auto spec = parse_spec(R"(
source: {time: ts, schema: {k: string, x: double, ts: int64}}
store: redis://127.0.0.1:1
features:
  - {name: q, key: k, agg: quantile, q: 0.5, field: x, window: 1m}
)",
                         "s.yaml");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(RedisLayout::Check(spec.value()).message(),
            "s.yaml:5: feature 'q': quantile is not kept in the Redis store; use the embedded "
            "store or another aggregate");
}

}  // namespace
}  // namespace millrace

namespace millrace {
namespace {

// Two millrace runs share one Redis: one computes the transactions' terminal
// features, the other the labels'; a third spec that names both sources reads
// the whole terminal vector in one HGETALL.
TEST(StoreConformance, SeveralProcessesShareOneRedis) {
  RedisServer redis;
  ASSERT_TRUE(redis.ready());
  TempDir dir;
  const std::string store = "store: {uri: " + redis.uri() + ", slice: 1m, prefix: shared}\n";
  const std::string tx_src =
      "  transactions: {time: ts, schema: {id: string, terminal_id: string, amount: double, ts: "
      "int64}}\n";
  const std::string lb_src = "  labels: {time: at, schema: {terminal_id: string, at: int64}}\n";
  const std::string tx_feat =
      "  - {name: terminal_n_10m, source: transactions, key: terminal_id, agg: count, window: "
      "10m}\n";
  const std::string lb_feat =
      "  - {name: terminal_frauds_1h, source: labels, key: terminal_id, agg: count, window: 1h}\n";
  auto a = parse_spec("sources:\n" + tx_src + store + "features:\n" + tx_feat, "a.yaml");
  auto b = parse_spec("sources:\n" + lb_src + store + "features:\n" + lb_feat, "b.yaml");
  auto both = parse_spec("sources:\n" + tx_src + lb_src + store + "features:\n" + tx_feat + lb_feat,
                         "both.yaml");
  ASSERT_TRUE(a.ok() && b.ok() && both.ok());
  const TimeMs t0 = 1'767'225'600'000;
  {
    std::ofstream tx(dir.file("tx.jsonl")), lb(dir.file("lb.jsonl"));
    // T1: 5 transactions in the last 10 minutes before t0 + 1h; 3 labels in the hour.
    for (int i = 0; i < 8; ++i)
      tx << fmt::format(R"({{"id": "t{}", "terminal_id": "T1", "amount": 1, "ts": {}}})", i,
                        t0 + 3'600'000 - (7 - i) * 180'000)
         << "\n";
    for (int i = 0; i < 4; ++i)
      lb << fmt::format(R"({{"terminal_id": "T1", "at": {}}})", t0 + i * 1'000'000) << "\n";
  }
  RunOptions ra;
  ra.input = dir.file("tx.jsonl");
  ra.output = "";
  ASSERT_TRUE(run_pipeline(a.value(), ra).ok());
  RunOptions rb;
  rb.input = dir.file("lb.jsonl");
  rb.output = "";
  ASSERT_TRUE(run_pipeline(b.value(), rb).ok());
  FeaturePlan plan = plan_features(both.value());
  ASSERT_EQ(plan.feature_sets.size(), 1u);
  auto rs = RedisStore::Open(both.value(), plan);
  ASSERT_TRUE(rs.ok()) << rs.status().message();
  FeatureVector v;
  ASSERT_TRUE(rs.value()->read(0, "T1", t0 + 3'600'000, &v).ok());
  ASSERT_EQ(v.names, (std::vector<std::string>{"terminal_n_10m", "terminal_frauds_1h"}));
  // (t0 + 50m, t0 + 60m]: transactions at 51, 54, 57, 60 minutes; labels at
  // 1000 s, 2000 s, 3000 s (t0 itself is outside (t0, t0 + 1h]).
  EXPECT_EQ(v.values[0].i, 4);
  EXPECT_EQ(v.values[1].i, 3);
  EXPECT_EQ(v.freshness[0], t0 + 3'600'000);
  EXPECT_EQ(v.freshness[1], t0 + 3'000'000);
  // The vector falls as time passes with no new event.
  ASSERT_TRUE(rs.value()->read(0, "T1", t0 + 3'600'000 + 8 * 60'000, &v).ok());
  EXPECT_EQ(v.values[0].i, 1);  // (58m, 68m]: the one at 60m
  EXPECT_EQ(v.values[1].i, 3);
  ASSERT_TRUE(rs.value()->read(0, "T1", t0 + 77 * 60'000, &v).ok());
  EXPECT_EQ(v.values[0].i, 0);
  EXPECT_EQ(v.values[1].i, 2);  // (17m, 77m]: the labels at 2000 s and 3000 s
  EXPECT_EQ(v.freshness[0], kMinTime);
}

}  // namespace
}  // namespace millrace
