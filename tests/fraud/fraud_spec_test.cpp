// apps/fraud/fraud.yaml on hand-built transaction sequences: impossible
// travel, a new device, a card-testing burst, batch values read as of the
// transaction's time, terminal risk from labels reported before it (and not
// after), and the decisions its rules give. Expected values are worked out by
// hand from the definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "millrace/decision/decision_engine.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

constexpr TimeMs kT0 = 1'523'318'400'000;  // 2018-04-10T00:00:00Z
constexpr TimeMs kMin = 60'000, kHour = 3'600'000, kDay = 86'400'000;

double haversine(double lat1, double lon1, double lat2, double lon2) {
  const double rad = M_PI / 180;
  const double a =
      std::pow(std::sin((lat2 - lat1) * rad / 2), 2) +
      std::cos(lat1 * rad) * std::cos(lat2 * rad) * std::pow(std::sin((lon2 - lon1) * rad / 2), 2);
  return 2 * 6371.0088 * std::asin(std::sqrt(a));
}

struct Tx {
  std::string id;
  TimeMs ts;
  std::string card, terminal, mcc;
  double amount;
  std::string device;  // "" : card present
  double lat, lon;
  std::string country, billing = "FR";
};

std::string tx_json(const Tx& t) {
  return fmt::format(
      R"({{"id":"{}","ts":{},"card_id":"{}","terminal_id":"{}","mcc":"{}","amount":{},"card_present":{},"device_id":{},"lat":{},"lon":{},"country":"{}","billing_country":"{}"}})",
      t.id, t.ts, t.card, t.terminal, t.mcc, t.amount, t.device.empty() ? "true" : "false",
      t.device.empty() ? "null" : "\"" + t.device + "\"", t.lat, t.lon, t.country, t.billing);
}

// Per transaction id: feature name -> value (NaN for null), and the event's mcc.
struct Vectors {
  std::map<std::string, std::map<std::string, double>> by_id;
  std::map<std::string, std::string> mcc;
  double at(const std::string& id, const std::string& feature) const {
    auto it = by_id.find(id);
    if (it == by_id.end()) ADD_FAILURE() << "no vector for " << id;
    auto f = it->second.find(feature);
    if (f == it->second.end()) ADD_FAILURE() << "no feature " << feature;
    return f->second;
  }
};

