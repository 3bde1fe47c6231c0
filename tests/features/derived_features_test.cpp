// Derived features end to end: spec errors with their positions, and a
// randomized, out-of-order stream through run_pipeline whose derived values
// (batch values as of the event, table rows as of the event under a change
// stream, prev, is_new) are checked against a brute force.
#include "millrace/features/derived_features.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

const char* kHeader = R"(source:
  time: ts
  schema: {id: string, card: string, merchant: string, amount: double?, ts: int64}
)";

std::string error_of(const std::string& text) {
  auto spec = parse_spec(std::string(kHeader) + text, "s.yaml");
  return spec.ok() ? "" : spec.status().message();
}

TEST(DerivedSpec, ErrorsNameTheFeatureLineAndColumn) {
  EXPECT_EQ(error_of("features:\n  - {name: x, expr: \"amount / lgo1p(amount)\"}\n"),
            "s.yaml:5: feature 'x': expr at column 10: unknown function 'lgo1p' (did you mean "
            "log1p?)");
  EXPECT_EQ(error_of("features:\n  - {name: c, key: card, agg: count, window: 5m}\n"
                     "  - name: y\n    expr: \"c + amont\"\n"),
            "s.yaml:7: feature 'y': expr at column 5: unknown name 'amont': not a field of the "
            "source schema or an earlier feature (did you mean amount?)");
  EXPECT_EQ(error_of("features:\n  - {name: x, expr: \"z * 2\"}\n  - {name: z, expr: \"1\"}\n"),
            "s.yaml:5: feature 'x': expr at column 1: feature 'z' is defined after this one; a "
            "derived feature reads only fields and the features listed before it");
  EXPECT_EQ(error_of("features:\n  - {name: x, expr: \"amount - prev(amount)\"}\n"),
            "s.yaml:5: feature 'x': expr at column 10: prev() and is_new() keep state per key: "
            "give the feature a 'key:' (e.g. key: card_id)");
  EXPECT_EQ(error_of("features:\n  - {name: x, expr: \"1\", window: 5m}\n"),
            "s.yaml:5: feature 'x': unknown key 'window' (expected one of: name, expr, key)");
  EXPECT_EQ(error_of("features:\n  - {name: x, key: cardd, expr: \"is_new(merchant, 1d)\"}\n"),
            "s.yaml:5: feature 'x': key field 'cardd' is not in the source schema");
  EXPECT_EQ(error_of("features:\n  - {name: amount, expr: \"1\"}\n"),
            "s.yaml:5: feature 'amount': the name is already used by a field or another feature");
  EXPECT_EQ(error_of("batch:\n  - {name: b, path: b.csv, key: card}\nfeatures: []\n"),
            "s.yaml:5: batch 'b': 'columns' must map column names to types, e.g. {risk: double?, "
            "country: string?}");
  EXPECT_EQ(error_of("batch:\n  - {name: b, path: b.csv, key: crd, columns: {v: double}}\n"),
            "s.yaml:5: batch 'b': key field 'crd' is not in the source schema");
  EXPECT_EQ(error_of("batch:\n  - {name: b, path: b.csv, key: card, columns: {v: dbl}}\n"),
            "s.yaml:5: batch 'b': field 'v': unknown type 'dbl' (expected string, int64, double, "
            "bool or timestamp, with '?' for optional)");
  EXPECT_EQ(error_of("tables:\n  - {name: t, path: t.csv, key: k, columns: {v: double},"
                     " changes: c.jsonl}\n"),
            "s.yaml:5: table 't': 'changes' needs 'time' (the field of a change record holding "
            "its event time)");
  EXPECT_EQ(
      error_of("tables:\n  - {name: t, key: k, columns: {v: double}}\n"),
      "s.yaml:5: table 't': needs 'path' (initial rows), change records ('source': an entry of "
      "'sources:', or 'changes': a file of them) or both");
  EXPECT_EQ(error_of("tables:\n  - {name: t, path: t.csv, key: k, columns: {v: double}, pth: x}\n"),
            "s.yaml:5: table 't': unknown key 'pth' (expected one of: name, path, key, columns, "
            "source, changes, time, op)");
  EXPECT_EQ(error_of("windows:\n  - {name: w, key: card, type: tumbling, size: 1m, aggs: "
                     "[{name: n, agg: is_new, field: merchant}]}\n"),
            "s.yaml:5: window 'w' aggregate 'n': prev, time_since_last and is_new are per-event "
            "features only");
}

