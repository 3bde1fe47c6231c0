// The embedded online store: reads as of a time with no new events (windows
// evaluated at t), TTL on every read, freshness, composite keys, reads from
// another thread while a worker writes, and the HTTP endpoint of a run.
#include "millrace/store/embedded_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "millrace/features/feature_plan.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"

namespace millrace {
namespace {

const char* kSpec = R"(
source:
  time: ts
  allowed_lateness: 10m
  schema: {card: string, merchant: string, amount: double?, ts: int64}
features:
  - {name: n_5m, key: card, agg: count, window: 5m}
  - {name: sum_5m, key: card, agg: sum, field: amount, window: 5m}
  - {name: max_10m, key: card, agg: max, field: amount, window: 10m}
  - {name: last_amount, key: card, agg: last, field: amount, window: 1h, ttl: 2m}
  - {name: since, key: card, agg: time_since_last, window: 1h}
  - {name: distinct_merchants, key: card, agg: count_distinct, field: merchant, window: 10m}
  - {name: cm_n, key: [card, merchant], agg: count, window: 1h}
)";

struct Fixture {
  PipelineSpec spec;
  FeaturePlan plan;
  std::unique_ptr<EmbeddedStore> store;
  Event e;

  Fixture() {
    auto s = parse_spec(kSpec, "s.yaml");
    EXPECT_TRUE(s.ok()) << s.status().message();
    spec = std::move(s.value());
    plan = plan_features(spec);
    store = std::make_unique<EmbeddedStore>(spec, plan, 3);
  }
  // Feeds one event as a worker does.
  void add(const std::string& card, const std::string& merchant, double amount, TimeMs ts) {
    e.reset(spec.source.schema.size());
    e.time = ts;
    e.set_string(0, card);
    e.set_string(1, merchant);
    if (amount >= 0) {
      e.values[2].kind = FieldValue::Kind::Double;
      e.values[2].d = amount;
    }
    e.values[3].kind = FieldValue::Kind::Int;
    e.values[3].i = ts;
    std::vector<FeatureValue> out(spec.features.size());
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      std::string key;
      for (size_t i = 0; i < plan.groups[g].key_fields.size(); ++i) {
        if (i) key += kKeySeparator;
        key += e.str(plan.groups[g].key_fields[i]);
      }
      int w = store->worker_of(key);
      store->group(w, static_cast<int>(g))->on_event(key, e, kMinTime, out.data());
    }
  }
  FeatureVector read(const std::string& set, const std::string& key, TimeMs at) {
    FeatureVector v;
    Status s = store->read(plan.feature_set_index(set), parse_entity_key(key), at, &v);
    EXPECT_TRUE(s.ok()) << s.message();
    return v;
  }
};

double num(const FeatureVector& v, const std::string& name) {
  for (size_t i = 0; i < v.names.size(); ++i)
    if (v.names[i] == name) return v.values[i].is_null() ? -999 : v.values[i].as_double();
  ADD_FAILURE() << "no feature " << name;
  return 0;
}
TimeMs fresh(const FeatureVector& v, const std::string& name) {
  for (size_t i = 0; i < v.names.size(); ++i)
    if (v.names[i] == name) return v.freshness[i];
  return -1;
}