class FraudSpec : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::copy_file(std::string(MILLRACE_SOURCE_DIR) + "/apps/fraud/fraud.yaml",
                               dir_.file("fraud.yaml"));
    std::ofstream(dir_.file("cards.csv")) << "card_id,home_lat,home_lon,billing_country,devices\n"
                                             "cA,48.85,2.35,FR,2\n"
                                             "cB,48.85,2.35,FR,1\n";
    // Yesterday's run (usable from 01:00 today), and today's, usable from 11:00.
    std::ofstream(dir_.file("card_stats.csv"))
        << "card_id,as_of,avg_amount_30d,std_amount_30d,tx_30d,cnp_share_30d,lifetime_count\n"
        << "cA," << kT0 + kHour << ",40,10,20,0.1,100\n"
        << "cA," << kT0 + 11 * kHour << ",45,5,21,0.1,101\n";
    std::ofstream(dir_.file("device_stats.csv")) << "card_id,device_id,as_of,tx_count\n"
                                                 << "cB,d1," << kT0 - kDay + kHour << ",3\n";
    const double paris_lat = 48.8566, paris_lon = 2.3522, warsaw_lat = 52.2297,
                 warsaw_lon = 21.0122;
    std::vector<Tx> txs = {
        // Impossible travel: Paris, then Warsaw 30 minutes later, then Warsaw after today's batch.
        {"a1", kT0 + 10 * kHour, "cA", "T1", "5411", 50, "", paris_lat, paris_lon, "FR"},
        {"a2", kT0 + 10 * kHour + 30 * kMin, "cA", "T2", "5732", 900, "", warsaw_lat, warsaw_lon,
         "PL"},
        {"a3", kT0 + 12 * kHour, "cA", "T3", "5411", 60, "", warsaw_lat, warsaw_lon, "PL"},
        // Another card at terminal T2 earlier.
        {"x1", kT0 + 5 * kHour, "cD", "T2", "5732", 20, "", warsaw_lat, warsaw_lon, "PL", "PL"},
        // Devices: a known one twice, then a new one.
        {"b1", kT0 + 9 * kHour, "cB", "W1", "5999", 40, "d1", 48.86, 2.34, "FR"},
        {"b2", kT0 + 9 * kHour + 5 * kMin, "cB", "W1", "5999", 42, "d1", 48.86, 2.34, "FR"},
        {"b3", kT0 + 9 * kHour + 20 * kMin, "cB", "W2", "5732", 400, "d9", 48.86, 2.34, "FR"},
        {"b4", kT0 + 13 * kHour, "cB", "T1", "5411", 30, "", paris_lat, paris_lon, "FR"},
    };
    // Card testing: ten payments of 1.00 .. 1.90, ten seconds apart, ten merchants, one device.
    for (int i = 0; i < 10; ++i)
      txs.push_back({fmt::format("c{}", i), kT0 + 3 * kHour + i * 10'000, "cC",
                     fmt::format("W{}", 10 + i), "5999", 1.0 + i * 0.1, "d50", 41.9, 12.5, "IT",
                     "FR"});
    std::sort(txs.begin(), txs.end(), [](const Tx& a, const Tx& b) { return a.ts < b.ts; });
    std::ofstream tx(dir_.file("transactions.jsonl"));
    for (const auto& t : txs) tx << tx_json(t) << "\n";
    // Labels of T2: a fraud and a genuine payment reported this morning, a fraud reported
    // after a2 (which a2 must not see).
    std::ofstream(dir_.file("labels.jsonl"))
        << R"({"id":"old1","card_id":"cZ","terminal_id":"T2","ts":)" << kT0 - 2 * kDay
        << R"(,"is_fraud":true,"scenario":"compromised_terminal","reported_at":)" << kT0 + kHour
        << "}\n"
        << R"({"id":"old2","card_id":"cY","terminal_id":"T2","ts":)" << kT0 - 7 * kDay + kHour
        << R"(,"is_fraud":false,"scenario":"none","reported_at":)" << kT0 + 2 * kHour << "}\n"
        << R"({"id":"old3","card_id":"cX","terminal_id":"T2","ts":)" << kT0 - kDay
        << R"(,"is_fraud":true,"scenario":"compromised_terminal","reported_at":)"
        << kT0 + 11 * kHour << "}\n";
  }

  Vectors run() {
    auto spec = load_spec(dir_.file("fraud.yaml"));
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    spec_ = std::move(spec.value());
    Vectors v;
    RunOptions opts;
    opts.source_inputs = {{"transactions", dir_.file("transactions.jsonl")},
                          {"labels", dir_.file("labels.jsonl")}};
    opts.workers = 1;
    opts.write_events = false;
    const int id = spec_.source.schema.index_of("id");
    const int mcc = spec_.source.schema.index_of("mcc");
    opts.on_vector = [&](const Event& e, const FeatureValue* f) {
      auto& m = v.by_id[std::string(e.str(id))];
      for (size_t i = 0; i < spec_.features.size(); ++i)
        m[spec_.features[i].name] = f[i].is_null() ? NAN : f[i].as_double();
      v.mcc[std::string(e.str(id))] = std::string(e.str(mcc));
    };
    auto stats = run_pipeline(spec_, opts);
    EXPECT_TRUE(stats.ok()) << stats.status().message();
    EXPECT_EQ(stats->dead_letters, 0u);
    return v;
  }

  TempDir dir_;
  PipelineSpec spec_;
};

TEST_F(FraudSpec, HasAboutFiftyFeaturesOverCardTerminalDeviceAndProfile) {
  Vectors v = run();
  EXPECT_GE(spec_.features.size(), 45u);
  EXPECT_LE(spec_.features.size(), 65u);
  EXPECT_EQ(v.by_id.size(), 18u);
}