TEST(DerivedSpec, HelpersAreSharedAndHidden) {
  auto spec = parse_spec(std::string(kHeader) + R"Y(features:
  - {name: c5, key: card, agg: count, window: 5m}
  - {name: d1, key: card, expr: "amount - prev(amount)"}
  - {name: d2, key: card, expr: "if(is_new(merchant, 30d), prev(amount), 0.0)"}
  - {name: d3, key: merchant, expr: "prev(amount)"}
)Y",
                         "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_TRUE(spec->derived);
  EXPECT_EQ(spec->derived->features.size(), 3u);
  // prev(amount) by card once, is_new(merchant, 30d) by card, prev(amount) by merchant.
  ASSERT_EQ(spec->helper_features.size(), 3u);
  EXPECT_EQ(spec->helper_features[0].agg, AggKind::Prev);
  EXPECT_EQ(spec->helper_features[1].agg, AggKind::IsNew);
  EXPECT_EQ(spec->helper_features[1].window, 30 * 86'400'000LL);
  EXPECT_EQ(spec->helper_features[2].key_fields, std::vector<int>{2});
  EXPECT_EQ(spec->derived->features[1].program.type, expr::Type::Double);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Ev {
  std::string id, card, merchant;
  double amount;
  TimeMs t;
};

// The random case: events of a few cards and merchants, out of order within
// 3 s; batch rows of several versions per card; merchant rows changed and
// deleted over time.
struct RandomCase {
  std::vector<Ev> events;
  std::map<std::string, std::map<TimeMs, double>> batch;  // card -> as_of -> avg
  struct Change {
    TimeMs t;
    bool del;
    double risk;
  };
  std::map<std::string, double> initial_risk;
  std::map<std::string, std::vector<Change>> changes;  // merchant -> in file order
  std::vector<std::pair<std::string, Change>> change_file;

  explicit RandomCase(uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    TimeMs base = 1'767'225'600'000;
    for (int i = 0; i < 600; ++i) {
      Ev e;
      e.id = "e" + std::to_string(i);
      e.card = "c" + std::to_string(pick(5));
      e.merchant = "m" + std::to_string(pick(6));
      e.amount = pick(400) / 4.0 + 1;
      e.t = base + i * 500 - pick(3000);
      events.push_back(e);
    }
    for (int c = 0; c < 5; ++c) {
      int versions = pick(4);
      for (int v = 0; v < versions; ++v)
        batch["c" + std::to_string(c)][base + pick(300'000)] = pick(100) + 1;
    }
    for (int m = 0; m < 6; ++m)
      if (pick(3) != 0) initial_risk["m" + std::to_string(m)] = pick(100) / 100.0;
    // Changes in time order (one change stream merged with the events by time).
    TimeMs t = base;
    for (int i = 0; i < 40; ++i) {
      t += pick(8000);
      std::string m = "m" + std::to_string(pick(6));
      Change c{t, pick(4) == 0, pick(100) / 100.0};
      changes[m].push_back(c);
      change_file.emplace_back(m, c);
    }
  }

  std::optional<double> batch_at(const std::string& card, TimeMs t) const {
    auto it = batch.find(card);
    if (it == batch.end()) return std::nullopt;
    std::optional<double> v;
    for (const auto& [as_of, avg] : it->second)
      if (as_of <= t) v = avg;
    return v;
  }
  std::optional<double> risk_at(const std::string& m, TimeMs t) const {
    std::optional<double> v;
    if (initial_risk.count(m)) v = initial_risk.at(m);
    auto it = changes.find(m);
    if (it != changes.end())
      for (const Change& c : it->second)
        if (c.t <= t) v = c.del ? std::nullopt : std::optional<double>(c.risk);
    return v;
  }
};

TEST(DerivedFeatures, RandomStreamMatchesBruteForce) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    RandomCase rc(seed);
    TempDir dir;
    {
      std::ofstream b(dir.file("card_stats.csv"));
      b << "card,as_of,avg\n";
      for (const auto& [card, rows] : rc.batch)
        for (const auto& [as_of, avg] : rows) b << card << "," << as_of << "," << avg << "\n";
      std::ofstream m(dir.file("merchants.csv"));
      m << "merchant,risk\n";
      for (const auto& [merchant, risk] : rc.initial_risk) m << merchant << "," << risk << "\n";
      std::ofstream c(dir.file("changes.jsonl"));
      for (const auto& [merchant, ch] : rc.change_file) {
        if (ch.del) {
          c << fmt::format("{{\"op\": \"delete\", \"at\": {}, \"merchant\": \"{}\"}}\n", ch.t,
                           merchant);
        } else {
          c << fmt::format(
              "{{\"op\": \"upsert\", \"at\": {}, \"merchant\": \"{}\", \"risk\": {}}}\n", ch.t,
              merchant, ch.risk);
        }
      }
      std::ofstream in(dir.file("in.jsonl"));
      for (const Ev& e : rc.events)
        in << fmt::format(
            "{{\"id\": \"{}\", \"card\": \"{}\", \"merchant\": \"{}\", \"amount\": {}, \"ts\": "
            "{}}}\n",
            e.id, e.card, e.merchant, e.amount, e.t);
    }
    std::string spec_text = std::string(kHeader) + R"Y(  max_out_of_orderness: 5s
  allowed_lateness: 1h
batch:
  - {name: stats, path: card_stats.csv, key: card, columns: {avg: double}, poll: 0}
tables:
  - {name: merchants, path: merchants.csv, key: merchant, columns: {risk: double?},
     changes: changes.jsonl, time: at}
features:
  - {name: ratio, expr: "amount / batch.stats.avg"}
  - {name: risk, expr: "lookup(merchants, merchant).risk"}
  - {name: m0_risk, expr: "lookup(merchants, 'm0').risk"}
  - {name: risks, expr: "coalesce(lookup(merchants, merchant).risk, 0) * 1000 + coalesce(lookup(merchants, 'm0').risk, 0) * 10 + coalesce(lookup(merchants, merchant).risk, 0)"}
  - {name: risky, expr: "coalesce(risk, 0.5) > 0.5 and not is_null(ratio)"}
  - {name: delta, key: card, expr: "amount - prev(amount, 10s)"}
  - {name: new_merchant, key: card, expr: "is_new(merchant, 20s)"}
)Y";
    std::ofstream(dir.file("spec.yaml")) << spec_text;
    auto spec = load_spec(dir.file("spec.yaml"));
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    for (int workers : {1, 3}) {
      RunOptions opts;
      opts.input = dir.file("in.jsonl");
      opts.output = dir.file("out.jsonl");
      opts.workers = workers;
      auto stats = run_pipeline(spec.value(), opts);
      ASSERT_TRUE(stats.ok()) << stats.status().message();
      ASSERT_EQ(stats->accepted, rc.events.size());
      std::istringstream out(read_file(dir.file("out.jsonl")));
      std::string line;
      size_t i = 0;
      auto num = [](const nlohmann::json& v) -> std::optional<double> {
        if (v.is_null()) return std::nullopt;
        return v.get<double>();
      };
      while (std::getline(out, line)) {
        ASSERT_LT(i, rc.events.size());
        const Ev& e = rc.events[i];
        auto j = nlohmann::json::parse(line);
        ASSERT_EQ(j["id"], e.id);
        const std::string what = fmt::format("seed {} workers {} event {}", seed, workers, e.id);
        auto avg = rc.batch_at(e.card, e.t);
        auto ratio = num(j["ratio"]);
        ASSERT_EQ(ratio.has_value(), avg.has_value()) << what;
        if (avg) {
          EXPECT_DOUBLE_EQ(*ratio, e.amount / *avg) << what;
        }
        auto risk = rc.risk_at(e.merchant, e.t);
        ASSERT_EQ(num(j["risk"]).has_value(), risk.has_value()) << what << " t=" << e.t;
        if (risk) {
          EXPECT_DOUBLE_EQ(*num(j["risk"]), *risk) << what;
        }
        // The rows of two keys of one table, read in turns in one event
        // (each table row is read once per event and key).
        auto m0 = rc.risk_at("m0", e.t);
        ASSERT_EQ(num(j["m0_risk"]).has_value(), m0.has_value()) << what;
        if (m0) {
          EXPECT_DOUBLE_EQ(*num(j["m0_risk"]), *m0) << what;
        }
        EXPECT_DOUBLE_EQ(j["risks"].get<double>(),
                         risk.value_or(0) * 1000 + m0.value_or(0) * 10 + risk.value_or(0))
            << what;
        EXPECT_EQ(j["risky"], risk.value_or(0.5) > 0.5 && avg.has_value()) << what;
        // prev / is_new: over the card's events that arrived before, in time order.
        const Ev* prev = nullptr;
        bool seen = false;
        for (size_t k = 0; k < i; ++k) {
          const Ev& o = rc.events[k];
          if (o.card != e.card || o.t > e.t) continue;  // ties: earlier arrivals come first
          if (!prev || o.t >= prev->t) prev = &o;
          if (o.merchant == e.merchant && o.t > e.t - 20'000) seen = true;
        }
        if (prev && prev->t > e.t - 10'000) {
          EXPECT_DOUBLE_EQ(j["delta"].get<double>(), e.amount - prev->amount) << what;
        } else {
          EXPECT_TRUE(j["delta"].is_null()) << what;
        }
        EXPECT_EQ(j["new_merchant"], !seen) << what;
        ++i;
      }
      EXPECT_EQ(i, rc.events.size());
      EXPECT_NE(stats->derived.find("table merchants: 40 changes applied, 0 rejected"),
                std::string::npos)
          << stats->derived;
    }
  }
}

// Runs the millrace binary; returns its exit code and stderr+stdout.
std::pair<int, std::string> millrace(const std::string& args) {
  std::string cmd = std::string(MILLRACE_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

TEST(DerivedFeatures, MillraceRunWithTheWorkedSpec) {
  TempDir dir;
  std::ofstream(dir.file("spec.yaml")) << R"Y(source:
  time: ts
  schema: {id: string, card_id: string, merchant_id: string, amount: double, ts: timestamp}
batch:
  - {name: card_stats, path: card_stats.csv, key: card_id, columns: {avg_amount_30d: double?}}
tables:
  - {name: merchants, path: merchants.csv, key: merchant_id,
     columns: {risk: double?, country: string?}, changes: merchant_changes.jsonl, time: ts}
features:
  - {name: card_avg_1h, key: card_id, agg: avg, field: amount, window: 1h}
  - {name: amount_ratio, expr: "amount / coalesce(batch.card_stats.avg_amount_30d, card_avg_1h)"}
  - {name: merchant_risk, expr: "coalesce(lookup(merchants, merchant_id).risk, 0.5)"}
  - {name: country, expr: "lookup(merchants, merchant_id, 'country')"}
  - {name: new_merchant, key: card_id, expr: "is_new(merchant_id, 30d)"}
  - {name: weekend_night, expr: "is_weekend(ts) and hour_of_day(ts) < 6"}
)Y";
  std::ofstream(dir.file("card_stats.csv")) << "card_id,as_of,avg_amount_30d\n"
                                               "c1,2026-01-03T00:00:02Z,100\n"
                                               "c1,2026-01-03T00:00:03Z,50\n";
  std::ofstream(dir.file("merchants.csv")) << "merchant_id,risk,country\nm1,0.1,FR\nm2,0.9,DE\n";
  std::ofstream(dir.file("merchant_changes.jsonl"))
      << "{\"op\": \"upsert\", \"ts\": \"2026-01-03T00:00:03Z\", \"merchant_id\": \"m1\", "
         "\"risk\": 0.7, \"country\": \"FR\"}\n"
         "{\"op\": \"delete\", \"ts\": \"2026-01-03T00:00:05Z\", \"merchant_id\": \"m2\"}\n";
  std::ofstream(dir.file("in.jsonl"))
      << "{\"id\": \"e1\", \"card_id\": \"c1\", \"merchant_id\": \"m1\", \"amount\": 10, \"ts\": "
         "\"2026-01-03T00:00:01Z\"}\n"
         "{\"id\": \"e2\", \"card_id\": \"c1\", \"merchant_id\": \"m2\", \"amount\": 20, \"ts\": "
         "\"2026-01-03T00:00:02Z\"}\n"
         "{\"id\": \"e3\", \"card_id\": \"c1\", \"merchant_id\": \"m1\", \"amount\": 30, \"ts\": "
         "\"2026-01-03T00:00:03Z\"}\n"
         "{\"id\": \"e4\", \"card_id\": \"c1\", \"merchant_id\": \"m2\", \"amount\": 40, \"ts\": "
         "\"2026-01-03T07:00:05Z\"}\n";
  auto [code, out] = millrace("run -q --spec " + dir.file("spec.yaml") + " --input " +
                              dir.file("in.jsonl") + " --output " + dir.file("out.jsonl"));
  ASSERT_EQ(code, 0) << out;
  std::vector<nlohmann::json> rows;
  std::istringstream lines(read_file(dir.file("out.jsonl")));
  for (std::string l; std::getline(lines, l);) rows.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(rows.size(), 4u);
  // e1: before the first batch row: the 1-hour average (10); m1 as loaded.
  EXPECT_EQ(rows[0]["amount_ratio"], 1.0);
  EXPECT_EQ(rows[0]["merchant_risk"], 0.1);
  EXPECT_EQ(rows[0]["new_merchant"], true);
  EXPECT_EQ(rows[0]["weekend_night"], true);  // 2026-01-03 is a Saturday
  // e2: exactly at the first batch row's as_of: 20 / 100.
  EXPECT_EQ(rows[1]["amount_ratio"], 0.2);
  EXPECT_EQ(rows[1]["country"], "DE");
  // e3: at the second row's as_of (30 / 50); m1 changed at its time; m1 seen before.
  EXPECT_EQ(rows[2]["amount_ratio"], 0.6);
  EXPECT_EQ(rows[2]["merchant_risk"], 0.7);
  EXPECT_EQ(rows[2]["new_merchant"], false);
  // e4: m2 deleted: the default risk, no country; 07:00 is not night.
  EXPECT_EQ(rows[3]["merchant_risk"], 0.5);
  EXPECT_TRUE(rows[3]["country"].is_null());
  EXPECT_EQ(rows[3]["weekend_night"], false);

  // A bad batch file is rejected with its line and what was expected.
  std::ofstream(dir.file("card_stats.csv")) << "card_id,as_of,avg_amount_30d\nc1,yesterday,1\n";
  auto [code2, out2] = millrace("run -q --spec " + dir.file("spec.yaml") + " --input " +
                                dir.file("in.jsonl") + " --output " + dir.file("out.jsonl"));
  EXPECT_NE(code2, 0);
  EXPECT_NE(out2.find("card_stats.csv:2: column 'as_of': expected epoch milliseconds or an RFC "
                      "3339 timestamp, got \"yesterday\""),
            std::string::npos)
      << out2;
}

}  // namespace
}  // namespace millrace