TEST(EmbeddedStore, WindowsFallAsEventsAgeOutWithNoNewEvent) {
  Fixture f;
  const TimeMs t0 = 1'000'000'000;
  f.add("c1", "m1", 10, t0);
  f.add("c1", "m2", 20, t0 + 60'000);
  f.add("c1", "m1", 5, t0 + 120'000);
  ASSERT_EQ(f.plan.feature_sets.size(), 2u);
  EXPECT_EQ(f.plan.feature_sets[0].name, "card");
  EXPECT_EQ(f.plan.feature_sets[1].name, "card+merchant");
  auto v = f.read("card", "c1", t0 + 120'000);
  EXPECT_EQ(v.names.size(), 6u);
  EXPECT_EQ(num(v, "n_5m"), 3);
  EXPECT_EQ(num(v, "sum_5m"), 35);
  EXPECT_EQ(num(v, "max_10m"), 20);
  EXPECT_EQ(num(v, "last_amount"), 5);
  EXPECT_EQ(num(v, "since"), 0);
  EXPECT_EQ(num(v, "distinct_merchants"), 2);
  EXPECT_EQ(fresh(v, "n_5m"), t0 + 120'000);
  EXPECT_EQ(fresh(v, "max_10m"), t0 + 120'000);  // the newest event in the window
  // No new event: at t0 + 5m the first event has left the 5-minute window
  // ((t - 5m, t] excludes t0), then the second, then the third.
  v = f.read("card", "c1", t0 + 300'000);
  EXPECT_EQ(num(v, "n_5m"), 2);
  EXPECT_EQ(num(v, "sum_5m"), 25);
  EXPECT_EQ(num(v, "since"), 180'000);
  v = f.read("card", "c1", t0 + 360'000);
  EXPECT_EQ(num(v, "n_5m"), 1);
  EXPECT_EQ(num(v, "sum_5m"), 5);
  v = f.read("card", "c1", t0 + 420'000);
  EXPECT_EQ(num(v, "n_5m"), 0);
  EXPECT_EQ(num(v, "sum_5m"), 0);  // a sum of nothing is 0
  EXPECT_EQ(fresh(v, "n_5m"), kMinTime);
  EXPECT_EQ(num(v, "max_10m"), 20);  // still inside 10 minutes
  EXPECT_EQ(fresh(v, "max_10m"), t0 + 120'000);
  v = f.read("card", "c1", t0 + 659'999);
  EXPECT_EQ(num(v, "max_10m"), 20);
  v = f.read("card", "c1", t0 + 660'000);
  EXPECT_EQ(num(v, "max_10m"), 5);  // the max of 20 left at t0 + 11m
  v = f.read("card", "c1", t0 + 720'000);
  EXPECT_EQ(num(v, "max_10m"), -999);  // null: empty window
  EXPECT_EQ(num(v, "distinct_merchants"), 0);
  // As of a time in the past: only what had happened then.
  v = f.read("card", "c1", t0 + 59'999);
  EXPECT_EQ(num(v, "n_5m"), 1);
  EXPECT_EQ(num(v, "last_amount"), 10);
  v = f.read("card", "c1", t0 - 1);
  EXPECT_EQ(num(v, "n_5m"), 0);
  EXPECT_EQ(num(v, "since"), -999);
  // Composite key, and a key never seen.
  v = f.read("card+merchant", "c1|m1", t0 + 120'000);
  ASSERT_EQ(v.names.size(), 1u);
  EXPECT_EQ(num(v, "cm_n"), 2);
  v = f.read("card", "nobody", t0);
  EXPECT_EQ(num(v, "n_5m"), 0);
  EXPECT_EQ(num(v, "last_amount"), -999);
}

TEST(EmbeddedStore, TtlAppliesOnEveryRead) {
  Fixture f;
  const TimeMs t0 = 2'000'000'000;
  f.add("c1", "m1", 7, t0);
  f.add("c1", "m1", -1, t0 + 30'000);  // null amount: does not refresh last_amount
  auto v = f.read("card", "c1", t0 + 119'999);
  EXPECT_EQ(num(v, "last_amount"), 7);
  EXPECT_EQ(fresh(v, "last_amount"), t0);
  v = f.read("card", "c1", t0 + 120'000);  // newest contributing event 2 minutes old
  EXPECT_EQ(num(v, "last_amount"), -999);
  EXPECT_EQ(fresh(v, "last_amount"), t0);  // freshness says why
  EXPECT_EQ(num(v, "since"), 90'000);      // no TTL on this one
  f.add("c1", "m1", 8, t0 + 200'000);
  v = f.read("card", "c1", t0 + 200'000);
  EXPECT_EQ(num(v, "last_amount"), 8);
}

TEST(EmbeddedStore, ReadsFromAnotherThreadWhileTheWorkerWrites) {
  Fixture f;
  f.store->enable_concurrent_reads();
  const TimeMs t0 = 3'000'000'000;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      FeatureVector v;
      // Every event adds amount 1: the 1-hour count and the 5-minute sum agree
      // with the event count of any consistent snapshot.
      if (!f.store->read(0, "hot", t0 + 10'000'000, &v).ok()) ++bad;
      double n = v.values[0].as_double(), s = v.values[1].as_double();
      if (n != s) ++bad;
      ++reads;
    }
  });
  // The writes start once the reader reads (else they may all be done before
  // the reader thread runs).
  while (reads.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 3000; ++i) {
    int w = f.store->worker_of("hot");
    f.store->lock(w);
    f.add("hot", "m", 1, t0 + 10'000'000 - 1000 + (i % 1000));
    f.store->unlock(w);
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

// A generator that asks the HTTP endpoint once a number of events are out.
class Events : public EventGenerator {
 public:
  Events(const Schema& schema, int n, int ask_at, std::function<void()> ask)
      : schema_(schema), n_(n), ask_at_(ask_at), ask_(std::move(ask)) {}
  bool next(Event* e) override {
    if (i_ == ask_at_) ask_();
    if (i_ == n_) return false;
    e->reset(schema_.size());
    e->time = 1'000'000 + i_ * 1000;
    e->set_string(0, i_ % 2 ? "a" : "b");
    e->set_string(1, "m");
    e->values[2].kind = FieldValue::Kind::Double;
    e->values[2].d = i_;
    e->values[3].kind = FieldValue::Kind::Int;
    e->values[3].i = e->time;
    ++i_;
    return true;
  }

 private:
  const Schema& schema_;
  int n_, ask_at_, i_ = 0;
  std::function<void()> ask_;
};

TEST(EmbeddedStore, HttpEndpointServesVectorsAsOfATime) {
  auto spec = parse_spec(kSpec, "s.yaml");
  ASSERT_TRUE(spec.ok());
  std::atomic<int> port{0};
  std::string body, missing_set, bad_at, old;
  int status = 0;
  Events events(spec->source.schema, 1000, 600, [&] {
    httplib::Client c("127.0.0.1", port.load());
    // 600 events out (times 1,000,000 .. 1,599,000): card "a" had the odd ones.
    auto r = c.Get("/v1/features/card/a?at=1600000");
    ASSERT_TRUE(r);
    status = r->status;
    body = r->body;
    missing_set = c.Get("/v1/features/device/a")->body;
    bad_at = c.Get("/v1/features/card/a?at=soon")->body;
    old = c.Get("/v1/features/card/a?at=5")->body;
  });
  RunOptions opts;
  opts.generator = &events;
  opts.output = "";
  opts.workers = 1;  // inline: every event out has been processed when the generator asks
  opts.serve = "127.0.0.1:0";
  opts.on_serving = [&](int p) { port = p; };
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(status, 200) << body;
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["feature_set"], "card");
  EXPECT_EQ(j["key"], "a");
  EXPECT_EQ(j["at"], 1'600'000);
  // (1,300,000, 1,600,000]: odd i with time in it: i = 301..599 odd -> 150 events.
  EXPECT_EQ(j["features"]["n_5m"]["value"], 150);
  EXPECT_EQ(j["features"]["n_5m"]["freshness"], 1'599'000);
  EXPECT_EQ(j["features"]["since"]["value"], 1000);
  EXPECT_EQ(j["features"]["last_amount"]["value"], 599.0);
  EXPECT_NE(missing_set.find("feature set 'device' is not in the spec (feature sets: card, "
                             "card+merchant)"),
            std::string::npos)
      << missing_set;
  EXPECT_NE(bad_at.find("expected epoch milliseconds"), std::string::npos) << bad_at;
  EXPECT_NE(old.find("older than the store keeps"), std::string::npos) << old;
}

// Derived features a read can evaluate come with the vector over HTTP, as of
// `at`; those that need an event's other fields do not.
TEST(EmbeddedStore, HttpVectorsCarryDerivedFeaturesTheReadCanEvaluate) {
  auto spec = parse_spec(std::string(kSpec) +
                             "  - {name: busy_score, expr: \"n_5m * 2 + coalesce(max_10m, 0)\"}\n"
                             "  - {name: is_a, expr: \"card == 'a'\"}\n"
                             "  - {name: amount_share, expr: \"amount / sum_5m\"}\n",
                         "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  std::atomic<int> port{0};
  std::string body;
  Events events(spec->source.schema, 1000, 600, [&] {
    httplib::Client c("127.0.0.1", port.load());
    auto r = c.Get("/v1/features/card/a?at=1600000");
    ASSERT_TRUE(r);
    body = r->body;
  });
  RunOptions opts;
  opts.generator = &events;
  opts.output = "";
  opts.workers = 1;
  opts.serve = "127.0.0.1:0";
  opts.on_serving = [&](int p) { port = p; };
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  auto j = nlohmann::json::parse(body);
  // 150 events of "a" in the 5 minutes; the largest amount in 10 minutes is 599.
  EXPECT_EQ(j["features"]["n_5m"]["value"], 150);
  EXPECT_EQ(j["features"]["busy_score"]["value"], 150 * 2 + 599.0) << body;
  EXPECT_EQ(j["features"]["busy_score"]["freshness"], 1'599'000);
  EXPECT_EQ(j["features"]["is_a"]["value"], true);
  EXPECT_FALSE(j["features"].contains("amount_share")) << body;
}

}  // namespace
}  // namespace millrace