TEST_F(FraudSpec, ImpossibleTravelIsSeenAndDeclinedByTheHardRule) {
  Vectors v = run();
  const double km = haversine(48.8566, 2.3522, 52.2297, 21.0122);
  EXPECT_TRUE(std::isnan(v.at("a1", "travel_distance_km")));  // no previous payment
  EXPECT_NEAR(v.at("a2", "travel_distance_km"), km, 1e-6);
  EXPECT_EQ(v.at("a2", "card_since_last_ms"), 30 * kMin);
  EXPECT_NEAR(v.at("a2", "travel_speed_kmh"), km / 0.5, 1e-6);
  EXPECT_GT(v.at("a2", "travel_speed_kmh"), 900);
  EXPECT_EQ(v.at("a1", "country_mismatch"), 0);
  EXPECT_EQ(v.at("a2", "country_mismatch"), 1);
  EXPECT_EQ(v.at("a2", "card_countries_24h"), 2);
  EXPECT_EQ(v.at("a2", "card_tx_1h"), 2);
  EXPECT_EQ(v.at("a2", "mcc_cash_out"), 1);
  EXPECT_NEAR(v.at("a2", "home_distance_km"), haversine(52.2297, 21.0122, 48.85, 2.35), 1e-6);
  EXPECT_NEAR(v.at("a1", "home_distance_km"), haversine(48.8566, 2.3522, 48.85, 2.35), 1e-6);
  EXPECT_EQ(v.at("a1", "profile_devices"), 2);

  auto engine = decision::DecisionEngine::build(spec_.root["decisions"]);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  auto decide = [&](const std::string& id, double score) {
    std::vector<decision::FieldValue> values;
    for (const auto& f : engine->fields()) {
      if (f == "mcc") {
        values.emplace_back(std::string_view(v.mcc.at(id)));
      } else {
        const double x = v.at(id, f);
        values.emplace_back(std::isnan(x) ? decision::FieldValue() : decision::FieldValue(x));
      }
    }
    return engine->decide(score, values);
  };
  const decision::Decision d = decide("a2", 0.01);  // a model that saw nothing wrong
  EXPECT_EQ(d.action, decision::Action::kDecline);
  EXPECT_EQ(d.rule, "impossible_travel");
  // a3 is in Warsaw too, 90 minutes after a2: no travel, no rule.
  EXPECT_LT(v.at("a3", "travel_distance_km"), 1e-6);
  EXPECT_EQ(decide("a3", 0.01).action, decision::Action::kApprove);
  // Thresholds per merchant category: 0.55 declines a cash-out purchase, challenges groceries.
  EXPECT_EQ(decide("x1", 0.55).action, decision::Action::kDecline);
  EXPECT_EQ(decide("x1", 0.55).segment, "cash_out_goods");
  EXPECT_EQ(decide("a3", 0.55).action, decision::Action::kChallenge);
  EXPECT_EQ(decide("a3", 0.55).segment, "everyday");
}

TEST_F(FraudSpec, NewDeviceKnownDeviceAndSessionAge) {
  Vectors v = run();
  // b1: d1 is known from the nightly job, but new to the stream's 30 days.
  EXPECT_EQ(v.at("b1", "device_known"), 1);
  EXPECT_EQ(v.at("b1", "device_new_30d"), 1);
  EXPECT_EQ(v.at("b1", "session_tx_30m"), 1);
  EXPECT_EQ(v.at("b1", "session_age_s"), 0);
  // b2: same device 5 minutes later.
  EXPECT_EQ(v.at("b2", "device_known"), 1);
  EXPECT_EQ(v.at("b2", "device_new_30d"), 0);
  EXPECT_EQ(v.at("b2", "session_tx_30m"), 2);
  EXPECT_EQ(v.at("b2", "session_age_s"), 300);
  EXPECT_EQ(v.at("b2", "merchant_new_30d"), 0);
  // b3: a device never seen, at a new merchant of a new category.
  EXPECT_EQ(v.at("b3", "device_known"), 0);
  EXPECT_EQ(v.at("b3", "device_new_30d"), 1);
  EXPECT_EQ(v.at("b3", "card_devices_24h"), 2);
  EXPECT_EQ(v.at("b3", "session_tx_30m"), 1);
  EXPECT_EQ(v.at("b3", "session_age_s"), 0);
  EXPECT_EQ(v.at("b3", "merchant_new_30d"), 1);
  EXPECT_EQ(v.at("b3", "mcc_new_30d"), 1);
  EXPECT_EQ(v.at("b3", "card_cnp_1h"), 3);
  // b4: card present: no device, neither known nor new.
  EXPECT_EQ(v.at("b4", "device_known"), 0);
  EXPECT_EQ(v.at("b4", "device_new_30d"), 0);
  EXPECT_EQ(v.at("b4", "tx_cnp"), 0);
  EXPECT_EQ(v.at("b4", "card_cnp_1h"), 0);
  EXPECT_EQ(v.at("b4", "card_devices_24h"), 2);
}

TEST_F(FraudSpec, CardTestingBurst) {
  Vectors v = run();
  // The 10th payment, 90 s after the first: six in the last minute (t - 50 s .. t).
  EXPECT_EQ(v.at("c9", "card_tx_1m"), 6);
  EXPECT_EQ(v.at("c9", "card_tx_5m"), 10);
  EXPECT_EQ(v.at("c9", "card_merchants_30m"), 10);
  EXPECT_EQ(v.at("c9", "card_cnp_1h"), 10);
  EXPECT_NEAR(v.at("c9", "card_amount_min_30m"), 1.0, 1e-12);
  EXPECT_NEAR(v.at("c9", "card_amount_sum_1h"), 14.5, 1e-9);  // 1.0 + 1.1 + ... + 1.9
  EXPECT_EQ(v.at("c9", "session_tx_30m"), 10);
  EXPECT_EQ(v.at("c9", "session_age_s"), 90);
  EXPECT_EQ(v.at("c9", "card_since_last_ms"), 10'000);
  EXPECT_EQ(v.at("c9", "merchant_new_30d"), 1);
  EXPECT_EQ(v.at("c9", "country_mismatch"), 1);
  EXPECT_EQ(v.at("c0", "card_tx_1m"), 1);
  // No batch history and no profile for this card: nulls and zeros, not errors.
  EXPECT_TRUE(std::isnan(v.at("c9", "batch_avg_amount_30d")));
  EXPECT_TRUE(std::isnan(v.at("c9", "amount_ratio_30d")));
  EXPECT_EQ(v.at("c9", "batch_lifetime_count"), 0);
  EXPECT_TRUE(std::isnan(v.at("c9", "home_distance_km")));
}

TEST_F(FraudSpec, BatchValuesAndTerminalRiskAsOfTheTransaction) {
  Vectors v = run();
  // a1 and a2 (10:00, 10:30) read yesterday's run; a3 (12:00) reads today's (from 11:00).
  EXPECT_EQ(v.at("a1", "batch_avg_amount_30d"), 40);
  EXPECT_EQ(v.at("a1", "amount_ratio_30d"), 50.0 / 40);
  EXPECT_EQ(v.at("a1", "amount_zscore_30d"), 1.0);
  EXPECT_EQ(v.at("a1", "batch_lifetime_count"), 100);
  EXPECT_EQ(v.at("a2", "amount_ratio_30d"), 900.0 / 40);
  EXPECT_EQ(v.at("a3", "batch_avg_amount_30d"), 45);
  EXPECT_EQ(v.at("a3", "amount_ratio_30d"), 60.0 / 45);
  EXPECT_EQ(v.at("a3", "batch_lifetime_count"), 101);
  // The card's own 7-day amounts at a3: 50, 900, 60.
  const double mean = (50 + 900 + 60) / 3.0;
  const double sd = std::sqrt(
      ((50 - mean) * (50 - mean) + (900 - mean) * (900 - mean) + (60 - mean) * (60 - mean)) / 3);
  EXPECT_NEAR(v.at("a3", "card_amount_avg_7d"), mean, 1e-9);
  EXPECT_NEAR(v.at("a3", "card_amount_std_7d"), sd, 1e-9);
  EXPECT_NEAR(v.at("a3", "amount_zscore_7d"), (60 - mean) / sd, 1e-9);
  // T2: x1 (05:00) sees the fraud reported at 01:00 and the genuine label of 02:00;
  // a2 (10:30) sees two transactions and still one fraud: the one reported at 11:00 is
  // in its future.
  EXPECT_EQ(v.at("x1", "terminal_frauds_7d"), 1);
  EXPECT_EQ(v.at("x1", "terminal_tx_7d"), 1);
  EXPECT_EQ(v.at("x1", "terminal_risk_7d"), 1.0);
  EXPECT_EQ(v.at("a2", "terminal_frauds_7d"), 1);
  EXPECT_EQ(v.at("a2", "terminal_frauds_30d"), 1);
  EXPECT_EQ(v.at("a2", "terminal_tx_7d"), 2);
  EXPECT_EQ(v.at("a2", "terminal_risk_7d"), 0.5);
  EXPECT_EQ(v.at("a2", "terminal_tx_1h"), 1);
  EXPECT_EQ(v.at("a2", "terminal_cards_1h"), 1);
  // T1 has no label: risk 0, not null.
  EXPECT_EQ(v.at("a1", "terminal_risk_30d"), 0);
}

}  // namespace
}  // namespace millrace
